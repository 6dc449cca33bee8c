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
