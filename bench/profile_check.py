"""Profile `payrule check` in-process with cProfile on CPU time (not wall time, so other processes
on the machine do not skew it), and print where payrule's own code spends it.

    python bench/profile_check.py CLAIMS [--history FILE] [--top 30] [--save prof.out]

Prints the top functions by cumulative and by own CPU time, then the same restricted to files under
src/payrule and generated checkers (`<payrule ...>`). Output of the check goes to /dev/null.
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import sys
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("claims")
    ap.add_argument("--history", metavar="FILE")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--save", metavar="FILE", help="save the raw profile (pstats) here")
    ap.add_argument("--extra", default="", help="more `payrule check` options, space-separated")
    args = ap.parse_args(argv)
    from payrule.cli import main as payrule_main

    argv_ = ["check", args.claims, "-o", os.devnull] + (["--history", args.history] if args.history else [])
    argv_ += [a for a in args.extra.split() if a]
    prof = cProfile.Profile(time.process_time)
    t0, c0 = time.perf_counter(), time.process_time()
    with contextlib.redirect_stderr(io.StringIO()):
        prof.enable()
        code = payrule_main(argv_)
        prof.disable()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"payrule {' '.join(argv_)}: exit {code}, {cpu:.2f} s CPU under the profiler ({wall:.2f} s wall)")
    if args.save:
        prof.dump_stats(args.save)
    st = pstats.Stats(prof)
    total = st.total_tt
    for title, key, restrict in (
        ("by cumulative CPU time", "cumulative", None),
        ("by own CPU time", "tottime", None),
        ("payrule's own code and generated checkers, by own CPU time", "tottime", r"payrule"),
    ):
        print(f"\n== {title} (total {total:.2f} s)")
        rows = []
        for (fn, line, name), (cc, nc, tt, ct, _) in st.stats.items():
            if restrict and "payrule" not in fn:
                continue
            rows.append((ct if key == "cumulative" else tt, tt, ct, nc, f"{_short(fn)}:{line}({name})"))
        rows.sort(reverse=True)
        print(f"{'own s':>8} {'own %':>6} {'cum s':>8} {'calls':>10}  function")
        for _, tt, ct, nc, where in rows[: args.top]:
            print(f"{tt:8.3f} {100 * tt / total:5.1f}% {ct:8.3f} {nc:10d}  {where}")
    return 0


def _short(fn: str) -> str:
    i = fn.find("src/payrule/")
    if i >= 0:
        return fn[i + 4:]
    i = fn.find("site-packages/")
    if i >= 0:
        return fn[i + 14:]
    return fn


if __name__ == "__main__":
    sys.exit(main())
