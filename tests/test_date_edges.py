"""Dates at the edges of the calendar (issue 16, item 1): every window, spacing and next eligible date is
total over 0001-01-01..9999-12-31. A next eligible date after 9999-12-31 is reported as `none`, never looked
for by a loop without end; compiled checkers and the reference interpreter agree over the whole range."""
from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payrule import PolicySet
from payrule.api import PolicyError
from payrule.claims.readers import ReadSession, read_claims
from payrule.run.interpreter import interpret, models_by_payer, months_before

from conftest import POLICIES, claim, tpi

PAYERS = ["medicare", "aetna", "bcbs", "cigna", "emblemhealth"]


@pytest.fixture(scope="module")
def shipped() -> PolicySet:
    return PolicySet.load([POLICIES])


def both(policies: PolicySet, claims: list[dict]) -> list[dict]:
    data = "\n".join(json.dumps(c) for c in claims).encode()
    compiled = policies.check(data)
    interpreted = interpret(models_by_payer(policies.policies), read_claims(data, session=ReadSession(keep_extra=True)))
    assert compiled == interpreted
    return compiled


@pytest.mark.parametrize("payer, days", [
    ("medicare", ["9999-03-01", "9999-06-01", "9999-09-01", "9999-12-31"]),  # 4th in 12 months
    ("bcbs", ["9999-02-01", "9999-04-01", "9999-06-01", "9999-09-01", "9999-12-31"]),  # 5th in 12 months
    ("emblemhealth", ["9999-10-10", "9999-11-01", "9999-12-01", "9999-12-31"]),  # 4th in 90 days at the neck
    ("aetna", ["9999-12-28", "9999-12-31"]),  # 3 days apart: 7 needed
    ("cigna", ["9999-12-20", "9999-12-31"]),  # 11 days apart: 21 needed
])
def test_a_denied_session_at_the_end_of_the_calendar_has_no_next_date(shipped, payer, days):
    claims = [claim(f"C{i}", tpi(date=d, site="neck"), payer=payer) for i, d in enumerate(days)]
    out = both(shipped, claims)
    messages = [r["message"] for o in out for ln in o["lines"] for r in ln["reasons"]]
    assert any("next eligible none" in m for m in messages), messages  # it would be after 9999-12-31


@pytest.mark.parametrize("payer", PAYERS)
def test_the_first_days_of_the_calendar(shipped, payer):
    days = ["0001-01-01", "0001-01-02", "0001-01-03", "0001-01-04", "0001-01-05"]
    out = both(shipped, [claim(f"C{i}", tpi(date=d, site="neck"), payer=payer) for i, d in enumerate(days)])
    assert all("error" not in o for o in out)


def test_months_before_the_first_day_is_none():
    assert months_before(date(1, 3, 31), 2) == date(1, 1, 31)
    assert months_before(date(1, 3, 31), 3) is None
    assert months_before(date(9999, 12, 31), 12 * 9998 + 11) == date(1, 1, 31)


WINDOWS = ["within 12 months", "within 1200 months", "within 36600 days", "per calendar year", "within 90 days"]
GAPS = ["less than 21 days", "less than 1 month", "less than 1200 months", "less than 36600 days"]


@st.composite
def edge_days(draw) -> list[str]:
    anchor = draw(st.sampled_from([date.min, date.max, date(1, 12, 31), date(9999, 1, 1), date(9998, 12, 31)]))
    out = []
    for _ in range(draw(st.integers(1, 6))):
        step = draw(st.sampled_from([0, 1, 7, 20, 21, 28, 31, 90, 365, 366]))
        d = anchor + timedelta(days=step) if anchor < date(5000, 1, 1) else anchor - timedelta(days=step)
        out.append(d.isoformat())
    return out


@settings(max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(window=st.sampled_from(WINDOWS), gap=st.sampled_from(GAPS), days=edge_days(), by_site=st.booleans())
def test_windows_and_gaps_at_the_edges_agree_with_the_interpreter(window, gap, days, by_site):
    grouping = " at the same site" if by_site else ""
    text = (f'policy edge "Edges"\n  payer edge\n  codes X = 20552\n'
            f'  rule limit: deny line when code in X and more than 1 X sessions {window}{grouping}\n'
            f'    message "{{nth}} next {{next_date}}"\n'
            f'  rule gap: review line when code in X and {gap} after the last X session{grouping}\n'
            f'    message "{{days}} after {{last_date}} next {{next_date}}"\n')
    policies = PolicySet.from_texts({"edge.policy": text})
    both(policies, [claim(f"C{i}", tpi(date=d, site="neck"), payer="edge") for i, d in enumerate(days)])


@pytest.mark.parametrize("cond", ["more than 3 X sessions within 999999 months", "less than 1201 months after the last X session",
                                  "more than 3 X sessions within 36601 days"])
def test_a_window_longer_than_a_hundred_years_is_refused(cond):
    text = f'policy edge "Edges"\n  payer edge\n  codes X = 20552\n  rule r: deny line when code in X and {cond}\n'
    with pytest.raises(PolicyError) as exc:
        PolicySet.from_texts({"edge.policy": text})
    (d,) = exc.value.diagnostics
    assert d.code == "PR304" and "longer than 100 years" in d.message
