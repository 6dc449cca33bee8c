"""`payrule diff`: the rule-level summary, and the example claim, checked by deciding it again here.

Each revision is made from a shipped policy by text substitution. The example a diff prints is read
back from its text output and decided in this file with both revisions, loaded here independently
(the shipped files, the one being revised replaced by the revision), so a difference the command
claims is one the policies really make.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest

from payrule import PolicySet
from payrule.cli import main
from payrule.lang import ir
from payrule.tools import diff as diff_tool

from conftest import POLICIES

MEDICARE = POLICIES / "medicare" / "trigger_points.policy"
COMMON = POLICIES / "common" / "trigger_points.policy"
AETNA = POLICIES / "aetna" / "trigger_points.policy"
ACME = Path(__file__).resolve().parents[1] / "docs" / "examples" / "acme" / "trigger_points.policy"


def _sub(text: str, old: str, new: str) -> str:
    assert old in text, f"the shipped policy no longer contains {old!r}"
    return text.replace(old, new)


def _remove_rule(text: str, rule: str) -> str:
    start = text.index(f"  rule {rule}:")
    nxt = text.find("\n  rule ", start + 1)
    return text[:start] + (text[nxt + 1:] if nxt != -1 else "")


def _reformat(text: str) -> str:
    """The same policy laid out differently: blank lines, comments and deeper indentation, each
    condition's `and`s on lines of their own (only in `when` lines: never inside a string)."""
    out = ["# reformatted: nothing here changes what the policy says", ""]
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("rule "):
            out += ["", "   # a comment before a rule", ""]
        if stripped.startswith(("deny ", "review ")):
            head, cond = line.split(" when ", 1)
            line = "      " + head.strip() + "\n        when " + cond.replace(" and ", "\n          and ")
        out.append(line + "   ")
    return "\n".join(out) + "\n\n\n"


# (name, file revised, revise(text), what the summary must name, whether a decision must differ)
REVISIONS = [
    ("window 12 -> 6 months", MEDICARE, lambda t: _sub(t, "within 12 months", "within 6 months"),
     ("changed", "medicare-tpi", "frequency"), True),
    ("count 3 -> 4", MEDICARE, lambda t: _sub(t, "more than 3", "more than 4"),
     ("changed", "medicare-tpi", "frequency"), True),
    ("excluded stem added", COMMON, lambda t: _sub(t, '"vitamin", "cyanocobalamin"', '"vitamin", "botulinum", "cyanocobalamin"'),
     ("changed", "common-tpi", "excluded-injectate"), True),
    ("rule removed", MEDICARE, lambda t: _remove_rule(t, "bilateral"),
     ("removed", "medicare-tpi", "bilateral"), True),
    ("rule added", MEDICARE, lambda t: t + "\n  rule modifier-59:\n    deny line when code in TPI and has modifier 59\n"
                                           '    message "modifier 59 is not accepted on {code}"\n    per NORIDIAN\n',
     ("added", "medicare-tpi", "modifier-59"), True),
    ("covered diagnosis removed", MEDICARE, lambda t: _sub(t, "M54.5, M54.6, ", "M54.6, "),
     ("changed", "medicare-tpi", "covered-diagnosis", "retired-header-m54-5", "retired-headers"), True),
    ("units limit in a new rule", MEDICARE, lambda t: t + "\n  rule two-units:\n    review line when code is 20553 and units > 2\n",
     ("added", "medicare-tpi", "two-units"), True),
    ("aetna spacing 7 -> 10 days", AETNA, lambda t: _sub(t, "less than 7 days", "less than 10 days"),
     ("changed", "aetna-tpi", "spacing"), True),
    ("aetna calendar year -> 12 months", AETNA, lambda t: _sub(t, "per calendar year", "within 12 months"),
     ("changed", "aetna-tpi", "frequency"), True),
    ("rule dated from", MEDICARE, lambda t: _sub(t, "has modifier 50\n", "has modifier 50\n    from 2025-09-01\n"),
     ("changed", "medicare-tpi", "bilateral"), True),
    ("rule given an end date", MEDICARE, lambda t: _sub(t, "has modifier 50\n", "has modifier 50\n    until 2024-12-31\n"),
     ("changed", "medicare-tpi", "bilateral"), True),
    ("new excluded substance", COMMON, lambda t: _sub(t, '"biologic"', '"biologic", "exosome"'),
     ("changed", "common-tpi", "excluded-injectate"), True),
    ("unless added", MEDICARE, lambda t: _sub(t, "has modifier 50\n", "has modifier 50\n    unless has modifier 59\n"),
     ("changed", "medicare-tpi", "bilateral"), True),
    ("message only", MEDICARE, lambda t: _sub(t, "Medicare allows 3", "Medicare allows three"),
     ("changed", "medicare-tpi", "frequency"), False),
    ("reformatted", MEDICARE, _reformat, None, False),
    ("reformatted common", COMMON, _reformat, None, False),
]


def _policy_sets(path: Path, old_text: str, new_text: str) -> tuple[PolicySet, PolicySet]:
    """Both revisions, loaded here: every shipped file but the one revised, plus the revision."""
    others = {p.relative_to(POLICIES.parent).as_posix(): p.read_text() for p in sorted(POLICIES.rglob("*.policy")) if p != path}
    return (PolicySet.from_texts({**others, "old/x.policy": old_text}),
            PolicySet.from_texts({**others, "new/x.policy": new_text}))


def _printed_jsonl(out: str, heading: str) -> list[dict]:
    lines = out.splitlines()
    if heading + ": none" in lines:
        return []
    start = lines.index(heading + " (JSON Lines):") + 1
    objs = []
    for line in lines[start:]:
        if not line.startswith("  {"):
            break
        objs.append(json.loads(line))
    return objs


def _verdicts(results: list[dict]) -> list:
    """What a decision decides, written out here: each claim's decision (or error) and each line's
    decision with the rules that fired."""
    out = []
    for r in results:
        if "error" in r:
            out.append((r["claim_id"], "error", r["error"]))
        else:
            out.append((r["claim_id"], r["decision"],
                        [(ln["line"], ln["decision"], sorted((x["policy"], x["rule"], x["outcome"]) for x in ln["reasons"]))
                         for ln in r["lines"]]))
    return out


def _run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.mark.parametrize("name,path,revise,names,differs", REVISIONS, ids=[r[0] for r in REVISIONS])
def test_revision(tmp_path, capsys, name, path, revise, names, differs):
    old_text = path.read_text()
    new_text = revise(old_text)
    assert new_text != old_text
    old_file, new_file = tmp_path / "old.policy", tmp_path / "new.policy"
    old_file.write_text(old_text)
    new_file.write_text(new_text)

    code, out, err = _run(capsys, "diff", old_file, new_file)
    assert err == ""
    assert code == (1 if differs else 0)

    # the summary names the right rule, under the right heading
    if names is None:
        assert "no rule changed" in out.splitlines()
        assert not any(line.startswith("rule ") for line in out.splitlines())
    else:
        kind, policy, *rules = names  # every rule that reads a changed set is a changed rule too
        wanted = {f"rule {kind}: {policy}/{rule}" for rule in rules}
        assert wanted <= set(out.splitlines())
        assert "no rule changed" not in out
        others = [line for line in out.splitlines() if line.startswith("rule ") and line not in wanted]
        assert others == []

    if not differs:
        assert any(line.startswith("no difference in decisions") for line in out.splitlines())
        return
    # the printed example really is decided differently: decide it again, here
    history = _printed_jsonl(out, "history")
    claims = _printed_jsonl(out, "claims")
    assert claims
    old_set, new_set = _policy_sets(path, old_text, new_text)
    old_out, new_out = old_set.check(claims, history), new_set.check(claims, history)
    assert _verdicts(old_out) != _verdicts(new_out)
    # and the command printed both decisions as they are
    for results, heading in ((old_out, "old:"), (new_out, "new:")):
        section = out.split("\n" + heading + "\n", 1)[1]
        for r in results:
            assert f"claim {r['claim_id']}: {r.get('decision', 'error')}" in section


def test_window_example_sits_on_the_window_edges(tmp_path):
    """12 -> 6 months: the history holds 3 sessions inside 12 months, not all inside 6."""
    old_text = MEDICARE.read_text()
    rep = diff_tool.diff_texts(old_text, old_text.replace("within 12 months", "within 6 months"))
    ex = rep.example
    assert ex is not None
    day = dt.date.fromisoformat(ex.claims[0]["lines"][-1]["date"])
    seen = sorted(dt.date.fromisoformat(ln["date"]) for c in ex.history for ln in c["lines"])
    assert len(seen) == 3
    twelve = day.replace(year=day.year - 1)
    six = dt.date(day.year, day.month - 6, day.day) if day.month > 6 else dt.date(day.year - 1, day.month + 6, day.day)
    assert all(twelve < d < day for d in seen)
    assert sum(six < d for d in seen) < 3


def test_json_output_matches_the_text(tmp_path, capsys):
    new = tmp_path / "new.policy"
    new.write_text(MEDICARE.read_text().replace("within 12 months", "within 6 months"))
    code, out, _ = _run(capsys, "diff", MEDICARE, new, "--json")
    assert code == 1
    obj = json.loads(out)
    assert obj["rules_added"] == [] and obj["rules_removed"] == []
    assert [(c["policy"], c["rule"]) for c in obj["rules_changed"]] == [("medicare-tpi", "frequency")]
    assert obj["rules_changed"][0]["fields"]["cond"]["new"].endswith("within 6 months")
    ex = obj["example"]
    assert set(ex) == {"history", "claims", "old", "new"}
    old_set, new_set = _policy_sets(MEDICARE, MEDICARE.read_text(), new.read_text())
    assert _verdicts(old_set.check(ex["claims"], ex["history"])) == _verdicts(ex["old"])
    assert _verdicts(new_set.check(ex["claims"], ex["history"])) == _verdicts(ex["new"])
    assert _verdicts(ex["old"]) != _verdicts(ex["new"])


def test_json_output_without_difference(capsys):
    code, out, _ = _run(capsys, "diff", MEDICARE, MEDICARE, "--json")
    assert code == 0
    obj = json.loads(out)
    assert obj["example"] is None
    assert obj["rules_added"] == obj["rules_removed"] == obj["rules_changed"] == []


def test_same_file_twice_is_no_difference(capsys):
    code, out, err = _run(capsys, "diff", MEDICARE, MEDICARE)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "no rule changed"
    assert out.splitlines()[-1].startswith("no difference in decisions")


def test_output_is_deterministic(tmp_path, capsys):
    new = tmp_path / "new.policy"
    new.write_text(MEDICARE.read_text().replace("more than 3", "more than 4"))
    first = _run(capsys, "diff", MEDICARE, new)
    assert first == _run(capsys, "diff", MEDICARE, new)


def test_payer_change_is_reported_and_shown(tmp_path, capsys):
    new = tmp_path / "new.policy"
    new.write_text(AETNA.read_text().replace("payer aetna", 'payer "aetna us"'))
    code, out, _ = _run(capsys, "diff", AETNA, new)
    assert code == 1
    assert "payer changed: aetna-tpi: aetna -> aetna us" in out.splitlines()
    claims = _printed_jsonl(out, "claims")
    old_set, new_set = _policy_sets(AETNA, AETNA.read_text(), new.read_text())
    assert _verdicts(old_set.check(claims)) != _verdicts(new_set.check(claims))


def test_source_change_is_reported(tmp_path, capsys):
    new = tmp_path / "new.policy"
    new.write_text(MEDICARE.read_text().replace("Noridian JE Part B", "Noridian JF Part B"))
    code, out, _ = _run(capsys, "diff", MEDICARE, new)
    assert code == 0  # a citation decides nothing
    assert "source changed: medicare-tpi/NORIDIAN" in out.splitlines()


def test_set_added_and_removed(tmp_path, capsys):
    text = MEDICARE.read_text()
    new = tmp_path / "new.policy"
    new.write_text(text.replace("  diagnoses COVERED", '  names EXTRA = "left soleus"\n  diagnoses COVERED', 1))
    code, out, _ = _run(capsys, "diff", MEDICARE, new)
    assert code == 0
    assert "set added: medicare-tpi/EXTRA (names): left soleus" in out.splitlines()
    code, out, _ = _run(capsys, "diff", new, MEDICARE)
    assert "set removed: medicare-tpi/EXTRA (names)" in out.splitlines()


def test_policies_folder_for_an_unshipped_policy(tmp_path, capsys):
    """--policies adds a folder; the file's own policy in it (same id) is left out, not defined twice."""
    new = tmp_path / "acme.policy"
    new.write_text(ACME.read_text().replace("more than 6", "more than 5"))
    code, out, err = _run(capsys, "diff", ACME, new, "--policies", ACME.parent)
    assert (code, err) == (1, "")
    assert "rule changed: acme-tpi/frequency" in out.splitlines()


def test_usage_and_policy_errors_exit_2(tmp_path, capsys):
    code, out, err = _run(capsys, "diff", tmp_path / "missing.policy", MEDICARE)
    assert code == 2 and "no such file" in err and out == ""
    code, _, err = _run(capsys, "diff", MEDICARE, MEDICARE, "--policies", tmp_path / "nowhere")
    assert code == 2 and "does not exist" in err
    broken = tmp_path / "broken.policy"
    broken.write_text(MEDICARE.read_text().replace("code in TPI and has modifier 50", "code in TPl and has modifier 50"))
    code, out, err = _run(capsys, "diff", MEDICARE, broken)
    assert code == 2 and out == ""
    assert "error[PR201]" in err and "broken.policy" in err
    with pytest.raises(SystemExit) as exc:
        main(["diff", str(MEDICARE)])
    assert exc.value.code == 2


def test_search_is_bounded():
    """How long the search takes is a bench/ matter (machines here are shared); how much it tries is not."""
    text = MEDICARE.read_text()
    old, new = _policy_sets(MEDICARE, text, _reformat(text))  # nothing differs: the whole search runs
    scenarios = diff_tool.candidate_scenarios(old, new)
    example, tried = diff_tool.find_example(old, new)
    assert example is None
    assert 0 < len(scenarios) == tried <= diff_tool.MAX_SCENARIOS
    sizes = [s.size for s in scenarios]
    assert sizes == sorted(sizes)  # smallest first


# ---- what the search is made of, on IR the other stages do not make yet --------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class NotedRule(ir.Rule):
    """A rule with a field ir.Rule does not have (yet): compared, and its date used, all the same."""

    noted: dt.date | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class FutureNode:
    """A condition node this module does not know."""

    READS = "something new"
    set: ir.SetDef
    since: dt.date


class _Fake:
    def __init__(self, policies: dict):
        self.policies = policies


def _with_rule(policy: ir.Policy, rule_id: str, make) -> ir.Policy:
    return dataclasses.replace(policy, rules=tuple(make(r) if r.id == rule_id else r for r in policy.rules))


def _noted(rule: ir.Rule, noted: dt.date | None = None) -> NotedRule:
    return NotedRule(**{f.name: getattr(rule, f.name) for f in dataclasses.fields(rule)}, noted=noted)


def _dated(rule: ir.Rule, bound: dt.date) -> ir.Rule:
    """The rule in force from `bound`: with ir.Rule's own `start` when it has one."""
    if "start" in {f.name for f in dataclasses.fields(ir.Rule)}:
        return dataclasses.replace(rule, start=bound)
    return _noted(rule, bound)  # pragma: no cover


def test_new_rule_fields_are_compared_generically(shipped):
    rule = shipped.policies["medicare-tpi"].rules[-1]
    change = diff_tool.compare_rules(rule, _noted(rule, dt.date(2025, 9, 1)))
    assert change is not None and change.fields == {"noted": ("(none)", "2025-09-01")}
    assert diff_tool.compare_rules(rule, _noted(rule)) is None


def test_rule_date_bounds_give_dates_either_side(shipped):
    pol = shipped.policies["medicare-tpi"]
    bound = dt.date(2025, 9, 1)
    for make in (lambda r: _dated(r, bound), lambda r: _noted(r, bound)):
        new = _with_rule(pol, "frequency", make)
        scenarios = diff_tool.candidate_scenarios(_Fake({pol.id: pol}), _Fake({pol.id: new}))
        days = {c["lines"][-1]["date"] for s in scenarios for c in s.claims}
        assert {"2025-08-31", "2025-09-01"} <= days


def test_unknown_nodes_are_ignored_but_their_sets_and_dates_used(shipped):
    pol = shipped.policies["medicare-tpi"]
    since = dt.date(2026, 1, 1)
    new = _with_rule(pol, "bilateral", lambda r: dataclasses.replace(
        r, cond=ir.And((*ir.conjuncts(r.cond), FutureNode(pol.set("TPI"), since)))))
    scenarios = diff_tool.candidate_scenarios(_Fake({pol.id: pol}), _Fake({pol.id: new}))
    days = {c["lines"][-1]["date"] for s in scenarios for c in s.claims}
    assert {"2025-12-31", "2026-01-01"} <= days
    by_id = lambda p: {r.id: r for r in p.rules}  # noqa: E731
    change = diff_tool.compare_rules(by_id(pol)["bilateral"], by_id(new)["bilateral"])
    assert change is not None and "cond" in change.fields


def test_the_worked_example_on_the_docs_page_still_holds(tmp_path, capsys):
    """docs/diff.md shows the 12 -> 6 months diff: its claim is still decided differently, and the
    command still prints the summary the page shows."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "diff.md").read_text()
    block = page.split("## A worked example", 1)[1].split("```console\n", 1)[1].split("\n```", 1)[0]
    shown = block.split("\n", 2)[2]  # the output, after the `sed` and `payrule diff` commands
    text = MEDICARE.read_text()
    six = text.replace("within 12 months", "within 6 months")
    new = tmp_path / "six-months.policy"
    new.write_text(six)
    code, out, _ = _run(capsys, "diff", MEDICARE, new)
    assert code == 1
    summary = lambda t: t.split("\n\n", 1)[0]  # noqa: E731
    assert summary(out) == summary(shown)
    old_set, new_set = _policy_sets(MEDICARE, text, six)
    history, claims = _printed_jsonl(shown, "history"), _printed_jsonl(shown, "claims")
    assert _verdicts(old_set.check(claims, history)) != _verdicts(new_set.check(claims, history))
