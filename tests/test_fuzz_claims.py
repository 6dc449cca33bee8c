"""Fuzz the claims readers and the decision engine (issue 16 item 6): mutated and hostile claim lines, as a
careless upstream system or a fuzzer writes them, through `payrule check`'s reading and deciding.

For any bytes whatsoever: no exception escapes; every non-blank input line gets exactly one output object
(a decision or an error record) and the other claims are still decided; the same input gives the same
output twice; and no input takes more than a few seconds (a per-input alarm, so a hang fails the test
instead of stalling CI). Bounded here; `PAYRULE_FUZZ_EXAMPLES=20000` runs longer.
"""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payrule import PolicySet

from conftest import POLICIES

EXAMPLES = int(os.environ.get("PAYRULE_FUZZ_EXAMPLES", "0")) or 300
SEEDS = [line for line in (Path(__file__).resolve().parents[1] / "examples" / "claims.jsonl").read_bytes().split(b"\n") if line]
HOSTILE = [b"\xef\xbb\xbf", b"\r", b"\x00", b"\xff", b"\xed\xa0\x80", b'"\\ud800"', b"[" * 3000, b"]" * 3000,
           b"1" * 5000, b"-1e999", b"NaN", b"Infinity", b'"9999-12-31"', b'"0001-01-01"', b'"0000-00-00"',
           b'"2024-02-30"', b"null", b"true", b"{}", b"[]", b'"\\u2028"', b'"     "', b",", b":", b'"', b"\\"]


@st.composite
def mutated_lines(draw) -> bytes:
    line = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.integers(0, 3))
        pos = draw(st.integers(0, len(line)))
        if op == 0:  # splice in something hostile
            line[pos:pos] = draw(st.sampled_from(HOSTILE))
        elif op == 1 and line:  # cut
            end = draw(st.integers(pos, min(len(line), pos + 40)))
            del line[pos:end]
        elif op == 2 and line:  # flip a byte
            line[min(pos, len(line) - 1)] = draw(st.integers(0, 255))
        else:  # replace a JSON value by a hostile one
            line = bytearray(bytes(line).replace(b'"2025-', draw(st.sampled_from(HOSTILE)) + b'"2025-', 1))
    return bytes(line).replace(b"\n", b" ")


@pytest.fixture(scope="module")
def shipped() -> PolicySet:
    return PolicySet.load([POLICIES])


def _alarm(signum, frame):  # pragma: no cover - only when an input hangs
    raise TimeoutError("one fuzz input took more than 5 s")


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(lines=st.lists(mutated_lines(), min_size=1, max_size=6), good_index=st.integers(0, 6))
def test_any_claim_bytes_are_decided_or_become_error_records(shipped, lines, good_index):
    good = SEEDS[0]
    lines.insert(min(good_index, len(lines)), good)  # a claim that must still be decided among the bad ones
    data = b"\n".join(lines) + b"\n"
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(5)
    try:
        first = shipped.check(data)
        second = shipped.check(data)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert first == second
    json.dumps(first)  # every output object is JSON
    assert len(first) == sum(1 for ln in lines if ln.strip())
    good_id = json.loads(good)["claim_id"]
    decided = [o for o in first if o.get("claim_id") == good_id and "decision" in o]
    assert decided or any(o.get("claim_id") == good_id for o in first)  # decided, or a mutant reused its id
