"""`payrule lint`: every finding in the policies, errors and warnings, each with a code."""
from __future__ import annotations

from pathlib import Path

from payrule.cli.commands._common import EXIT_FINDINGS, EXIT_OK, FORMAT_HELP, usage_error
from payrule.lang.diagnostics import Severity, render_all, render_json
from payrule.lang.source import SourceFile
from payrule.loader import default_policy_dir, discover
from payrule.tools.linter import lint

NAME = "lint"
HELP = "report every problem in policies, with codes"
DESCRIPTION = (
    "Check policies and report every finding, sorted by file, line and column, then a count. Errors are what "
    "`payrule check` refuses plus rules that can never fire; warnings are unused sets and sources, duplicate "
    "values, shadowed rules and rules without a message or a citation. Each code (PR001...) is explained on the "
    "Lint codes page of the documentation. With --format json, standard output is one JSON array of the "
    "findings instead (code, severity, message, help, path, line, col, end_line, end_col). Exit status: "
    "0 no errors (warnings alone pass unless --strict), 1 errors (or warnings, with --strict), 2 a usage error."
)


def add_arguments(p) -> None:
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="policy files or folders to report on (default: every policy in the --policies folders)")
    p.add_argument("--policies", metavar="DIR", action="append",
                   help="folders where included policies are found (default: the shipped policies); may repeat")
    p.add_argument("--strict", action="store_true", help="fail (exit 1) on warnings too")
    p.add_argument("--format", choices=("text", "json"), default="text", help=FORMAT_HELP)


def run(args) -> int:
    dirs = [Path(d) for d in (args.policies or [default_policy_dir()])]
    entries: dict[str, tuple[Path, str]] = {}
    for d in dirs:
        if not d.is_dir():
            return usage_error(f"policy folder {d} " + ("is not a folder" if d.exists() else "does not exist"))
        for p, name in discover(d):
            entries.setdefault(str(p.resolve()), (p, name))
    named: list[str] = []
    for f in args.files:
        p = Path(f)
        if p.is_dir():
            found = discover(p)
        elif p.is_file():
            found = [(p, p.as_posix())]
        else:
            return usage_error(f"cannot read policy file {f}: no such file")
        for q, name in found:
            key = str(q.resolve())
            entries.setdefault(key, (q, name))
            named.append(entries[key][1])
    sources: list[SourceFile] = []
    for _, (p, name) in sorted(entries.items(), key=lambda kv: kv[1][1]):
        try:
            sources.append(SourceFile(name, p.read_bytes().decode("utf-8-sig")))
        except (OSError, UnicodeDecodeError) as exc:
            return usage_error(f"cannot read policy file {name}: {getattr(exc, 'strerror', None) or exc}")
    found = lint(sources, only=named if args.files else None)
    if args.format == "json":
        print(render_json(found))
    else:
        print(render_all(found, {s.name: s for s in sources}))
    errors = sum(1 for d in found if d.severity is Severity.ERROR)
    if errors or (args.strict and found):
        return EXIT_FINDINGS
    return EXIT_OK
