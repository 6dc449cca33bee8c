"""`payrule fmt`: rewrite policies in the one canonical layout (see payrule.tools.formatter)."""
from __future__ import annotations

import difflib
import sys
from pathlib import Path

from payrule.cli.commands._common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from payrule.lang.diagnostics import DiagnosticError, render
from payrule.lang.source import SourceFile
from payrule.loader import SUFFIX
from payrule.tools.formatter import format_policy

NAME = "fmt"
HELP = "rewrite policies in the canonical layout"
DESCRIPTION = (
    "Rewrite each policy file in place in the canonical layout, keeping every comment. A folder stands for "
    "every *.policy under it; `-` formats standard input to standard output. Exit status: 0 done (or nothing "
    "to change), 1 with --check when a file would change, 2 when a file cannot be read or parsed."
)


def add_arguments(p) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="policy files or folders; - for standard input")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 naming each file that would change")
    p.add_argument("--diff", action="store_true", help="change nothing; print a unified diff of each change")


def _expand(args: list[str]) -> list[str]:
    out: list[str] = []
    for a in args:
        p = Path(a)
        if a != "-" and p.is_dir():
            out.extend(str(f) for f in sorted(p.rglob("*" + SUFFIX)) if f.is_file())
        else:
            out.append(a)
    return out


def run(args) -> int:
    status = EXIT_OK
    for name in _expand(args.files):
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_bytes().decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            sys.stderr.write(f"payrule: error: cannot read policy file {name}: {getattr(exc, 'strerror', None) or exc}\n")
            status = EXIT_USAGE
            continue
        source = SourceFile("<stdin>" if name == "-" else name, text)
        try:
            new = format_policy(source)
        except DiagnosticError as exc:
            for d in exc.diagnostics:
                sys.stderr.write(render(d, source) + "\n")
            status = EXIT_USAGE
            continue
        if name == "-":
            if args.diff:
                sys.stdout.write(_diff(text, new, source.name))
            elif not args.check:
                sys.stdout.write(new)
            if new != text and args.check:
                sys.stderr.write("would reformat <stdin>\n")
                status = max(status, EXIT_FINDINGS)
            continue
        if new == text:
            continue
        if args.diff:
            sys.stdout.write(_diff(text, new, name))
        if args.check:
            sys.stderr.write(f"would reformat {name}\n")
            status = max(status, EXIT_FINDINGS)
        elif not args.diff:
            Path(name).write_bytes(new.encode("utf-8"))
            sys.stderr.write(f"reformatted {name}\n")
    return status


def _diff(old: str, new: str, name: str) -> str:
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), name, f"{name} (formatted)", lineterm="")
    return "".join(line + "\n" for line in lines)
