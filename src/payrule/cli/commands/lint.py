"""`payrule lint`: every finding in the policies, errors and warnings, each with a code."""
from __future__ import annotations

from pathlib import Path

from payrule.cli.commands._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    FORMAT_HELP,
    add_policy_arguments,
    named_file,
    policy_workspace,
    usage_error,
)
from payrule.lang.diagnostics import Severity, render_all, render_json
from payrule.loader import SUFFIX, walk
from payrule.tools.linter import lint

NAME = "lint"
HELP = "report every problem in policies, with codes"
DESCRIPTION = (
    "Check policies and report every finding, sorted by file, line and column, then a count. Errors are what "
    "`payrule check` refuses plus rules that can never fire; warnings are unused sets and sources, duplicate "
    "values, shadowed and overlapping rules, policies that decide no claim and rules without a message or a "
    "citation. Each code (PR001...) is explained on the Lint codes page of the documentation. With --format "
    "json, standard output is one JSON array of the findings instead (code, severity, message, help, path, "
    "line, col, end_line, end_col). Exit status: 0 no errors (warnings alone pass unless --strict), 1 errors "
    "(or warnings, with --strict), 2 a usage error or a file that cannot be read."
)


def add_arguments(p) -> None:
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="policy files or folders to report on (default: every policy in the --policies folders, "
                        "else the shipped ones)")
    add_policy_arguments(p, "a folder of your own policies, read beside the shipped ones (where included ones are "
                            "found); may repeat")
    p.add_argument("--strict", action="store_true", help="fail (exit 1) on warnings too")
    p.add_argument("--format", choices=("text", "json"), default="text", help=FORMAT_HELP)


def run(args) -> int:
    files, folders = [], []
    for f in args.files:
        p = Path(f)
        if p.is_dir():
            folders.append(p)
        elif p.is_file():
            files.append(named_file(p))
        else:
            return usage_error(f"cannot read policy file {f}: no such file", "PR005")
    ws = policy_workspace(args, files=files, named=folders)
    only: list[str] | None = None
    if args.files:
        keys = [str(p.resolve()) for p, _ in files] + [str(q.resolve()) for d in folders for q in walk(d, SUFFIX)]
        only = [ws.paths[k] for k in keys if k in ws.paths]
    elif args.policies:  # the --policies folders: what is yours
        only = [name for name in ws.paths.values() if name not in ws.shipped]
    found = lint(ws, only=only)
    if args.format == "json":
        print(render_json(found))
    else:
        print(render_all(found, ws.sources))
    if any(d.code == "PR005" for d in found):
        return EXIT_USAGE
    errors = sum(1 for d in found if d.severity is Severity.ERROR)
    if errors or (args.strict and found):
        return EXIT_FINDINGS
    return EXIT_OK
