"""Reading claims: contract sections 1 and 2 (exit statuses) and 5 ("What makes a claim an error", "Input lines").

The bad-claims corpus of issue 6 item 4 lives in tests/claims_corpus/ (see its README): each file has an
`.expect.json` listing the one output object every input claim must get. The rules checked throughout:

- an unreadable claim yields exactly `{"claim_id": id-or-null, "error": "<names the field>", "input_line": N}`
  in its place, N its physical line (CSV: its first row; the header is line 1; blank lines count);
- every good claim around it is still decided: count in == count out;
- exit 0 when every claim is decided, 1 when any is an error, 2 (nothing on stdout, a message on stderr, no
  traceback) for a missing claims or history file, an unreadable claim in the history file, or a bad option.
"""
from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

from payrule.claims.readers import ClaimError, read_claims
from payrule.cli import main

from conftest import CONFORMANCE, CliResult, claim, needs_conformance, tpi

CORPUS = Path(__file__).resolve().parent / "claims_corpus"
SCENARIOS = CONFORMANCE / "scenarios"
ERROR_KEYS = {"claim_id", "error", "input_line"}


# ------------------------------------------------------------------------------------------------ helpers

def run(*args, stdin: bytes = b"") -> CliResult:
    """`payrule ARGS...` in-process (no fixtures, so results can be cached); SystemExit becomes the code."""
    saved = sys.stdin, sys.stdout, sys.stderr
    out, err = io.StringIO(), io.StringIO()
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    sys.stdout, sys.stderr = out, err
    try:
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    return CliResult(code, out.getvalue(), err.getvalue())


def jsonl(*items) -> bytes:
    """Claims (dicts) or raw lines (str/bytes) as JSON Lines."""
    out = []
    for it in items:
        if isinstance(it, dict):
            it = json.dumps(it)
        out.append(it.encode() if isinstance(it, str) else it)
    return b"\n".join(out) + b"\n"


def good(cid: str, payer: str = "medicare", date: str = "2025-03-01", **line_extra) -> dict:
    """A claim the shipped policies approve (its own patient, a covered diagnosis, a documented 20552)."""
    return claim(cid, tpi(date=date, **line_extra), patient=f"P-{cid}", payer=payer)


def check_bytes(tmp_path: Path, data: bytes, name: str = "claims.jsonl", *more) -> CliResult:
    p = tmp_path / name
    p.write_bytes(data)
    return run("check", p, *more)


def assert_error(obj: dict, input_line: int, claim_id, pattern: str) -> None:
    assert set(obj) == ERROR_KEYS, obj
    assert obj["input_line"] == input_line, obj
    ids = claim_id if isinstance(claim_id, list) else [claim_id]
    assert obj["claim_id"] in ids, obj
    assert isinstance(obj["error"], str) and obj["error"].strip(), obj
    assert re.search(pattern, obj["error"], re.I), f"error should name {pattern!r}: {obj['error']!r}"


def assert_decided(obj: dict, claim_id: str, decision: str | None = None, lines: dict | None = None) -> None:
    assert "error" not in obj, obj
    assert obj["claim_id"] == claim_id
    if decision is not None:
        assert obj["decision"] == decision, obj
    if lines is not None:
        assert {str(ln["line"]): ln["decision"] for ln in obj["lines"]} == lines, obj


def count_in(path: Path) -> int:
    """Claims in a file, counted without payrule: JSONL non-blank lines; CSV distinct claim ids of data rows."""
    data = path.read_bytes()
    if path.suffix == ".csv":
        rows = list(csv.reader(io.StringIO(data.decode("utf-8", "replace").lstrip("\ufeff"), newline="")))
        rows = [r for r in rows if any(c.strip() for c in r)]
        at = rows[0].index("claim_id")
        ids = [r[at].strip() if at < len(r) else "" for r in rows[1:]]
        return len({i for i in ids if i}) + sum(1 for i in ids if not i)
    lines = data.split(b"\n")
    if lines and lines[0].startswith(b"\xef\xbb\xbf"):
        lines[0] = lines[0][3:]
    return sum(1 for ln in lines if ln.strip())


# ------------------------------------------------------------------------------------------------ the corpus

CORPUS_FILES = sorted(p.name for p in CORPUS.iterdir() if p.suffix in (".jsonl", ".csv") and not p.name.startswith("history_"))


def expectation(name: str) -> dict:
    return json.loads((CORPUS / (name.rsplit(".", 1)[0] + ".expect.json")).read_text())


@lru_cache(maxsize=None)
def corpus_result(name: str) -> CliResult:
    return run("check", CORPUS / name)


def test_the_corpus_is_all_there():
    assert len(CORPUS_FILES) >= 15
    for name in CORPUS_FILES:
        assert (CORPUS / (name.rsplit(".", 1)[0] + ".expect.json")).exists(), name
    # the files the issue names
    for name in ("truncated.jsonl", "invalid_utf8.jsonl", "csv_missing_date.csv", "csv_extra_column.csv"):
        assert name in CORPUS_FILES
    assert not (CORPUS / "truncated.jsonl").read_bytes().endswith(b"\n")
    for name in ("invalid_utf8.jsonl", "csv_invalid_utf8.csv", "history_invalid_utf8.jsonl"):
        with pytest.raises(UnicodeDecodeError):
            (CORPUS / name).read_bytes().decode("utf-8")


@pytest.mark.parametrize("name", [n for n in CORPUS_FILES])
def test_corpus_count_in_equals_count_out_and_exit_status(name):
    exp = expectation(name)
    res = corpus_result(name)
    assert "Traceback" not in res.err
    assert res.code == exp["exit"], res.err
    n = count_in(CORPUS / name)
    assert len(exp["records"]) == n, "the expectation file must list every claim of the input"
    assert len(res.objects) == n, res.out


CORPUS_RECORDS = [
    pytest.param(name, i, id=f"{name}:{rec['input_line']}:{rec['claim_id']}" + (f"-{rec['case']}" if "case" in rec else ""))
    for name in CORPUS_FILES for i, rec in enumerate(expectation(name)["records"])
]


@pytest.mark.parametrize(("name", "i"), CORPUS_RECORDS)
def test_corpus_record(name, i):
    rec = expectation(name)["records"][i]
    objs = corpus_result(name).objects
    assert i < len(objs), f"no output object for input line {rec['input_line']}"
    obj = objs[i]
    if "error" in rec:
        assert_error(obj, rec["input_line"], rec["claim_id"], rec["error"])
    else:
        assert_decided(obj, rec["claim_id"], rec["decision"], rec.get("lines"))


@pytest.mark.parametrize("name", [n for n in CORPUS_FILES])
def test_reader_marks_the_same_claims_unreadable(name):
    """payrule.claims.readers.read_claims on its own: a ClaimError exactly where the corpus expects an error."""
    recs = read_claims((CORPUS / name).read_bytes(), name)
    exp = expectation(name)["records"]
    assert len(recs) == len(exp)
    for got, want in zip(recs, exp):
        if "error" in want:
            assert isinstance(got, ClaimError), (want, got)
            assert got.input_line == want["input_line"]
            ids = want["claim_id"] if isinstance(want["claim_id"], list) else [want["claim_id"]]
            assert got.claim_id in ids
            assert re.search(want["error"], got.error, re.I), got.error
        else:
            assert not isinstance(got, ClaimError), got
            assert got.claim_id == want["claim_id"]


# ------------------------------------------------------------------------------------------------ generated bad files

def test_a_10_mb_line(tmp_path):
    """A 10 MB claim is read and decided; a 10 MB line that is not JSON is one error with a short message."""
    big_ok = good("BIG-OK", note="x" * 10_000_000)
    big_bad = json.dumps(good("BIG-BAD", note="y" * 10_000_000))[:-3]  # cut after the closing quote: "}]}" missing
    data = jsonl(good("G-1"), big_ok, big_bad, good("G-2"))
    assert len(data) > 20_000_000
    res = check_bytes(tmp_path, data)
    assert res.code == 1
    objs = res.objects
    assert len(objs) == 4
    assert_decided(objs[0], "G-1", "approve")
    assert_decided(objs[1], "BIG-OK", "approve")
    assert_error(objs[2], 3, ["BIG-BAD", None], "JSON")
    assert len(objs[2]["error"]) < 1000, "the message should say what is wrong, not echo the line"
    assert_decided(objs[3], "G-2", "approve")


DEEP = 100_000
NESTED = [
    pytest.param("[" * DEEP + "]" * DEEP, None, "nest|deep|JSON|object", id="a-list-100000-deep"),
    pytest.param(json.dumps(good("DEEP-1", note="@")).replace('"@"', "[" * DEEP + "]" * DEEP), ["DEEP-1", None],
                 "nest|deep|JSON", id="an-unknown-field-100000-deep"),
    pytest.param('{"a": ' * DEEP + "1" + "}" * DEEP, None, "nest|deep|JSON|claim_id", id="objects-100000-deep",),
]


@pytest.mark.parametrize(("line", "claim_id", "pattern"), NESTED)
def test_nested_too_deep_to_read(tmp_path, line, claim_id, pattern):
    res = check_bytes(tmp_path, jsonl(good("G-1"), line, good("G-2")))
    assert res.code == 1
    objs = res.objects
    assert len(objs) == 3
    assert_decided(objs[0], "G-1", "approve")
    assert_error(objs[1], 2, claim_id, pattern)
    assert_decided(objs[2], "G-2", "approve")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(tmp_path, literal):
    """Contract 5: 'a line that is not JSON' is an error; NaN and Infinity are not JSON (RFC 8259)."""
    bad = json.dumps(good("NAN-1", note="@")).replace('"@"', literal)
    res = check_bytes(tmp_path, jsonl(good("G-1"), bad, good("G-2")))
    objs = res.objects
    assert len(objs) == 3
    assert_error(objs[1], 2, ["NAN-1", None], "JSON|NaN|Infinity")
    assert res.code == 1


def test_bom_then_blank_first_line(tmp_path):
    res = check_bytes(tmp_path, b"\xef\xbb\xbf\n" + jsonl(good("G-1")))
    assert res.code == 0, res.out
    assert len(res.objects) == 1
    assert_decided(res.objects[0], "G-1", "approve")


# ------------------------------------------------------------------------------------------------ what an error does not do

def test_an_error_claim_adds_nothing_to_history(tmp_path):
    """Contract 5: 'An error claim adds nothing to anyone's history.' Fixed, each first claim makes the later line
    deniable (a second TPI that day; anesthesia beside a TPI); as an error it does not."""
    def firsts(broken: bool):
        return [claim("X", tpi(line=1), {"line": 2, "date": "2025-03-01", "code": "ABC" if broken else "J3301"}, patient="P-1"),
                claim("Y", tpi(units=0 if broken else 1), patient="P-2")]
    later = [claim("X2", tpi(line=1), patient="P-1"), claim("Y2", {"line": 1, "date": "2025-03-01", "code": "00300"}, patient="P-2")]

    control = check_bytes(tmp_path, jsonl(*firsts(False), *later))
    assert [o["decision"] for o in control.objects] == ["approve", "approve", "deny", "deny"]

    res = check_bytes(tmp_path, jsonl(*firsts(True), *later))
    assert res.code == 1
    assert_error(res.objects[0], 1, "X", "code")
    assert_error(res.objects[1], 2, "Y", "units")
    assert_decided(res.objects[2], "X2", "approve")
    assert_decided(res.objects[3], "Y2", "approve")


def test_a_duplicate_claim_id_adds_nothing_to_history(tmp_path):
    dup = claim("D", tpi(date="2025-03-02"), patient="P-D")
    res = check_bytes(tmp_path, jsonl(claim("D", tpi(date="2025-03-01"), patient="P-D"), dup,
                                      claim("E", tpi(date="2025-03-02"), patient="P-D")))
    assert res.code == 1
    objs = res.objects
    assert_decided(objs[0], "D", "approve")
    assert_error(objs[1], 2, "D", "claim_id")
    assert_decided(objs[2], "E", "approve")  # not a second TPI on 2025-03-02: the duplicate was not read


def test_unknown_payer_is_an_error_in_place(tmp_path):
    res = check_bytes(tmp_path, jsonl(good("G-1"), good("UP-1", payer="humana"), good("G-2", payer="aetna")))
    assert res.code == 1
    objs = res.objects
    assert len(objs) == 3
    assert_error(objs[1], 2, "UP-1", "payer|humana")
    assert_decided(objs[2], "G-2", "approve")


def test_a_jsonl_file_whose_first_line_is_not_json(tmp_path):
    res = check_bytes(tmp_path, jsonl("not json at all", good("G-1")))
    assert res.code == 1
    assert len(res.objects) == 2
    assert_error(res.objects[0], 1, None, "JSON")
    assert_decided(res.objects[1], "G-1", "approve")


# ------------------------------------------------------------------------------------------------ exit statuses

def test_exit_0_when_every_claim_is_decided(tmp_path):
    res = check_bytes(tmp_path, jsonl(good("G-1"), good("G-2", payer="aetna"), claim("G-3", tpi(units=2), patient="P3")))
    assert res.code == 0
    assert [o["decision"] for o in res.objects] == ["approve", "approve", "deny"]


def assert_usage_error(res: CliResult, *mentions: str) -> None:
    assert res.code == 2, (res.out, res.err)
    assert res.out == ""
    assert res.err.strip()
    assert "Traceback" not in res.err
    for m in mentions:
        assert m in res.err, res.err


def test_exit_2_missing_claims_file(tmp_path):
    assert_usage_error(run("check", tmp_path / "nope.jsonl"), "nope.jsonl")


def test_exit_2_claims_file_is_a_folder(tmp_path):
    (tmp_path / "claims.jsonl").mkdir()
    assert_usage_error(run("check", tmp_path / "claims.jsonl"), "claims.jsonl")


def test_exit_2_when_a_second_claims_file_is_missing_nothing_is_decided(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(jsonl(good("G-1")))
    assert_usage_error(run("check", tmp_path / "a.jsonl", tmp_path / "missing.jsonl"), "missing.jsonl")


def test_exit_2_missing_history_file(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(jsonl(good("G-1")))
    assert_usage_error(run("check", tmp_path / "a.jsonl", "--history", tmp_path / "gone.jsonl"), "gone.jsonl")


HISTORY_FILES = sorted(p.name for p in CORPUS.iterdir() if p.name.startswith("history_"))


@pytest.mark.parametrize("name", [n for n in HISTORY_FILES])
def test_exit_2_unreadable_claim_in_history(tmp_path, name):
    (tmp_path / "a.jsonl").write_bytes(jsonl(good("G-1")))
    assert_usage_error(run("check", tmp_path / "a.jsonl", "--history", CORPUS / name), name)


def test_a_readable_history_file_is_fine(tmp_path):
    """The control for the history cases: the same first claim, alone, is read and counts (one TPI per day)."""
    hist = tmp_path / "h.jsonl"
    hist.write_bytes(b"\n" + (CORPUS / "history_bad_date.jsonl").read_bytes().split(b"\n")[0] + b"\n\n")
    claims = tmp_path / "a.jsonl"
    claims.write_bytes(jsonl(claim("C", tpi(date="2025-01-02"), patient="P-H")))
    res = run("check", claims, "--history", hist)
    assert res.code == 0, res.err
    assert_decided(res.objects[0], "C", "deny")


def test_exit_2_unknown_option(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(jsonl(good("G-1")))
    assert_usage_error(run("check", tmp_path / "a.jsonl", "--no-such-option"), "--no-such-option")


def test_exit_2_as_a_real_process_prints_no_traceback(tmp_path):
    """The exit-2 paths once through a real process, where an escaping exception would print a traceback."""
    claims = str(tmp_path / "a.jsonl")
    (tmp_path / "a.jsonl").write_bytes(jsonl(good("G-1")))
    prog = [sys.executable, "-m", "payrule", "check"]
    for args in ([claims, "--bogus"], [str(tmp_path / "missing.jsonl")],
                 [claims, "--history", str(CORPUS / "history_truncated.jsonl")]):
        p = subprocess.run(prog + args, capture_output=True, timeout=60)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        assert p.stdout == b""
        assert p.stderr.strip() and b"Traceback" not in p.stderr, p.stderr


# ------------------------------------------------------------------------------------------------ standard input, several files

def test_claims_from_stdin_when_no_file_is_given():
    res = run("check", stdin=jsonl(good("G-1"), "", good("E-1", date="2025-13-01"), good("G-2")))
    assert res.code == 1
    assert len(res.objects) == 3
    assert_decided(res.objects[0], "G-1", "approve")
    assert_error(res.objects[1], 3, "E-1", "date")
    assert_decided(res.objects[2], "G-2", "approve")


def test_csv_claims_from_stdin():
    data = (CORPUS / "csv_bom_crlf.csv").read_bytes()
    res = run("check", stdin=data)
    assert res.objects == corpus_result("csv_bom_crlf.csv").objects


def test_stdin_as_a_real_pipe():
    p = subprocess.run([sys.executable, "-m", "payrule", "check"], input=jsonl(good("G-1")), capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["decision"] == "approve"


def test_stdin_whose_first_line_is_not_json():
    res = run("check", stdin=jsonl("<html>502 Bad Gateway</html>", good("G-1"), good("G-2")))
    assert len(res.objects) == 3
    assert_error(res.objects[0], 1, None, "JSON")
    assert_decided(res.objects[1], "G-1", "approve")
    assert_decided(res.objects[2], "G-2", "approve")


@needs_conformance
def test_input_line_counts_within_each_file(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(jsonl(good("A-1"), good("A-2"), good("A-3")))
    (tmp_path / "b.jsonl").write_bytes(jsonl(good("B-1"), good("B-2", code="2055")))
    res = run("check", tmp_path / "a.jsonl", tmp_path / "b.jsonl")
    assert res.code == 1
    assert len(res.objects) == 5
    assert_error(res.objects[4], 2, "B-2", "code")


# ------------------------------------------------------------------------------------------------ CSV

CSV_HEADER = ["claim_id", "patient_id", "payer", "provider_id", "line", "date", "code", "units", "modifiers",
              "muscles", "substances", "diagnoses"]


def to_csv(claims: list[dict], header=CSV_HEADER, interleave: bool = False) -> bytes:
    """Claims as the contract's CSV: one row per line, claim fields repeated, lists joined by ';'. With
    `interleave`, every claim's first row comes first (in claim order), then the second rows, and so on."""
    per_claim = []
    for c in claims:
        rows = []
        for ln in c["lines"]:
            r = {k: c.get(k) for k in ("claim_id", "patient_id", "payer", "provider_id")}
            r.update(ln)
            if "diagnoses" not in ln and "diagnoses" in c:
                r["diagnoses"] = c["diagnoses"]
            rows.append({k: ";".join(v) if isinstance(v, list) else ("" if v is None else str(v)) for k, v in r.items()})
        per_claim.append(rows)
    if interleave:
        depth = max(len(r) for r in per_claim)
        ordered = [rows[i] for i in range(depth) for rows in per_claim if i < len(rows)]
    else:
        ordered = [r for rows in per_claim for r in rows]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in ordered:
        w.writerow([r.get(h, "") for h in header])
    return buf.getvalue().encode()


def scenario_claims(name: str) -> list[dict]:
    return [json.loads(l) for l in (SCENARIOS / name).read_text().splitlines() if l.strip()]


@needs_conformance
def test_conformance_jsonl_and_csv_forms_get_the_same_decisions():
    a = run("check", SCENARIOS / "mixed_claims.jsonl")
    b = run("check", SCENARIOS / "mixed_claims_csv.csv")
    assert a.code == b.code == 0
    assert a.objects == b.objects
    want = json.loads((SCENARIOS / "mixed_claims_csv.expected.json").read_text())["claims"]
    got = {o["claim_id"]: {"decision": o["decision"], "lines": {str(l["line"]): l["decision"] for l in o["lines"]}} for o in b.objects}
    assert got == want


@needs_conformance
@pytest.mark.parametrize("interleave", [False, True], ids=["adjacent", "interleaved"])
@pytest.mark.parametrize("header", [CSV_HEADER, CSV_HEADER[::-1]], ids=["contract-order", "reversed-columns"])
def test_csv_of_the_same_claims_gets_the_same_decisions(tmp_path, header, interleave):
    claims = scenario_claims("mixed_claims.jsonl") + [
        claim("X-1", tpi(line=1, date="2025-04-01"), tpi(line=2, date="2025-05-01", diagnoses=["M25.511"]), patient="PX"),
        claim("X-2", tpi(line=1, date="2025-04-01", modifiers=["25", "RT"], units=1), patient="PY", payer="aetna"),
    ]
    want = check_bytes(tmp_path, jsonl(*claims))
    got = check_bytes(tmp_path, to_csv(claims, header, interleave), "claims.csv")
    assert got.code == want.code == 0
    assert got.objects == want.objects
    # the line-level diagnoses really were the row's own: X-1 line 2 (M25.511 only) is denied under Medicare
    assert {l["line"]: l["decision"] for l in got.objects[-2]["lines"]} == {1: "approve", 2: "deny"}


@pytest.mark.parametrize("column", ["date", "code", "line", "patient_id", "payer"])
def test_csv_missing_a_required_column(tmp_path, column):
    claims = [good("G-1"), claim("G-2", tpi(line=1), {"line": 2, "date": "2025-03-01", "code": "J3301"}, patient="P2"), good("G-3", payer="aetna")]
    res = check_bytes(tmp_path, to_csv(claims, [h for h in CSV_HEADER if h != column]), "claims.csv")
    assert res.code == 1
    assert len(res.objects) == 3
    pattern = r"\bline\b" if column == "line" else column
    for obj, cid, line in zip(res.objects, ("G-1", "G-2", "G-3"), (2, 3, 5)):
        assert_error(obj, line, cid, pattern)


def test_csv_without_a_claim_id_column(tmp_path):
    res = check_bytes(tmp_path, to_csv([good("G-1"), good("G-2")], [h for h in CSV_HEADER if h != "claim_id"]), "claims.csv")
    assert res.code == 1
    assert res.objects and all("error" in o and "claim_id" in o["error"] for o in res.objects)


def test_csv_extra_columns_change_no_decision(tmp_path):
    with_extra = corpus_result("csv_extra_column.csv")
    rows = list(csv.DictReader(io.StringIO((CORPUS / "csv_extra_column.csv").read_text(), newline="")))
    keep = [h for h in rows[0] if h not in ("chart_note", "place_of_service")]
    buf = io.StringIO()
    w = csv.DictWriter(buf, keep, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    without = check_bytes(tmp_path, buf.getvalue().encode(), "claims.csv")
    assert with_extra.code == without.code == 0
    assert with_extra.objects == without.objects


def test_csv_too_many_cells_in_one_row_of_a_claim(tmp_path):
    text = to_csv([claim("C-1", tpi(line=1), {"line": 2, "date": "2025-03-01", "code": "J3301"}, patient="P1"), good("G-2")]).decode()
    lines = text.splitlines()
    lines[2] += ",surplus"  # the second row of C-1
    res = check_bytes(tmp_path, ("\n".join(lines) + "\n").encode(), "claims.csv")
    assert res.code == 1
    assert len(res.objects) == 2, "one output object per input claim"
    assert_error(res.objects[0], 2, ["C-1", None], "cell|column|header")
    assert_decided(res.objects[1], "G-2", "approve")


def test_csv_quoted_newline_and_error_line_numbers(tmp_path):
    """A claim's input_line is its first row's physical line, counting the lines a quoted cell spans."""
    text = ("claim_id,patient_id,payer,line,date,code,muscles,substances,diagnoses\n"
            'Q-1,P1,medicare,1,2025-03-01,20552,"left upper trapezius;\n\nleft levator scapulae","lidocaine, 1%",M79.18\n'
            "Q-2,P2,medicare,1,2025-02-30,20552,left soleus,lidocaine,M79.18\n"
            "Q-3,P3,medicare,1,2025-03-01,20552,left soleus,lidocaine,M79.18\n"
            "Q-2,P2,medicare,2,2025-03-01,J3301,,,M79.18\n")
    res = check_bytes(tmp_path, text.encode(), "claims.csv")
    assert res.code == 1
    assert len(res.objects) == 3
    assert_decided(res.objects[0], "Q-1", "approve")
    assert_error(res.objects[1], 5, "Q-2", "date")
    assert_decided(res.objects[2], "Q-3", "approve")


def test_diagnosis_normal_form_removes_dots_and_surrounding_spaces_only(shipped):
    """Contract section 5: `m79.18` = `M7918`, and ` M79.18 ` too; a space inside is not removed."""
    from conftest import claim, decisions, tpi

    out = shipped.check([
        claim("D1", tpi(), diagnoses=[" m79.18 "]),
        claim("D2", tpi(), diagnoses=["M79 .18"], patient="P2"),
    ])
    assert decisions(out) == {"D1": {1: "approve"}, "D2": {1: "deny"}}


# ------------------------------------------------------------------ the fast path reads as the stdlib reader

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from payrule.claims.readers import ReadSession, fast_row_reader, read_claim_objects  # noqa: E402
from payrule.runtime.schema import LIST_FIELDS  # noqa: E402

# Values that pass and values that fail each shape the fast path checks in its memo tables (a required
# text not blank; code and modifier patterns), with white space and case the normal forms treat.
_TEXT = st.sampled_from(["C1", "P 1", "medicare", "Aetna", "", " ", "\t", "\u00a0", " x "])
_CODE = st.sampled_from(["20552", "20553", "j3301", "0232T", "2055", "205522", "20552 ", " 20552", "2055-", "\u0662" * 5])
_MOD = st.sampled_from(["25", "lt", "5", "255", " 25", "25 ", "", "\u0662\u0662"])
_DX = st.sampled_from(["M79.1", "m7918", " M54.5 ", "", "G44.2"])
_NAME = st.sampled_from(["trapezius", " Trapezius ", "LEFT  trapezius", "", "lidocaine", "PRP"])


def _line(no):
    return st.fixed_dictionaries({"line": st.just(no), "date": st.sampled_from(["2025-03-01", "2024-02-29"]),
                                  "code": _CODE},
                                 optional={"modifiers": st.lists(_MOD, max_size=3), "diagnoses": st.lists(_DX, max_size=3),
                                           "muscles": st.lists(_NAME, max_size=3), "substances": st.lists(_NAME, max_size=3),
                                           "units": st.integers(1, 3), "site": _NAME})


_CLAIM_OBJ = st.integers(1, 3).flatmap(lambda k: st.fixed_dictionaries(
    {"claim_id": _TEXT, "patient_id": _TEXT, "payer": _TEXT, "lines": st.tuples(*[_line(i) for i in range(1, k + 1)])},
    optional={"diagnoses": st.lists(_DX, max_size=3), "prior_auth": _TEXT}))


def _view(rec):
    """What a reader made of a claim, field by field (or the error record)."""
    if isinstance(rec, ClaimError):
        return ("error", rec.claim_id, rec.error)
    lines = tuple((ln.no, ln.date, ln.code, ln.code_raw, ln.units, ln.site,
                   *(getattr(ln, f) for f in LIST_FIELDS), *(getattr(ln, "raw_" + f) for f in LIST_FIELDS))
                  for ln in rec.lines)
    return (rec.claim_id, rec.patient_id, rec.payer, rec.payer_key, rec.prior_auth, lines)


@settings(max_examples=400, deadline=None)
@given(_CLAIM_OBJ, st.integers(0, 3))
def test_the_fast_path_reads_a_claim_as_the_stdlib_reader_does(obj, repeat):
    """The fast path (msgspec's typed decode, shapes checked in from_fast's memo tables) gives the very
    Claim the stdlib reader gives, or leaves the row to it; and it leaves no well-shaped claim to it.
    `repeat` reads the same row again on the same session, so that memoised answers are exercised."""
    obj = dict(obj, lines=list(obj["lines"]))
    raw = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    (slow,) = read_claim_objects([obj])
    session = ReadSession()
    fast = fast_row_reader(session)
    assert fast is not None
    for _ in range(repeat + 1):
        got = fast(raw, 1, 0)
        if got is not None:
            assert isinstance(slow, ClaimError) is False
            assert _view(got) == _view(slow)
        else:
            clean = isinstance(slow, ClaimError) is False and slow.claim_id.strip() == slow.claim_id
            shaped = all(re.fullmatch(r"[A-Za-z0-9]{5}", ln["code"]) and
                         all(re.fullmatch(r"[A-Za-z0-9]{2}", m) for m in ln.get("modifiers", ())) for ln in obj["lines"])
            assert not (clean and shaped and all(v.strip() for v in (obj["patient_id"], obj["payer"]))), \
                "the fast path refused a well-shaped claim"
