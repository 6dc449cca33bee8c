"""Contract section 4, row by row, and the readings of section 5 that are about decisions.

Each case is claims (and history) in, line decisions and fired rule ids out. An expectation is written
`{"C1.2": "deny one-per-day"}`: claim C1, line 2, decision deny, and exactly the rule ids that fired
(order aside); `"approve"` means no rule fired. Every expectation below is read off the contract text
(../shared/contract.md), not off the program's output.

The common coding rules "apply under every payer", so their table runs once per shipped payer.
"""
from __future__ import annotations

import json
import re

import pytest

from payrule.runtime.schema import CARC_PATTERN, RARC_PATTERN

from conftest import POLICIES, claim, fired, tpi

D = "2025-03-01"  # the day most cases happen on
RANK = {"approve": 0, "review": 1, "deny": 2}
THREE = ("right upper trapezius", "right posterior deltoid", "right supraspinatus")  # a correct 20553


def line(no, code, date=D, **extra) -> dict:
    """A non-TPI service line."""
    return {"line": no, "date": date, "code": code, **extra}


def tpi3(no=1, date=D, **kw) -> dict:
    """A correct 20553 line (3 distinct muscles)."""
    kw.setdefault("muscles", THREE)
    return tpi(no, date, code="20553", **kw)


def under(payer: str, claims) -> list[dict]:
    return [{**c, "payer": payer} for c in claims]


# ---- checking a result --------------------------------------------------------------------------

_SOURCE = re.compile(r"policies/[a-z0-9_-]+/[a-z0-9_-]+\.policy:[0-9]+")
_POLICY_ID = re.compile(r"^\s*policy\s+(\S+)", re.M)


def assert_well_formed(results: list[dict]) -> None:
    """Every reason names its policy, rule, outcome, message and source (`policies/...policy:N`, the
    line of that rule in that policy); a line's decision is its strongest reason, a claim's its
    strongest line (contract section 2)."""
    for r in results:
        assert "error" not in r, r
        assert set(r) == {"claim_id", "decision", "lines"}, r
        for ln in r["lines"]:
            assert set(ln) == {"line", "code", "decision", "reasons"}, ln
            strongest = "approve"
            for reason in ln["reasons"]:
                assert {"policy", "rule", "outcome", "message", "source"} <= set(reason) <= {
                    "policy", "rule", "outcome", "message", "source", "carc", "rarc"}, reason
                assert "carc" in reason, reason  # every shipped rule names its CARC
                assert CARC_PATTERN.match(reason["carc"]) and RARC_PATTERN.match(reason.get("rarc", "N1")), reason
                assert reason["outcome"] in ("deny", "review"), reason
                assert isinstance(reason["message"], str) and reason["message"].strip(), reason
                assert "{" not in reason["message"] and "}" not in reason["message"], reason
                assert _SOURCE.fullmatch(reason["source"]), reason
                path, _, no = reason["source"].rpartition(":")
                text = (POLICIES.parent / path).read_text(encoding="utf-8")
                cited = text.splitlines()[int(no) - 1]
                assert re.match(rf"\s*rule\s+{re.escape(reason['rule'])}\s*:", cited), (reason, cited)
                assert _POLICY_ID.search(text).group(1) == reason["policy"], reason
                if RANK[reason["outcome"]] > RANK[strongest]:
                    strongest = reason["outcome"]
            assert ln["decision"] == strongest, ln
        assert r["decision"] == max((ln["decision"] for ln in r["lines"]), key=RANK.__getitem__), r


def outcome(results: list[dict]) -> dict[str, str]:
    """{"C1.1": "deny rule-a rule-b"} with the rule ids sorted."""
    rules = fired(results)
    out = {}
    for r in results:
        for ln in r["lines"]:
            key = f"{r['claim_id']}.{ln['line']}"
            out[key] = " ".join([ln["decision"], *sorted(rules[(r["claim_id"], ln["line"])])])
    return out


def normalised(expect: dict[str, str]) -> dict[str, str]:
    return {k: " ".join([v.split()[0], *sorted(v.split()[1:])]) for k, v in expect.items()}


def decide(shipped, claims, history=()):
    results = shipped.check(claims, history)
    assert_well_formed(results)
    return results


def case(id, claims, expect, history=()):
    return pytest.param(list(claims), list(history), expect, id=id)


# ---- common coding rules: one table, run under every payer --------------------------------------

MUSCLE_COUNT = [
    case("20552 1 muscle approve", [claim("C1", tpi(muscles=["left soleus"]))], {"C1.1": "approve"}),
    case("20552 2 muscles approve", [claim("C1", tpi())], {"C1.1": "approve"}),
    case("20552 3 muscles deny", [claim("C1", tpi(muscles=THREE))], {"C1.1": "deny muscles-for-20552"}),
    case("20552 3 names 2 distinct by case and spacing approve",
         [claim("C1", tpi(muscles=["Left Upper Trapezius", "  left   upper trapezius ", "left levator scapulae"]))],
         {"C1.1": "approve"}),
    case("20552 2 muscles and a blank name approve",
         [claim("C1", tpi(muscles=["left soleus", "left gastrocnemius", "   "]))], {"C1.1": "approve"}),
    case("20553 3 muscles approve", [claim("C1", tpi3())], {"C1.1": "approve"}),
    case("20553 4 muscles approve", [claim("C1", tpi3(muscles=[*THREE, "right infraspinatus"]))], {"C1.1": "approve"}),
    case("20553 2 muscles deny", [claim("C1", tpi3(muscles=THREE[:2]))], {"C1.1": "deny muscles-for-20553"}),
    case("20553 1 muscle deny", [claim("C1", tpi3(muscles=THREE[:1]))], {"C1.1": "deny muscles-for-20553"}),
    case("20553 3 names 2 distinct by case deny",
         [claim("C1", tpi3(muscles=["Right Deltoid", "RIGHT DELTOID", "right supraspinatus"]))],
         {"C1.1": "deny muscles-for-20553"}),
    case("20553 2 muscles and a blank name deny",
         [claim("C1", tpi3(muscles=["right deltoid", "", "right supraspinatus"]))], {"C1.1": "deny muscles-for-20553"}),
    # "With no muscles documented, only the review row applies."
    case("20552 no muscles review only", [claim("C1", tpi(muscles=None))], {"C1.1": "review muscles-documented"}),
    case("20553 no muscles review only", [claim("C1", tpi3(muscles=None))], {"C1.1": "review muscles-documented"}),
    case("20553 empty muscle list review only", [claim("C1", tpi3(muscles=[]))], {"C1.1": "review muscles-documented"}),
    case("20553 only blank muscle names review only", [claim("C1", tpi3(muscles=["", "   "]))],
         {"C1.1": "review muscles-documented"}),
    case("non-TPI lines need no muscles",
         [claim("C1", tpi(1), line(2, "99213", modifiers=["25"]), line(3, "J3301", units=4))],
         {"C1.1": "approve", "C1.2": "approve", "C1.3": "approve"}),
]

ONE_PER_DAY = [
    case("2 TPI lines in one claim second denied", [claim("C1", tpi(1), tpi3(2))],
         {"C1.1": "approve", "C1.2": "deny one-per-day"}),
    case("same code twice second denied", [claim("C1", tpi(1), tpi(2))], {"C1.1": "approve", "C1.2": "deny one-per-day"}),
    case("3 TPI lines second and third denied", [claim("C1", tpi(1), tpi(2), tpi3(3))],
         {"C1.1": "approve", "C1.2": "deny one-per-day", "C1.3": "deny one-per-day"}),
    case("2 claims same day later in input denied", [claim("C1", tpi()), claim("C2", tpi3())],
         {"C1.1": "approve", "C2.1": "deny one-per-day"}),
    case("TPI 7 days apart none", [claim("C1", tpi(date="2025-03-01")), claim("C2", tpi(date="2025-03-08"))],
         {"C1.1": "approve", "C2.1": "approve"}),
    case("another patient same day none", [claim("C1", tpi()), claim("C2", tpi(), patient="P2")],
         {"C1.1": "approve", "C2.1": "approve"}),
    # "So a corrected 20553 after a denied 20552 the same day is approved."
    case("corrected 20553 after denied 20552 approved", [claim("C1", tpi(1, muscles=THREE), tpi3(2))],
         {"C1.1": "deny muscles-for-20552", "C1.2": "approve"}),
    case("corrected claim after a claim denied for units approved",
         [claim("C1", tpi(units=2)), claim("C2", tpi())], {"C1.1": "deny units", "C2.1": "approve"}),
    case("a TPI held for review is still the first", [claim("C1", tpi(substances=None)), claim("C2", tpi())],
         {"C1.1": "review substances-documented", "C2.1": "deny one-per-day"}),
    case("history TPI that day makes the claim TPI the second", [claim("C1", tpi())],
         {"C1.1": "deny one-per-day"}, history=[claim("H1", tpi())]),
    case("history TPI that would be denied still counts as paid", [claim("C1", tpi())],
         {"C1.1": "deny one-per-day"}, history=[claim("H1", tpi(units=2, modifiers=["25"]))]),
    case("history TPI another day none", [claim("C1", tpi())], {"C1.1": "approve"},
         history=[claim("H1", tpi(date="2025-02-01"))]),
    case("history TPI of another patient none", [claim("C1", tpi())], {"C1.1": "approve"},
         history=[claim("H1", tpi(), patient="P2")]),
]

UNITS = [
    case("TPI units 2 deny", [claim("C1", tpi(units=2))], {"C1.1": "deny units"}),
    case("20553 units 3 deny", [claim("C1", tpi3(units=3))], {"C1.1": "deny units"}),
    case("TPI units 1 approve", [claim("C1", tpi(units=1))], {"C1.1": "approve"}),
    case("TPI units absent approve", [claim("C1", tpi())], {"C1.1": "approve"}),
    case("drug line units 4 beside TPI approve", [claim("C1", tpi(1), line(2, "J3301", units=4))],
         {"C1.1": "approve", "C1.2": "approve"}),
]

ANESTHESIA = [
    *[case(f"{code} with TPI deny", [claim("C1", tpi(1), line(2, code))], {"C1.1": "approve", "C1.2": "deny anesthesia"})
      for code in ("00100", "01500", "01999")],
    *[case(f"{code} with TPI approve (not anesthesia)", [claim("C1", tpi(1), line(2, code))],
           {"C1.1": "approve", "C1.2": "approve"}) for code in ("00099", "02000", "0100T", "0100t")],
    case("anesthesia alone approve", [claim("C1", line(1, "00100"))], {"C1.1": "approve"}),
    case("anesthesia the day after a TPI approve", [claim("C1", tpi(1), line(2, "00100", date="2025-03-02"))],
         {"C1.1": "approve", "C1.2": "approve"}),
    case("anesthesia claim before the TPI claim deny", [claim("C1", line(1, "00100")), claim("C2", tpi())],
         {"C1.1": "deny anesthesia", "C2.1": "approve"}),
    case("anesthesia with a denied TPI deny", [claim("C1", tpi(1, units=2), line(2, "00100"))],
         {"C1.1": "deny units", "C1.2": "deny anesthesia"}),
    case("anesthesia with a TPI in history that day deny", [claim("C1", line(1, "00100"))],
         {"C1.1": "deny anesthesia"}, history=[claim("H1", tpi())]),
    case("anesthesia with another patient's TPI approve", [claim("C1", line(1, "00100")), claim("C2", tpi(), patient="P2")],
         {"C1.1": "approve", "C2.1": "approve"}),
]

DRY_NEEDLING = [
    case("20560 sharing a muscle deny",
         [claim("C1", tpi(1), line(2, "20560", muscles=["left levator scapulae"]))],
         {"C1.1": "approve", "C1.2": "deny dry-needling-overlap"}),
    case("20561 sharing a muscle in another case and spacing deny",
         [claim("C1", tpi(1), line(2, "20561", muscles=["  LEFT Upper   Trapezius", "left rhomboid"]))],
         {"C1.1": "approve", "C1.2": "deny dry-needling-overlap"}),
    case("20560 other muscles approve",
         [claim("C1", tpi(1), line(2, "20560", muscles=["right gluteus medius"]))],
         {"C1.1": "approve", "C1.2": "approve"}),
    case("20560 without muscles review", [claim("C1", tpi(1), line(2, "20560"))],
         {"C1.1": "approve", "C1.2": "review dry-needling-muscles"}),
    case("20561 with only blank muscle names review", [claim("C1", tpi(1), line(2, "20561", muscles=[" "]))],
         {"C1.1": "approve", "C1.2": "review dry-needling-muscles"}),
    case("TPI without muscles review both",
         [claim("C1", tpi(1, muscles=None), line(2, "20560", muscles=["right gluteus medius"]))],
         {"C1.1": "review muscles-documented", "C1.2": "review dry-needling-muscles"}),
    case("20560 without TPI that day approve",
         [claim("C1", line(1, "20560"), line(2, "20561", muscles=["left upper trapezius"]))],
         {"C1.1": "approve", "C1.2": "approve"}),
    case("20560 claim before the TPI claim deny",
         [claim("C1", line(1, "20560", muscles=["left upper trapezius"])), claim("C2", tpi())],
         {"C1.1": "deny dry-needling-overlap", "C2.1": "approve"}),
    case("20560 sharing a muscle with a TPI in history deny",
         [claim("C1", line(1, "20560", muscles=["left upper trapezius"]))],
         {"C1.1": "deny dry-needling-overlap"}, history=[claim("H1", tpi())]),
    # Several TPI lines that day: each one counts, whatever its own decision.
    case("2 TPI lines dry needling shares with the denied second deny",
         [claim("C1", tpi(1), tpi3(2), line(3, "20560", muscles=["right supraspinatus"]))],
         {"C1.1": "approve", "C1.2": "deny one-per-day", "C1.3": "deny dry-needling-overlap"}),
    case("2 TPI lines one without muscles review",
         [claim("C1", tpi(1, muscles=None), tpi3(2), line(3, "20560", muscles=["right gluteus medius"]))],
         {"C1.1": "review muscles-documented", "C1.2": "deny one-per-day", "C1.3": "review dry-needling-muscles"}),
    case("2 TPI lines shares with one and the other lacks muscles deny with both",
         [claim("C1", tpi(1, muscles=None), tpi3(2), line(3, "20560", muscles=["right supraspinatus"]))],
         {"C1.1": "review muscles-documented", "C1.2": "deny one-per-day",
          "C1.3": "deny dry-needling-overlap dry-needling-muscles"}),
    case("2 TPI lines all other muscles approve",
         [claim("C1", tpi(1), tpi3(2), line(3, "20561", muscles=["right gluteus medius"]))],
         {"C1.1": "approve", "C1.2": "deny one-per-day", "C1.3": "approve"}),
    case("dry needling with another patient's TPI approve",
         [claim("C1", line(1, "20560", muscles=["left upper trapezius"])), claim("C2", tpi(), patient="P2")],
         {"C1.1": "approve", "C2.1": "approve"}),
]

EM = [
    case("99213 with TPI no modifier deny", [claim("C1", line(1, "99213"), tpi(2))],
         {"C1.1": "deny em-needs-25", "C1.2": "approve"}),
    case("99213 with TPI and 25 approve", [claim("C1", line(1, "99213", modifiers=["25"]), tpi(2))],
         {"C1.1": "approve", "C1.2": "approve"}),
    *[case(f"{code} with TPI no modifier deny (E/M range)", [claim("C1", line(1, code), tpi(2))],
           {"C1.1": "deny em-needs-25", "C1.2": "approve"}) for code in ("99202", "99211", "99215")],
    *[case(f"{code} with TPI approve (outside the E/M range)", [claim("C1", line(1, code), tpi(2))],
           {"C1.1": "approve", "C1.2": "approve"}) for code in ("99201", "99216")],
    case("99213 with TPI and modifier 59 only deny", [claim("C1", line(1, "99213", modifiers=["59"]), tpi(2))],
         {"C1.1": "deny em-needs-25", "C1.2": "approve"}),
    case("99213 with TPI and modifiers GT and 25 approve",
         [claim("C1", line(1, "99213", modifiers=["GT", "25"]), tpi(2))], {"C1.1": "approve", "C1.2": "approve"}),
    case("99213 without a TPI that day approve", [claim("C1", line(1, "99213"), tpi(2, date="2025-03-02"))],
         {"C1.1": "approve", "C1.2": "approve"}),
    case("E/M claim before the TPI claim deny", [claim("C1", line(1, "99214")), claim("C2", tpi())],
         {"C1.1": "deny em-needs-25", "C2.1": "approve"}),
    case("E/M with a denied TPI deny", [claim("C1", line(1, "99213"), tpi(2, modifiers=["25"]))],
         {"C1.1": "deny em-needs-25", "C1.2": "deny modifier-25-on-tpi"}),
    case("E/M with a TPI in history that day deny", [claim("C1", line(1, "99213"))],
         {"C1.1": "deny em-needs-25"}, history=[claim("H1", tpi())]),
    case("E/M with another patient's TPI approve", [claim("C1", line(1, "99213")), claim("C2", tpi(), patient="P2")],
         {"C1.1": "approve", "C2.1": "approve"}),
]

MODIFIER_25 = [
    case("TPI with modifier 25 deny", [claim("C1", tpi(modifiers=["25"]))], {"C1.1": "deny modifier-25-on-tpi"}),
    case("TPI with modifiers RT and 25 deny", [claim("C1", tpi3(modifiers=["RT", "25"]))], {"C1.1": "deny modifier-25-on-tpi"}),
    case("TPI with modifier 59 approve", [claim("C1", tpi(modifiers=["59"]))], {"C1.1": "approve"}),
    case("25 on both E/M and TPI TPI denied",
         [claim("C1", line(1, "99213", modifiers=["25"]), tpi(2, modifiers=["25"]))],
         {"C1.1": "approve", "C1.2": "deny modifier-25-on-tpi"}),
]

IMAGING = [
    *[case(f"{code} beside TPI nothing fires", [claim("C1", tpi(1), line(2, code))], {"C1.1": "approve", "C1.2": "approve"})
      for code in ("76942", "77002", "77021")],
    case("all three guidance codes beside 20553 nothing fires",
         [claim("C1", line(1, "76942"), tpi3(2), line(3, "77002"), line(4, "77021"))],
         {"C1.1": "approve", "C1.2": "approve", "C1.3": "approve", "C1.4": "approve"}),
]

EXCLUDED_SUBSTANCES = [
    "platelet-rich plasma", "Platelet Rich Plasma", "PRP", "prp", "autologous PRP", "lidocaine/PRP",
    "amniotic membrane allograft", "AMNIOTIC fluid", "placenta extract", "placental tissue matrix",
    "(placental) allograft", "vitamin B12", "Vitamins", "cyanocobalamin", "CYANOCOBALAMIN 1000 mcg",
    "biologicals",
]
ALLOWED_SUBSTANCES = ["antiplatelet agent", "multivitamin", "lidocaine", "bupivacaine", "triamcinolone", "saline"]

EXCLUDED = [
    *[case(f"excluded {name!r} denies every line",
           [claim("C1", tpi(1, substances=["lidocaine", name]), line(2, "J3301", units=4), line(3, "99213", modifiers=["25"]))],
           {"C1.1": "deny excluded-injectate", "C1.2": "deny excluded-injectate", "C1.3": "deny excluded-injectate"})
      for name in EXCLUDED_SUBSTANCES],
    *[case(f"word not starting with a stem {name!r} approve", [claim("C1", tpi(1, substances=[name]), line(2, "J3301"))],
           {"C1.1": "approve", "C1.2": "approve"}) for name in ALLOWED_SUBSTANCES],
    case("excluded substance on a non-TPI line only approve",
         [claim("C1", tpi(1), line(2, "0232T", substances=["platelet-rich plasma"]))], {"C1.1": "approve", "C1.2": "approve"}),
    case("excluded substance on a non-TPI line without a TPI approve",
         [claim("C1", line(1, "0232T", substances=["PRP"]))], {"C1.1": "approve"}),
    case("excluded denies lines on other days of the claim",
         [claim("C1", tpi(1, substances=["PRP"]), tpi(2, date="2025-03-15"))],
         {"C1.1": "deny excluded-injectate", "C1.2": "deny excluded-injectate"}),
    case("excluded on the second TPI line of the day",
         [claim("C1", tpi(1), tpi3(2, substances=["amniotic"]))],
         # line 1 is denied too, so it is not "the first" TPI of the day: one-per-day does not fire on line 2
         {"C1.1": "deny excluded-injectate", "C1.2": "deny excluded-injectate"}),
    case("other rules still listed on an excluded claim",
         [claim("C1", tpi(1, substances=["vitamin D"]), line(2, "99213"))],
         {"C1.1": "deny excluded-injectate", "C1.2": "deny em-needs-25 excluded-injectate"}),
    case("excluded claim leaves the patient's other claim alone and its TPI first",
         [claim("C1", tpi(substances=["PRP"])), claim("C2", tpi())],
         {"C1.1": "deny excluded-injectate", "C2.1": "approve"}),
]

SUBSTANCES = [
    case("TPI without substances review", [claim("C1", tpi(substances=None))], {"C1.1": "review substances-documented"}),
    case("TPI with empty substances review", [claim("C1", tpi3(substances=[]))], {"C1.1": "review substances-documented"}),
    case("TPI with substances approve", [claim("C1", tpi(substances=["lidocaine", "triamcinolone"]))], {"C1.1": "approve"}),
    case("TPI without muscles or substances review both", [claim("C1", tpi(muscles=None, substances=None))],
         {"C1.1": "review muscles-documented substances-documented"}),
    case("non-TPI line without substances approve", [claim("C1", tpi(1), line(2, "J3301", units=4))],
         {"C1.1": "approve", "C1.2": "approve"}),
]

COMMON = MUSCLE_COUNT + ONE_PER_DAY + UNITS + ANESTHESIA + DRY_NEEDLING + EM + MODIFIER_25 + EXCLUDED + SUBSTANCES


@pytest.mark.parametrize("payer", ["medicare", "aetna"])
@pytest.mark.parametrize("claims, history, expect", COMMON)
def test_common_rule(shipped, payer, claims, history, expect):
    results = decide(shipped, under(payer, claims), under(payer, history))
    assert outcome(results) == normalised(expect)
    for r in results:
        for ln in r["lines"]:
            policies = {x["policy"] for x in ln["reasons"]}
            assert policies <= {"common-tpi"}, ln  # the common table fires only common rules


# Imaging guidance is the common rules' business nowhere: under Aetna and EmblemHealth nothing fires
# (contract section 4); Medicare, BCBS and Cigna deny some of it beside a TPI (tests/test_v2_rules.py).
@pytest.mark.parametrize("payer", ["aetna", "emblemhealth"])
@pytest.mark.parametrize("claims, history, expect", IMAGING)
def test_imaging_guidance_is_allowed(shipped, payer, claims, history, expect):
    claims = [{**c, "lines": [{**ln, "site": "neck"} for ln in c["lines"]]} for c in claims]  # emblemhealth counts by site
    results = decide(shipped, under(payer, claims), under(payer, history))
    assert outcome(results) == normalised(expect)


def test_wrong_code_message_names_the_right_code(shipped):
    res = decide(shipped, [claim("C1", tpi(muscles=THREE)), claim("C2", tpi3(muscles=["right deltoid"]), patient="P2")])
    (r1,), (r2,) = res[0]["lines"][0]["reasons"], res[1]["lines"][0]["reasons"]
    assert "20553" in r1["message"] and "3" in r1["message"]
    assert "20552" in r2["message"] and "1" in r2["message"]


def test_excluded_message_names_the_substance(shipped):
    res = decide(shipped, [claim("C1", tpi(substances=["lidocaine", "Amniotic fluid"]))])
    assert "Amniotic fluid" in res[0]["lines"][0]["reasons"][0]["message"]


# ---- payers: the same patient and day across payers ---------------------------------------------

CROSS_PAYER = [
    case("TPI at aetna and at medicare the same day both approved",
         [claim("C1", tpi()), claim("C2", tpi(), payer="aetna")], {"C1.1": "approve", "C2.1": "approve"}),
    case("anesthesia beside another payer's TPI approve",
         [claim("C1", line(1, "00100")), claim("C2", tpi(), payer="aetna")], {"C1.1": "approve", "C2.1": "approve"}),
    case("E/M beside another payer's TPI approve",
         [claim("C1", line(1, "99213"), payer="aetna"), claim("C2", tpi())], {"C1.1": "approve", "C2.1": "approve"}),
    case("dry needling beside another payer's TPI approve",
         [claim("C1", line(1, "20560", muscles=["left upper trapezius"]), payer="aetna"), claim("C2", tpi())],
         {"C1.1": "approve", "C2.1": "approve"}),
    case("history at another payer is not the first TPI of the day", [claim("C1", tpi())], {"C1.1": "approve"},
         history=[claim("H1", tpi(), payer="aetna")]),
    # Payer ids compare case-insensitively: these are all one payer's claims.
    case("payer id case: MEDICARE and Medicare are medicare",
         [claim("C1", tpi(), payer="MEDICARE"), claim("C2", tpi(), payer="Medicare")],
         {"C1.1": "approve", "C2.1": "deny one-per-day"}),
    case("payer id case: history at Medicare counts for medicare", [claim("C1", line(1, "99213"))],
         {"C1.1": "deny em-needs-25"}, history=[claim("H1", tpi(), payer="MediCare")]),
    case("payer id case: MEDICARE gets the Medicare rules", [claim("C1", tpi(modifiers=["50"]), payer="MEDICARE")],
         {"C1.1": "deny bilateral"}),
    case("payer id case: AeTnA gets the Aetna rules",
         [claim("C1", tpi(), payer="AETNA"), claim("C2", tpi(date="2025-03-04"), payer="AeTnA")],
         {"C1.1": "approve", "C2.1": "deny spacing"}),
]


@pytest.mark.parametrize("claims, history, expect", CROSS_PAYER)
def test_across_payers(shipped, claims, history, expect):
    assert outcome(decide(shipped, claims, history)) == normalised(expect)


# ---- Medicare rules ------------------------------------------------------------------------------

# Covered on 2025-03-01 (the lines' date). The headers M79.1 and M54.5 themselves no longer cover by then:
# tests/test_v2_rules.py decides them on each side of their retirement dates.
COVERED = ["M79.18", "M7918", "m79.18", " M79.18 ", "M79.10", "M79.7", "M60.8", "M60.89", "M62.83", "M62.830",
           "M54.2", "m542", "M54.50", "M54.51", "M54.59", "M54.6", "G44.2", "G44.209", "g44.229"]
NOT_COVERED = ["M79.2", "M79", "M79.0", "M60.1", "M62.8", "M62.81", "M54.1", "M54", "M54.9", "G44.1", "G44",
               "M25.511", "Z00.00"]

MEDICARE = [
    case("modifier 50 on TPI deny", [claim("C1", tpi(modifiers=["50"]))], {"C1.1": "deny bilateral"}),
    case("modifiers LT and 50 on 20553 deny", [claim("C1", tpi3(modifiers=["LT", "50"]))], {"C1.1": "deny bilateral"}),
    case("modifier 51 on TPI approve", [claim("C1", tpi(modifiers=["51"]))], {"C1.1": "approve"}),
    case("modifier 50 on a non-TPI line approve", [claim("C1", tpi(1), line(2, "99213", modifiers=["25", "50"]))],
         {"C1.1": "approve", "C1.2": "approve"}),
    *[case(f"covered diagnosis {dx!r} approve", [claim("C1", tpi(), diagnoses=[dx])], {"C1.1": "approve"})
      for dx in COVERED],
    *[case(f"uncovered diagnosis {dx!r} deny", [claim("C1", tpi(), diagnoses=[dx])], {"C1.1": "deny covered-diagnosis"})
      for dx in NOT_COVERED],
    case("one covered diagnosis among others approve", [claim("C1", tpi(), diagnoses=["Z00.00", "M25.511", "M54.2"])],
         {"C1.1": "approve"}),
    case("no diagnoses field deny", [claim("C1", tpi(), diagnoses=None)], {"C1.1": "deny covered-diagnosis"}),
    case("empty claim diagnoses deny", [claim("C1", tpi(), diagnoses=[])], {"C1.1": "deny covered-diagnosis"}),
    case("line diagnoses replace the claim's: covered line", [claim("C1", tpi(diagnoses=["M54.2"]), diagnoses=["Z00.00"])],
         {"C1.1": "approve"}),
    case("line diagnoses replace the claim's: uncovered line", [claim("C1", tpi(diagnoses=["Z00.00"]), diagnoses=["M54.2"])],
         {"C1.1": "deny covered-diagnosis"}),
    case("line diagnoses replace the claim's even when empty", [claim("C1", tpi(diagnoses=[]), diagnoses=["M54.2"])],
         {"C1.1": "deny covered-diagnosis"}),
    case("each line reads its own list",
         [claim("C1", tpi(1, diagnoses=[]), tpi(2, date="2025-04-01"), tpi(3, date="2025-05-01", diagnoses=["G44.2"]),
                diagnoses=["M79.18"])],
         {"C1.1": "deny covered-diagnosis", "C1.2": "approve", "C1.3": "approve"}),
    case("only TPI lines need a covered diagnosis",
         [claim("C1", line(1, "99213", modifiers=["25"]), tpi(2), line(3, "J3301"), diagnoses=["Z00.00"])],
         {"C1.1": "approve", "C1.2": "deny covered-diagnosis", "C1.3": "approve"}),
    case("3 sessions in 12 months approve",
         [claim("C1", tpi(date="2025-01-10")), claim("C2", tpi(date="2025-04-10")), claim("C3", tpi(date="2025-07-10"))],
         {"C1.1": "approve", "C2.1": "approve", "C3.1": "approve"}),
    case("4th session in 12 months deny",
         [claim("C1", tpi(date="2025-01-10")), claim("C2", tpi(date="2025-04-10")), claim("C3", tpi(date="2025-07-10")),
          claim("C4", tpi(date="2025-10-10"))],
         {"C1.1": "approve", "C2.1": "approve", "C3.1": "approve", "C4.1": "deny frequency"}),
    case("no spacing rule at medicare: 1 day apart approve",
         [claim("C1", tpi(date="2025-03-01")), claim("C2", tpi(date="2025-03-02"))], {"C1.1": "approve", "C2.1": "approve"}),
]


@pytest.mark.parametrize("claims, history, expect", MEDICARE)
def test_medicare_rule(shipped, claims, history, expect):
    results = decide(shipped, claims, history)
    assert outcome(results) == normalised(expect)
    for r in results:
        for ln in r["lines"]:
            for reason in ln["reasons"]:
                if reason["rule"] in ("bilateral", "covered-diagnosis", "frequency"):
                    assert (reason["policy"], reason["source"].split(":")[0]) == (
                        "medicare-tpi", "policies/medicare/trigger_points.policy")


# ---- Aetna rules ---------------------------------------------------------------------------------

AETNA = [
    case("modifier 50 on TPI approve", [claim("C1", tpi(modifiers=["50"]))], {"C1.1": "approve"}),
    case("no diagnosis needed approve", [claim("C1", tpi(), diagnoses=None)], {"C1.1": "approve"}),
    case("uncovered diagnosis approve", [claim("C1", tpi(), diagnoses=["Z00.00"])], {"C1.1": "approve"}),
    case("4 sessions in a calendar year approve",
         [claim(f"C{i}", tpi(date=d)) for i, d in enumerate(["2025-01-10", "2025-04-10", "2025-07-10", "2025-10-10"], 1)],
         {"C1.1": "approve", "C2.1": "approve", "C3.1": "approve", "C4.1": "approve"}),
    case("5th session in a calendar year deny",
         [claim(f"C{i}", tpi(date=d)) for i, d in
          enumerate(["2025-01-10", "2025-03-10", "2025-05-10", "2025-07-10", "2025-09-10"], 1)],
         {"C1.1": "approve", "C2.1": "approve", "C3.1": "approve", "C4.1": "approve", "C5.1": "deny frequency"}),
    case("5 sessions in 12 months across two years approve",
         [claim(f"C{i}", tpi(date=d)) for i, d in
          enumerate(["2025-06-10", "2025-08-10", "2025-10-10", "2025-12-10", "2026-02-10"], 1)],
         {"C1.1": "approve", "C2.1": "approve", "C3.1": "approve", "C4.1": "approve", "C5.1": "approve"}),
    case("session 6 days after the last deny",
         [claim("C1", tpi(date="2025-03-01")), claim("C2", tpi(date="2025-03-07"))], {"C1.1": "approve", "C2.1": "deny spacing"}),
    case("session 7 days after the last approve",
         [claim("C1", tpi(date="2025-03-01")), claim("C2", tpi(date="2025-03-08"))], {"C1.1": "approve", "C2.1": "approve"}),
    case("spacing looks at TPI sessions only",
         [claim("C1", line(1, "99213", date="2025-03-01")), claim("C2", tpi(date="2025-03-03"))],
         {"C1.1": "approve", "C2.1": "approve"}),
]


@pytest.mark.parametrize("claims, history, expect", AETNA)
def test_aetna_rule(shipped, claims, history, expect):
    results = decide(shipped, under("aetna", claims), under("aetna", history))
    assert outcome(results) == normalised(expect)
    for r in results:
        for ln in r["lines"]:
            for reason in ln["reasons"]:
                if reason["rule"] in ("frequency", "spacing"):
                    assert reason["policy"] == "aetna-tpi"


# ---- the same through the command line ------------------------------------------------------------

def test_cli_decides_as_the_api(shipped, cli, tmp_path):
    picked = [*ONE_PER_DAY[:4], *DRY_NEEDLING[:2], *EM[:2], *EXCLUDED[:1], *CROSS_PAYER[:2]]
    claims = [{**c, "claim_id": f"K{k}-{c['claim_id']}", "patient_id": f"K{k}-{c['patient_id']}"}
              for k, p in enumerate(picked) for c in p.values[0]]
    path = tmp_path / "claims.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in claims), encoding="utf-8")
    res = cli("check", path)
    assert res.code == 0, res.err
    assert res.objects == shipped.check(claims)
    assert_well_formed(res.objects)
    expected = {f"K{k}-{key}": v for k, p in enumerate(picked) for key, v in normalised(p.values[2]).items()}
    assert outcome(res.objects) == expected
