"""`payrule check` on a JSON Lines file decides one patient at a time (payrule.run.stream); it must print
exactly what --in-memory (every claim held at once) prints, exit status included, and so must
--low-memory."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from conftest import CONFORMANCE, ROOT, claim, needs_conformance, tpi

FILES = sorted(
    [p for p in (CONFORMANCE / "scenarios").glob("*.jsonl") if not p.name.endswith(".history.jsonl")]
    + [p for p in (ROOT / "tests" / "claims_corpus").glob("*.jsonl") if not p.name.startswith("history_")]
    + [ROOT / "examples" / "claims.jsonl", ROOT / "examples" / "with_errors.jsonl"]
)


def _history(path: Path) -> list[str]:
    h = path.with_name(path.name.replace(".jsonl", ".history.jsonl"))
    return ["--history", str(h)] if h.exists() else []


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_streaming_output_is_identical(path, cli):
    a = cli("check", path, *_history(path), "-q", "--in-memory")
    b = cli("check", path, *_history(path), "-q")
    c = cli("check", path, *_history(path), "-q", "--low-memory")
    assert (b.code, b.out) == (a.code, a.out)
    assert (c.code, c.out) == (a.code, a.out)


def test_low_memory_on_interleaved_patients_duplicates_and_ties(tmp_path, cli):
    rnd = random.Random(5)
    rows = []
    for i in range(600):
        patient = f"P{rnd.randrange(40)}"
        payer = rnd.choice(["medicare", "Aetna", "humana", "Medicare Part B", "Emblem  Health"])
        day = f"2025-{rnd.randrange(1, 13):02d}-{rnd.randrange(1, 29):02d}"
        code = rnd.choice(["20552", "20553", "99213", "20560", "J3301"])
        muscles = rnd.choice([(), ("a",), ("a", "b"), ("a", "b", "c")])
        cid = f"C{rnd.randrange(560)}"  # some ids repeat: the later claim is the error
        row = json.dumps(claim(cid, tpi(1, day, code, muscles=muscles, substances=rnd.choice([(), ("lidocaine",), ("PRP",)])),
                               patient=patient, payer=payer))
        rows.append(row if rnd.random() > 0.03 else row[: len(row) // 2])  # a few truncated rows
        if rnd.random() < 0.05:
            rows.append("")
    path = tmp_path / "claims.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    a = cli("check", path, "-q", "--in-memory")
    b = cli("check", path, "-q")
    c = cli("check", path, "-q", "--low-memory")
    assert a.code == 1 and len(a.objects) == sum(1 for r in rows if r.strip())
    assert (b.code, b.out) == (a.code, a.out)
    assert (c.code, c.out) == (a.code, a.out)


@needs_conformance
def test_csv_and_stdin_are_read_whole(cli):
    csv_file = CONFORMANCE / "scenarios" / "mixed_claims_csv.csv"
    assert cli("check", csv_file, "--low-memory", "-q").out == cli("check", csv_file, "-q").out
    data = (ROOT / "examples" / "claims.jsonl").read_bytes()
    assert cli("check", "--low-memory", "-q", stdin=data).out == cli("check", "-q", stdin=data).out


def _rows_for_two_halves(seed: int) -> bytes:
    """Rows that test what indexing the later half in a second process must get right: a byte-order
    mark and blank lines, claim ids used again within and across the halves, rows not readable enough
    to route (truncated, not an object, not UTF-8) in both halves, patients with claims in both."""
    rnd = random.Random(seed)
    out = [b"\xef\xbb\xbf" + json.dumps(claim("C0", tpi(1, "2025-01-02"), patient="P0")).encode()]
    for i in range(1, 900):
        patient = f"P{rnd.randrange(30)}"
        payer = rnd.choice(["medicare", "Aetna", "humana", "Medicare Part B"])
        day = f"2025-{rnd.randrange(1, 13):02d}-{rnd.randrange(1, 29):02d}"
        code = rnd.choice(["20552", "20553", "99213", "20560"])
        cid = f"C{rnd.randrange(700)}"
        row = json.dumps(claim(cid, tpi(1, day, code, note="x" * rnd.randrange(200)), patient=patient, payer=payer)).encode()
        r = rnd.random()
        if r < 0.03:
            row = row[: len(row) // 2]
        elif r < 0.04:
            row = rnd.choice([b"[1, 2]", b'"a string"', b"42", b'{"claim_id": "\xff\xfe", "patient_id": "P1"}'])
        out.append(row)
        if rnd.random() < 0.04:
            out.append(rnd.choice([b"", b"   ", b"\t"]))
    return b"\n".join(out) + b"\n"


@pytest.fixture
def two_halves(monkeypatch):
    """Index every file in two processes (whatever its size and the cores), and count how it went."""
    from payrule.run import stream

    seen = {"joined": 0, "deferred": 0, "failed": 0}
    join = stream._join_later_half

    def counted(child):
        rows = join(child)
        if rows is None:
            seen["failed"] += 1
        else:
            seen["joined"] += 1
            seen["deferred"] += len(rows.deferred)
        return rows

    monkeypatch.setattr(stream, "INDEX_IN_TWO_FROM", 0)
    monkeypatch.setattr(stream, "available_cores", lambda: 2)
    monkeypatch.setattr(stream, "_join_later_half", counted)
    return seen


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_indexing_in_two_processes_changes_nothing(tmp_path, cli, two_halves, seed):
    path = tmp_path / "claims.jsonl"
    path.write_bytes(_rows_for_two_halves(seed))
    a = cli("check", path, "-q", "--in-memory")
    b = cli("check", path, "-q", "--jobs", "2")
    c = cli("check", path, "-q", "--jobs", "3", "--low-memory")
    assert two_halves["joined"] == 2 and two_halves["deferred"] > 0 and not two_halves["failed"]
    assert (b.code, b.out) == (a.code, a.out)
    assert (c.code, c.out) == (a.code, a.out)
    objs = [json.loads(line) for line in a.out.splitlines()]
    errors = [o["error"] for o in objs if "error" in o]
    assert any("already" in e or "duplicate" in e or "used" in e for e in errors), errors[:5]
    assert len(objs) == sum(1 for r in path.read_bytes().split(b"\n") if r.strip() and r.strip() != b"\xef\xbb\xbf")


def test_a_failed_index_process_costs_time_not_claims(tmp_path, cli, two_halves, monkeypatch):
    """When the second process dies, the first indexes the later half itself: the same output."""
    import os
    import tempfile

    from payrule.run import stream

    def dies(checkers, path, lo, hi, session):
        pid = os.fork()
        if pid == 0:
            os._exit(9)
        return pid, tempfile.TemporaryFile()

    path = tmp_path / "claims.jsonl"
    path.write_bytes(_rows_for_two_halves(4))
    a = cli("check", path, "-q", "--in-memory")
    monkeypatch.setattr(stream, "_index_later_half", dies)
    b = cli("check", path, "-q", "--jobs", "2")
    assert two_halves["failed"] == 1 and not two_halves["joined"]
    assert (b.code, b.out) == (a.code, a.out)
