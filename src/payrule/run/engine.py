"""Loaded checkers + claims -> decisions (contract sections 2 and 3).

Claims are grouped by payer and patient. In each group every line is decided in date order (date of
service, then input order, then line number) and a line that is not denied is recorded, so later lines
see it in their limits. `claim` rules only look at a claim's own lines and same-day lines, so they are
decided first; their reasons go on every line of the claim.
"""
from __future__ import annotations

from json.encoder import encode_basestring as _enc
from operator import attrgetter  # what json.dumps(ensure_ascii=False) uses
from typing import Iterable, Iterator, Sequence

from payrule.claims.readers import ClaimError
from payrule.run.loaded import Checker, Versions, route_error
from payrule.runtime import DENY, RANK, Claim, Group, Line

__all__ = ["reason_json", "decide", "decide_group", "claim_decision", "history_by_group", "decision_json", "render_jsonl",
           "render_one", "Decided"]

_DECISIONS = tuple(sorted(RANK, key=RANK.__getitem__))  # decisions by rank: approve, review, deny


class Decided:
    """A decided claim: its lines carry `decision` and `reasons` [(Rule, message), ...]."""

    __slots__ = ("claim", "decision")

    def __init__(self, claim: Claim, decision: str):
        self.claim = claim
        self.decision = decision


def decide(checkers: dict[str, Checker], records: Sequence[Claim | ClaimError], history: Iterable[Claim] = (),
           progress=None) -> list[Decided | ClaimError]:
    """Decide every readable claim; returns one Decided or ClaimError per record, in input order.
    `progress(done, total)`, if given, is called now and then with patient groups decided so far."""
    groups: dict[tuple[str, str], list[Claim]] = {}
    out: list[Decided | ClaimError] = []
    for rec in records:
        if isinstance(rec, ClaimError):
            out.append(rec)
            continue
        if rec.payer_key not in checkers:
            out.append(ClaimError(rec.claim_id, f"no policy for payer {rec.payer!r}", rec.input_line))
            continue
        checker = checkers[rec.payer_key]
        if checker.version is not None or checker.versions:
            why = route_error(checker, rec)
            if why is not None:
                out.append(ClaimError(rec.claim_id, why, rec.input_line))
                continue
        groups.setdefault((checkers[rec.payer_key].payer, rec.patient_id), []).append(rec)
        out.append(rec)  # replaced below once decided
    past = history_by_group(checkers, history)
    total = len(groups)
    for n, (key, claims) in enumerate(groups.items(), 1):
        decide_group(checkers[key[0]], claims, past.get(key, ()))
        if progress is not None and not n & 4095:
            progress(n, total)
    return [Decided(r, claim_decision(r)) if isinstance(r, Claim) else r for r in out]


def history_by_group(checkers: dict[str, Checker], history: Iterable[Claim]) -> dict[tuple[str, str], list[Line]]:
    """History lines by (payer, patient), for payers with a policy, in service order: date of
    service, then input order, then line number (contract section 3), as input lines are."""
    past: dict[tuple[str, str], list[Line]] = {}
    for h in history:
        if h.payer_key in checkers:  # an alias routes to its policy's payer: one history per policy
            past.setdefault((checkers[h.payer_key].payer, h.patient_id), []).extend(h.lines)
    for lines in past.values():
        lines.sort(key=_DECISION_ORDER)
    return past


def claim_decision(claim: Claim) -> str:
    """A decided claim's decision: deny if any line is denied, else review if any is held, else approve."""
    decision = "approve"
    for ln in claim.lines:
        if ln.decision == DENY:
            return DENY
        if ln.decision == "review":
            decision = "review"
    return decision


def decide_group(checker: Checker | Versions, claims: list[Claim], history: Sequence[Line]) -> None:
    """Decide every line of one (payer, patient) group: `claims` in input order, `history` the group's
    history lines in service order (`history_by_group`). Sets each line's `decision` and `reasons`.
    Every line must have a version of the policy in force on its date (`route_error`)."""
    if isinstance(checker, Versions):
        _decide_versions(checker, claims, history)
        return
    if len(claims) == 1:
        lines = claims[0].lines
        lines = sorted(lines, key=_SERVICE_ORDER) if len(lines) > 1 else lines
    else:
        lines = [ln for c in claims for ln in c.lines]
        lines.sort(key=_DECISION_ORDER)
    g = Group(lines, history, checker.same_day_sets, checker.earlier_sets, checker.session_sets, checker.grouped_sets)
    claim_hits: dict[int, dict] = {}
    if checker.claim_rules:
        claim_plans, claim_plan = checker.claim_plans, checker.claim_plan
        for c in claims:
            # A claim rule fires on the claim when it fires on one of its lines, the first in service
            # order giving the message: only lines whose code some claim rule admits are looked at.
            picked = None
            for ln in c.lines:
                admits = claim_plans.get(ln.code)
                if admits is None:
                    admits = claim_plan(ln.code)
                if admits:
                    if picked is None:
                        picked = [ln]
                    else:
                        picked.append(ln)
            if picked is None:
                continue
            if len(picked) > 1:
                picked.sort(key=_SERVICE_ORDER)
            hits = {}
            for rule in checker.claim_rules:
                guard = rule.guard
                for ln in picked:
                    if guard is not None and ln.code not in guard:
                        continue
                    msg = rule.fn(ln, g)
                    if msg is not None:
                        hits[(rule.policy, rule.id)] = msg
                        break
            if hits:
                claim_hits[id(c)] = hits
    plans, plan, record = checker.plans, checker.plan, g.record
    for ln in lines:
        run, tracked = plans.get(ln.code) or plan(ln.code)
        hits = claim_hits.get(id(ln.claim)) if claim_hits else None
        if hits is None:
            reasons, rank = run(ln, g)
        else:
            reasons, rank = _with_claim_hits(checker.rules, ln, g, hits)
        ln.decision = _DECISIONS[rank]
        ln.reasons = reasons or ()
        if tracked and rank < _DENY_RANK:
            record(ln)


_DENY_RANK = RANK[DENY]


def _decide_versions(versions: Versions, claims: list[Claim], history: Sequence[Line]) -> None:
    """Like decide_group, for a payer whose policy has versions: each line is decided by the version in
    force on its date, and every version's history holds every line not denied (contract section 3: the
    history a line reads counts the same whatever rules were in force on the earlier dates)."""
    lines = [ln for c in claims for ln in c.lines]
    lines.sort(key=_DECISION_ORDER)
    groups = {id(v): Group(lines, history, v.same_day_sets, v.earlier_sets, v.session_sets, v.grouped_sets)
              for v in versions.versions}
    claim_hits: dict[int, dict] = {}
    for c in claims:
        hits: dict = {}
        for ln in sorted(c.lines, key=_SERVICE_ORDER):  # a claim rule fires on a line of its version
            v = versions.at(ln.date)
            assert v is not None, "route_error() lets no such line through"
            for rule in v.claim_rules:
                key = (rule.policy, rule.id)
                if key not in hits and (rule.guard is None or ln.code in rule.guard):
                    msg = rule.fn(ln, groups[id(v)])
                    if msg is not None:
                        hits[key] = msg
        claim_hits[id(c)] = hits
    for ln in lines:
        v = versions.at(ln.date)
        assert v is not None
        reasons, rank = _with_claim_hits(v.rules, ln, groups[id(v)], claim_hits[id(ln.claim)])
        ln.decision = _DECISIONS[rank]
        ln.reasons = reasons or ()
        if rank < _DENY_RANK:
            for other in versions.versions:
                if other.tracks(ln.code):
                    groups[id(other)].record(ln)


def _with_claim_hits(rules, ln: Line, g: Group, hits: dict) -> tuple[list, int]:
    """A line's reasons and rank when its claim has claim-rule hits (`hits`, by (policy, rule id)):
    every rule in order, claim rules from `hits`, line rules run when their guard admits the code."""
    reasons, rank = [], 0
    for rule in rules:
        if rule.scope == "claim":
            msg = hits.get((rule.policy, rule.id))
        elif rule.guard is None or ln.code in rule.guard:
            msg = rule.fn(ln, g)
        else:
            continue
        if msg is not None:
            reasons.append((rule, msg))
            rank = max(rank, RANK[rule.outcome])
    return reasons, rank


# Sort keys, as tuples made in C: a claim's lines in service order (date of service, line number); a
# group's lines in decision order (date of service, input order, line number; contract section 3).
_SERVICE_ORDER = attrgetter("date", "no")
_DECISION_ORDER = attrgetter("date", "claim.order", "no")


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
                    reason_json(r.policy, r.id, r.outcome, msg, r.source, r.carc, r.rarc)
                    for r, msg in ln.reasons
                ],
            }
            for ln in c.lines
        ],
    }


def reason_json(policy: str, rule: str, outcome: str, message: str, source: str,
                carc: str | None = None, rarc: str | None = None) -> dict:
    """One reason of a decision (contract section 2): `carc` and `rarc` only when the rule names them."""
    out = {"policy": policy, "rule": rule, "outcome": outcome, "message": message, "source": source}
    if carc is not None:
        out["carc"] = carc
    if rarc is not None:
        out["rarc"] = rarc
    return out


def _reason_parts(rule, memo: dict) -> tuple[str, str]:
    parts = memo.get(rule)
    if parts is None:
        head = f'{{"policy": {_enc(rule.policy)}, "rule": {_enc(rule.id)}, "outcome": {_enc(rule.outcome)}, "message": '
        tail = f', "source": {_enc(rule.source)}'
        if rule.carc is not None:
            tail += f', "carc": {_enc(rule.carc)}'
        if rule.rarc is not None:
            tail += f', "rarc": {_enc(rule.rarc)}'
        parts = memo[rule] = (head, tail + "}")
    return parts


def _line_text(ln: Line, memo: dict) -> str:
    if ln.reasons:
        rs = []
        for rule, msg in ln.reasons:
            head, tail = _reason_parts(rule, memo)
            rs.append(head + _enc(msg) + tail)
        return f'{{"line": {ln.no}, "code": {_enc(ln.code_raw)}, "decision": "{ln.decision}", "reasons": [{", ".join(rs)}]}}'
    key = (ln.no, ln.code_raw, ln.decision)  # a line no rule fired on: the same text whenever these repeat
    text = memo.get(key)
    if text is None:
        text = f'{{"line": {ln.no}, "code": {_enc(ln.code_raw)}, "decision": "{ln.decision}", "reasons": []}}'
        if len(memo) < _TEXT_MEMO:
            memo[key] = text
    return text


_TEXT_MEMO = 100_000  # entries of render's memo beyond the rules' parts: the texts of lines without reasons


def render_one(d: Decided | ClaimError, memo: dict) -> str:
    """One output object as one JSON line (with its newline); see render_jsonl."""
    if isinstance(d, ClaimError):
        cid = "null" if d.claim_id is None else _enc(d.claim_id)
        return f'{{"claim_id": {cid}, "error": {_enc(d.error)}, "input_line": {d.input_line}}}\n'
    lines = ", ".join([_line_text(ln, memo) for ln in d.claim.lines])
    return f'{{"claim_id": {_enc(d.claim.claim_id)}, "decision": "{d.decision}", "lines": [{lines}]}}\n'


def render_jsonl(decided: Iterable[Decided | ClaimError], memo: dict | None = None) -> Iterator[str]:
    """Each output object as one JSON line (with its newline), byte for byte what
    `json.dumps(decision_json(d), ensure_ascii=False)` gives, without building the dicts. `memo` holds
    each rule's rendered parts and the texts of lines no rule fired on: a caller that renders one claim
    at a time keeps one dict for its run (a new one per call when not given)."""
    memo = {} if memo is None else memo
    for d in decided:
        yield render_one(d, memo)
