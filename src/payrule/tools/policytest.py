"""Policy test cases: claims with the decisions an analyst expects, kept beside the policies.

A case is one JSON file, `policies/<folder>/cases/<case-name>.json`:

    {"name": "Fourth session in twelve months",
     "description": "Three paid sessions in the last year; the fourth is denied.",
     "claims":  [claim objects, as `payrule check` reads them],
     "history": [claim objects that count as already paid]            (optional),
     "expect":  [{"claim": "C1", "line": 1, "decision": "deny",
                  "rules": ["frequency"]}, ...]}                       (`rules` optional)

`rules` is the exact list of rule ids that fired on the line (order does not matter); a rule may also
be named `policy/rule` (`common-tpi/units`). Lines not listed in `expect` are not compared. A `note`
(free text) may be added to the case or to an expectation.

Each case is decided on its own, with the policies of its policy root (the folder that holds the
policy folders: `policies/` for `policies/acme/cases/x.json`); `payrule test` reads them beside the
shipped policies and the `--policies` folders, as `payrule check` would. Coverage is kept per rule
(policy id / rule id): *fired* when some case made it fire on some line, *not fired* when some case
had a line on which the rule was evaluated (a line rule whose guard admits the line's code; a claim
rule on a claim with a line its guard admits) and it did not fire.
"""
from __future__ import annotations

import difflib
import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from payrule.api import PolicyError, PolicySet
from payrule.claims.readers import ClaimError, HistoryError, ReadSession, read_claims, read_history
from payrule.lang import ir
from payrule.loader import Checker, default_policy_dir, walk
from payrule.run.engine import Decided, decide
from payrule.run.loaded import Versions
from payrule.runtime import iso

__all__ = [
    "CASES_DIR", "DECISIONS", "CaseFileError", "Expect", "Case", "LineDiff", "CaseResult", "RuleCoverage",
    "Target", "Report", "load_case", "collect", "run_case", "run_suite", "rules_in_scope",
    "format_failure", "format_coverage",
]

CASES_DIR = "cases"
DECISIONS = ("approve", "review", "deny")
_TOP_KEYS = ("name", "description", "claims", "history", "expect", "note")
_EXPECT_KEYS = ("claim", "line", "decision", "rules", "note")


class CaseFileError(Exception):
    """A case file that cannot be used: unreadable, malformed, or naming what does not exist.
    `str()` is `FILE: message`."""

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


@dataclass(frozen=True)
class Expect:
    index: int  # position in the file's `expect` list
    claim: str
    line: int
    decision: str
    rules: tuple[str, ...] | None  # None: fired rules are not compared


@dataclass
class Case:
    path: Path
    display: str  # the path as reported
    name: str
    description: str
    claims: list[dict]
    history: list[dict]
    expect: list[Expect]


# ---- reading case files ----------------------------------------------------------------------------


def _kind(v) -> str:
    if v is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object"}.get(type(v), type(v).__name__)


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def load_case(path: str | Path, display: str | None = None) -> Case:
    """Read and validate one case file's shape: its JSON, its keys and types, and that every
    expectation names a claim and line of the case. Raises CaseFileError naming the file."""
    p = Path(path)
    shown = display or p.as_posix()

    def bad(msg: str) -> CaseFileError:
        return CaseFileError(shown, msg)

    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise bad(f"cannot read the case file: {exc.strerror or exc}") from None
    try:
        obj = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise bad(f"not UTF-8 (byte {exc.start + 1})") from None
    except RecursionError:
        raise bad("not JSON: nested too deeply to read") from None
    except ValueError as exc:
        where = f" at line {exc.lineno}, column {exc.colno}" if hasattr(exc, "lineno") else ""
        raise bad(f"not JSON: {getattr(exc, 'msg', exc)}{where}") from None
    if not isinstance(obj, dict):
        raise bad(f"a case must be a JSON object, not {_kind(obj)}")
    for key in obj:
        if key not in _TOP_KEYS:
            raise bad(f"unknown key `{key}`{_did_you_mean(key, _TOP_KEYS)}; a case has {', '.join(_TOP_KEYS)}")
    for key in ("name", "description"):
        if key not in obj:
            raise bad(f"`{key}` is missing: every case needs a {key} an analyst can read")
        if not isinstance(obj[key], str) or not obj[key].strip():
            raise bad(f"`{key}` must be a non-empty string, not {_kind(obj[key]) if obj[key] != '' else 'an empty string'}")
    claims = obj.get("claims")
    if claims is None:
        raise bad("`claims` is missing: a case needs at least one claim")
    if not isinstance(claims, list) or not claims:
        raise bad("`claims` must be a non-empty list of claim objects" + ("" if isinstance(claims, list) else f", not {_kind(claims)}"))
    history = obj.get("history")
    if history is None:
        history = []
    if not isinstance(history, list):
        raise bad(f"`history` must be a list of claim objects, not {_kind(history)}")
    for label, items in (("claims", claims), ("history", history)):
        for i, c in enumerate(items):
            if not isinstance(c, dict):
                raise bad(f"{label}[{i}] must be a claim object, not {_kind(c)}")
    _read(shown, claims, "claims")
    _read(shown, history, "history")
    lines: dict[str, set[int]] = {}
    for c in claims:
        cid = c.get("claim_id")
        if isinstance(cid, str) and isinstance(c.get("lines"), list):
            lines[cid] = {ln.get("line") for ln in c["lines"] if isinstance(ln, dict) and type(ln.get("line")) is int}
    history_ids = {c.get("claim_id") for c in history}
    expect_in = obj.get("expect")
    if expect_in is None:
        raise bad("`expect` is missing: a case needs at least one expected line decision")
    if not isinstance(expect_in, list) or not expect_in:
        raise bad("`expect` must be a non-empty list of {claim, line, decision} objects" + ("" if isinstance(expect_in, list) else f", not {_kind(expect_in)}"))
    expect: list[Expect] = []
    seen: dict[tuple[str, int], int] = {}
    for i, e in enumerate(expect_in):
        where = f"expect[{i}]"
        if not isinstance(e, dict):
            raise bad(f"{where} must be an object, not {_kind(e)}")
        for key in e:
            if key not in _EXPECT_KEYS:
                raise bad(f"{where}: unknown key `{key}`{_did_you_mean(key, _EXPECT_KEYS)}; an expectation has {', '.join(_EXPECT_KEYS)}")
        for key in ("claim", "line", "decision"):
            if key not in e:
                raise bad(f"{where}: `{key}` is missing")
        cid, no, dec = e["claim"], e["line"], e["decision"]
        if not isinstance(cid, str):
            raise bad(f"{where}: `claim` must be a claim_id string, not {_kind(cid)}")
        if type(no) is not int:
            raise bad(f"{where}: `line` must be a line number, not {_kind(no)}")
        if dec not in DECISIONS:
            raise bad(f"{where}: `decision` must be approve, review or deny, not {json.dumps(dec)}")
        if cid not in lines:
            if cid in history_ids:
                raise bad(f"{where}: claim `{cid}` is a history claim; history is not decided, so it cannot be expected")
            raise bad(f"{where}: unknown claim `{cid}`{_did_you_mean(cid, lines)}; the case's claims are {', '.join(lines) or 'none'}")
        if no not in lines[cid]:
            have = ", ".join(str(n) for n in sorted(lines[cid])) or "none"
            raise bad(f"{where}: claim `{cid}` has no line {no}; its lines are {have}")
        if (cid, no) in seen:
            raise bad(f"{where}: claim `{cid}` line {no} is already expected by expect[{seen[cid, no]}]")
        seen[cid, no] = i
        rules = e.get("rules")
        if rules is not None:
            if not isinstance(rules, list) or not all(isinstance(r, str) and r.strip() for r in rules):
                raise bad(f"{where}: `rules` must be a list of rule ids (strings), not {_kind(rules)}")
            rules = tuple(r.strip() for r in rules)
        expect.append(Expect(i, cid, no, dec, rules))
    return Case(p, shown, obj["name"].strip(), obj["description"].strip(), claims, history, expect)


# ---- finding cases ---------------------------------------------------------------------------------


@dataclass
class Target:
    """Cases decided with one policy root, and the policy folders whose rules coverage reports
    (empty: every policy of the root)."""

    root: Path
    cases: list[Path] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)
    whole_root: bool = False


def _is_policy_folder(d: Path) -> bool:
    return (d / CASES_DIR).is_dir() or any(p.is_file() for p in d.glob("*.policy"))


def collect(paths: Sequence[str | Path]) -> list[Target]:
    """Turn command-line paths into targets. A path is a policy root (a folder of policy folders),
    a policy folder (it has `*.policy` files or a `cases/` folder), a `cases/` folder or a case file;
    symlinked folders are followed. Raises CaseFileError for a path with no cases."""
    targets: dict[str, Target] = {}

    def target(root: Path) -> Target:
        key = str(root.resolve())
        if key not in targets:
            targets[key] = Target(root)
        return targets[key]

    for given in paths or [default_policy_dir()]:
        p = Path(given)
        if not p.exists():
            raise CaseFileError(p.as_posix(), "no such file or folder")
        if p.is_file():
            folder = p.parent.parent if p.parent.name == CASES_DIR else None
            t = target(folder.parent if folder is not None else default_policy_dir())
            t.cases.append(p)
            if folder is not None:
                t.folders.append(folder)
            else:
                t.whole_root = True
            continue
        if p.name == CASES_DIR and not (p / CASES_DIR).is_dir():
            p = p.parent
        if _is_policy_folder(p):
            found = sorted((p / CASES_DIR).glob("*.json"))
            t = target(p.parent)
            t.folders.append(p)
        else:
            found = [x for x in walk(p, ".json") if x.parent.name == CASES_DIR]
            t = target(p)
            t.whole_root = True
        if not found:
            raise CaseFileError(Path(given).as_posix(), f"no test cases found (looked for {CASES_DIR}/*.json)")
        t.cases.extend(found)
    for t in targets.values():
        once: dict[str, Path] = {}  # a case once, by whatever path it was found
        for c in t.cases:
            once.setdefault(str(c.resolve()), c)
        t.cases = list(once.values())
    return list(targets.values())


# ---- running cases ---------------------------------------------------------------------------------


@dataclass
class LineDiff:
    claim: str
    line: int
    code: str
    date: str
    expected: str
    expected_rules: tuple[str, ...] | None
    got: str
    got_rules: tuple[str, ...]
    reasons: list[tuple[str, str, str]]  # (outcome, policy/rule, message)


@dataclass
class CaseResult:
    case: Case | None
    display: str
    diffs: list[LineDiff] = field(default_factory=list)
    error: CaseFileError | None = None
    fired: set = field(default_factory=set)  # {(policy, rule)}
    not_fired: set = field(default_factory=set)

    @property
    def passed(self) -> bool:
        return self.error is None and not self.diffs

    @property
    def status(self) -> str:
        return "error" if self.error else "passed" if not self.diffs else "failed"


def _read(display: str, items: list[dict], label: str) -> list:
    """The runtime Claims of a case's `claims` or `history` (fresh each time: deciding fills them in)."""
    text = "\n".join(json.dumps(c, ensure_ascii=False) for c in items).encode("utf-8")
    recs = read_claims(text, "case.jsonl", session=ReadSession(keep_extra=True))  # small: keep every field
    for r in recs:
        if isinstance(r, ClaimError):
            who = f" (claim `{r.claim_id}`)" if r.claim_id else ""
            raise CaseFileError(display, f"{label}[{r.input_line - 1}]{who} cannot be read: {r.error}")
    if label == "history":
        try:
            return read_history(text, "history", ReadSession(keep_extra=True))
        except HistoryError as exc:  # pragma: no cover - read_claims above already found it
            raise CaseFileError(display, str(exc)) from None
    return recs


def run_case(case: Case, policies: PolicySet) -> CaseResult:
    """Decide a case's claims and compare with its expectations; also record rule coverage.
    Problems with the case itself (unreadable claims, a payer without a policy, an unknown rule id)
    raise CaseFileError."""
    records = _read(case.display, case.claims, "claims")
    history = _read(case.display, case.history, "history")
    decided = decide(policies.checkers, records, history)
    by_id: dict[str, Decided] = {}
    for i, d in enumerate(decided):
        if isinstance(d, ClaimError):
            raise CaseFileError(case.display, f"claims[{i}] (claim `{d.claim_id}`): {d.error}; payers with a policy: {', '.join(policies.payers) or 'none'}")
        by_id[d.claim.claim_id] = d
    result = CaseResult(case, case.display)
    for e in case.expect:
        d = by_id[e.claim]
        checker = policies.checkers[d.claim.payer_key]
        ln = next(x for x in d.claim.lines if x.no == e.line)
        got_rules = tuple(r.id for r, _ in ln.reasons)
        want = _expected_rules(case, e, checker) if e.rules is not None else None
        if ln.decision != e.decision or (want is not None and sorted(want) != sorted(got_rules)):
            result.diffs.append(LineDiff(
                e.claim, e.line, ln.code_raw, iso(ln.date), e.decision, want, ln.decision, got_rules,
                [(r.outcome, f"{r.policy}/{r.id}", msg) for r, msg in ln.reasons],
            ))
    for d in by_id.values():
        _cover(d, policies.checkers[d.claim.payer_key], result)
    return result


def _expected_rules(case: Case, e: Expect, checker: Checker) -> tuple[str, ...]:
    ids = {r.id: r for r in checker.rules}
    out = []
    for name in e.rules or ():
        policy, _, rid = name.rpartition("/")
        rule = ids.get(rid)
        if rule is None or (policy and rule.policy != policy):
            known = sorted(ids) + sorted(f"{r.policy}/{r.id}" for r in checker.rules)
            raise CaseFileError(case.display, f"expect[{e.index}]: unknown rule `{name}` for payer {checker.payer}{_did_you_mean(name, known)}; its rules are {', '.join(sorted(ids))}")
        out.append(rid)
    return tuple(out)


def _cover(d: Decided, policy: Checker | Versions, result: CaseResult) -> None:
    claim = d.claim
    claim_fired: set = set()
    for ln in claim.lines:
        fired = {(r.policy, r.id) for r, _ in ln.reasons}
        result.fired |= fired
        claim_fired |= fired
        checker = policy.at(ln.date)  # the version in force on the line's date
        for rule in checker.rules_for(ln.code) if checker is not None else ():
            key = (rule.policy, rule.id)
            if key not in fired:
                result.not_fired.add(key)
        for rule in checker.claim_rules if checker is not None else ():
            key = (rule.policy, rule.id)
            if key not in claim_fired and (rule.guard is None or ln.code in rule.guard):
                result.not_fired.add(key)


# ---- a whole run -----------------------------------------------------------------------------------


@dataclass
class RuleCoverage:
    policy: str
    rule: str
    source: str  # "path:line"
    fired_by: list[str] = field(default_factory=list)  # case files
    not_fired_by: list[str] = field(default_factory=list)
    always: bool = False  # its condition is its code test alone: it fires on every line it is evaluated on

    @property
    def key(self) -> str:
        return f"{self.policy}/{self.rule}"

    @property
    def not_fired_covered(self) -> bool:
        return bool(self.not_fired_by) or self.always


@dataclass
class Report:
    results: list[CaseResult] = field(default_factory=list)
    coverage: list[RuleCoverage] = field(default_factory=list)
    policy_errors: list[str] = field(default_factory=list)  # rendered diagnostics of roots that failed to load
    not_run: int = 0  # cases of those roots: not decided, neither passed nor failed

    @property
    def passed(self) -> int:
        return sum(r.status == "passed" for r in self.results)

    @property
    def failed(self) -> int:
        return sum(r.status == "failed" for r in self.results)

    @property
    def errors(self) -> int:
        return sum(r.status == "error" for r in self.results)

    def percent(self, which: str) -> float:
        """Share of rules that some case made fire (`fired`) or not fire (`not_fired`), 0-100."""
        if not self.coverage:
            return 100.0
        hit = sum(bool(c.fired_by) if which == "fired" else c.not_fired_covered for c in self.coverage)
        return 100.0 * hit / len(self.coverage)


def _always_fires(r: ir.Rule) -> bool:
    """A rule whose condition is its code test alone, with no dates and no `unless`: no line it is
    evaluated on can keep it from firing, so "not fired" cannot be shown and is not asked for."""
    return r.guard is not None and len(ir.conjuncts(r.cond)) == 1 and r.unless is None and r.start is None and r.end is None


def rules_in_scope(policies: PolicySet, target: Target) -> list[tuple[str, str, str, bool]]:
    """(policy, rule, source, always fires) of every rule coverage reports for a target: the rules of
    the policies in its folders, with what they include, or of every policy of its root (not of the other
    policies read beside them)."""
    paths = {name: Path(resolved) for resolved, name in policies.workspace.paths.items()}
    folders = [f.resolve() for f in (target.folders if not target.whole_root else [target.root])]
    chosen = []
    for model in policies.policies.values():
        file = paths.get(model.path)
        if file is not None and any(file.is_relative_to(f) for f in folders):
            chosen.append(model)
    if not chosen:
        chosen = list(policies.policies.values())
    out: dict[tuple[str, str], tuple[str, bool]] = {}
    for model in chosen:
        for r in model.rules:
            out.setdefault((r.policy, r.id), (r.source, _always_fires(r)))
    return sorted(((p, r, s, a) for (p, r), (s, a) in out.items()), key=lambda t: (_source_key(t[2]), t[0], t[1]))


def _source_key(source: str) -> tuple[str, int]:
    path, _, line = source.rpartition(":")
    return (path, int(line)) if line.isdigit() else (source, 0)


def run_suite(targets: Sequence[Target], show: Callable[[Path], str] = lambda p: p.as_posix(),
              progress: Callable[[CaseResult], None] | None = None,
              load: Callable[[Target], PolicySet] | None = None) -> Report:
    """Run every target's cases; `progress(result)` is called after each case. `load(target)` gives the
    policies a target's cases are decided with (default: the policies of its root, alone); a target whose
    policies have errors runs no case (`Report.not_run`)."""
    report = Report()
    cover: dict[tuple[str, str], RuleCoverage] = {}
    for t in targets:
        try:
            policies = load(t) if load is not None else PolicySet.load([t.root])
        except PolicyError as exc:
            report.policy_errors.append(exc.rendered)
            report.not_run += len(t.cases)
            continue
        for policy, rule, source, always in rules_in_scope(policies, t):
            cover.setdefault((policy, rule), RuleCoverage(policy, rule, source, always=always))
        for path in t.cases:
            shown = show(path)
            try:
                res = run_case(load_case(path, shown), policies)
            except CaseFileError as exc:
                res = CaseResult(None, shown, error=exc)
            report.results.append(res)
            for key in sorted(res.fired):
                if key in cover:
                    cover[key].fired_by.append(shown)
            for key in sorted(res.not_fired):
                if key in cover:
                    cover[key].not_fired_by.append(shown)
            if progress:
                progress(res)
    report.coverage = list(cover.values())
    return report


# ---- text for people -------------------------------------------------------------------------------


def _rules_text(rules: tuple[str, ...] | None) -> str:
    if rules is None:
        return "(not compared)"
    return ", ".join(sorted(rules)) or "(none)"


def format_failure(res: CaseResult, width: int = 100) -> str:
    """The failure block of a case: its name, then per differing line what was expected and what was
    decided, with the messages of the rules that fired."""
    title = f" {res.display} "
    pad = max(width - len(title), 8)
    out = ["_" * (pad // 2) + title + "_" * (pad - pad // 2)]
    if res.error is not None:
        out.append(f"error: {res.error.message}")
        return "\n".join(out)
    case = res.case
    assert case is not None
    out.append(case.name)
    out.extend(textwrap.wrap(case.description, width, initial_indent="  ", subsequent_indent="  "))
    for d in res.diffs:
        out.append("")
        out.append(f"claim {d.claim}, line {d.line} ({d.code} on {d.date}):")
        out.append(f"  - expected: {d.expected:<8} rules: {_rules_text(d.expected_rules)}")
        out.append(f"  + got:      {d.got:<8} rules: {_rules_text(d.got_rules)}")
        if d.expected_rules is not None:
            missing = sorted(set(d.expected_rules) - set(d.got_rules))
            extra = sorted(set(d.got_rules) - set(d.expected_rules))
            if missing:
                out.append(f"    expected to fire but did not: {', '.join(missing)}")
            if extra:
                out.append(f"    fired but not expected: {', '.join(extra)}")
        if d.reasons:
            out.append("    reasons:")
            for outcome, rule, msg in d.reasons:
                out.append(f"      {outcome:<7} {rule}: {msg}")
        else:
            out.append("    reasons: none (no rule fired)")
    return "\n".join(out)


def format_coverage(report: Report) -> str:
    """The coverage table: one row per rule, then the share of rules covered each way."""
    rows = [("rule", "source", "fired", "not fired")]
    for c in report.coverage:
        rows.append((
            c.key, c.source,
            f"yes ({len(c.fired_by)})" if c.fired_by else "NO",
            f"yes ({len(c.not_fired_by)})" if c.not_fired_by else ("n/a (always)" if c.always else "NO"),
        ))
    n = len(report.coverage)
    nf = sum(bool(c.fired_by) for c in report.coverage)
    nn = sum(c.not_fired_covered for c in report.coverage)
    rows.append(("total", f"{n} rules", f"{report.percent('fired'):.1f}% ({nf}/{n})", f"{report.percent('not_fired'):.1f}% ({nn}/{n})"))
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:<{w[2]}}  {r[3]}".rstrip() for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines)
