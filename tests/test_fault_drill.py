"""A fault drill (issue 16 item 5): `payrule check -o FILE` killed or interrupted half way leaves FILE either
complete or absent (the work so far is in `FILE.partial`, named for what it is); a full disk is exit 2 with
one line, never a traceback."""
from __future__ import annotations

import json
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
