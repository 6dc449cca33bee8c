"""A new payer or code family is a new policy file, never new Python (contract section 4, issue 3 item 2).

A made-up payer `humana` is written as one policy file beside a copy of the common coding rules: it
includes common-tpi, allows at most 2 TPI sessions within 90 days ("N days" is p > d - N days), and adds a
new code family (PRP injection 0232T) with rules of its own. Claims for humana are then decided by it
through the API and the command line. Finally, the program's Python source holds no TPI knowledge.
"""
from __future__ import annotations

import io
import json
import re
import shutil
import tokenize
from pathlib import Path

import pytest

from payrule import PolicySet

from conftest import POLICIES, ROOT, claim, decisions, fired, tpi

HUMANA = """\
# Humana (made up for this test): trigger point injections, and PRP injections as a new code family.

policy humana-tpi "Humana: trigger point injections"
  payer humana
  include common-tpi
  source HUMANA "Humana test policy: no more than two trigger point injection sessions within 90 days"
  source HUMANA-PRP "Humana test policy: PRP injection 0232T is billed with a side (LT or RT), at most once in 30 days"

  codes PRP_INJECTION = 0232T

  rule frequency:
    deny line when code in TPI and more than 2 TPI sessions within 90 days
    message "{nth} trigger point injection session in 90 days; Humana allows {limit} (sessions on {sessions}; next eligible {next_date})"
    per HUMANA

  rule prp-side:
    review line when code in PRP_INJECTION and lacks modifier LT and lacks modifier RT
    message "{code} needs modifier LT or RT"
    per HUMANA-PRP

  rule prp-frequency:
    deny line when code in PRP_INJECTION and more than 1 PRP_INJECTION sessions within 30 days
    message "{nth} PRP injection in 30 days (next eligible {next_date})"
    per HUMANA-PRP
"""
HUMANA_PATH = "policies/humana/trigger_points.policy"


def rule_line(rule: str) -> int:
    return next(i for i, l in enumerate(HUMANA.splitlines(), 1) if l.strip() == f"rule {rule}:")


@pytest.fixture
def policy_dir(tmp_path) -> Path:
    """policies/common copied, policies/humana written: nothing else."""
    root = tmp_path / "policies"
    shutil.copytree(POLICIES / "common", root / "common", ignore=shutil.ignore_patterns("cases"))
    (root / "humana").mkdir()
    (root / "humana" / "trigger_points.policy").write_text(HUMANA, encoding="utf-8")
    return root


@pytest.fixture
def humana(policy_dir) -> PolicySet:
    return PolicySet.load([policy_dir])


def hum(claim_id, *lines, **kw) -> dict:
    kw.setdefault("payer", "humana")
    kw.setdefault("diagnoses", None)
    return claim(claim_id, *lines, **kw)


def prp(line=1, date="2025-05-01", code="0232T", **extra) -> dict:
    return {"line": line, "date": date, "code": code, **extra}


def outcome(results) -> dict[str, str]:
    rules = fired(results)
    return {f"{r['claim_id']}.{ln['line']}": " ".join([ln["decision"], *sorted(rules[(r["claim_id"], ln["line"])])])
            for r in results for ln in r["lines"]}


# ---- the 90-day limit: p > d - 90 days -------------------------------------------------------------
# 2025-04-01 - 90 days = 2025-01-01 (31 + 28 + 31), so a session on 2025-01-01 is out of the window of
# 2025-04-01 and in the window of 2025-03-31 (whose floor is 2024-12-31).

PAID = [hum("H1", tpi(date="2025-01-01")), hum("H2", tpi(date="2025-02-15"))]


def test_new_payer_is_routed_to_its_policy(humana):
    assert humana.payers == ["humana"]
    assert set(humana.models) == {"common-tpi", "humana-tpi"}


@pytest.mark.parametrize("day, expect", [
    pytest.param("2025-03-31", "deny frequency", id="89 days after the oldest: 3rd in 90 days"),
    pytest.param("2025-04-01", "approve", id="90 days after the oldest: out of the window"),
])
def test_90_day_limit_through_the_api(humana, day, expect):
    res = humana.check([hum("C1", tpi(date=day))], PAID)
    assert outcome(res) == {"C1.1": expect}
    if expect != "approve":
        (reason,) = res[0]["lines"][0]["reasons"]
        assert reason["policy"] == "humana-tpi"
        assert reason["source"] == f"{HUMANA_PATH}:{rule_line('frequency')}"
        msg = reason["message"]
        assert msg.startswith("3rd trigger point injection session in 90 days; Humana allows 2"), msg
        assert "sessions on 2025-01-01, 2025-02-15" in msg and "next eligible 2025-04-01" in msg, msg


def test_90_day_limit_in_input_claims(humana):
    # Jan 1, Feb 15 approved; Mar 31 is the 3rd in 90 days; Apr 1 sees only Feb 15 (Mar 31 was denied).
    claims = [hum(f"C{i}", tpi(date=d)) for i, d in enumerate(["2025-01-01", "2025-02-15", "2025-03-31", "2025-04-01"], 1)]
    assert outcome(humana.check(claims)) == {"C1.1": "approve", "C2.1": "approve", "C3.1": "deny frequency",
                                             "C4.1": "approve"}


def test_no_medicare_or_aetna_rule_at_the_new_payer(humana):
    # Five sessions in 12 months (Medicare would deny from the 4th), twice 1 day apart (Aetna would deny):
    # no 90-day window holds 2 earlier sessions.
    days = ["2025-01-01", "2025-01-02", "2025-05-01", "2025-05-02", "2025-09-01"]
    claims = [hum(f"C{i}", tpi(date=d)) for i, d in enumerate(days, 1)]
    assert outcome(humana.check(claims)) == {f"C{i}.1": "approve" for i in range(1, 6)}
    assert outcome(humana.check([hum("C1", tpi(modifiers=["50"]))])) == {"C1.1": "approve"}  # no bilateral rule


def test_common_rules_apply_at_the_new_payer(humana):
    res = humana.check([hum("C1", tpi(1, units=2), {"line": 2, "date": "2025-03-01", "code": "99213"})])
    assert outcome(res) == {"C1.1": "deny units", "C1.2": "deny em-needs-25"}
    assert {x["source"].rpartition(":")[0] for ln in res[0]["lines"] for x in ln["reasons"]} == {
        "policies/common/trigger_points.policy"}


def test_payer_id_of_the_new_payer_is_case_insensitive(humana):
    res = humana.check([hum("C1", tpi(), payer="HUMANA"), hum("C2", tpi(code="20553", muscles=["a", "b", "c"]), payer="Humana")])
    assert outcome(res) == {"C1.1": "approve", "C2.1": "deny one-per-day"}


def test_other_payers_have_no_policy_here(humana):
    (res,) = humana.check([claim("C1", tpi(), payer="medicare")])
    assert res["claim_id"] == "C1" and "error" in res


# ---- a new code family ---------------------------------------------------------------------------

@pytest.mark.parametrize("claims, expect", [
    pytest.param([hum("C1", prp(modifiers=["RT"]))], {"C1.1": "approve"}, id="with a side approve"),
    pytest.param([hum("C1", prp(code="0232t", modifiers=["lt"]))], {"C1.1": "approve"},
                 id="code and modifier compared case-insensitively"),
    pytest.param([hum("C1", prp())], {"C1.1": "review prp-side"}, id="no side review"),
    pytest.param([hum("C1", prp(modifiers=["59"]))], {"C1.1": "review prp-side"}, id="other modifier review"),
    pytest.param([hum("C1", prp(modifiers=["RT"])), hum("C2", prp(date="2025-05-30", modifiers=["LT"]))],
                 {"C1.1": "approve", "C2.1": "deny prp-frequency"}, id="29 days later deny"),
    pytest.param([hum("C1", prp(modifiers=["RT"])), hum("C2", prp(date="2025-05-31", modifiers=["LT"]))],
                 {"C1.1": "approve", "C2.1": "approve"}, id="30 days later approve"),
    # A PRP session is no TPI session and the other way round: with either counted, C3 or C4 would be denied.
    pytest.param([hum("C1", prp(modifiers=["RT"])), hum("C2", tpi(date="2025-05-10")), hum("C3", tpi(date="2025-05-20")),
                  hum("C4", prp(date="2025-06-05", modifiers=["RT"]))],
                 {"C1.1": "approve", "C2.1": "approve", "C3.1": "approve", "C4.1": "approve"},
                 id="families count apart"),
])
def test_new_code_family(humana, claims, expect):
    res = humana.check(claims)
    assert outcome(res) == expect
    for r in res:
        for ln in r["lines"]:
            for x in ln["reasons"]:
                if x["rule"].startswith("prp-"):
                    assert x["source"] == f"{HUMANA_PATH}:{rule_line(x['rule'])}"


def test_new_payer_through_the_cli(cli, humana, policy_dir, tmp_path, monkeypatch):
    claims = [hum("C1", tpi(date="2025-03-31")), hum("C2", tpi(date="2025-04-01"), patient="P2"),
              hum("C3", prp(code="0232t", modifiers=["rt"])), claim("C4", tpi(), payer="medicare")]
    history = PAID + [hum("H3", tpi(date="2025-01-01"), patient="P2"), hum("H4", tpi(date="2025-02-15"), patient="P2")]
    cpath, hpath = tmp_path / "claims.jsonl", tmp_path / "history.jsonl"
    cpath.write_text("".join(json.dumps(c) + "\n" for c in claims), encoding="utf-8")
    hpath.write_text("".join(json.dumps(c) + "\n" for c in history), encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # your own files are reported relative to the working directory: policies/humana/...
    res = cli("check", "--no-shipped", "--policies", "policies", cpath, "--history", hpath)
    assert res.code == 1, res.err  # C4: no policy for medicare among these
    objs = res.objects
    assert [o["claim_id"] for o in objs] == ["C1", "C2", "C3", "C4"]
    assert "error" in objs[3] and objs[3]["input_line"] == 4
    assert decisions(objs[:3]) == {"C1": {1: "deny"}, "C2": {1: "approve"}, "C3": {1: "approve"}}
    assert fired(objs[:3])[("C1", 1)] == ["frequency"]
    assert objs == humana.check(claims, history)
    # Beside the shipped policies (the copy of the common rules is the shipped file itself, byte for byte),
    # Medicare's claim is decided too.
    res = cli("check", "--policies", "policies", cpath, "--history", hpath)
    assert res.code == 0, res.err
    assert res.objects[:3] == objs[:3] and res.objects[3]["decision"] == "approve"


def test_new_payer_beside_the_shipped_policies(cli, tmp_path):
    # Only the new file in its own folder; `include common-tpi` finds the shipped common rules.
    extra = tmp_path / "extra" / "humana"
    extra.mkdir(parents=True)
    (extra / "trigger_points.policy").write_text(HUMANA, encoding="utf-8")
    both = PolicySet.load([POLICIES, tmp_path / "extra"])
    assert both.payers == ["aetna", "bcbs", "cigna", "emblemhealth", "humana", "medicare"]
    claims = [hum(f"C{i}", tpi(date=d)) for i, d in enumerate(["2025-01-01", "2025-02-15", "2025-03-31"], 1)]
    claims.append(claim("M1", tpi(modifiers=["50"]), payer="medicare"))
    assert outcome(both.check(claims)) == {"C1.1": "approve", "C2.1": "approve", "C3.1": "deny frequency",
                                           "M1.1": "deny bilateral"}
    path = tmp_path / "claims.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in claims), encoding="utf-8")
    res = cli("check", "--policies", POLICIES, "--policies", tmp_path / "extra", path)
    assert res.code == 0, res.err
    assert outcome(res.objects) == outcome(both.check(claims))
    # --policies adds to the shipped policies: the new folder alone is enough
    res = cli("check", "--policies", tmp_path / "extra", path)
    assert res.code == 0, res.err
    assert outcome(res.objects) == outcome(both.check(claims))
    assert PolicySet.load([tmp_path / "extra"], shipped=True).payers == both.payers


def test_new_payer_compiles_to_its_own_module(humana):
    src = humana.source("humana-tpi")
    compile(src, "humana_tpi.py", "exec")
    assert "humana" in src and "0232T" in src


# ---- no TPI knowledge in the Python --------------------------------------------------------------

SOURCES = sorted((ROOT / "src" / "payrule").rglob("*.py"))
KNOWLEDGE = re.compile(r"20552|20553|99213|trigger|medicare|aetna", re.I)
# A URL names a code system (CMS publishes HCPCS under www.cms.gov/Medicare/...), not a payer's rule.
_URL = re.compile(r"https?://\S+")


def test_python_sources_were_found():
    assert len(SOURCES) >= 15, SOURCES


def test_python_source_names_no_tpi_code_or_payer():
    hits = [f"{p.relative_to(ROOT)}:{n}: {l.strip()}" for p in SOURCES
            for n, l in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if KNOWLEDGE.search(_URL.sub("", l))]
    assert hits == []


def _code_tokens(path: Path):
    """Names, numbers and string literals that are not docstrings or comments."""
    prev = tokenize.NEWLINE
    for t in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline):
        if t.type == tokenize.STRING and prev in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            pass  # a docstring: a statement that starts with a string
        elif t.type in (tokenize.NAME, tokenize.NUMBER, tokenize.STRING):
            yield t
        if t.type not in (tokenize.COMMENT, tokenize.NL):
            prev = t.type


def test_python_code_holds_no_tpi_knowledge():
    """No identifier, number or string value in the code (docstrings aside) is a TPI code, a payer or a
    TPI word; strings are checked by their words, so help text quoting an example code is allowed only
    as part of a longer sentence, never as a value of its own."""
    bad = []
    for p in SOURCES:
        for t in _code_tokens(p):
            text = t.string
            if t.type == tokenize.STRING:
                value = re.sub(r"^[rbuf]*('''|\"\"\"|'|\")|('''|\"\"\"|'|\")$", "", text, flags=re.I).strip()
                if re.fullmatch(r"(?i)20552|20553|99213|medicare|aetna|trigger[ _-]?points?", value):
                    bad.append(f"{p.relative_to(ROOT)}:{t.start[0]}: {text}")
            elif KNOWLEDGE.search(text):
                bad.append(f"{p.relative_to(ROOT)}:{t.start[0]}: {text}")
    assert bad == []
