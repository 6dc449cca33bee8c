"""Contract v2, section 4 and section 3's new readings, as scenarios: claims in, decisions out, with the
shipped policies. Each row of the contract's v2 tables is decided here on both sides of its edge (the day
before and the day of a date; 20 and 21 days; 3 and 4 sessions at a site; each alias)."""
from __future__ import annotations

import pytest

from payrule import PolicySet
from payrule.runtime import Group, spacing, window_floor

from conftest import POLICIES, claim, tpi


@pytest.fixture(scope="module")
def shipped() -> PolicySet:
    return PolicySet.load([POLICIES])


def verdicts(results: list[dict]) -> dict[str, str]:
    """{"C1.1": "deny frequency", ...}: each line's decision and the rules that fired, sorted."""
    out = {}
    for r in results:
        if "error" in r:
            out[str(r["claim_id"])] = "error " + r["error"]
            continue
        for ln in r["lines"]:
            rules = sorted(x["rule"] for x in ln["reasons"])
            out[f"{r['claim_id']}.{ln['line']}"] = " ".join([ln["decision"], *rules])
    return out


def guidance(line: int, code: str, date: str) -> dict:
    return {"line": line, "date": date, "code": code}


def sessions(payer: str, dates: list[str], patient: str = "P1", **line) -> list[dict]:
    return [claim(f"S{i}", tpi(date=d, **line), patient=patient, payer=payer) for i, d in enumerate(dates, 1)]


CASES = [
    # medicare: imaging guidance from 2024-04-01 (LCD revision)
    ("medicare imaging the day before", [claim("C1", tpi(date="2024-03-31"), guidance(2, "76942", "2024-03-31"),
                                               guidance(3, "77002", "2024-03-31"), guidance(4, "77021", "2024-03-31"))], [],
     {"C1.1": "approve", "C1.2": "approve", "C1.3": "approve", "C1.4": "approve"}),
    ("medicare imaging from the day", [claim("C1", tpi(date="2024-04-01"), guidance(2, "76942", "2024-04-01"),
                                             guidance(3, "77002", "2024-04-01"), guidance(4, "77021", "2024-04-01"))], [],
     {"C1.1": "approve", "C1.2": "deny imaging-guidance", "C1.3": "deny imaging-guidance", "C1.4": "deny imaging-guidance"}),
    ("medicare imaging with a TPI from history the same day", [claim("C1", guidance(1, "77002", "2024-05-01"))],
     [claim("H1", tpi(date="2024-05-01"))], {"C1.1": "deny imaging-guidance"}),
    # medicare: retired headers
    ("M54.5 the day before it retires", [claim("C1", tpi(date="2021-09-30"), diagnoses=["M54.5"])], [], {"C1.1": "approve"}),
    ("M54.5 the day it retires", [claim("C1", tpi(date="2021-10-01"), diagnoses=["m54.5"])], [], {"C1.1": "deny retired-header-m54-5"}),
    ("M54.50 after", [claim("C1", tpi(date="2021-10-01"), diagnoses=["M54.50"])], [], {"C1.1": "approve"}),
    ("M79.1 the day before it retires", [claim("C1", tpi(date="2022-09-30"), diagnoses=["M791"])], [], {"C1.1": "approve"}),
    ("M79.1 the day it retires", [claim("C1", tpi(date="2022-10-01"), diagnoses=["M79.1"])], [], {"C1.1": "deny retired-headers"}),
    ("both headers in 2023", [claim("C1", tpi(date="2023-01-09"), diagnoses=["M79.1", "M54.5"])], [], {"C1.1": "deny retired-headers"}),
    ("a header beside a covered code", [claim("C1", tpi(date="2023-01-09"), diagnoses=["M79.1", "G44.209"])], [], {"C1.1": "approve"}),
    ("a header beside an uncovered code", [claim("C1", tpi(date="2023-01-09"), diagnoses=["M54.5", "Z00.00"])], [],
     {"C1.1": "deny retired-headers"}),
    ("no covered code at all is the other rule", [claim("C1", tpi(date="2023-01-09"), diagnoses=["Z00.00"])], [],
     {"C1.1": "deny covered-diagnosis"}),
    # bcbs
    ("bcbs 4th in 12 months", sessions("bcbs", ["2025-01-06", "2025-02-03", "2025-03-03", "2025-04-07"]), [],
     {"S1.1": "approve", "S2.1": "approve", "S3.1": "approve", "S4.1": "approve"}),
    ("bcbs 5th in 12 months", sessions("bcbs", ["2025-01-06", "2025-02-03", "2025-03-03", "2025-04-07", "2026-01-05"]), [],
     {"S1.1": "approve", "S2.1": "approve", "S3.1": "approve", "S4.1": "approve", "S5.1": "deny frequency"}),
    ("bcbs 5th once the first is 12 months back", sessions("bcbs", ["2025-01-06", "2025-02-03", "2025-03-03", "2025-04-07", "2026-01-06"]), [],
     {"S1.1": "approve", "S2.1": "approve", "S3.1": "approve", "S4.1": "approve", "S5.1": "approve"}),
    ("bcbs ultrasound beside a TPI", [claim("C1", tpi(), guidance(2, "76942", "2025-03-01"), guidance(3, "77002", "2025-03-01"),
                                            payer="Blue Cross Blue Shield")], [],
     {"C1.1": "approve", "C1.2": "deny ultrasound-guidance", "C1.3": "approve"}),
    # cigna
    ("cigna 20 days", sessions("cigna", ["2025-03-01", "2025-03-21"]), [], {"S1.1": "approve", "S2.1": "deny spacing"}),
    ("cigna 21 days", sessions("cigna", ["2025-03-01", "2025-03-22"]), [], {"S1.1": "approve", "S2.1": "approve"}),
    ("cigna dry needling alone", [claim("C1", {"line": 1, "date": "2025-03-01", "code": "20560", "muscles": ["x"]}, payer="cigna")], [],
     {"C1.1": "deny dry-needling"}),
    ("cigna ultrasound", [claim("C1", tpi(), guidance(2, "76942", "2025-03-01"), payer="cigna")], [],
     {"C1.1": "approve", "C1.2": "deny ultrasound-guidance"}),
    # emblemhealth: 3 in 90 days at one site
    ("emblem 4th at a site", sessions("emblemhealth", ["2025-01-06", "2025-02-03", "2025-03-03", "2025-04-05"], site="neck"), [],
     {"S1.1": "approve", "S2.1": "approve", "S3.1": "approve", "S4.1": "deny frequency-at-site"}),
    ("emblem 4th once the first is 90 days back", sessions("emblemhealth", ["2025-01-06", "2025-02-03", "2025-03-03", "2025-04-06"], site="neck"), [],
     {"S1.1": "approve", "S2.1": "approve", "S3.1": "approve", "S4.1": "approve"}),
    ("emblem another site does not count", sessions("emblemhealth", ["2025-01-06", "2025-02-03", "2025-03-03"], site="neck")
     + [claim("C4", tpi(date="2025-03-10", site="Lower  Back"), payer="emblemhealth")], [],
     {"S1.1": "approve", "S2.1": "approve", "S3.1": "approve", "C4.1": "approve"}),
    ("emblem history at the site counts", [claim("C1", tpi(date="2025-03-10", site="NECK"), payer="Emblem Health")],
     sessions("emblemhealth", ["2025-01-06", "2025-02-03", "2025-03-03"], site="neck"), {"C1.1": "deny frequency-at-site"}),
    ("emblem prior auth", [claim("C1", tpi(date="2025-03-10", site="neck"), payer="emblemhealth", prior_auth="PA-7")],
     sessions("emblemhealth", ["2025-01-06", "2025-02-03", "2025-03-03"], site="neck"), {"C1.1": "approve"}),
    ("emblem prior auth on history does not count", [claim("C1", tpi(date="2025-03-10", site="neck"), payer="emblemhealth")],
     [claim(f"H{i}", tpi(date=d, site="neck"), payer="emblemhealth", prior_auth="PA-1")
      for i, d in enumerate(["2025-01-06", "2025-02-03", "2025-03-03"])], {"C1.1": "deny frequency-at-site"}),
    ("emblem no site is held and matches no session", [claim("C1", tpi(date="2025-03-10"), payer="emblemhealth")],
     sessions("emblemhealth", ["2025-01-06", "2025-02-03", "2025-03-03"], site="neck"), {"C1.1": "review site-documented"}),
    ("emblem blank site is no site", [claim("C1", tpi(site="   "), payer="emblemhealth")], [], {"C1.1": "review site-documented"}),
    ("emblem an agent outside the list", [claim("C1", tpi(site="neck", substances=["lidocaine", "ketorolac"]), payer="emblemhealth")], [],
     {"C1.1": "deny covered-agents"}),
    ("emblem a corticosteroid and a diluent", [claim("C1", tpi(site="neck", substances=["Kenalog-40", "sterile water"]), payer="emblemhealth")], [],
     {"C1.1": "approve"}),
    ("emblem two-word diluent", [claim("C1", tpi(site="neck", substances=["marcaine", "0.9% Sodium  Chloride"]), payer="emblemhealth")], [],
     {"C1.1": "approve"}),
    ("emblem sodium alone is not sodium chloride", [claim("C1", tpi(site="neck", substances=["lidocaine", "sodium bicarbonate"]), payer="emblemhealth")], [],
     {"C1.1": "deny covered-agents"}),
    ("emblem a diluent alone", [claim("C1", tpi(site="neck", substances=["saline"]), payer="emblemhealth")], [],
     {"C1.1": "deny saline-alone"}),
    ("emblem dry needling", [claim("C1", {"line": 1, "date": "2025-03-01", "code": "20561", "muscles": ["x", "y", "z"]}, payer="emblemhealth")], [],
     {"C1.1": "deny dry-needling"}),
    # aliases route to one policy and one history
    ("medicare part b shares medicare's history", [claim("C1", tpi(date="2025-05-05"), payer=" Medicare  PART b ")],
     sessions("medicare", ["2025-01-06", "2025-02-03", "2025-03-03"]), {"C1.1": "deny frequency"}),
    ("other payers are unknown", [claim("C1", tpi(), payer="medicare-advantage"), claim("C2", tpi(), payer="humana")], [],
     {"C1": "error no policy for payer 'medicare-advantage'", "C2": "error no policy for payer 'humana'"}),
]


@pytest.mark.parametrize("claims, history, expect", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_contract_v2_rows(shipped, claims, history, expect):
    assert verdicts(shipped.check(claims, history)) == expect


def test_reasons_carry_the_rules_denial_codes(shipped):
    (res,) = shipped.check([claim("C1", tpi(date="2025-03-10", site="neck"), payer="emblemhealth")],
                           sessions("emblemhealth", ["2025-01-06", "2025-02-03", "2025-03-03"], site="neck"))
    (reason,) = res["lines"][0]["reasons"]
    assert (reason["rule"], reason["carc"], reason["rarc"]) == ("frequency-at-site", "197", "N54")
    assert "4th trigger point injection session at the neck in 90 days" in reason["message"]
    (res,) = shipped.check([claim("C1", tpi(site="neck", substances=["lidocaine", "Ketorolac 30 mg"]), payer="emblemhealth")])
    (reason,) = res["lines"][0]["reasons"]
    assert reason["message"].startswith("Ketorolac 30 mg is not a covered injectate")  # the offending value, as written
    assert "rarc" in reason and reason["carc"] == "96"


def test_a_dated_rule_names_its_start_date(shipped):
    (res,) = shipped.check([claim("C1", tpi(date="2024-04-01"), guidance(2, "76942", "2024-04-01"))])
    assert "from 2024-04-01" in res["lines"][1]["reasons"][0]["message"]


# ---- section 3: "at least N months apart", by the runtime's own arithmetic ---------------------------

def _ord(s: str) -> int:
    from datetime import date
    return date.fromisoformat(s).toordinal()


class _Ln:
    def __init__(self, d: str, code: str = "20552", site=None):
        self.date, self.code, self.site, self.extra = _ord(d), code, site, {}


@pytest.mark.parametrize("last, day, apart", [
    ("2025-02-28", "2025-03-31", True),   # the contract's example: 2025-03-31 is 1 month after 2025-02-28
    ("2025-01-31", "2025-02-27", False),  # and 2025-01-31 is not yet 1 month before 2025-02-27
    ("2025-01-31", "2025-02-28", False),  # 2025-02-28 minus 1 month is 2025-01-28, and 01-31 is after it
    ("2025-01-28", "2025-02-28", True),
    ("2024-02-29", "2024-03-29", True),
    ("2024-02-29", "2024-03-28", False),
])
def test_spacing_in_months_follows_the_contract(last, day, apart):
    sets = {"TPI": frozenset({"20552"})}
    g = Group([], [_Ln(last)], {}, {}, sets)
    hit = spacing(g, _Ln(day), "TPI", 1, "months")
    floor = window_floor(_ord(day), "months", 1)
    assert (hit is None) == apart == (_ord(last) <= floor)
