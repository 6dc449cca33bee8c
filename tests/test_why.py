"""`payrule why`: one claim, rule by rule, with the facts each rule used.

The expected facts are worked out from the contract (section 3 windows, section 4 rules), not copied
from the program's output.
"""
from __future__ import annotations

import json

import pytest

from payrule.cli.commands import why as why_command

from conftest import claim, tpi


def write(path, objs) -> str:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs))
    return str(path)


@pytest.fixture
def files(tmp_path):
    def make(claims, history=None):
        out = [write(tmp_path / "claims.jsonl", claims)]
        if history is not None:
            out += ["--history", write(tmp_path / "history.jsonl", history)]
        return out

    return make


def block(out: str, line: int) -> str:
    """The part of the report about one claim line."""
    start = out.index(f"\nline {line}: ")
    end = out.find("\nline ", start + 1)
    return out[start: end if end != -1 else None]


def rule_block(text: str, rule: str) -> str:
    """The lines about one rule (its status line and the indented facts under it)."""
    lines = text.split("\n")
    for i, ln in enumerate(lines):
        if f"/{rule} (" in ln and ln.startswith("    ") and not ln.startswith("     "):
            out = [ln]
            for nxt in lines[i + 1:]:
                if nxt.startswith("      "):
                    out.append(nxt)
                else:
                    break
            return "\n".join(out)
    raise AssertionError(f"rule {rule} not in:\n{text}")


def test_fourth_medicare_session_shows_the_counted_sessions_window_and_next_date(cli, files):
    claims = [claim("C1", tpi(date="2025-01-10")), claim("C2", tpi(date="2025-03-10")),
              claim("C3", tpi(date="2025-05-10")), claim("C4", tpi(date="2025-07-10"))]
    res = cli("why", *files(claims), "--claim", "C4")
    assert res.code == 0, res.err
    assert res.out.startswith("claim C4: patient P1, payer medicare, policy medicare-tpi")
    assert "decision: DENY" in res.out
    line = block(res.out, 1)
    assert "line 1: 20552 on 2025-07-10: DENY" in line
    freq = rule_block(line, "frequency")
    assert freq.startswith("    fired: medicare-tpi/frequency")
    # 2025-07-10 minus 12 months is 2024-07-10; a session counts when it is after that and before the day
    assert "window (12 months before 2025-07-10): 2024-07-11 to 2025-07-09" in freq
    assert ("3 TPI session(s) counted: 2025-01-10 (claim C1 line 1); 2025-03-10 (claim C2 line 1); "
            "2025-05-10 (claim C3 line 1)") in freq
    assert "this line's session would be the 4th; the limit is 3" in freq
    # the oldest session (2025-01-10) leaves the window 12 months later
    assert "next eligible date: 2026-01-10" in freq
    # a rule for another code family does not apply
    assert rule_block(line, "anesthesia").startswith("    not applicable: common-tpi/anesthesia")
    assert "20552 is not in ANESTHESIA" in rule_block(line, "anesthesia")
    # and one that applies but did not fire says why
    assert rule_block(line, "units").startswith("    not fired: common-tpi/units")
    assert "units: 1" in rule_block(line, "units")


def test_sessions_from_history_are_named(cli, files):
    history = [claim("H1", tpi(date="2024-03-16")), claim("H2", tpi(date="2024-09-01")),
               claim("H3", tpi(date="2023-01-01"))]
    res = cli("why", *files([claim("C1", tpi(date="2025-03-15"))], history), "--claim", "C1")
    assert res.code == 0, res.err
    freq = rule_block(block(res.out, 1), "frequency")
    assert freq.startswith("    not fired:")
    # 2024-03-16 is inside the 12 months before 2025-03-15 (which start after 2024-03-15); 2023 is not
    assert "2 TPI session(s) counted: 2024-03-16 (history claim H1 line 1); 2024-09-01 (history claim H2 line 1)" in freq
    assert "this line's session would be the 3rd; the limit is 3" in freq
    assert "next eligible" not in freq


def test_muscle_count_is_shown_with_the_distinct_names(cli, files):
    line = tpi(code="20553", muscles=["Left  Soleus", "left soleus", " LEFT SOLEUS ", "left gastrocnemius"])
    res = cli("why", *files([claim("C1", line)]), "--claim", "C1")
    assert res.code == 0, res.err
    text = block(res.out, 1)
    assert "DENY" in text.split("\n")[1]
    rule = rule_block(text, "muscles-for-20553")
    assert rule.startswith("    fired:")
    # four names, two distinct muscles once case and spacing are ignored
    assert "2 distinct muscles: left soleus; left gastrocnemius" in rule
    assert "message: 20553 is for 3 or more muscles; 2 distinct documented, so bill 20552" in rule


def test_excluded_substance_names_the_matching_value_and_stem_on_every_line(cli, files):
    c = claim("C1", tpi(substances=["lidocaine", "Platelet-rich plasma"]),
              {"line": 2, "date": "2025-03-01", "code": "99213", "modifiers": ["25"]})
    res = cli("why", *files([c]), "--claim", "C1")
    assert res.code == 0, res.err
    first = rule_block(block(res.out, 1), "excluded-injectate")
    assert first.startswith("    fired on the claim (line 1's facts): common-tpi/excluded-injectate")
    assert "`Platelet-rich plasma` matches EXCLUDED_INJECTATES: word `platelet` starts with stem `platelet`" in first
    second = block(res.out, 2)
    assert "line 2: 99213 on 2025-03-01: DENY" in second
    assert rule_block(second, "excluded-injectate").startswith("    fired on the claim (line 1's facts)")
    assert "deny   common-tpi/excluded-injectate: Platelet-rich plasma is an excluded injectate" in second


def test_aetna_spacing_shows_the_last_session_and_next_date(cli, files):
    claims = [claim("C1", tpi(date="2025-03-01"), payer="aetna"), claim("C2", tpi(date="2025-03-07"), payer="aetna")]
    res = cli("why", *files(claims), "--claim", "C2")
    assert res.code == 0, res.err
    rule = rule_block(block(res.out, 1), "spacing")
    assert rule.startswith("    fired: aetna-tpi/spacing")
    assert "last TPI session: 2025-03-01 (claim C1 line 1)" in rule
    assert "6 days before this line; at least 7 required" in rule
    assert "next eligible date: 2025-03-08" in rule


def test_same_day_rules_name_the_other_line(cli, files):
    c = claim("C1", tpi(muscles=["left soleus", "left gastrocnemius"]),
              {"line": 2, "date": "2025-03-01", "code": "20560", "muscles": ["Left Soleus"]})
    res = cli("why", *files([c]), "--claim", "C1")
    assert res.code == 0, res.err
    rule = rule_block(block(res.out, 2), "dry-needling-overlap")
    assert rule.startswith("    fired:")
    assert "other lines that day in TPI: claim C1 line 1 (20552 on 2025-03-01)" in rule
    assert "shares muscles `left soleus` with claim C1 line 1" in rule


def test_the_decisions_shown_are_the_compiled_checkers(cli, files, monkeypatch):
    """When the interpreter disagrees with the compiled checker, `why` shows the checker's decision and
    says loudly that it is a bug."""
    real = why_command.trace_claim

    def wrong(*args, **kwargs):
        trace = real(*args, **kwargs)
        trace.lines[0].decision = "approve"
        trace.lines[0].reasons = []
        return trace

    monkeypatch.setattr(why_command, "trace_claim", wrong)
    claims = [claim("C1", tpi(units=2))]
    res = cli("why", *files(claims), "--claim", "C1")
    assert res.code == 1
    assert "line 1: 20552 on 2025-03-01: DENY" in res.out
    assert "!!! BUG: the reference interpreter disagrees with the compiled checker here:" in res.out
    assert "BUG: the reference interpreter disagrees with the compiled checker on claim C1" in res.err


def test_unknown_unreadable_and_unpayable_claims(cli, files, tmp_path):
    good = claim("C1", tpi())
    res = cli("why", *files([good]), "--claim", "C9")
    assert res.code == 2
    assert "no claim `C9`" in res.err

    bad = claim("C2", tpi(date="2025-02-30"))
    res = cli("why", *files([good, bad]), "--claim", "C2")
    assert res.code == 1
    assert res.out.startswith("claim C2 cannot be read (input line 2):")

    other = claim("C3", tpi(), payer="humana")
    res = cli("why", *files([other]), "--claim", "C3")
    assert res.code == 1
    assert "no policy for payer" in res.out


def test_why_says_when_dates_or_an_unless_kept_a_rule_from_firing(cli, files):
    """Imaging guidance the day before Medicare's rule starts; a 4th session at a site with a prior_auth."""
    imaging = claim("C1", {"line": 1, "date": "2024-03-31", "code": "76942"}, tpi(2, date="2024-03-31"))
    res = cli("why", *files([imaging]), "--claim", "C1")
    assert res.code == 0
    text = rule_block(block(res.out, 1), "imaging-guidance")
    assert "not in force: medicare-tpi/imaging-guidance" in text
    assert "but not in force on 2024-03-31 (in force from 2024-04-01)" in text
    history = [claim(f"H{i}", tpi(date=d, site="neck"), payer="emblemhealth") for i, d in
               enumerate(["2025-01-06", "2025-02-03", "2025-03-03"])]
    fourth = claim("C2", tpi(date="2025-03-10", site="neck"), payer="emblemhealth", prior_auth="PA-9")
    res = cli("why", *files([fourth], history), "--claim", "C2")
    text = rule_block(block(res.out, 1), "frequency-at-site")
    assert "not fired: emblemhealth-tpi/frequency-at-site" in text
    assert "3 TPI session(s) at the same site (neck) counted" in text
    assert "but unless claim has prior_auth: holds (prior_auth: PA-9)" in text
