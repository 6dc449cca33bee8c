"""`payrule test`: the shipped policy test cases pass, reach 100% rule coverage both ways, and the
runner reports failures, malformed case files and low coverage the way an analyst can act on."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from payrule import PolicySet
from payrule.tools.policytest import CaseFileError, collect, load_case, run_suite

from conftest import POLICIES

SHIPPED_CASES = sorted(POLICIES.glob("*/cases/*.json"))


@pytest.fixture(scope="module")
def shipped_report():
    return run_suite(collect([POLICIES]))


# ---- the shipped cases -----------------------------------------------------------------------------


def test_shipped_cases_all_pass(cli):
    res = cli("test")
    assert res.code == 0, res.out
    assert res.out.splitlines()[-1] == f"{len(SHIPPED_CASES)} passed, 0 failed"
    assert "F" not in "".join(l.split(" ", 1)[1] for l in res.out.splitlines() if l.startswith("policies/"))


def test_every_shipped_rule_fires_and_does_not_fire(shipped_report):
    # The rules come from the policies themselves, so a rule that loses its cases (or a new rule
    # without cases) fails here.
    every_rule = {(r.policy, r.id) for m in PolicySet.load([POLICIES]).models.values() for r in m.rules}
    assert len(every_rule) >= 30  # 12 common, 6 Medicare, 2 Aetna, 2 BCBS, 3 Cigna, 5 EmblemHealth (contract section 4)
    by_key = {(c.policy, c.rule): c for c in shipped_report.coverage}
    assert set(by_key) == every_rule
    never_fired = sorted(k for k, c in by_key.items() if not c.fired_by)
    never_not_fired = sorted(k for k, c in by_key.items() if not c.not_fired_covered)
    # Only a rule that is its code test alone may go without a case where it does not fire.
    assert all(c.not_fired_by or c.always for c in by_key.values())
    assert {k for k, c in by_key.items() if c.always} == {("cigna-tpi", "dry-needling"), ("emblemhealth-tpi", "dry-needling")}
    assert never_fired == [] and never_not_fired == []
    assert shipped_report.percent("fired") == shipped_report.percent("not_fired") == 100.0


def test_each_policy_folder_covers_its_own_rules(cli):
    """Each folder's cases cover the rules written in that folder (common's cases cover common-tpi)."""
    for folder in ("common", "medicare", "aetna"):
        report = run_suite(collect([POLICIES / folder]))
        assert report.failed == report.errors == 0
        own = [c for c in report.coverage if c.source.startswith(f"policies/{folder}/")]
        assert own, folder
        assert all(c.fired_by and c.not_fired_by for c in own), [c.key for c in own if not (c.fired_by and c.not_fired_by)]


@pytest.mark.parametrize("path", SHIPPED_CASES, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_shipped_case_is_complete(path):
    """Shipped cases name and explain themselves and pin every line's decision and fired rules."""
    case = load_case(path)
    assert len(case.name) > 10 and len(case.description) > 40
    expected = {(e.claim, e.line) for e in case.expect}
    every_line = {(c["claim_id"], ln["line"]) for c in case.claims for ln in c["lines"]}
    assert expected == every_line
    assert all(e.rules is not None for e in case.expect)


def test_coverage_table_and_min(cli):
    res = cli("test", "--coverage", "--coverage-min", "100")
    assert res.code == 0, res.out
    table = res.out[res.out.index(" COVERAGE "):]
    assert "common-tpi/excluded-injectate" in table and "policies/common/trigger_points.policy:" in table
    assert "medicare-tpi/frequency" in table and "aetna-tpi/spacing" in table
    total = [l for l in table.splitlines() if l.startswith("total")][0]
    n = len({(r.policy, r.id) for m in PolicySet.load([POLICIES]).models.values() for r in m.rules})
    assert total.count(f"100.0% ({n}/{n})") == 2
    assert "uncovered" not in res.out


# ---- a policy root in tmp_path ---------------------------------------------------------------------


def _root(tmp_path: Path, with_cases: dict[str, dict | str] | None = None, folder: str = "aetna") -> Path:
    """A copy of the shipped policies (no cases) plus the given case files under `folder/cases/`."""
    root = tmp_path / "policies"
    for pol in POLICIES.glob("*/*.policy"):
        dest = root / pol.parent.name / pol.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(pol, dest)
    cases = root / folder / "cases"
    cases.mkdir(parents=True, exist_ok=True)
    for name, body in (with_cases or {}).items():
        (cases / name).write_text(body if isinstance(body, str) else json.dumps(body, indent=1), encoding="utf-8")
    return root


def _tpi_claim(cid="C1", date="2025-03-03", patient="P1", payer="aetna", **line):
    ln = {"line": 1, "date": date, "code": "20552", "muscles": ["left upper trapezius"], "substances": ["lidocaine"]}
    ln.update(line)
    return {"claim_id": cid, "patient_id": patient, "payer": payer, "diagnoses": ["M79.18"], "lines": [ln]}


def _case(claims, expect, history=None, name="A case", description="A story for the analyst."):
    out = {"name": name, "description": description, "claims": claims, "expect": expect}
    if history is not None:
        out["history"] = history
    return out


def test_failing_case_exits_1_with_a_readable_diff(cli, tmp_path):
    # Two units on a TPI line is a deny (contract: units > 1); the case wrongly expects approve.
    wrong = _case([_tpi_claim(units=2)], [{"claim": "C1", "line": 1, "decision": "approve", "rules": []}],
                  name="Two units wrongly expected to pass")
    right = _case([_tpi_claim()], [{"claim": "C1", "line": 1, "decision": "approve", "rules": []}])
    root = _root(tmp_path, {"a-right.json": right, "b-wrong.json": wrong})
    res = cli("test", root)
    assert res.code == 1
    lines = res.out.splitlines()
    assert lines[-1] == "1 passed, 1 failed"
    assert any(l.endswith("cases .F") for l in lines), res.out
    fail = res.out[res.out.index(" FAILURES "):]
    assert "b-wrong.json" in fail and "Two units wrongly expected to pass" in fail
    assert "claim C1, line 1 (20552 on 2025-03-03):" in fail
    assert "- expected: approve  rules: (none)" in fail
    assert "+ got:      deny     rules: units" in fail
    assert "fired but not expected: units" in fail
    assert "deny    common-tpi/units: 20552 is billed once per session whatever the number of injections, not 2 units" in fail


def test_rule_mismatch_alone_fails_and_rules_are_order_insensitive(cli, tmp_path):
    # Modifier 25 on the TPI line and 2 units: both deny rules fire (contract: every rule that fired is listed).
    claims = [_tpi_claim(units=2, modifiers=["25"])]
    ok = _case(claims, [{"claim": "C1", "line": 1, "decision": "deny", "rules": ["modifier-25-on-tpi", "common-tpi/units"]}])
    short = _case(claims, [{"claim": "C1", "line": 1, "decision": "deny", "rules": ["units"]}])
    root = _root(tmp_path, {"ok.json": ok, "short.json": short})
    res = cli("test", root)
    assert res.code == 1
    assert res.out.splitlines()[-1] == "1 passed, 1 failed"
    assert "fired but not expected: modifier-25-on-tpi" in res.out
    assert "short.json" in res.out and "ok.json" not in res.out.split(" FAILURES ")[1]


def test_rules_may_be_omitted(cli, tmp_path):
    root = _root(tmp_path, {"x.json": _case([_tpi_claim(units=3)], [{"claim": "C1", "line": 1, "decision": "deny"}])})
    res = cli("test", root / "aetna" / "cases" / "x.json")
    assert res.code == 0, res.out
    assert res.out.splitlines()[-1] == "1 passed, 0 failed"


def test_history_counts_in_a_case(cli, tmp_path):
    # Aetna: sessions at least 7 days apart; a paid session 3 days before makes this one a deny.
    case = _case([_tpi_claim(date="2025-03-06")], [{"claim": "C1", "line": 1, "decision": "deny", "rules": ["spacing"]}],
                 history=[_tpi_claim("H1", date="2025-03-03")])
    root = _root(tmp_path, {"h.json": case})
    assert cli("test", root).code == 0


GOOD_CLAIM = _tpi_claim()


@pytest.mark.parametrize("body, message", [
    ('{"name": "x", ', "not JSON: "),
    ("[1, 2]", "a case must be a JSON object, not a list"),
    (_case([GOOD_CLAIM], [{"claim": "C2", "line": 1, "decision": "deny"}]), "expect[0]: unknown claim `C2`; the case's claims are C1"),
    (_case([GOOD_CLAIM], [{"claim": "C1", "line": 2, "decision": "deny"}]), "expect[0]: claim `C1` has no line 2; its lines are 1"),
    (_case([GOOD_CLAIM], [{"claim": "C1", "line": 1, "decision": "deny", "rules": ["unit"]}]), "expect[0]: unknown rule `unit` for payer aetna (did you mean `units`?)"),
    (_case([GOOD_CLAIM], [{"claim": "C1", "line": 1, "decision": "deny", "rules": ["medicare-tpi/frequency"]}]), "unknown rule `medicare-tpi/frequency` for payer aetna"),
    (_case([GOOD_CLAIM], [{"claim": "C1", "line": 1, "decision": "denied"}]), "expect[0]: `decision` must be approve, review or deny, not \"denied\""),
    (_case([GOOD_CLAIM], [{"claim": "C1", "line": 1, "decision": "deny", "rule": ["units"]}]), "expect[0]: unknown key `rule` (did you mean `rules`?)"),
    (_case([GOOD_CLAIM], []), "`expect` must be a non-empty list"),
    ({"name": "x", "claims": [GOOD_CLAIM], "expect": [{"claim": "C1", "line": 1, "decision": "deny"}]}, "`description` is missing"),
    (_case([GOOD_CLAIM], [{"claim": "C1", "line": 1, "decision": "deny"}, {"claim": "C1", "line": 1, "decision": "deny"}]), "expect[1]: claim `C1` line 1 is already expected by expect[0]"),
    (_case([_tpi_claim(date="2025-02-30")], [{"claim": "C1", "line": 1, "decision": "deny"}]), "claims[0] (claim `C1`) cannot be read: lines[0].date \"2025-02-30\" is not a real date"),
    (_case([_tpi_claim(payer="humana")], [{"claim": "C1", "line": 1, "decision": "deny"}]), "claims[0] (claim `C1`): no policy for payer 'humana'"),
    (_case([GOOD_CLAIM], [{"claim": "H1", "line": 1, "decision": "deny"}], history=[_tpi_claim("H1", date="2025-01-06")]), "claim `H1` is a history claim"),
])
def test_malformed_case_files_are_named_with_a_clear_error(cli, tmp_path, body, message):
    root = _root(tmp_path, {"broken.json": body, "fine.json": _case([GOOD_CLAIM], [{"claim": "C1", "line": 1, "decision": "approve", "rules": []}])})
    res = cli("test", root)
    assert res.code == 2, res.out
    assert res.out.splitlines()[-1] == "1 passed, 0 failed, 1 error"
    errors = res.out[res.out.index(" ERRORS "):]
    assert "broken.json" in errors and message in errors, errors


def test_load_case_error_names_the_file(tmp_path):
    p = tmp_path / "cases" / "bad.json"
    p.parent.mkdir()
    p.write_text("{}", encoding="utf-8")
    with pytest.raises(CaseFileError) as exc:
        load_case(p, "policies/x/cases/bad.json")
    assert str(exc.value) == "policies/x/cases/bad.json: `name` is missing: every case needs a name an analyst can read"


def test_missing_path_or_no_cases_is_exit_2(cli, tmp_path):
    res = cli("test", tmp_path / "nope")
    assert res.code == 2 and "no such file or folder" in res.err
    root = _root(tmp_path)
    res = cli("test", root / "medicare")
    assert res.code == 2 and "no test cases found" in res.err


def test_broken_policy_is_exit_2(cli, tmp_path):
    root = _root(tmp_path, {"x.json": _case([GOOD_CLAIM], [{"claim": "C1", "line": 1, "decision": "approve"}])})
    (root / "aetna" / "trigger_points.policy").write_text("policy aetna-tpi \"A\"\n  payer aetna\n  rule oops deny line when\n", encoding="utf-8")
    res = cli("test", root)
    assert res.code == 2
    assert "trigger_points.policy" in res.err


# ---- coverage --------------------------------------------------------------------------------------


def test_coverage_min_fails_below_and_passes_at_or_under(cli, tmp_path):
    # One clean Aetna visit: every rule evaluated on a TPI line does not fire; none fires.
    root = _root(tmp_path, {"clean.json": _case([GOOD_CLAIM], [{"claim": "C1", "line": 1, "decision": "approve", "rules": []}])})
    res = cli("test", root / "aetna", "--coverage-min", "100")
    assert res.code == 1
    assert "coverage 0.0% is below --coverage-min 100%" in res.out
    # the root is a folder of one's own, named as given (here absolute: it is not under the working directory)
    assert re.search(r"uncovered: aetna-tpi/spacing \((\S*/)?policies/aetna/trigger_points\.policy:\d+\): no case makes it fire",
                     res.out)
    assert res.out.splitlines()[-1] == "1 passed, 0 failed"
    assert cli("test", root / "aetna", "--coverage-min", "0").code == 0
    assert cli("test", root / "aetna", "--coverage").code == 0
    with pytest.raises(SystemExit) as exc:  # a usage error
        cli("test", root / "aetna", "--coverage-min", "101")
    assert exc.value.code == 2


def test_coverage_counts_only_rules_that_were_evaluated(tmp_path):
    """`not fired` needs a line the rule's guard admits; a claim rule needs such a line on the claim."""
    root = tmp_path / "policies"
    (root / "acme" / "cases").mkdir(parents=True)
    (root / "acme" / "t.policy").write_text(
        'policy acme-t "T"\n  payer acme\n  codes TPI = 20552, 20553\n'
        "  rule units: deny line when code in TPI and units > 1\n"
        "  rule many: review line when units > 3\n"
        '  rule prp: deny claim when code in TPI and has substance "prp"\n', encoding="utf-8")
    visit = {"claim_id": "V", "patient_id": "P", "payer": "acme", "lines": [{"line": 1, "date": "2025-03-03", "code": "99213"}]}
    (root / "acme" / "cases" / "visit.json").write_text(json.dumps(_case([visit], [{"claim": "V", "line": 1, "decision": "approve", "rules": []}])))
    report = run_suite(collect([root]))
    cov = {c.rule: c for c in report.coverage}
    assert report.passed == 1
    # only `many` has no guard, so only it was evaluated on the 99213 line
    assert [r for r, c in cov.items() if c.not_fired_by] == ["many"]
    assert not any(c.fired_by for c in cov.values())
    prp = {"claim_id": "X", "patient_id": "P", "payer": "acme", "lines": [
        {"line": 1, "date": "2025-03-04", "code": "99213"},
        {"line": 2, "date": "2025-03-04", "code": "20552", "substances": ["PRP"], "units": 4}]}
    (root / "acme" / "cases" / "prp.json").write_text(json.dumps(_case([prp], [
        {"claim": "X", "line": 1, "decision": "deny", "rules": ["prp"]},
        {"claim": "X", "line": 2, "decision": "deny", "rules": ["prp", "units", "many"]}])))
    report = run_suite(collect([root]))
    assert report.passed == 2, [r.diffs or r.error for r in report.results]
    cov = {c.rule: c for c in report.coverage}
    assert cov["prp"].fired_by and not cov["prp"].not_fired_by
    assert cov["units"].fired_by and not cov["units"].not_fired_by
    assert cov["many"].fired_by and cov["many"].not_fired_by
    assert report.percent("fired") == 100.0 and round(report.percent("not_fired"), 1) == 33.3


def test_verbose_lists_each_case(cli):
    res = cli("test", POLICIES / "aetna", "-v")
    assert res.code == 0
    assert any(l.endswith(":: Sessions less than seven days apart PASSED") for l in res.out.splitlines()), res.out
