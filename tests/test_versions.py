"""Versions of one payer's policy (issue 12): `version from D1 until D2` in each file, dates that do not
overlap. A line is decided by the version in force on its date of service; every version counts every
line in its history; a claim with a line no version covers is an error; overlapping versions do not load."""
from __future__ import annotations

import io
import json
from datetime import date

import pytest

from payrule import PolicySet
from payrule.api import PolicyError
from payrule.claims.readers import ReadSession, read_claims, read_history
from payrule.run.interpreter import interpret, models_by_payer
from payrule.run.stream import check_file

from conftest import claim

COMMON = '''policy knee-common "Knee: coding"
  source CPT "CPT"
  codes INJ = 20610, 20611
  codes US = 76942
  rule units:
    deny line when code in INJ and units > 1
    message "{code} once" per CPT carc 151
'''
OLD = '''policy acme-2024 "Acme knee injections, 2024 bulletin"
  payer acme
  alias "acme health"
  version until 2024-12-31
  include knee-common
  source B24 "Acme bulletin 2024"
  rule frequency:
    deny line when code in INJ and more than 2 INJ sessions within 12 months
    message "{nth} in 12 months (2024 bulletin)" per B24 carc 119
'''
NEW = '''policy acme-2025 "Acme knee injections, 2025 bulletin"
  payer acme
  alias "acme health"
  version from 2025-01-01
  include knee-common
  source B25 "Acme bulletin 2025"
  rule frequency:
    deny line when code in INJ and more than 3 INJ sessions within 12 months
    message "{nth} in 12 months (2025 bulletin)" per B25 carc 119
  rule ultrasound:
    deny line when code in US and same day as INJ
    message "no ultrasound guidance" per B25 carc 55
'''
TEXTS = {"common.policy": COMMON, "acme/2024.policy": OLD, "acme/2025.policy": NEW}


def knee(date: str, line: int = 1, **kw) -> dict:
    return {"line": line, "date": date, "code": "20610", **kw}


def acme(cid: str, *lines, payer: str = "acme", **kw) -> dict:
    return claim(cid, *lines, payer=payer, diagnoses=None, **kw)


@pytest.fixture(scope="module")
def acme_set() -> PolicySet:
    return PolicySet.from_texts(TEXTS)


def verdicts(results) -> dict:
    out = {}
    for r in results:
        if "error" in r:
            out[r["claim_id"]] = "error: " + r["error"]
            continue
        for ln in r["lines"]:
            out[f"{r['claim_id']}.{ln['line']}"] = " ".join([ln["decision"], *(f"{x['policy']}/{x['rule']}" for x in ln["reasons"])])
    return out


SCENARIOS = [
    ("each line by the version of its date: 3rd in 2024 denied, 3rd in 2025 allowed",
     [acme("C1", knee("2024-10-01")), acme("C2", knee("2024-11-01")), acme("C3", knee("2024-12-31")),
      acme("D1", knee("2025-01-01"), patient="P2")],
     [acme("H1", knee("2024-06-01"), patient="P2"), acme("H2", knee("2024-09-01"), patient="P2")],
     {"C1.1": "approve", "C2.1": "approve", "C3.1": "deny acme-2024/frequency", "D1.1": "approve"}),
    ("history counts across the versions: sessions of 2024 count for a line of 2025",
     [acme("C1", knee("2024-10-01")), acme("C2", knee("2024-11-01")), acme("C3", knee("2025-01-02")),
      acme("C4", knee("2025-02-03"))], [],
     {"C1.1": "approve", "C2.1": "approve", "C3.1": "approve", "C4.1": "deny acme-2025/frequency"}),
    ("a rule of one version only", [acme("C1", knee("2024-12-31"), {"line": 2, "date": "2024-12-31", "code": "76942"}),
                                    acme("C2", knee("2025-01-01"), {"line": 2, "date": "2025-01-01", "code": "76942"}, patient="P2")], [],
     {"C1.1": "approve", "C1.2": "approve", "C2.1": "approve", "C2.2": "deny acme-2025/ultrasound"}),
    ("the shared rules apply under both, as the version of the date", [acme("C1", knee("2024-12-31", units=2)),
                                                                      acme("C2", knee("2025-01-01", units=2), patient="P2")], [],
     {"C1.1": "deny knee-common/units", "C2.1": "deny knee-common/units"}),
    ("an alias routes to the versions too", [acme("C1", knee("2025-03-01"), payer="Acme  Health")], [], {"C1.1": "approve"}),
]


@pytest.mark.parametrize("claims, history, expect", [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_versions_decide_by_date_of_service(acme_set, claims, history, expect):
    got = acme_set.check(claims, history)
    assert verdicts(got) == expect
    keep = ReadSession(keep_extra=True)
    data = "\n".join(json.dumps(c) for c in claims).encode()
    hist = "\n".join(json.dumps(c) for c in history).encode()
    assert interpret(models_by_payer(acme_set.policies), read_claims(data, session=keep),
                     read_history(hist, "h.jsonl", keep)) == got  # the reference interpreter agrees


def test_a_claim_before_every_version_is_an_error_in_place():
    texts = dict(TEXTS)
    texts["acme/2024.policy"] = OLD.replace("version until 2024-12-31", "version from 2024-01-01 until 2024-12-31")
    ps = PolicySet.from_texts(texts)
    got = ps.check([acme("C1", knee("2023-12-31")), acme("C2", knee("2024-01-01"))])
    assert verdicts(got) == {"C1": "error: no policy for payer 'acme' in force on 2023-12-31 (line 1)", "C2.1": "approve"}


def test_the_streaming_mode_gives_the_same_bytes(acme_set, tmp_path):
    claims = [acme("C1", knee("2024-10-01")), acme("C2", knee("2024-11-01")), acme("C3", knee("2025-01-02")),
              acme("C4", knee("2025-02-03")), acme("C5", knee("2024-12-31", units=2), patient="P9")]
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps(c) for c in claims) + "\n")
    out = io.BytesIO()
    check_file(acme_set.checkers, str(path), [], out, session=ReadSession())
    assert [json.loads(x) for x in out.getvalue().decode().splitlines()] == acme_set.check(path.read_bytes())


@pytest.mark.parametrize("old_version, new_version, overlap", [
    ("version until 2025-01-01", "version from 2025-01-01", "on dates of service from 2025-01-01 until 2025-01-01"),
    ("version until 2024-12-31", "version from 2024-06-01", "on dates of service from 2024-06-01 until 2024-12-31"),
    ("", "version from 2025-01-01", "on dates of service from 2025-01-01"),
])
def test_overlapping_versions_do_not_load(old_version, new_version, overlap):
    texts = dict(TEXTS)
    texts["acme/2024.policy"] = OLD.replace("version until 2024-12-31", old_version)
    texts["acme/2025.policy"] = NEW.replace("version from 2025-01-01", new_version)
    with pytest.raises(PolicyError) as exc:
        PolicySet.from_texts(texts)
    codes = {d.code for d in exc.value.diagnostics}
    assert codes == {"PR105"}
    messages = " ".join(d.message for d in exc.value.diagnostics)
    assert overlap in messages and "acme/2024.policy" in messages and "acme/2025.policy" in messages


def test_explain_date_and_the_policy_versions_in_the_generated_module(acme_set):
    from payrule.tools.explain import render_policy

    new = acme_set.policies["acme-2025"]
    assert "VERSION = (739252, 3652059)" in acme_set.source("acme-2025")
    assert "VERSION = None" in acme_set.source("knee-common")
    assert new.in_force(date(2025, 1, 1)) and not new.in_force(date(2024, 12, 31))
    assert "version" not in render_policy(acme_set.policies["knee-common"])
    text = render_policy(acme_set.policies["acme-2024"], on=date(2025, 1, 1))
    assert "version   for dates of service until 2024-12-31" in text
    assert "frequency" not in text.split("Rules", 1)[1]  # not in force on that date: no rule of it
    assert "frequency" in render_policy(acme_set.policies["acme-2024"], on=date(2024, 12, 31)).split("Rules", 1)[1]
