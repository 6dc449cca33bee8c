"""Benchmark `payrule check` against the reference interpreter and a hand-written checker (issue 7).

    python bench/run.py                          # 100k and 1M claims (a few minutes)
    python bench/run.py --quick                  # 10k claims: a smoke run, well under 30 s
    python bench/run.py --sizes 200000 --repeat 3 --json results.json

In one run it generates (or reuses) claims with bench/generate.py, then times whole processes, I/O
included, output to /dev/null, each with its wall clock and peak memory (the child's own rusage):

- `payrule check CLAIMS --history H`, and `payrule check --low-memory` when payrule accepts it;
- the reference interpreter (bench/interp_check.py -> payrule.run.interpreter.interpret), when it exists;
- bench/handwritten.py (msgspec when installed) and `handwritten.py --stdlib` (the json module).

Then the in-process time to compile every shipped policy (cold, then best of N) and the time from
start to first decision (`payrule check` on a one-claim file, best of N). It prints claims/s, service
lines/s, peak memory, the ratios, and PASS/MISS for each target of issue 7 item 2 (checked at 1M claims,
or at the largest size run, which is said).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
MIB = 1024 * 1024

# issue 7 item 2, on this 2-core machine, whole process, 1M claims
TARGET_CLAIMS_PER_S = 100_000
TARGET_PEAK = 1024 * MIB
TARGET_STREAMING_PEAK = 400 * MIB
TARGET_COMPILE_S = 0.2
TARGET_STARTUP_S = 0.3
TARGET_SIZE = 1_000_000


def payrule_cmd() -> list[str]:
    exe = Path(PY).with_name("payrule")
    return [str(exe)] if exe.exists() else [PY, "-m", "payrule"]


# ---- data -------------------------------------------------------------------------------------


def dataset(size: int, seed: int, data_dir: Path) -> dict:
    """Claims and history files for `size` claims, generated once per generator version and seed."""
    digest = hashlib.sha256((HERE / "generate.py").read_bytes()).hexdigest()[:10]
    stem = data_dir / f"claims-{size}-s{seed}-{digest}"
    claims, history, meta = Path(f"{stem}.jsonl"), Path(f"{stem}.history.jsonl"), Path(f"{stem}.meta.json")
    if not (claims.exists() and history.exists() and meta.exists()):
        data_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        p = subprocess.run([PY, str(HERE / "generate.py"), "--claims", str(size), "--seed", str(seed),
                            "--out", str(claims), "--history", str(history)], capture_output=True, text=True, check=True)
        took = time.perf_counter() - t0
        m = re.search(r"(\d+) claims, (\d+) service lines .*?(\d+) history claims", p.stderr)
        info = {"claims": int(m.group(1)), "lines": int(m.group(2)), "history": int(m.group(3)), "generate_s": round(took, 2)}
        meta.write_text(json.dumps(info))
        print(f"generated {size:,} claims in {took:.1f} s: {info['lines']:,} service lines, {info['history']:,} history claims -> {claims}",
              flush=True)
    info = json.loads(meta.read_text())
    info.update(claims_file=str(claims), history_file=str(history), bytes=claims.stat().st_size)
    return info


# ---- timing -----------------------------------------------------------------------------------


def timed(cmd: list[str], timeout: float) -> dict:
    """Run `cmd` with stdout to /dev/null; wall time, the child's peak RSS, exit code."""
    with tempfile.TemporaryFile() as err, open(os.devnull, "wb") as null:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=null, stderr=err, cwd=ROOT)
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode("utf-8", "replace").strip().splitlines()[-3:]
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "peak": ru.ru_maxrss * 1024, "code": p.returncode,
            "stderr": tail, "killed": wall >= timeout}


def best_of(cmd: list[str], n: int, timeout: float) -> dict:
    runs = [timed(cmd, timeout) for _ in range(n)]
    best = min(runs, key=lambda r: r["wall"])
    best["peak"] = max(r["peak"] for r in runs)
    return best


COMPILE_SCRIPT = r"""
import json, sys, time
n = int(sys.argv[1])
t0 = time.perf_counter()
from payrule.api import PolicySet
t1 = time.perf_counter()
ps = PolicySet.load()
t2 = time.perf_counter()
warm = []
for _ in range(n):
    a = time.perf_counter()
    PolicySet.load()
    warm.append(time.perf_counter() - a)
print(json.dumps({"import": t1 - t0, "cold": t2 - t1, "warm": min(warm), "policies": len(ps.models), "payers": ps.payers}))
"""


def compile_times(n: int) -> dict:
    p = subprocess.run([PY, "-c", COMPILE_SCRIPT, str(n)], capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        return {"error": p.stderr.strip().splitlines()[-1:]}
    return json.loads(p.stdout)


def startup(n: int, data_dir: Path, timeout: float) -> dict:
    one = data_dir / "one-claim.jsonl"
    one.write_text(json.dumps({"claim_id": "C1", "patient_id": "P1", "payer": "medicare", "diagnoses": ["M79.1"],
                               "lines": [{"line": 1, "date": "2025-03-01", "code": "20552", "muscles": ["left soleus"],
                                          "substances": ["lidocaine"]}]}) + "\n")
    return {"payrule": best_of(payrule_cmd() + ["check", str(one)], n, timeout),
            "python": best_of([PY, "-c", "pass"], n, timeout),
            "handwritten": best_of([PY, str(HERE / "handwritten.py"), str(one)], n, timeout)}


# ---- what to run --------------------------------------------------------------------------------


def has_low_memory() -> bool:
    p = subprocess.run(payrule_cmd() + ["check", "--help"], capture_output=True, text=True, cwd=ROOT)
    return "--low-memory" in p.stdout


def has_interpreter() -> bool:
    p = subprocess.run([PY, "-c", "from payrule.run.interpreter import interpret"], capture_output=True, cwd=ROOT)
    return p.returncode == 0


def has_msgspec() -> bool:
    return subprocess.run([PY, "-c", "import msgspec"], capture_output=True).returncode == 0


def commands(skip: set[str]) -> dict[str, object]:
    """name -> fn(claims, history) -> argv"""
    out: dict[str, object] = {}
    pr = payrule_cmd()
    out["payrule"] = lambda c, h: pr + ["check", c, "--history", h]
    if has_low_memory():
        out["payrule --low-memory"] = lambda c, h: pr + ["check", "--low-memory", c, "--history", h]
    else:
        print("payrule check has no --low-memory: no streaming column")
    if has_interpreter():
        out["interpreter"] = lambda c, h: [PY, str(HERE / "interp_check.py"), c, "--history", h]
    else:
        print("payrule.run.interpreter does not exist (yet): no interpreter column")
    hw = "handwritten (msgspec)" if has_msgspec() else "handwritten"
    out[hw] = lambda c, h: [PY, str(HERE / "handwritten.py"), c, "--history", h]
    out["handwritten (json)"] = lambda c, h: [PY, str(HERE / "handwritten.py"), "--stdlib", c, "--history", h]
    return {k: v for k, v in out.items() if not any(s in k for s in skip)}


# ---- report -------------------------------------------------------------------------------------


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def report(results: dict, sizes: list[int]) -> list[str]:
    rows = ["| claims | lines | command | wall s | CPU s | claims/s | lines/s | peak MiB | exit |",
            "|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for size in sizes:
        info = results["data"][str(size)]
        for name, r in results["runs"][str(size)].items():
            note = " (killed: timeout)" if r["killed"] else ""
            rows.append(f"| {info['claims']:,} | {info['lines']:,} | {name}{note} | {r['wall']:.2f} | {r['cpu']:.2f} | "
                        f"{fmt_rate(info['claims'] / r['wall'])} | {fmt_rate(info['lines'] / r['wall'])} | "
                        f"{r['peak'] / MIB:,.0f} | {r['code']} |")
    return rows


def ratios(results: dict, sizes: list[int]) -> list[str]:
    out = []
    for size in sizes:
        runs = results["runs"][str(size)]
        p = runs.get("payrule")
        if not p:
            continue
        for other in runs:
            if other == "payrule":
                continue
            t = runs[other]["wall"]
            out.append(f"- {size:,} claims: payrule takes {p['wall'] / t:.2f}x the wall time of {other} "
                       f"({p['cpu'] / runs[other]['cpu']:.2f}x the CPU time; {'payrule faster' if p['wall'] < t else 'payrule slower'}); "
                       f"peak memory {p['peak'] / runs[other]['peak']:.2f}x")
    return out


def targets(results: dict, sizes: list[int]) -> list[tuple[str, bool | None, str]]:
    size = TARGET_SIZE if TARGET_SIZE in sizes else max(sizes)
    at = "" if size == TARGET_SIZE else f" [measured at {size:,} claims; the target is at {TARGET_SIZE:,}]"
    runs = results["runs"][str(size)]
    info = results["data"][str(size)]
    out = []
    p = runs.get("payrule")
    if p:
        rate = info["claims"] / p["wall"]
        out.append((f"payrule >= {TARGET_CLAIMS_PER_S:,} claims/s", rate >= TARGET_CLAIMS_PER_S, f"{rate:,.0f} claims/s ({p['wall']:.1f} s){at}"))
        out.append(("payrule peak memory <= 1 GiB", p["peak"] <= TARGET_PEAK, f"{p['peak'] / MIB:,.0f} MiB{at}"))
        streaming = runs.get("payrule --low-memory")
        if streaming:
            out.append(("streaming (--low-memory) peak < 400 MiB", streaming["peak"] < TARGET_STREAMING_PEAK,
                        f"{streaming['peak'] / MIB:,.0f} MiB{at}"))
        elif p["peak"] < TARGET_STREAMING_PEAK:
            out.append(("streaming peak < 400 MiB (the default)", True, f"{p['peak'] / MIB:,.0f} MiB{at}"))
        else:
            out.append(("streaming peak < 400 MiB", False, f"no --low-memory and the default peaks at {p['peak'] / MIB:,.0f} MiB{at}"))
        hw = next((k for k in runs if k.startswith("handwritten") and "json" not in k), None)
        if hw:
            h = runs[hw]
            out.append((f"payrule at least as fast as {hw}", p["wall"] <= h["wall"],
                        f"{p['wall']:.2f} s vs {h['wall']:.2f} s wall, {p['cpu']:.2f} s vs {h['cpu']:.2f} s CPU{at}"))
    c = results.get("compile", {})
    if "warm" in c:
        out.append((f"compile every shipped policy < {TARGET_COMPILE_S} s", c["warm"] < TARGET_COMPILE_S,
                    f"best {c['warm'] * 1000:.0f} ms in-process (first, cold: {c['cold'] * 1000:.0f} ms, after {c['import'] * 1000:.0f} ms of imports)"))
    s = results.get("startup", {}).get("payrule")
    if s:
        out.append((f"start-up to first decision < {TARGET_STARTUP_S} s", s["wall"] < TARGET_STARTUP_S,
                    f"{s['wall'] * 1000:.0f} ms (`payrule check` on one claim; bare python: {results['startup']['python']['wall'] * 1000:.0f} ms)"))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100000,1000000", help="claim counts, comma-separated (default 100000,1000000)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 10,000 claims, fewer repeats")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each command per size; the fastest counts (default 1)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "payrule-bench"), help="where generated claims are kept")
    ap.add_argument("--skip", default="", help="comma-separated parts of command names not to run, e.g. interpreter,json")
    ap.add_argument("--interpreter-max", type=int, default=0, metavar="N",
                    help="run the interpreter only at sizes up to N claims (it takes about 1 ms a claim); default: all")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds before a command is killed (default 1800)")
    ap.add_argument("--json", metavar="FILE", help="also write the results here")
    args = ap.parse_args(argv)
    sizes = [10_000] if args.quick else [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    n_small = 3 if args.quick else 10
    data_dir = Path(args.data)
    t_start = time.perf_counter()
    load = os.getloadavg()
    print(f"payrule benchmark: {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    cmds = commands({s.strip() for s in args.skip.split(",") if s.strip()})
    results: dict = {"sizes": sizes, "data": {}, "runs": {}, "load_before": load, "python": platform.python_version()}
    for size in sizes:
        info = dataset(size, args.seed, data_dir)
        results["data"][str(size)] = info
        results["runs"][str(size)] = {}
        for name, make in cmds.items():
            if name == "interpreter" and args.interpreter_max and size > args.interpreter_max:
                continue
            r = best_of(make(info["claims_file"], info["history_file"]), args.repeat, args.timeout)
            results["runs"][str(size)][name] = r
            print(f"  {size:>9,} claims  {name:<24} {r['wall']:8.2f} s  {info['claims'] / r['wall']:>10,.0f} claims/s  "
                  f"{r['peak'] / MIB:>7,.0f} MiB  exit {r['code']}" + (f"  {r['stderr'][-1]}" if r["code"] not in (0, 1) and r["stderr"] else ""), flush=True)
    results["compile"] = compile_times(n_small)
    results["startup"] = startup(n_small, data_dir, 60)
    results["load_after"] = os.getloadavg()
    print()
    print("\n".join(report(results, sizes)))
    print()
    print("\n".join(ratios(results, sizes)))
    c = results["compile"]
    if "warm" in c:
        print(f"- compile {c['policies']} shipped policies (parse, check, generate, compile, load): first {c['cold'] * 1000:.0f} ms, "
              f"then best {c['warm'] * 1000:.0f} ms; importing payrule {c['import'] * 1000:.0f} ms")
    else:
        print(f"- compile: failed {c.get('error')}")
    st = results["startup"]
    print(f"- start-up to first decision (one claim, whole process, best of {n_small}): payrule {st['payrule']['wall'] * 1000:.0f} ms, "
          f"handwritten {st['handwritten']['wall'] * 1000:.0f} ms, bare python {st['python']['wall'] * 1000:.0f} ms")
    print()
    print("targets (issue 7 item 2):")
    ok = True
    for what, passed, detail in targets(results, sizes):
        print(f"  {'PASS' if passed else 'MISS'}  {what}: {detail}")
        ok = ok and bool(passed)
    bad_exit = [(s, n) for s in results["runs"] for n, r in results["runs"][s].items() if r["code"] not in (0, 1)]
    if bad_exit:
        print(f"commands that failed (exit not 0/1): {bad_exit}")
    load = results["load_after"]
    print(f"\nload average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; took {time.perf_counter() - t_start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 1 if bad_exit else 0


if __name__ == "__main__":
    sys.exit(main())
