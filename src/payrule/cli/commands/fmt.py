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
    """A unified diff, as difflib writes one. Formatting never reorders statements, so the k-th `rule` line
    of one text is the k-th of the other: each stretch between two is matched on its own, which keeps a
    policy of thousands of rules linear (difflib on the whole file is quadratic there)."""
    a, b = old.splitlines(), new.splitlines()
    opcodes = _opcodes(a, b)
    if all(tag == "equal" for tag, *_ in opcodes):
        return ""
    out = [f"--- {name}", f"+++ {name} (formatted)"]
    for group in _grouped(opcodes):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        out.append(f"@@ -{_range(i1, i2)} +{_range(j1, j2)} @@")
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                out += [" " + line for line in a[a1:a2]]
                continue
            out += ["-" + line for line in a[a1:a2]]
            out += ["+" + line for line in b[b1:b2]]
    return "".join(line + "\n" for line in out)


def _anchors(lines: list[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if line.lstrip().startswith("rule ")]


def _opcodes(a: list[str], b: list[str]) -> list[tuple[str, int, int, int, int]]:
    """difflib's opcodes for the whole texts, matched stretch by stretch between `rule` lines."""
    sa, sb = _anchors(a), _anchors(b)
    if len(sa) != len(sb):
        sa, sb = [], []
    cuts = list(zip([0, *sa], [0, *sb])) + [(len(a), len(b))]
    ops: list[tuple[str, int, int, int, int]] = []
    for (a0, b0), (a1, b1) in zip(cuts, cuts[1:]):
        m = difflib.SequenceMatcher(None, a[a0:a1], b[b0:b1], autojunk=False)
        for tag, i1, i2, j1, j2 in m.get_opcodes():
            op = (tag, a0 + i1, a0 + i2, b0 + j1, b0 + j2)
            if ops and (ops[-1][0] == "equal") == (tag == "equal"):  # two changes in a row are one
                ops[-1] = (tag if tag == "equal" else "replace", ops[-1][1], op[2], ops[-1][3], op[4])
            else:
                ops.append(op)
    return ops


def _grouped(ops: list[tuple[str, int, int, int, int]], n: int = 3):
    """Opcodes in hunks with `n` lines of context, as difflib.SequenceMatcher.get_grouped_opcodes."""
    m = difflib.SequenceMatcher(None, "", "")
    m.get_opcodes = lambda: ops  # type: ignore[method-assign]
    return m.get_grouped_opcodes(n)


def _range(start: int, stop: int) -> str:
    """A unified diff's `start,length` (difflib's _format_range_unified)."""
    length = stop - start
    first = start + 1
    if length == 1:
        return f"{first}"
    if not length:
        first -= 1
    return f"{first},{length}"
