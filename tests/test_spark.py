"""The Spark path (issue 7 item 5): `payrule.run.spark.check_dataframe` and `payrule spark-check` give, object by
object and in input order, what `payrule check` gives on the same file (contract sections 2, 3 and 5).

One local SparkSession (2 cores, small memory) serves the whole module. The claims come from a small
deterministic generator below: both payers (spelled in several cases), an unknown payer, history, malformed
lines, repeated claim ids, patients with same-day ties and dense enough to reach the limits.
"""
from __future__ import annotations

import io
import json
import os
import random
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

pytest.importorskip("pyspark")
pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

from payrule.claims.readers import HistoryError  # noqa: E402
from payrule.cli import main  # noqa: E402
from payrule.run.spark import check_dataframe, local_session, read_claims_text  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "claims_corpus"

# ------------------------------------------------------------------------------------------ the generator

MUSCLES = ("left upper trapezius", "right upper trapezius", "left levator scapulae", "right levator scapulae",
           "left rhomboid major", "right rhomboid major", "left infraspinatus", "right infraspinatus",
           "left gluteus medius", "right piriformis", "Left  Soleus ", "sternocleidomastoïde gauche")
COVERED = ("M79.18", "M7918", "m79.7", "M60.81", "M62.830", "M54.2", "M54.50", "G44.209")
UNCOVERED = ("R51.9", "S13.4XXA", "M25.511")
SPELLING = {"medicare": ("medicare", "medicare", "Medicare", "MEDICARE"), "aetna": ("aetna", "aetna", "Aetna", " aetna ")}
DAY0 = date(2025, 1, 2)


class Gen:
    """Claims for `patients` patients as JSON Lines bytes, with a history file; one seeded Random."""

    def __init__(self, seed: int = 7, patients: int = 120):
        self.rng = random.Random(seed)
        self.n = 0
        self.claims: list[dict] = []
        self.history: list[dict] = []
        for p in range(patients):
            self.patient(f"P-{p:03d}")

    def cid(self, prefix: str = "C") -> str:
        self.n += 1
        return f"{prefix}-{self.n:05d}"

    def tpi(self, no: int, day: str) -> dict:
        r = self.rng
        muscles = r.sample(MUSCLES, r.choice((1, 2, 2, 3, 4)))
        code = "20552" if len(muscles) <= 2 else "20553"
        if r.random() < 0.08:  # the wrong code for the muscle count
            code = "20553" if code == "20552" else "20552"
        line = {"line": no, "date": day, "code": code, "muscles": muscles, "substances": ["lidocaine"]}
        x = r.random()
        if x < 0.04:
            line["units"] = 2
        elif x < 0.07:
            line["modifiers"] = ["50"]
        elif x < 0.09:
            line["modifiers"] = ["25"]
        elif x < 0.12:
            del line["muscles"]
        elif x < 0.15:
            del line["substances"]
        elif x < 0.18:
            line["substances"] = ["lidocaine", r.choice(("platelet-rich plasma", "PRP", "amniotic fluid", "Vitamin B12"))]
        elif x < 0.22:
            line["modifiers"] = [r.choice(("LT", "rt", "59"))]
        return line

    def companion(self, no: int, day: str, tpi_line: dict) -> dict:
        r = self.rng
        kind = r.choice(("drug", "drug", "imaging", "em", "em25", "anesthesia", "dry", "dry-overlap", "dry-none"))
        if kind == "drug":
            return {"line": no, "date": day, "code": "J3301", "units": r.choice((1, 4))}
        if kind == "imaging":
            return {"line": no, "date": day, "code": r.choice(("76942", "77002", "77021"))}
        if kind in ("em", "em25"):
            out = {"line": no, "date": day, "code": r.choice(("99203", "99213", "99214"))}
            if kind == "em25":
                out["modifiers"] = ["25"]
            return out
        if kind == "anesthesia":
            return {"line": no, "date": day, "code": r.choice(("00300", "01992"))}
        out = {"line": no, "date": day, "code": r.choice(("20560", "20561"))}
        if kind == "dry-overlap" and tpi_line.get("muscles"):
            out["muscles"] = [tpi_line["muscles"][0].upper()]
        elif kind == "dry":
            out["muscles"] = ["right gastrocnemius"]
        return out

    def claim(self, patient: str, payer: str, day: str, history: bool = False) -> dict:
        r = self.rng
        lines = [self.tpi(1, day)]
        for no in range(2, 2 + r.choice((0, 0, 1, 1, 2))):
            lines.append(self.companion(no, day, lines[0]))
        if r.random() < 0.3:
            r.shuffle(lines)  # line numbers out of order within the claim
        c = {"claim_id": self.cid("H" if history else "C"), "patient_id": patient,
             "payer": r.choice(SPELLING.get(payer, (payer,))), "provider_id": "1234567893"}
        x = r.random()
        if x < 0.75:
            c["diagnoses"] = [r.choice(COVERED)]
        elif x < 0.85:
            c["diagnoses"] = [r.choice(UNCOVERED)]
        elif x < 0.92:
            c["diagnoses"] = [r.choice(UNCOVERED)]
            lines[0]["diagnoses"] = [r.choice(COVERED)]  # a line's own list replaces the claim's
        c["lines"] = lines
        return c

    def patient(self, pid: str) -> None:
        r = self.rng
        payer = r.choice(("medicare", "aetna"))
        day = DAY0 + timedelta(days=r.randrange(0, 200))
        if r.random() < 0.35:  # earlier paid claims: last year, and one inside this year's window
            for k in range(r.choice((1, 2, 3))):
                hday = day - timedelta(days=r.choice((10, 40, 120, 300)) + 7 * k)
                self.history.append(self.claim(pid, payer, hday.isoformat(), history=True))
        for _ in range(r.choice((1, 2, 3, 4, 5, 6, 7))):
            which = payer if r.random() > 0.1 else ("aetna" if payer == "medicare" else "medicare")
            if r.random() < 0.03:
                which = "humana"  # no policy for this payer
            c = self.claim(pid, which, day.isoformat())
            self.claims.append(c)
            if r.random() < 0.15:  # a second claim the same day: a second TPI (one per day) or a companion
                twin = self.claim(pid, which, day.isoformat())
                if r.random() < 0.5:
                    twin["lines"] = [self.companion(1, day.isoformat(), c["lines"][0])]
                self.claims.append(twin)
            day += timedelta(days=r.choice((2, 5, 6, 7, 9, 14, 30, 45, 90)))

    def files(self) -> tuple[bytes, bytes, dict[str, int]]:
        """(claims, history, {marker: input line}) with the bad lines and repeated ids placed in."""
        r = self.rng
        claims = list(self.claims)
        r.shuffle(claims)  # input order is not date order
        rows: list[bytes] = [json.dumps(c, ensure_ascii=r.random() < 0.5).encode() for c in claims]
        good = {
            "line": 1, "date": "2025-03-03", "code": "20552", "muscles": ["left soleus"], "substances": ["lidocaine"]}

        def raw(cid, **kw):
            c = {"claim_id": cid, "patient_id": "P-X", "payer": "medicare", "diagnoses": ["M79.18"], "lines": [dict(good)]}
            for k, v in kw.items():
                if k.startswith("line_"):
                    c["lines"][0][k[5:]] = v
                else:
                    c[k] = v
            return json.dumps(c).encode()

        bad = {
            "bad-date": raw("BAD-1", line_date="2025-02-30"),
            "truncated": raw("BAD-2")[:40],
            "not-object": b"[1, 2, 3]",
            "null": b"null",
            "no-patient": raw("BAD-3", patient_id=None),
            "short-code": raw("BAD-4", line_code="2055"),
            "units-0": raw("BAD-5", line_units=0),
            "modifier": raw("BAD-6", line_modifiers=["5"]),
            "no-lines": raw("BAD-7", lines=[]),
            "not-utf8": raw("BAD-8").replace(b"left soleus", b"left \xff\xfe soleus"),
            "surrogate": raw("SUR-1").replace(b"left soleus", b"left \\ud800 soleus"),
            "unknown-payer": raw("UNK-1", payer="humana"),
            "blank": b"",
            "spaces": b"   \r",
        }
        for name, line in bad.items():
            rows.insert(r.randrange(0, len(rows) * 3 // 4), line + (b"\r" if r.random() < 0.2 else b""))
        # later lines reusing ids: a decided claim's, an unreadable claim's, an unknown payer's, and the id
        # of the line refused for its surrogate escape (never read as a claim, so not used)
        first_good = claims[0]["claim_id"]
        late = {
            "dup-good": raw(first_good),
            "dup-bad": raw("BAD-1"),
            "dup-bad-date": raw(first_good, line_date="2025-13-01"),
            "dup-unknown": raw("UNK-1"),
            "reuse-surrogate": raw("SUR-1"),
        }
        for name, line in late.items():
            rows.insert(len(rows) - r.randrange(0, 5), line)
        ending = [b"\r\n" if r.random() < 0.1 else b"\n" for _ in rows]
        ending[-1] = b""  # no newline at the end of the file, and a byte-order mark at its start
        data = b"\xef\xbb\xbf" + b"".join(row + end for row, end in zip(rows, ending))
        where = {}
        for name, line in {**bad, **late}.items():
            if line:
                where[name] = rows.index(line if line in rows else line + b"\r") + 1
        hist = [json.dumps(h).encode() for h in self.history]
        hist.insert(len(hist) // 2, b"")
        hist.append(json.dumps({**self.history[0], "claim_id": claims[1]["claim_id"], "payer": "MEDICARE"}).encode())
        hist.append(json.dumps({**self.history[1], "claim_id": "H-HUMANA", "payer": "humana"}).encode())
        return data, b"\r\n".join(hist) + b"\n", where


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("spark")
    claims, history, where = Gen().files()
    (tmp / "claims.jsonl").write_bytes(claims)
    (tmp / "history.jsonl").write_bytes(history)
    code, out, err = run_cli("check", tmp / "claims.jsonl", "--history", tmp / "history.jsonl", "-q")
    assert code == 1, err
    return {"dir": tmp, "claims": tmp / "claims.jsonl", "history": tmp / "history.jsonl", "where": where,
            "cli": out, "objects": [json.loads(line) for line in out.splitlines()]}


def run_cli(*args) -> tuple[int, str, str]:
    """`payrule ARGS...` in-process; (exit status, stdout, stderr)."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
    try:
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code
        return code, sys.stdout.getvalue(), sys.stderr.getvalue()
    finally:
        sys.stdout, sys.stderr = saved


@pytest.fixture(scope="module")
def spark():
    old = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = local_session("local[2]", [
        ("spark.driver.memory", "512m"), ("spark.sql.shuffle.partitions", "2"),
        # small data, short life: spare the JIT and the code generator
        ("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"),
        ("spark.sql.codegen.wholeStage", "false"), ("spark.sql.adaptive.enabled", "false"),
    ])
    yield session
    session.stop()
    if old is None:
        os.environ.pop("PYSPARK_PYTHON", None)
    else:
        os.environ["PYSPARK_PYTHON"] = old


def rows(df) -> list[tuple[int, str, str]]:
    """The result's rows in input order (sorted here: the test files are small)."""
    return sorted((r.input_line, r.decision, r.output) for r in df.collect())


@pytest.fixture(scope="module")
def spark_rows(spark, data):
    """The generated file with its history, decided on Spark."""
    return rows(check_dataframe(spark, read_claims_text(spark, data["claims"]), read_claims_text(spark, data["history"]),
                                history_name=str(data["history"])))


# ------------------------------------------------------------------------------------------------ tests

def test_generated_data_covers_the_mix(data):
    """The generator reaches what the comparison is meant to cover (read from the CLI's decisions)."""
    objs = data["objects"]
    rules = {(r["policy"], r["rule"]) for o in objs if "lines" in o for ln in o["lines"] for r in ln["reasons"]}
    for rule in [("medicare-tpi", "frequency"), ("aetna-tpi", "frequency"), ("aetna-tpi", "spacing"),
                 ("common-tpi", "one-per-day"), ("common-tpi", "em-needs-25"), ("common-tpi", "anesthesia"),
                 ("common-tpi", "dry-needling-overlap"), ("common-tpi", "excluded-injectate"),
                 ("medicare-tpi", "covered-diagnosis"), ("common-tpi", "muscles-for-20552")]:
        assert rule in rules
    errors = [o["error"] for o in objs if "error" in o]
    for text in ("no policy for payer", "already used", "not JSON", "not UTF-8", "surrogate", "date"):
        assert any(text in e for e in errors), text
    assert 300 <= len(objs) <= 2000
    assert {o["decision"] for o in objs if "decision" in o} == {"approve", "review", "deny"}


def test_spark_decides_like_the_cli(spark_rows, data):
    assert [json.loads(out) for _, _, out in spark_rows] == data["objects"]
    assert "".join(out + "\n" for _, _, out in spark_rows) == data["cli"]  # byte for byte, too
    lines = [n for n, _, _ in spark_rows]
    assert len(lines) == len(set(lines))
    for n, decision, out in spark_rows:
        obj = json.loads(out)
        assert decision == ("error" if "error" in obj else obj["decision"])
        if "error" in obj:
            assert obj["input_line"] == n


def test_repeated_claim_ids(spark_rows, data):
    """Contract 5: a claim_id already seen makes the later claim the error, whatever the earlier claim was;
    a line refused before its claim_id was read (a surrogate escape) uses no id."""
    by_line = {n: json.loads(out) for n, _, out in spark_rows}
    w = data["where"]
    for name in ("dup-good", "dup-bad", "dup-bad-date", "dup-unknown"):
        assert "already used" in by_line[w[name]]["error"], name
    assert "surrogate" in by_line[w["surrogate"]]["error"]
    assert by_line[w["surrogate"]]["claim_id"] is None or by_line[w["surrogate"]]["claim_id"] == "SUR-1"
    assert by_line[w["reuse-surrogate"]]["decision"] == "approve"
    assert "no policy for payer" in by_line[w["unknown-payer"]]["error"]
    assert by_line[w["bad-date"]]["claim_id"] == "BAD-1"


def test_partitioning_does_not_matter(spark, spark_rows, data):
    """Small file blocks spread over many partitions, other shuffle sizes and a shuffled input: the
    physical line numbers and the decisions stay the same."""
    raw = data["claims"].read_bytes().removeprefix(b"\xef\xbb\xbf").split(b"\n")  # Spark drops the BOM
    spark.conf.set("spark.sql.files.maxPartitionBytes", "32k")
    spark.conf.set("spark.sql.shuffle.partitions", "3")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "7")  # groups run on across batches
    try:
        lines = read_claims_text(spark, data["claims"])
        assert lines.rdd.getNumPartitions() > 3
        assert sorted((r.input_line, bytes(r.value)) for r in lines.collect()) == list(enumerate(raw, 1))
        df = check_dataframe(spark, lines.repartition(5), read_claims_text(spark, data["history"]).repartition(3))
        assert rows(df) == spark_rows
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
        spark.conf.set("spark.sql.shuffle.partitions", "2")


def test_plain_text_frames(spark):
    """What `spark.read.text` gives, and lines from anywhere else (numbered in the DataFrame's order)."""
    root = Path(__file__).resolve().parents[1] / "examples"
    history = [(line,) for line in (root / "history.jsonl").read_text(encoding="utf-8").split("\n")]
    df = check_dataframe(spark, spark.read.text(str(root / "claims.jsonl")), spark.createDataFrame(history, "value string"))
    code, out, err = run_cli("check", root / "claims.jsonl", "--history", root / "history.jsonl")
    assert code == 0, err
    assert [json.loads(o) for _, _, o in rows(df)] == [json.loads(line) for line in out.splitlines()]
    with pytest.raises(ValueError, match="one claims file at a time"):
        check_dataframe(spark, spark.read.text([str(root / "claims.jsonl"), str(root / "history.jsonl")]))


def test_spark_check_command(spark, data):
    out = data["dir"] / "out.jsonl"
    code, stdout, err = run_cli("spark-check", data["claims"], "--history", data["history"], "-o", out)
    assert code == 1, err
    assert out.read_text(encoding="utf-8") == data["cli"]
    assert spark.range(3).count() == 3  # the command left the session it did not start running


def test_bad_corpus_files_match_the_cli(spark):
    """Files of the bad-claims corpus about reading lines: BOM, CRLF, blank lines, bytes that are not UTF-8,
    repeated ids (the rest of the corpus is about fields, which the same reader handles on every line)."""
    files = [CORPUS / name for name in ("blank_lines_bom_crlf.jsonl", "invalid_utf8.jsonl", "duplicates.jsonl")]
    frames = [check_dataframe(spark, read_claims_text(spark, p)).selectExpr(f"{i} AS file", "*") for i, p in enumerate(files)]
    union = frames[0]
    for f in frames[1:]:
        union = union.unionByName(f)
    got: dict[int, list] = {}
    for r in union.orderBy("file", "input_line").collect():
        got.setdefault(r.file, []).append(json.loads(r.output))
    for i, p in enumerate(files):
        code, out, err = run_cli("check", p, "-q")
        assert got.get(i, []) == [json.loads(line) for line in out.splitlines()], p.name


def test_unreadable_history_is_a_usage_error(spark, data, tmp_path):
    """Contract 5: an unreadable claim in the history file is exit 2, with the CLI's message."""
    dup = tmp_path / "history_dup.jsonl"
    lines = data["history"].read_bytes().splitlines()
    dup.write_bytes(b"\n".join(lines[:5] + [lines[1]] + lines[5:]) + b"\n")
    cases = [dup] + sorted(CORPUS.glob("history_*.jsonl"))
    for h in cases:
        code, out, err = run_cli("check", data["claims"], "--history", h)
        assert code == 2 and out == "" and "cannot be read" in err, h.name
        with pytest.raises(HistoryError) as exc:
            check_dataframe(spark, read_claims_text(spark, data["claims"]), read_claims_text(spark, h), history_name=str(h))
        assert f"payrule: error: {exc.value}\n" == err, h.name
    code, out, err2 = run_cli("spark-check", data["claims"], "--history", dup)
    assert (code, out) == (2, "")
    assert err2.endswith(run_cli("check", data["claims"], "--history", dup)[2])


def test_spark_check_usage_errors(data, tmp_path, monkeypatch):
    missing = tmp_path / "nope.jsonl"
    assert run_cli("spark-check", missing)[::2] == run_cli("check", missing)[::2]
    code, _, err = run_cli("spark-check", data["claims"], "--history", missing)
    assert code == 2 and "cannot read history file" in err
    assert run_cli("spark-check", tmp_path / "claims.csv")[0] == 2
    monkeypatch.setitem(sys.modules, "pyspark", None)
    code, out, err = run_cli("spark-check", data["claims"])
    assert (code, out) == (2, "") and "install payrule[spark]" in err
