"""A fault drill (issue 16 item 5): `payrule check -o FILE` killed or interrupted half way leaves FILE either
complete or absent (the work so far is in `FILE.partial`, named for what it is); a full disk is exit 2 with
one line, never a traceback."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import claim, tpi

PAYRULE = str(Path(sys.executable).with_name("payrule"))


@pytest.fixture(scope="module")
def big_claims(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("drill") / "claims.jsonl"
    with path.open("w") as f:
        for i in range(60_000):
            f.write(json.dumps(claim(f"C{i}", tpi(date=f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}"), patient=f"P{i % 5000}")) + "\n")
    return path


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("mode", [[], ["--low-memory"]], ids=["in-memory", "low-memory"])
def test_killed_half_way_the_output_is_complete_or_absent(big_claims, tmp_path, sig, mode):
    out = tmp_path / "decisions.jsonl"
    proc = subprocess.Popen([PAYRULE, "check", str(big_claims), "-o", str(out), "-q", *mode],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    partial = tmp_path / "decisions.jsonl.partial"
    deadline = time.monotonic() + 30  # kill it once it is writing, however loaded the machine is
    while not partial.exists() and not out.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if out.exists():  # it finished first: then the output is all there
        assert len(out.read_text().splitlines()) == 60_000
        return
    assert (tmp_path / "decisions.jsonl.partial").exists()
    assert b"Traceback" not in err
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and b"interrupted" in err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
@pytest.mark.parametrize("mode", [[], ["--low-memory"], ["--format", "table"]], ids=["jsonl", "low-memory", "table"])
def test_a_full_disk_is_exit_2_with_a_message(mode):
    examples = Path(__file__).resolve().parents[1] / "examples" / "claims.jsonl"
    with open("/dev/full", "w") as full:
        res = subprocess.run([PAYRULE, "check", str(examples), *mode], stdout=full, stderr=subprocess.PIPE, timeout=60)
    assert res.returncode == 2
    assert res.stderr.decode().strip() == "payrule: error: cannot write the decisions: No space left on device"


@pytest.mark.parametrize("mode", [["--jobs", "1"], ["--jobs", "2"], ["--jobs", "3", "--low-memory"], ["--in-memory"]],
                         ids=["jobs1", "jobs2", "jobs3-low-memory", "in-memory"])
def test_jobs_and_modes_give_the_same_bytes(big_claims, tmp_path, mode):
    """--jobs N decides whole patients in N processes; the output is byte for byte one process's."""
    want = tmp_path / "one.jsonl"
    subprocess.run([PAYRULE, "check", str(big_claims), "-o", str(want), "-q", "--jobs", "1", "--in-memory"], timeout=300)
    got = tmp_path / "got.jsonl"
    res = subprocess.run([PAYRULE, "check", str(big_claims), "-o", str(got), "-q", *mode], timeout=300)
    assert res.returncode in (0, 1)
    assert got.read_bytes() == want.read_bytes()


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc to find the worker processes")
def test_a_killed_worker_is_an_error_naming_its_claims(big_claims, tmp_path):
    out = tmp_path / "decisions.jsonl"
    proc = subprocess.Popen([PAYRULE, "check", str(big_claims), "-o", str(out), "-q", "--jobs", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    workers: list[int] = []
    # Two children at once are the deciding workers (indexing a large file takes one child, alone).
    while len(workers) < 2 and proc.poll() is None and time.monotonic() < deadline:
        workers = _children(proc.pid)
        time.sleep(0.005)
    if not workers:
        pytest.skip("the run finished before its workers could be seen")
    os.kill(workers[-1], signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    text = err.decode()
    if proc.returncode in (0, 1):  # the worker had already finished its share
        assert len(out.read_text().splitlines()) == 60_000
        return
    assert proc.returncode == 2, text
    assert "Traceback" not in text
    assert "killed by signal 9" in text and "between input lines" in text and "nothing was written" in text
    assert not out.exists()
