"""`payrule why`: one claim's decision, rule by rule, with the facts each rule used."""
from __future__ import annotations

import sys
from datetime import date

from payrule.claims.readers import ClaimError, HistoryError, ReadSession, read_claims, read_history
from payrule.cli.commands._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    add_policy_arguments,
    load_policies,
    read_input,
    usage_error,
)
from payrule.lang.ir import And, CodeIn, CodeIs, Not, Or
from payrule.run.engine import Decided, decide
from payrule.run.interpreter import Check, ClaimTrace, RuleTrace, describe, models_by_payer, trace_claim

NAME = "why"
HELP = "explain one claim's decision rule by rule"
DESCRIPTION = (
    "Decide all the claims (so that history and order are right), then show, for the claim --claim ID, every "
    "rule of its payer's policy on each line: fired, not fired or not applicable, with the facts it used "
    "(the sessions counted and their dates, the window, the next eligible date, the muscle count, the "
    "matching substance, the other line the same day). The decisions shown are the compiled checker's; "
    "the rule-by-rule facts come from payrule's reference interpreter, and any disagreement between the "
    "two is reported as a bug (exit status 1)."
)

MARK = {True: "[yes]", False: "[no] "}


def add_arguments(c) -> None:
    c.add_argument("claims", nargs="*", metavar="CLAIMS", help="claims files (JSON Lines or CSV); standard input when none")
    c.add_argument("--claim", required=True, metavar="ID", help="the claim_id to explain")
    c.add_argument("--history", metavar="FILE", help="earlier claims that count as already paid")
    add_policy_arguments(c)


def _read(args):
    """(claims data [(bytes, name)], history data or None) or an exit status."""
    history = None
    if args.history:
        try:
            history = read_input(args.history)
        except OSError as exc:
            return usage_error(f"cannot read history file {args.history}: {exc.strerror or exc}")
    files = []
    for path in args.claims or ["-"]:
        try:
            files.append((read_input(path), path if path != "-" else "<stdin>"))
        except OSError as exc:
            return usage_error(f"cannot read claims file {path}: {exc.strerror or exc}")
    return files, history


def _records(files, keep_extra: bool) -> list:
    records: list = []
    session = ReadSession(keep_extra=keep_extra)
    for data, name in files:
        records.extend(read_claims(data, name, first_order=len(records), session=session))
    return records


def run(args) -> int:
    policies = load_policies(args)
    got = _read(args)
    if isinstance(got, int):
        return got
    files, hist_data = got
    # The compiled engine and the interpreter each read the input themselves: nothing is shared.
    try:
        keep = policies.reads_extra
        history_e = read_history(hist_data, args.history, ReadSession(keep_extra=keep)) if hist_data is not None else []
        history_i = read_history(hist_data, args.history, ReadSession(keep_extra=keep)) if hist_data is not None else []
    except HistoryError as exc:
        return usage_error(str(exc))
    records_e, records_i = _records(files, keep), _records(files, keep)

    target = [r for r in records_e if r.claim_id == args.claim]
    if not target:
        return usage_error(f"no claim `{args.claim}` in the input")
    readable = [r for r in target if not isinstance(r, ClaimError)]
    decided = decide(policies.checkers, records_e, history_e)
    if not readable:
        err = target[0]
        sys.stdout.write(f"claim {args.claim} cannot be read (input line {err.input_line}): {err.error}\n")
        return EXIT_FINDINGS
    index = records_e.index(readable[0])
    result = decided[index]
    if isinstance(result, ClaimError):
        sys.stdout.write(f"claim {args.claim} was not decided (input line {result.input_line}): {result.error}\n")
        return EXIT_FINDINGS
    trace = trace_claim(models_by_payer(policies.policies), records_i, history_i, args.claim)
    text, problems = render(result, trace)
    sys.stdout.write(text)
    if problems:
        sys.stderr.write(
            f"payrule: BUG: the reference interpreter disagrees with the compiled checker on claim {args.claim} "
            f"({len(problems)} line(s)); please report it with the claims and policies used\n")
        for p in problems:
            sys.stderr.write(f"  {p}\n")
        return EXIT_FINDINGS
    return EXIT_OK


# ---- rendering -----------------------------------------------------------------------------------


def _engine_reasons(ln) -> list[tuple[str, str, str, str]]:
    return [(r.policy, r.id, r.outcome, msg) for r, msg in ln.reasons]


def _trace_reasons(lt) -> list[tuple[str, str, str, str]]:
    return [(r.policy, r.id, r.action, msg) for r, msg in lt.reasons]


def render(result: Decided, trace: ClaimTrace | None) -> tuple[str, list[str]]:
    """The report for one decided claim, and the disagreements between engine and interpreter."""
    claim = result.claim
    out: list[str] = []
    problems: list[str] = []
    w = out.append
    policy = trace.policy if trace else None
    head = f"claim {claim.claim_id}: patient {claim.patient_id}, payer {claim.payer}"
    if policy is not None:
        head += f", policy {policy.id} ({policy.title})"
    w(head)
    w(f"decision: {result.decision.upper()}")
    if trace is None:
        problems.append(f"claim {claim.claim_id}: the reference interpreter found no policy for it")
    elif trace.decision != result.decision:
        problems.append(f"claim {claim.claim_id}: compiled {result.decision}, interpreter {trace.decision}")
    by_no = {lt.line: lt for lt in trace.lines} if trace else {}
    for ln in claim.lines:
        w("")
        w(f"line {ln.no}: {ln.code_raw} on {_iso(ln.date)}: {ln.decision.upper()}")
        if ln.reasons:
            w("  reasons:")
            for r, msg in ln.reasons:
                w(f"    {r.outcome:<6} {r.policy}/{r.id}: {msg} ({r.source})")
        lt = by_no.get(ln.no)
        if lt is None:
            problems.append(f"line {ln.no}: the reference interpreter did not decide it")
            continue
        if lt.decision != ln.decision or _trace_reasons(lt) != _engine_reasons(ln):
            problem = (f"line {ln.no}: compiled {ln.decision} {_fmt(_engine_reasons(ln))}, "
                       f"interpreter {lt.decision} {_fmt(_trace_reasons(lt))}")
            problems.append(problem)
            w("  !!! BUG: the reference interpreter disagrees with the compiled checker here:")
            w(f"  !!!   compiled checker:      {ln.decision} {_fmt(_engine_reasons(ln))}")
            w(f"  !!!   reference interpreter: {lt.decision} {_fmt(_trace_reasons(lt))}")
        w("  rules:")
        for rt in lt.rules:
            _rule(rt, w)
    w("")
    if problems:
        w(f"!!! BUG: {len(problems)} disagreement(s) between the compiled checker and the reference interpreter")
    return "\n".join(out) + "\n", problems


def _fmt(reasons) -> str:
    return "[" + "; ".join(f"{p}/{r}={o}: {m}" for p, r, o, m in reasons) + "]"


def _iso(ordinal: int) -> str:
    return date.fromordinal(ordinal).isoformat()


def _rule(rt: RuleTrace, w) -> None:
    r = rt.rule
    status = rt.status
    if r.scope == "claim" and status == "fired":
        status = f"fired on the claim (line {rt.via_line}'s facts)"
    w(f"    {status}: {r.policy}/{r.id} ({r.action} {r.scope}, {r.source})")
    if rt.status == "not applicable":
        top = rt.check.parts if isinstance(rt.check.cond, And) else [rt.check]
        for part in top:
            if isinstance(part.cond, (CodeIn, CodeIs)) and not part.held:
                w(f"        {describe(part.cond)}: " + "; ".join(part.facts))
                break
        return
    w(f"      when {describe(r.cond)}")
    if rt.via_line is not None and not rt.check.held:
        w(f"      (it held on line {rt.via_line}, so it holds for every line of the claim; on this line:)")
    _check(rt.check, w, 8)
    if rt.note is not None:  # its condition held, but its dates or its `unless` kept it from firing
        w(f"      but {rt.note}")
    if rt.message is not None:
        w(f"      message: {rt.message}")


def _check(c: Check, w, indent: int) -> None:
    pad = " " * indent
    if isinstance(c.cond, (And, Or)):
        word = "all of" if isinstance(c.cond, And) else "any of"
        if indent > 8 or isinstance(c.cond, Or):
            w(f"{pad}{MARK[c.held]} {word}:")
            for p in c.parts:
                _check(p, w, indent + 4)
        else:  # the rule's own top-level `and`: one row per item
            for p in c.parts:
                _check(p, w, indent)
        return
    if isinstance(c.cond, Not):
        w(f"{pad}{MARK[c.held]} not:")
        _check(c.parts[0], w, indent + 4)
        return
    facts = c.facts
    if len(facts) == 1 and len(facts[0]) < 60:
        w(f"{pad}{MARK[c.held]} {describe(c.cond)}: {facts[0]}")
        return
    w(f"{pad}{MARK[c.held]} {describe(c.cond)}")
    for f in facts:
        w(f"{pad}        {f}")
