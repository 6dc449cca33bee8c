"""`payrule diff OLD NEW`: what changed between two revisions of a policy file, and a claim they decide differently."""
from __future__ import annotations

import sys

from payrule.api import PolicyError
from payrule.cli.commands._common import EXIT_FINDINGS, EXIT_OK, usage_error
from payrule.lang.diagnostics import DiagnosticError, render_all
from payrule.tools.diff import DiffUsageError, diff_policy_sets, load_pair, render_json, render_text

NAME = "diff"
HELP = "compare two revisions of a policy file: rules changed, and a claim decided differently"
DESCRIPTION = (
    "Compare two revisions of one policy file (includes are found among the shipped policies and the "
    "--policies folders; a shipped file defining the same policy is left out). Print the rules, sets, "
    "sources and payers added, removed or changed, then the first, smallest claim (with its history) that "
    "the two revisions decide differently, found by deciding scenarios built from the policies' own sets, "
    "values, limits and windows. Exit status 0 when no decision differs, 1 when one does, 2 for a usage "
    "or policy error."
)


def add_arguments(p) -> None:
    p.add_argument("old", metavar="OLD", help="the earlier revision of the policy file")
    p.add_argument("new", metavar="NEW", help="the later revision of the policy file")
    p.add_argument("--policies", metavar="DIR", action="append",
                   help="another folder where included policies are found, besides the shipped ones; may repeat")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def run(args) -> int:
    try:
        old, new, _ = load_pair(args.old, args.new, args.policies or ())
    except DiffUsageError as exc:  # a policy file or folder that cannot be read
        return usage_error(str(exc), "PR005")
    except DiagnosticError as exc:  # pragma: no cover - a folder the loader cannot read
        raise PolicyError(rendered=render_all(exc.diagnostics, {})) from None
    report = diff_policy_sets(old, new)
    sys.stdout.write(render_json(report) if args.json else render_text(report))
    return EXIT_FINDINGS if report.example is not None else EXIT_OK
