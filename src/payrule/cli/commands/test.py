"""`payrule test`: run the policy test cases kept beside the policies, optionally with rule coverage."""
from __future__ import annotations

import sys
from pathlib import Path

from payrule.cli.commands._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    add_policy_arguments,
    load_policies,
    usage_error,
)
from payrule.loader import default_policy_dir, shown_path
from payrule.tools.policytest import CaseFileError, CaseResult, collect, format_coverage, format_failure, run_suite

NAME = "test"
HELP = "run the policies' test cases (claims with expected decisions)"
DESCRIPTION = (
    "Decide each test case's claims (policies/<folder>/cases/*.json) and compare the line decisions and "
    "the rules that fired with what the case expects. PATH is a policy root, a policy folder or a case "
    "file (default: the --policies folders, else the shipped policies); symlinked folders are followed. "
    "The cases are decided with the policies of their root read beside the shipped ones and the --policies "
    "folders, as `payrule check` reads them. Prints a dot per passing case and F per failing one, then the "
    "differences, then `N passed, M failed` (and the cases that could not be run). Exit 1 when a case "
    "fails (or coverage is below --coverage-min), 2 when a case file or a policy cannot be read."
)

_MARK = {"passed": ".", "failed": "F", "error": "E"}


def add_arguments(c) -> None:
    c.add_argument("paths", nargs="*", metavar="PATH",
                   help="policy root, policy folder or case file (default: the --policies folders, else the shipped policies)")
    add_policy_arguments(c)
    c.add_argument("--coverage", action="store_true", help="print, per rule, whether a case made it fire and a case made it not fire")
    c.add_argument("--coverage-min", metavar="PCT", type=_percent, help="fail (exit 1) when either coverage is below PCT percent; implies --coverage")
    c.add_argument("-v", "--verbose", action="store_true", help="one line per case with its name and result")


def _percent(text: str) -> float:
    import argparse

    try:
        v = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage") from None
    if not 0 <= v <= 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 100")
    return v


def _show(path: Path) -> str:
    return shown_path(path)


def run(args) -> int:
    out = sys.stdout
    for d in args.policies:
        if not Path(d).is_dir():
            return usage_error(f"policy folder `{d}` {'is not a folder' if Path(d).exists() else 'does not exist'}", "PR005")
    paths = args.paths or args.policies or ([] if args.no_shipped else [default_policy_dir()])
    if not paths:
        sys.stderr.write("payrule: error: --no-shipped leaves no cases to run: name a PATH or give --policies DIR\n")
        return EXIT_USAGE
    try:
        targets = collect(paths)
    except CaseFileError as exc:
        sys.stderr.write(f"payrule: error: {exc}\n")
        return EXIT_USAGE
    total = sum(len(t.cases) for t in targets)
    out.write(f"payrule test: {total} case{'s' if total != 1 else ''}\n")

    state = {"folder": None}

    def progress(res: CaseResult) -> None:
        folder = str(Path(res.display).parent.as_posix())
        if args.verbose:
            label = res.case.name if res.case is not None else "(unreadable)"
            out.write(f"{res.display} :: {label} {res.status.upper()}\n")
        else:
            if folder != state["folder"]:
                if state["folder"] is not None:
                    out.write("\n")
                out.write(f"{folder} ")
                state["folder"] = folder
            out.write(_MARK[res.status])
        out.flush()

    # Each root's cases with its policies beside the shipped ones and the --policies folders; a root named
    # here is a subject of the run, so its policies take the place of shipped ones with their ids.
    report = run_suite(targets, show=_show, progress=progress, load=lambda t: load_policies(args, named=[t.root]))
    if state["folder"] is not None:
        out.write("\n")
    for rendered in report.policy_errors:
        sys.stderr.write(rendered + "\n")

    errors = [r for r in report.results if r.status == "error"]
    failures = [r for r in report.results if r.status == "failed"]
    if errors:
        out.write("\n" + " ERRORS ".center(100, "=") + "\n")
        for r in errors:
            out.write(format_failure(r) + "\n")
    if failures:
        out.write("\n" + " FAILURES ".center(100, "=") + "\n")
        for r in failures:
            out.write(format_failure(r) + "\n\n")

    below = False
    want_cov = args.coverage or args.coverage_min is not None
    if want_cov and report.coverage:
        out.write("\n" + " COVERAGE ".center(100, "=") + "\n")
        out.write(format_coverage(report) + "\n")
        missing = [c for c in report.coverage if not c.fired_by or not c.not_fired_covered]
        for c in missing:
            lacks = "; ".join(x for x, ok in (("no case makes it fire", c.fired_by), ("no case makes it not fire", c.not_fired_covered)) if not ok)
            out.write(f"uncovered: {c.key} ({c.source}): {lacks}\n")
        if args.coverage_min is not None:
            low = min(report.percent("fired"), report.percent("not_fired"))
            if low + 1e-9 < args.coverage_min:
                below = True
                out.write(f"coverage {low:.1f}% is below --coverage-min {args.coverage_min:g}%\n")

    summary = f"{report.passed} passed, {report.failed} failed"
    if report.errors:
        summary += f", {report.errors} error{'s' if report.errors != 1 else ''}"
    if report.not_run:
        summary += f", {report.not_run} not run: the policies have errors (on standard error)"
    out.write(summary + "\n")
    if report.policy_errors or report.errors:
        return EXIT_USAGE
    if report.failed or below:
        return EXIT_FINDINGS
    return EXIT_OK
