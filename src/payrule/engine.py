"""Loaded checkers + claims -> decisions (contract sections 2 and 3).

Claims are grouped by payer and patient. In each group every line is decided in date order (date of
service, then input order, then line number) and a line that is not denied is recorded, so later lines
see it in their limits. `claim` rules only look at a claim's own lines and same-day lines, so they are
decided first; their reasons go on every line of the claim.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from .claims import ClaimError
from .loader import Checker
from .runtime import APPROVE, DENY, RANK, Claim, Group, Line

__all__ = ["decide", "decision_json", "Decided"]

_BY_RANK = {v: k for k, v in RANK.items()}


class Decided:
    """A decided claim: its lines carry `decision` and `reasons` [(Rule, message), ...]."""

    __slots__ = ("claim", "decision")

    def __init__(self, claim: Claim, decision: str):
        self.claim = claim
        self.decision = decision


def decide(checkers: dict[str, Checker], records: Sequence[Claim | ClaimError], history: Iterable[Claim] = ()) -> list[Decided | ClaimError]:
    """Decide every readable claim; returns one Decided or ClaimError per record, in input order."""
    groups: dict[tuple[str, str], list[Claim]] = {}
    out: list[Decided | ClaimError] = []
    for rec in records:
        if isinstance(rec, ClaimError):
            out.append(rec)
            continue
        if rec.payer_key not in checkers:
            out.append(ClaimError(rec.claim_id, f"no policy for payer {rec.payer!r}", rec.input_line))
            continue
        groups.setdefault((rec.payer_key, rec.patient_id), []).append(rec)
        out.append(rec)  # replaced below once decided
    past: dict[tuple[str, str], list[Line]] = {}
    for h in history:
        if h.payer_key in checkers:
            past.setdefault((h.payer_key, h.patient_id), []).extend(h.lines)
    for key, claims in groups.items():
        _decide_group(checkers[key[0]], claims, past.get(key, ()))
    return [Decided(r, _claim_decision(r)) if isinstance(r, Claim) else r for r in out]


def _claim_decision(claim: Claim) -> str:
    return _BY_RANK[max(RANK[ln.decision] for ln in claim.lines)]


def _decide_group(checker: Checker, claims: list[Claim], history: Sequence[Line]) -> None:
    lines = [ln for c in claims for ln in c.lines]
    lines.sort(key=lambda ln: (ln.date, ln.claim.order, ln.no))
    g = Group(lines, history, checker.same_day_sets, checker.earlier_sets, checker.session_sets)
    claim_hits: dict[int, dict] = {}
    if checker.claim_rules:
        for c in claims:
            hits = {}
            for rule in checker.claim_rules:
                for ln in c.lines:
                    if rule.guard is not None and ln.code not in rule.guard:
                        continue
                    msg = rule.fn(ln, g)
                    if msg is not None:
                        hits[rule.id] = msg
                        break
            if hits:
                claim_hits[id(c)] = hits
    for ln in lines:
        reasons = []
        hits = claim_hits.get(id(ln.claim)) if claim_hits else None
        if hits is None:
            for rule in checker.rules_for(ln.code):
                msg = rule.fn(ln, g)
                if msg is not None:
                    reasons.append((rule, msg))
        else:
            for rule in checker.rules:
                if rule.scope == "claim":
                    if rule.id in hits:
                        reasons.append((rule, hits[rule.id]))
                elif rule.guard is None or ln.code in rule.guard:
                    msg = rule.fn(ln, g)
                    if msg is not None:
                        reasons.append((rule, msg))
        decision = APPROVE
        for rule, _ in reasons:
            if RANK[rule.outcome] > RANK[decision]:
                decision = rule.outcome
        ln.decision = decision
        ln.reasons = reasons
        if decision != DENY:
            g.record(ln)


def decision_json(d: Decided | ClaimError) -> dict:
    """The contract's output object for one claim."""
    if isinstance(d, ClaimError):
        return d.as_json()
    c = d.claim
    return {
        "claim_id": c.claim_id,
        "decision": d.decision,
        "lines": [
            {
                "line": ln.no,
                "code": ln.code_raw,
                "decision": ln.decision,
                "reasons": [
                    {"policy": r.policy, "rule": r.id, "outcome": r.outcome, "message": msg, "source": r.source}
                    for r, msg in ln.reasons
                ],
            }
            for ln in c.lines
        ],
    }
