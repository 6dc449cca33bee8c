"""Check that bench/handwritten.py decides generated claims exactly as `payrule check` does.

    python bench/verify.py                      # 20,000 claims with history, seed 7
    python bench/verify.py --claims 100000 --seed 3 --show 5

Both programs run as whole processes on the same files. For every output object it compares: error or
not (and the error's claim_id and input_line); the claim's decision; per line the line number, code,
decision and the reasons as (policy, rule, outcome), order-insensitive. Messages are compared too, but
a differing message is only counted (the contract leaves the wording to the policies). The exit status
is 0 when everything that must agree does (exit codes included), 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def payrule_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("payrule")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "payrule"]


def run(cmd: list[str], out: Path) -> int:
    with open(out, "wb") as f:
        p = subprocess.run(cmd, stdout=f, stderr=subprocess.PIPE, cwd=ROOT)
    if p.returncode not in (0, 1):
        sys.stderr.write(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stderr.decode(errors='replace')}\n")
    return p.returncode


def key(obj: dict):
    """What must agree."""
    if "error" in obj:
        return ("error", obj.get("claim_id"), obj.get("input_line"))
    return (
        obj["claim_id"],
        obj["decision"],
        tuple(
            (ln["line"], ln["code"], ln["decision"], tuple(sorted((r["policy"], r["rule"], r["outcome"]) for r in ln["reasons"])))
            for ln in obj["lines"]
        ),
    )


def messages(obj: dict):
    if "error" in obj:
        return ()
    return tuple(sorted((ln["line"], r["rule"], r["message"], r.get("source")) for ln in obj["lines"] for r in ln["reasons"]))


def compare(a_path: Path, b_path: Path, a_name: str, b_name: str, show: int) -> tuple[int, int, Counter]:
    """(objects compared, mismatches, counts of what the mismatching lines disagree on); prints examples."""
    a = a_path.read_text(encoding="utf-8").splitlines()
    b = b_path.read_text(encoding="utf-8").splitlines()
    bad = 0
    msg_diff = 0
    why: Counter = Counter()
    if len(a) != len(b):
        print(f"  {a_name} printed {len(a)} objects, {b_name} {len(b)}")
        bad += 1
    shown = 0
    for i, (x, y) in enumerate(zip(a, b), 1):
        ox, oy = json.loads(x), json.loads(y)
        if key(ox) != key(oy):
            bad += 1
            why.update(_what_differs(ox, oy))
            if shown < show:
                shown += 1
                print(f"  output line {i} differs:\n    {a_name}: {x}\n    {b_name}: {y}")
        elif messages(ox) != messages(oy):
            msg_diff += 1
            if shown < show:
                shown += 1
                print(f"  output line {i}: same decisions, different messages:\n    {a_name}: {messages(ox)}\n    {b_name}: {messages(oy)}")
    return min(len(a), len(b)), bad, why + Counter({"messages only": msg_diff} if msg_diff else {})


def _what_differs(x: dict, y: dict) -> list[str]:
    if ("error" in x) != ("error" in y):
        return ["error vs decision"]
    if "error" in x:
        return ["error claim_id/input_line"]
    out = []
    for lx, ly in zip(x["lines"], y["lines"]):
        rx = {r["rule"] for r in lx["reasons"]}
        ry = {r["rule"] for r in ly["reasons"]}
        for r in sorted(rx ^ ry):
            out.append(f"rule {r}")
    return out or ["other"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--claims", type=int, default=20_000, help="how many claims to generate (default 20000)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-history", action="store_true", help="generate no --history file")
    ap.add_argument("--file", metavar="CLAIMS", help="verify on this claims file instead of generating one")
    ap.add_argument("--history", metavar="FILE", help="with --file: its history file")
    ap.add_argument("--show", type=int, default=3, help="print this many differing objects (default 3)")
    ap.add_argument("--keep", metavar="DIR", help="keep the files here")
    ap.add_argument("--interpreter", action="store_true", help="also compare the reference interpreter (bench/interp_check.py)")
    args = ap.parse_args(argv)
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="payrule-verify-"))
    tmp.mkdir(parents=True, exist_ok=True)
    if args.file:
        claims = Path(args.file).resolve()
        history = Path(args.history).resolve() if args.history else None
    else:
        claims = tmp / "claims.jsonl"
        history = None if args.no_history else tmp / "history.jsonl"
        cmd = [sys.executable, str(HERE / "generate.py"), "--claims", str(args.claims), "--seed", str(args.seed), "--out", str(claims)]
        if history:
            cmd += ["--history", str(history)]
        subprocess.run(cmd, check=True)
    hopt = ["--history", str(history)] if history else []
    outs = {
        "payrule": (payrule_cmd() + ["check", str(claims)] + hopt, tmp / "payrule.out"),
        "handwritten": ([sys.executable, str(HERE / "handwritten.py"), str(claims)] + hopt, tmp / "handwritten.out"),
        "handwritten --stdlib": ([sys.executable, str(HERE / "handwritten.py"), "--stdlib", str(claims)] + hopt, tmp / "stdlib.out"),
    }
    if args.interpreter:
        outs["interpreter"] = ([sys.executable, str(HERE / "interp_check.py"), str(claims)] + hopt, tmp / "interpreter.out")
    codes = {name: run(cmd, out) for name, (cmd, out) in outs.items()}
    ok = True
    if len(set(codes.values())) != 1:
        print(f"exit codes differ: {codes}")
        ok = False
    for other in [name for name in outs if name != "payrule"]:
        n, bad, why = compare(outs["payrule"][1], outs[other][1], "payrule", other, args.show)
        verdict = "agree" if bad == 0 else f"DISAGREE on {bad}"
        print(f"payrule vs {other}: {n} claims, {verdict}" + (f" ({dict(why)})" if why else ""))
        ok = ok and bad == 0
    stats = Counter()
    for line in outs["payrule"][1].read_text(encoding="utf-8").splitlines():
        o = json.loads(line)
        if "error" in o:
            stats["error"] += 1
            continue
        stats[o["decision"]] += 1
        for ln in o["lines"]:
            for r in ln["reasons"]:
                stats[f"rule {r['policy']}/{r['rule']}"] += 1
    print("what payrule decided: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.items())))
    missing = [r for r in EXPECTED_RULES if stats[f"rule {r}"] == 0]
    if missing and not args.file:
        print(f"rules that never fired on the generated data: {missing}")
        ok = False
    if not args.keep:
        for p in tmp.iterdir():
            p.unlink()
        os.rmdir(tmp)
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


# Every rule of the shipped policies: the generated mix must make each one fire.
EXPECTED_RULES = [
    "common-tpi/muscles-for-20552", "common-tpi/muscles-for-20553", "common-tpi/muscles-documented",
    "common-tpi/one-per-day", "common-tpi/units", "common-tpi/anesthesia", "common-tpi/dry-needling-overlap",
    "common-tpi/dry-needling-muscles", "common-tpi/em-needs-25", "common-tpi/modifier-25-on-tpi",
    "common-tpi/excluded-injectate", "common-tpi/substances-documented", "medicare-tpi/frequency",
    "medicare-tpi/bilateral", "medicare-tpi/covered-diagnosis", "aetna-tpi/frequency", "aetna-tpi/spacing",
]

if __name__ == "__main__":
    sys.exit(main())
