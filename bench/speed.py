"""The speed and memory table of issue 13, measured in one run, each figure a ratio where it has a yardstick.

    python bench/speed.py [--claims 200000] [--mem-claims 1000000] [--runs 3] [--quick]

Rows (each process runs on its own, standard output to /dev/null, alternating with its yardstick so that
machine drift hits both alike; wall time by perf_counter, peak memory by wait4's ru_maxrss):

- `payrule check` / yardstick at --claims, default options (--jobs: the cores available), --jobs 1, --jobs 2.
  The yardstick is ../shared/bench/yardstick.py on its own workload when ../shared/bench is there
  (as compare.py runs it), else this project's bench/handwritten.py on bench/generate.py's claims;
- peak memory at --mem-claims, default mode and --low-memory, beside the yardstick's;
- start to first decision: `payrule check` of a one-claim file, best of 10, with its checkers cached by an
  earlier run (the usual case: payrule.run.cache, in a cache folder of this bench's own), and uncached
  (PAYRULE_NO_CACHE: parse and compile every time, as a first run does), best of 5;
- compiling every shipped policy cold: the first `PolicySet.load()` in a fresh process (imports before the
  clock starts, the lark parser built within it), best of 5;
- the five-payer workload (contract v2, bench/generate.py --five-payers): time a claim / the v1 workload's.

Machines here are shared and noisy: read the ratios, and the load averages printed before and after.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared" / "bench"
PY = sys.executable
PAYRULE = [str(Path(PY).with_name("payrule"))] if Path(PY).with_name("payrule").exists() else [PY, "-m", "payrule"]
DATA = Path(tempfile.gettempdir()) / "payrule-speed"


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB, exit status) of one process, its output to /dev/null."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=None if env is None else {**os.environ, **env})
    _, status, usage = os.wait4(p.pid, 0)
    return time.perf_counter() - t0, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def claims_file(n: int, five: bool = False, ours: bool = False) -> tuple[Path, list[str]]:
    """(claims file, yardstick command without the file) for n claims: the shared workload when
    ../shared/bench exists (unless `five` or `ours`), else bench/generate.py's."""
    DATA.mkdir(exist_ok=True)
    if SHARED.is_dir() and not (five or ours):
        path = DATA / f"shared-{n}.jsonl"
        if not path.exists():
            with open(f"{path}.part", "wb") as f:
                subprocess.run([PY, str(SHARED / "workload.py"), "--claims", str(n), "--seed", "1", "--bad-rate", "0.01"],
                               stdout=f, check=True)
            os.replace(f"{path}.part", path)
        return path, [PY, str(SHARED / "yardstick.py")]
    path = DATA / f"gen-{n}{'-five' if five else ''}.jsonl"
    if not path.exists():
        subprocess.run([PY, str(HERE / "generate.py"), "--claims", str(n), "--out", f"{path}.part"]
                       + (["--five-payers"] if five else []), check=True, stderr=subprocess.DEVNULL)
        os.replace(f"{path}.part", path)
    return path, [PY, str(HERE / "handwritten.py")]


def side_by_side(ours: list[str], stick: list[str], runs: int) -> tuple[float, float, float, float, float]:
    """(median ratio, our median s, stick median s, our peak MiB, stick peak MiB), alternating runs."""
    a, b = [], []
    for _ in range(runs):
        b.append(run(stick))
        a.append(run(ours))
    ratio = statistics.median(x[0] / y[0] for x, y in zip(a, b))
    return (ratio, statistics.median(x[0] for x in a), statistics.median(y[0] for y in b),
            max(x[1] for x in a), max(y[1] for y in b))


def startup() -> tuple[float, float]:
    """(cached, uncached) seconds to the first decision of a one-claim file."""
    DATA.mkdir(exist_ok=True)
    one = DATA / "one.jsonl"
    one.write_text('{"claim_id": "C-1", "patient_id": "P-1", "payer": "medicare", "diagnoses": ["M79.18"], '
                   '"lines": [{"line": 1, "date": "2025-03-01", "code": "20552", "muscles": ["trapezius"], '
                   '"substances": ["lidocaine"]}]}\n')
    cached = {"PAYRULE_CACHE_DIR": tempfile.mkdtemp(prefix="payrule-speed-cache-")}
    run([*PAYRULE, "check", str(one)], cached)  # the first run compiles and keeps the checkers
    warm = min(run([*PAYRULE, "check", str(one)], cached)[0] for _ in range(10))
    cold = min(run([*PAYRULE, "check", str(one)], {"PAYRULE_NO_CACHE": "1"})[0] for _ in range(5))
    return warm, cold


def compile_cold() -> float:
    # cold: the first load in a fresh process (building the lark parser included), imports done before
    code = ("import time; from payrule.api import PolicySet; t = time.perf_counter(); PolicySet.load(); "
            "print(time.perf_counter() - t)")
    return min(float(subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True).stdout)
               for _ in range(5))


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "?"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--claims", type=int, default=200_000)
    ap.add_argument("--mem-claims", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="20,000 claims, 100,000 for memory, one run each")
    a = ap.parse_args(argv)
    if a.quick:
        a.claims, a.mem_claims, a.runs = 20_000, 100_000, 1
    print(f"load average before: {loadavg()}  ({os.cpu_count()} cores; yardstick: "
          f"{'../shared/bench/yardstick.py' if SHARED.is_dir() else 'bench/handwritten.py'})")
    rows: list[tuple[str, str, str, str]] = []
    path, stick = claims_file(a.claims)
    for label, extra, target in (("default (--jobs: cores)", [], 1.0), ("--jobs 1", ["--jobs", "1"], 1.0),
                                 ("--jobs 2", ["--jobs", "2"], 0.6)):
        r, ours, theirs, _, _ = side_by_side([*PAYRULE, "check", str(path), *extra], [*stick, str(path)], a.runs)
        rows.append((f"check / yardstick, {a.claims:,} claims, {label}", f"{r:.2f}", f"<= {target}",
                     f"{ours:.2f} s vs {theirs:.2f} s"))
    mpath, mstick = claims_file(a.mem_claims)
    for label, extra, target in (("default mode", [], 1024), ("--low-memory", ["--low-memory"], 400)):
        _, _, _, ours_mb, theirs_mb = side_by_side([*PAYRULE, "check", str(mpath), *extra], [*mstick, str(mpath)], 1)
        rows.append((f"peak memory, {a.mem_claims:,} claims, {label}", f"{ours_mb:.0f} MiB", f"<= {target} MiB",
                     f"yardstick {theirs_mb:.0f} MiB"))
    s, uncached = startup()
    rows.append(("start to first decision (one claim, cached)", f"{s:.3f} s", "<= 0.12 s",
                 f"{s / 0.12:.2f} of the target; uncached (first run) {uncached:.3f} s"))
    c = compile_cold()
    rows.append(("compile all shipped policies, cold", f"{c * 1000:.0f} ms", "<= 100 ms", f"{c / 0.1:.2f} of the target"))
    v1, _ = claims_file(a.claims, ours=True)  # the same generator both ways, so only the payers differ
    v2, _ = claims_file(a.claims, five=True)
    t1 = min(run([*PAYRULE, "check", str(v1), "--jobs", "1"])[0] for _ in range(a.runs))
    t2 = min(run([*PAYRULE, "check", str(v2), "--jobs", "1"])[0] for _ in range(a.runs))
    n1 = sum(1 for _ in open(v1, "rb"))
    n2 = sum(1 for _ in open(v2, "rb"))
    rows.append(("five payers (v2) / v1, time a claim, --jobs 1", f"{(t2 / n2) / (t1 / n1):.2f}", "near 1",
                 f"{n2 / t2:,.0f} vs {n1 / t1:,.0f} claims/s"))
    w = max(len(r[0]) for r in rows)
    print(f"{'measure':<{w}}  {'now':>10}  {'target':>12}  detail")
    for name, now, target, detail in rows:
        print(f"{name:<{w}}  {now:>10}  {target:>12}  {detail}")
    print(f"load average after: {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
