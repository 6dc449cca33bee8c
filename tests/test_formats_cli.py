"""`payrule check`'s format options and `payrule validate`, end to end through the CLI: the claims'
format (--format, or found from the file), the output's (--output-format, its short --output spelling,
the old --format table), and validate's findings and exit status."""
from __future__ import annotations

import json
import shutil

import pytest

from conftest import ROOT, claim, tpi

EXAMPLES = ROOT / "examples" / "claims.jsonl"
HISTORY = ROOT / "examples" / "history.jsonl"


def test_the_format_is_found_from_the_content_or_named(cli, tmp_path):
    """A CSV file without the .csv name is found by its header; --format csv reads it whatever it is named."""
    csv_file = ROOT / "tests" / "claims_corpus" / "csv_bom_crlf.csv"
    want = cli("check", csv_file).out
    renamed = tmp_path / "claims.txt"
    shutil.copy(csv_file, renamed)
    assert cli("check", renamed).out == want
    assert cli("check", "--format", "csv", renamed).out == want


def test_a_named_format_is_believed(cli, tmp_path):
    """--format jsonl reads a file as JSON Lines even when its header would say CSV: each line is then
    an error record, which says the file is not what it was called."""
    path = tmp_path / "c.txt"
    path.write_text("claim_id,patient_id\nC1,P1\n")
    res = cli("check", "--format", "jsonl", path)
    assert res.code == 1
    assert [o["input_line"] for o in res.objects] == [1, 2]
    assert all("not JSON" in o["error"] for o in res.objects)


@pytest.mark.parametrize("spelling", [["--output-format", "table"], ["--output", "table"], ["--format", "table"]],
                         ids=["output-format", "output", "old-format"])
def test_the_table_has_three_spellings(cli, spelling):
    res = cli("check", EXAMPLES, "--history", HISTORY, *spelling)
    assert res.out.splitlines()[0].split() == ["CLAIM", "LINE", "CODE", "DECISION"]
    assert res.out == cli("check", EXAMPLES, "--history", HISTORY, "--output-format", "table").out


def test_fhir_output_is_one_claim_response_per_claim_in_input_order(cli):
    pytest.importorskip("msgspec")
    decisions = cli("check", EXAMPLES, "--history", HISTORY).objects
    res = cli("check", EXAMPLES, "--history", HISTORY, "--output", "fhir")
    responses = [json.loads(line) for line in res.out.splitlines()]
    assert [r["resourceType"] for r in responses] == ["ClaimResponse"] * len(decisions)
    assert [r["request"]["identifier"]["value"] for r in responses] == [d["claim_id"] for d in decisions]
    assert res.out == cli("check", EXAMPLES, "--history", HISTORY, "--output-format", "fhir").out


def test_fhir_output_carries_an_error_record_as_an_error_outcome(cli, tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(claim("C1", tpi())) + "\n" + '{"claim_id": "C2", "lines": []}\n')
    res = cli("check", path, "--output-format", "fhir")
    assert res.code == 1
    good, bad = (json.loads(line) for line in res.out.splitlines())
    assert good["outcome"] == "complete" and bad["outcome"] == "error"


def test_an_output_file_named_like_a_format_needs_a_path(cli, tmp_path, monkeypatch):
    """`--output fhir` names the format; `-o ./fhir` a file of that name."""
    monkeypatch.chdir(tmp_path)
    cli("check", EXAMPLES, "-o", "./fhir")
    assert (tmp_path / "fhir").read_text().startswith('{"claim_id": "EX-01"')


def test_jobs_must_be_positive(cli):
    res = cli("check", EXAMPLES, "--jobs", "0")
    assert res.code == 2 and "--jobs must be 1 or more" in res.err


def test_validate_says_valid_or_each_finding(cli, tmp_path):
    res = cli("validate", EXAMPLES)
    assert (res.code, res.out) == (0, f"{EXAMPLES}: valid jsonl\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(claim("C1", tpi(date="2025-02-30"))) + "\n" + json.dumps(claim("C2", tpi())) + "\n")
    res = cli("validate", bad)
    assert res.code == 1
    assert res.out == f'{bad}: input line 1: claim C1: lines[0].date "2025-02-30" is not a real date (YYYY-MM-DD)\n'


def test_validate_of_a_missing_file_is_a_usage_error(cli, tmp_path):
    res = cli("validate", tmp_path / "nope.jsonl")
    assert res.code == 2 and res.err.startswith("payrule: error: cannot read")
