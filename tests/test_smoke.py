"""The quick start works: the shipped example claims are decided by the shipped policies."""
from conftest import ROOT


def test_example_claims_are_all_decided(cli):
    res = cli("check", ROOT / "examples" / "claims.jsonl", "--history", ROOT / "examples" / "history.jsonl")
    assert res.code == 0, res.err
    objs = res.objects
    n_in = sum(1 for l in (ROOT / "examples" / "claims.jsonl").read_text().splitlines() if l.strip())
    assert len(objs) == n_in
    assert all("decision" in o for o in objs)
    assert {o["decision"] for o in objs} == {"approve", "deny", "review"}


def test_example_errors_exit_1_and_keep_the_others(cli):
    res = cli("check", ROOT / "examples" / "with_errors.jsonl")
    assert res.code == 1
    assert [o.get("input_line") for o in res.objects] == [1, 2]
