"""No global mutable state (issue 11 item 5): two checks with different limits, run at the same time on two
threads of one process, each print exactly the bytes that `payrule check` (resp. `--low-memory`) prints in
a process of its own. The limits and memo tables belong to each run's ReadSession, not to a module."""
from __future__ import annotations

import io
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from payrule.claims.readers import LOW_MEMORY, Limits, ReadSession, read_history
from payrule.cli import main
from payrule.run.stream import check_file

from conftest import POLICIES, ROOT

EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[tuple[Path, Path | None]]:
    """(claims, history) pairs: the example, and a generated input large enough for the threads to interleave."""
    tmp = tmp_path_factory.mktemp("threads")
    claims, history = tmp / "claims.jsonl", tmp / "history.jsonl"
    subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "--claims", "6000", "--out", str(claims),
                    "--history", str(history), "--seed", "11"], check=True, capture_output=True, timeout=300)
    return [(EXAMPLES / "claims.jsonl", EXAMPLES / "history.jsonl"), (claims, history), (claims, None)]


def _args(claims: Path, history: Path | None, low_memory: bool) -> list[str]:
    return ["check", "-q", str(claims), *(["--history", str(history)] if history else []),
            *(["--low-memory"] if low_memory else [])]


def _in_a_process(args: list[str]) -> tuple[int, bytes]:
    run = subprocess.run([sys.executable, "-m", "payrule", *args], capture_output=True, timeout=600, cwd=ROOT)
    assert not run.stderr, run.stderr.decode()
    return run.returncode, run.stdout


def _on_threads(*jobs):
    """Run the jobs (callables) at once, one thread each, started together; their results in order."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)
    errors: list = []

    def work(i, job):
        try:
            barrier.wait()
            results[i] = job()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    if errors:
        raise errors[0]
    return results


def test_two_cli_checks_on_two_threads_print_what_two_processes_print(inputs, tmp_path):
    for n, (claims, history) in enumerate(inputs):
        want = [_in_a_process(_args(claims, history, low)) for low in (False, True)]
        outs = [tmp_path / f"{n}-default.jsonl", tmp_path / f"{n}-low.jsonl"]
        codes = _on_threads(*(
            (lambda low=low, out=out: main([*_args(claims, history, low), "-o", str(out)]))
            for low, out in zip((False, True), outs)
        ))
        got = [(code, out.read_bytes()) for code, out in zip(codes, outs)]
        assert got[0] == want[0], f"default limits on {claims.name}"
        assert got[1] == want[1], f"low-memory limits on {claims.name}"
        assert want[0][1].count(b"\n") > 0


def test_two_sessions_on_two_threads_keep_their_own_limits(inputs, shipped):
    claims, history = inputs[1]
    want = _in_a_process(_args(claims, history, False))[1]
    sessions = [ReadSession(Limits()), ReadSession(LOW_MEMORY), ReadSession(Limits()), ReadSession(LOW_MEMORY)]

    def job(session: ReadSession):
        def run():
            past = read_history(history.read_bytes(), str(history), ReadSession())
            out = io.BytesIO()
            check_file(shipped.checkers, str(claims), past, out, session=session)
            return out.getvalue()
        return run

    outs = _on_threads(*(job(s) for s in sessions))
    assert outs == [want] * len(sessions)
    for s in sessions:
        if s.limits == LOW_MEMORY:
            assert not s._strings and len(s._norm) <= LOW_MEMORY.normalized
        else:
            assert s._strings and s.limits == Limits()


def test_policyset_check_on_two_threads(inputs):
    from payrule import PolicySet

    claims, _ = inputs[1]
    data = claims.read_bytes()
    a, b = PolicySet.load([POLICIES]), PolicySet.load([POLICIES])
    alone = a.check(data)
    assert _on_threads(lambda: a.check(data), lambda: b.check(data), lambda: a.check(data)) == [alone] * 3
