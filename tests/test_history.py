"""Contract section 3: how history is read, and the edge dates of the shipped limits.

Expected decisions and message facts are worked out by hand from the contract:
  - "N months": a prior session p counts for day d when d - N calendar months < p < d
    (2025-03-15 - 12 months = 2024-03-15; 2024-02-29 - 12 months = 2023-02-28);
  - "calendar year": p.year == d.year;  "at least N days apart": d - p >= N for the latest counted p;
  - only lines that were not denied count; `--history` claims count as paid;
  - the next eligible date is the first day on which the window no longer holds enough sessions to deny.
"""
from __future__ import annotations

import json
import random
import re

import pytest

from conftest import claim, decisions, fired, tpi

M, A = "medicare", "aetna"


def tpis(payer, dates, patient="P1", prefix="C", **line) -> list[dict]:
    """One claim per date, each a single correct 20552 line."""
    return [claim(f"{prefix}{i}", tpi(date=d, **line), patient=patient, payer=payer) for i, d in enumerate(dates, 1)]


def lines_of(results) -> dict[str, str]:
    """{"C1": "deny frequency"} for single-line claims, {"C1.2": ...} beyond line 1."""
    rules = fired(results)
    out = {}
    for r in results:
        assert "error" not in r, r
        for ln in r["lines"]:
            key = r["claim_id"] if len(r["lines"]) == 1 else f"{r['claim_id']}.{ln['line']}"
            out[key] = " ".join([ln["decision"], *sorted(rules[(r["claim_id"], ln["line"])])])
    return out


def reason(results, claim_id, rule, line=1) -> dict:
    for r in results:
        if r["claim_id"] == claim_id:
            for ln in r["lines"]:
                if ln["line"] == line:
                    hits = [x for x in ln["reasons"] if x["rule"] == rule]
                    assert len(hits) == 1, ln
                    return hits[0]
    raise AssertionError(f"no {claim_id}.{line}")


def dates_in(message: str) -> set[str]:
    return set(re.findall(r"\d{4}-\d{2}-\d{2}", message))


def assert_limit_message(msg: str, nth: str, sessions: list[str], next_date: str) -> None:
    """The Medicare frequency message: the ordinal, the counted sessions, the next eligible date."""
    assert re.search(rf"\b{nth}\b", msg), msg
    assert dates_in(msg) == {*sessions, next_date}, msg
    assert re.search(rf"next eligible\W*{next_date}", msg), msg


# ---- per patient and payer -----------------------------------------------------------------------

THREE_PAID = ["2025-01-10", "2025-03-10", "2025-05-10"]


@pytest.mark.parametrize("history_payer, history_patient, expect", [
    pytest.param(M, "P1", "deny frequency", id="medicare history of the patient counts"),
    pytest.param("MEDICARE", "P1", "deny frequency", id="payer id of history compared case-insensitively"),
    pytest.param(A, "P1", "approve", id="aetna history does not count for medicare"),
    pytest.param(M, "P2", "approve", id="another patient's history does not count"),
])
def test_history_is_per_patient_and_payer(shipped, history_payer, history_patient, expect):
    history = tpis(history_payer, THREE_PAID, patient=history_patient, prefix="H")
    res = shipped.check(tpis(M, ["2025-07-10"]), history)
    assert lines_of(res) == {"C1": expect}


def test_medicare_history_does_not_count_for_aetna(shipped):
    # Five paid Medicare sessions in 2025, the last 3 days before: at Aetna the claim is the first session.
    past = ["2025-01-10", "2025-02-10", "2025-03-10", "2025-04-10", "2025-06-28"]
    assert lines_of(shipped.check(tpis(A, ["2025-07-01"]), tpis(M, past, prefix="H"))) == {"C1": "approve"}
    # The same history billed to Aetna: 6th session in 2025, and 3 days after the last.
    assert lines_of(shipped.check(tpis(A, ["2025-07-01"]), tpis(A, past, prefix="H"))) == {"C1": "deny frequency spacing"}


def test_input_claims_of_another_payer_do_not_count(shipped):
    claims = tpis(A, THREE_PAID) + [claim("M1", tpi(date="2025-07-10"), payer=M)]
    assert lines_of(shipped.check(claims)) == {"C1": "approve", "C2": "approve", "C3": "approve", "M1": "approve"}


# ---- what counts ---------------------------------------------------------------------------------

def test_denied_lines_do_not_count(shipped):
    claims = [claim("C1", tpi(date="2025-01-10")), claim("C2", tpi(date="2025-03-10", units=2)),
              claim("C3", tpi(date="2025-05-10")), claim("C4", tpi(date="2025-07-10"))]
    assert lines_of(shipped.check(claims)) == {"C1": "approve", "C2": "deny units", "C3": "approve", "C4": "approve"}


def test_lines_held_for_review_count(shipped):
    claims = [claim("C1", tpi(date="2025-01-10")), claim("C2", tpi(date="2025-03-10", substances=None)),
              claim("C3", tpi(date="2025-05-10")), claim("C4", tpi(date="2025-07-10"))]
    assert lines_of(shipped.check(claims)) == {
        "C1": "approve", "C2": "review substances-documented", "C3": "approve", "C4": "deny frequency"}


def test_a_session_is_a_day_not_a_line(shipped):
    # Jan 10 has two TPI claims (the second denied) and a two-line history claim: still one session.
    history = [claim("H1", tpi(1, date="2025-01-10"), tpi(2, date="2025-01-10", code="20553",
                                                        muscles=["a", "b", "c"]))]
    claims = [claim("C1", tpi(date="2025-01-10")), claim("C2", tpi(date="2025-03-10")),
              claim("C3", tpi(date="2025-05-10"))]
    assert lines_of(shipped.check(claims, history)) == {"C1": "deny one-per-day", "C2": "approve", "C3": "approve"}


def test_history_counts_as_paid_even_when_it_would_be_denied(shipped):
    history = [claim("H1", tpi(date="2025-01-10", units=2)), claim("H2", tpi(date="2025-03-10"), diagnoses=None),
               claim("H3", tpi(date="2025-05-10", modifiers=["50"]))]
    res = shipped.check(tpis(M, ["2025-07-10"]), history)
    assert lines_of(res) == {"C1": "deny frequency"}
    assert_limit_message(reason(res, "C1", "frequency")["message"], "4th", THREE_PAID, "2026-01-10")


def test_error_claims_add_nothing_to_history(shipped):
    bad = claim("C1", tpi(date="2025-03-01", units=0), payer=A)
    res = shipped.check([bad, claim("C2", tpi(date="2025-03-03"), payer=A)])
    assert "error" in res[0] and res[0]["claim_id"] == "C1"
    assert lines_of(res[1:]) == {"C2": "approve"}


def test_cli_history_counts_and_prints_nothing(cli, tmp_path):
    history = tmp_path / "history.jsonl"
    history.write_text("".join(json.dumps(c) + "\n" for c in tpis(M, THREE_PAID, prefix="H")), encoding="utf-8")
    claims = tmp_path / "claims.jsonl"
    rows = [claim("C2", tpi(date="2025-07-10")), claim("C1", tpi(date="2025-02-01"), patient="P2")]
    claims.write_text("".join(json.dumps(c) + "\n" for c in rows), encoding="utf-8")
    res = cli("check", claims, "--history", history)
    assert res.code == 0, res.err
    assert [o["claim_id"] for o in res.objects] == ["C2", "C1"]
    assert "H1" not in res.out and "H2" not in res.out and "H3" not in res.out
    assert decisions(res.objects) == {"C2": {1: "deny"}, "C1": {1: "approve"}}
    assert fired(res.objects)[("C2", 1)] == ["frequency"]


# ---- limits look back only -----------------------------------------------------------------------

def test_history_dated_after_the_line_is_ignored(shipped):
    later = ["2025-04-01", "2025-05-01", "2025-06-01"]
    assert lines_of(shipped.check(tpis(M, ["2025-03-01"]), tpis(M, later, prefix="H"))) == {"C1": "approve"}
    assert lines_of(shipped.check(tpis(A, ["2025-03-01"]), tpis(A, ["2025-03-03"], prefix="H"))) == {"C1": "approve"}


def test_history_on_both_sides_of_the_lines(shipped):
    # History Jan 10, Feb 10, Apr 10; claims Mar 10 (2 earlier sessions -> approve) and May 10
    # (Jan, Feb, Mar, Apr earlier -> 5th -> deny; allowed again once Jan 10 and Feb 10 have left the window:
    # 2026-02-10 - 12 months = 2025-02-10).
    history = tpis(M, ["2025-01-10", "2025-02-10", "2025-04-10"], prefix="H")
    res = shipped.check(tpis(M, ["2025-03-10", "2025-05-10"]), history)
    assert lines_of(res) == {"C1": "approve", "C2": "deny frequency"}
    assert_limit_message(reason(res, "C2", "frequency")["message"], "5th",
                         ["2025-01-10", "2025-02-10", "2025-03-10", "2025-04-10"], "2026-02-10")


@pytest.mark.parametrize("payer", [M, A])
def test_same_day_tpi_is_not_a_prior_session(shipped, payer):
    # Medicare: 2 earlier sessions + the same-day one would be 3 prior if same-day counted.
    # Aetna: a same-day session would be "0 days after the last".
    history = tpis(payer, ["2025-01-10", "2025-03-10", "2025-05-10"], prefix="H")
    res = shipped.check(tpis(payer, ["2025-05-10"]), history)
    assert lines_of(res) == {"C1": "deny one-per-day"}


def test_same_day_input_claims_are_not_prior_sessions(shipped):
    history = tpis(M, ["2025-01-10", "2025-03-10"], prefix="H")
    claims = [claim("C1", tpi(date="2025-05-10")), claim("C2", tpi(date="2025-05-10"))]
    assert lines_of(shipped.check(claims, history)) == {"C1": "approve", "C2": "deny one-per-day"}


# ---- date order, whatever the input order --------------------------------------------------------

SEP = ["2025-01-10", "2025-03-10", "2025-05-10", "2025-07-10", "2025-09-10"]


def mixed_claims() -> tuple[list[dict], dict[str, str]]:
    """Several patients and payers, no same-day ties; the decisions worked out from the contract."""
    claims, expect = [], {}
    # P1 at Medicare: Jan, Mar, May; Jul is the 4th in 12 months; Sep still has Jan-May in its window.
    for i, (d, e) in enumerate(zip(SEP, ["approve"] * 3 + ["deny frequency"] * 2), 1):
        claims.append(claim(f"M{i}", tpi(date=d)))
        expect[f"M{i}"] = e
    # P1 at Aetna: Mar 1; Mar 7 is 6 days after; Mar 8 is 7 after Mar 1 (Mar 7 denied); Apr 1, May 1 are the
    # 3rd and 4th sessions of 2025; Jun 1 is the 5th.
    for i, (d, e) in enumerate(zip(["2025-03-01", "2025-03-07", "2025-03-08", "2025-04-01", "2025-05-01", "2025-06-01"],
                                   ["approve", "deny spacing", "approve", "approve", "approve", "deny frequency"]), 1):
        claims.append(claim(f"A{i}", tpi(date=d), payer=A))
        expect[f"A{i}"] = e
    # P3 at Medicare: an E/M without 25 the day of a TPI billed on another claim.
    claims.append(claim("E1", {"line": 1, "date": "2025-04-01", "code": "99213"}, patient="P3"))
    claims.append(claim("E2", tpi(date="2025-04-01"), patient="P3"))
    expect.update({"E1": "deny em-needs-25", "E2": "approve"})
    return claims, expect


def test_mixed_claims_forward(shipped):
    claims, expect = mixed_claims()
    assert lines_of(shipped.check(claims)) == expect


@pytest.mark.parametrize("seed", ["reversed", 1, 2, 3])
def test_input_order_does_not_change_decisions(shipped, seed):
    claims, expect = mixed_claims()
    if seed == "reversed":
        claims.reverse()
    else:
        random.Random(seed).shuffle(claims)
    res = shipped.check(claims)
    assert [r["claim_id"] for r in res] == [c["claim_id"] for c in claims]  # output in input order
    assert lines_of(res) == expect


def test_reverse_file_order_through_the_cli(cli, tmp_path):
    path = tmp_path / "claims.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in reversed(tpis(M, SEP))), encoding="utf-8")
    res = cli("check", path)
    assert res.code == 0, res.err
    assert [o["claim_id"] for o in res.objects] == ["C5", "C4", "C3", "C2", "C1"]
    assert lines_of(res.objects) == {"C1": "approve", "C2": "approve", "C3": "approve",
                                     "C4": "deny frequency", "C5": "deny frequency"}


def test_aetna_spacing_in_reverse_input_order(shipped):
    claims = tpis(A, ["2025-03-08", "2025-03-07", "2025-03-01"])
    assert lines_of(shipped.check(claims)) == {
        "C1": "approve", "C2": "deny spacing", "C3": "approve"}


def test_lines_of_one_claim_go_in_date_order(shipped):
    # Line 1 is dated after line 2: line 2 is decided first, so line 1 is 4 days after the last session.
    c = claim("C1", tpi(1, date="2025-03-05"), tpi(2, date="2025-03-01"), payer=A)
    assert lines_of(shipped.check([c])) == {"C1.1": "deny spacing", "C1.2": "approve"}


@pytest.mark.parametrize("order, expect", [
    pytest.param(["C1", "C2"], {"C1": "approve", "C2": "deny one-per-day"}, id="C1 first in input"),
    pytest.param(["C2", "C1"], {"C1": "deny one-per-day", "C2": "approve"}, id="C2 first in input"),
])
def test_same_day_tie_goes_by_input_order(shipped, order, expect):
    by_id = {"C1": claim("C1", tpi()), "C2": claim("C2", tpi(code="20553", muscles=["a", "b", "c"]))}
    assert lines_of(shipped.check([by_id[i] for i in order])) == expect


def test_same_day_tie_within_a_claim_goes_by_line_number(shipped):
    c = claim("C1", tpi(2, code="20553", muscles=["a", "b", "c"]), tpi(1))  # listed line 2 first
    res = shipped.check([c])
    assert lines_of(res) == {"C1.2": "deny one-per-day", "C1.1": "approve"}
    assert [ln["line"] for ln in res[0]["lines"]] == [2, 1]  # lines keep their input order in the output


# ---- edge dates ----------------------------------------------------------------------------------

@pytest.mark.parametrize("history, day, expect, next_date", [
    # 2025-02-28 - 12 months = 2024-02-28 < 2024-02-29: the leap day counts.
    pytest.param(["2024-02-29", "2024-06-01", "2024-10-01"], "2025-02-28", "deny frequency", "2025-03-01",
                 id="leap day session counts on 2025-02-28"),
    # 2025-03-01 - 12 months = 2024-03-01: the leap day is out.
    pytest.param(["2024-02-29", "2024-06-01", "2024-10-01"], "2025-03-01", "approve", None,
                 id="leap day session out on 2025-03-01"),
    # 2024-02-29 - 12 months = 2023-02-28 (contract): a session that day is out, 2023-03-01 is in.
    pytest.param(["2023-02-28", "2023-06-01", "2023-10-01"], "2024-02-29", "approve", None,
                 id="2023-02-28 out on the leap day"),
    pytest.param(["2023-03-01", "2023-06-01", "2023-10-01"], "2024-02-29", "deny frequency", "2024-03-01",
                 id="2023-03-01 in on the leap day"),
    # Exactly 12 months: 2025-03-15 - 12 months = 2024-03-15, and p must be later.
    pytest.param(["2024-03-15", "2024-07-01", "2024-11-01"], "2025-03-15", "approve", None,
                 id="exactly 12 months earlier does not count"),
    pytest.param(["2024-03-15", "2024-07-01", "2024-11-01"], "2025-03-14", "deny frequency", "2025-03-15",
                 id="12 months less a day counts"),
    # Month ends: 2025-05-31 - 12 months = 2024-05-31.
    pytest.param(["2024-05-31", "2024-08-01", "2024-12-01"], "2025-05-30", "deny frequency", "2025-05-31",
                 id="month end in"),
    pytest.param(["2024-05-31", "2024-08-01", "2024-12-01"], "2025-05-31", "approve", None, id="month end out"),
])
def test_medicare_12_month_window_edges(shipped, history, day, expect, next_date):
    res = shipped.check(tpis(M, [day]), tpis(M, history, prefix="H"))
    assert lines_of(res) == {"C1": expect}
    if next_date:
        assert_limit_message(reason(res, "C1", "frequency")["message"], "4th", history, next_date)


def test_the_sep_case_a_denied_4th_does_not_count_later(shipped):
    # Jan, Mar, May approved; Jul is the 4th -> deny; Sep: window (2024-09-10, 2025-09-10] holds Jan, Mar, May
    # (the denied Jul does not count) -> still the 4th, deny. 2026-01-09 still holds Jan 10; 2026-01-10 does not.
    claims = tpis(M, [*SEP, "2026-01-09", "2026-01-10"])
    res = shipped.check(claims)
    assert lines_of(res) == {"C1": "approve", "C2": "approve", "C3": "approve", "C4": "deny frequency",
                             "C5": "deny frequency", "C6": "deny frequency", "C7": "approve"}
    for cid in ("C4", "C5"):
        assert_limit_message(reason(res, cid, "frequency")["message"], "4th", SEP[:3], "2026-01-10")
    # 2026-01-09: window (2025-01-09, 2026-01-09] holds Jan 10, Mar 10, May 10 (Jul and Sep were denied).
    assert_limit_message(reason(res, "C6", "frequency")["message"], "4th", SEP[:3], "2026-01-10")


def test_medicare_message_past_the_limit(shipped):
    # Five paid sessions: the claim is the 6th; it is allowed again once only 2 remain in the window, i.e. when
    # the 3rd one (2025-03-05) has left it: 2026-03-05 - 12 months = 2025-03-05.
    past = ["2025-01-05", "2025-02-05", "2025-03-05", "2025-04-05", "2025-05-05"]
    res = shipped.check(tpis(M, ["2025-06-05", "2026-03-04", "2026-03-05"]), tpis(M, past, prefix="H"))
    assert lines_of(res) == {"C1": "deny frequency", "C2": "deny frequency", "C3": "approve"}
    assert_limit_message(reason(res, "C1", "frequency")["message"], "6th", past, "2026-03-05")


AETNA_YEAR = ["2025-01-01", "2025-04-01", "2025-07-01", "2025-10-01"]


def test_aetna_5th_on_dec_31_denied_jan_1_approved(shipped):
    res = shipped.check(tpis(A, ["2025-12-31", "2026-01-01"]), tpis(A, AETNA_YEAR, prefix="H"))
    # 2026-01-01: no session in 2026 yet; the last counted session is 2025-10-01 (Dec 31 was denied).
    assert lines_of(res) == {"C1": "deny frequency", "C2": "approve"}
    msg = reason(res, "C1", "frequency")["message"]
    assert re.search(r"\b5th\b", msg) and re.search(r"\b2025\b", msg), msg
    assert dates_in(msg) == {"2026-01-01"}, msg


def test_aetna_session_of_the_previous_year_does_not_count(shipped):
    history = ["2024-12-31", "2025-04-01", "2025-07-01", "2025-10-01"]
    assert lines_of(shipped.check(tpis(A, ["2025-12-31"]), tpis(A, history, prefix="H"))) == {"C1": "approve"}


def test_aetna_calendar_year_in_input_claims(shipped):
    claims = tpis(A, [*AETNA_YEAR, "2025-12-31", "2026-01-01"])
    assert lines_of(shipped.check(claims)) == {"C1": "approve", "C2": "approve", "C3": "approve", "C4": "approve",
                                               "C5": "deny frequency", "C6": "approve"}


@pytest.mark.parametrize("last, day, expect, facts", [
    pytest.param("2025-03-01", "2025-03-07", "deny spacing", (6, "2025-03-01", "2025-03-08"), id="6 days apart"),
    pytest.param("2025-03-01", "2025-03-08", "approve", None, id="7 days apart"),
    pytest.param("2025-03-01", "2025-03-02", "deny spacing", (1, "2025-03-01", "2025-03-08"), id="1 day apart"),
    pytest.param("2025-12-28", "2026-01-01", "deny spacing", (4, "2025-12-28", "2026-01-04"), id="across new year"),
    pytest.param("2025-12-28", "2026-01-04", "approve", None, id="7 days across new year"),
    pytest.param("2024-02-25", "2024-03-02", "deny spacing", (6, "2024-02-25", "2024-03-03"), id="6 days over a leap day"),
    pytest.param("2024-02-25", "2024-03-03", "approve", None, id="7 days over a leap day"),
])
def test_aetna_spacing_edges(shipped, last, day, expect, facts):
    res = shipped.check(tpis(A, [day]), tpis(A, [last], prefix="H"))
    assert lines_of(res) == {"C1": expect}
    if facts:
        days, last_date, next_date = facts
        msg = reason(res, "C1", "spacing")["message"]
        assert re.search(rf"\b{days} days?\b", msg), msg
        assert dates_in(msg) == {last_date, next_date}, msg
        assert re.search(rf"next eligible\W*{next_date}", msg), msg


def test_aetna_denied_session_does_not_reset_spacing(shipped):
    # Mar 5 is 4 days after Mar 1 -> denied, so it does not count: Mar 6 is 5 days after Mar 1, Mar 8 is 7.
    res = shipped.check(tpis(A, ["2025-03-01", "2025-03-05", "2025-03-06", "2025-03-08"]))
    assert lines_of(res) == {"C1": "approve", "C2": "deny spacing", "C3": "deny spacing", "C4": "approve"}
    msg = reason(res, "C3", "spacing")["message"]
    assert re.search(r"\b5 days\b", msg) and dates_in(msg) == {"2025-03-01", "2025-03-08"}, msg
