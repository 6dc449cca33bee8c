"""Growth on hostile shapes (issue 16 items 2 and 3): the lines of one patient on one day, one very long
claim line, and one policy of very many rules (`fmt --diff`, `lint`, and `check` with the cache off). Each
is timed at two sizes, 10x apart, in one run, and the growth printed: near 10 is linear, near 100 would be
quadratic. Whole process, so a fixed start-up of a few tenths of a second makes small sizes look slower
than they are.

    .venv/bin/python bench/edges.py   # 10k -> 100k same-day lines; 0.5 MB -> 5 MB line; 1,000 -> 10,000 rules
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAYRULE = [str(Path(sys.executable).with_name("payrule"))]
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "claims.jsonl"
CODES = ("20552", "20560", "99213", "00100")  # a TPI, dry needling, an E/M and anesthesia: every same-day rule


def same_day(path: Path, lines: int) -> None:
    rnd = random.Random(7)
    with path.open("w") as f:
        for i in range(lines // len(CODES)):
            ln = [{"line": j, "date": "2025-03-03", "code": c,
                   "muscles": [f"muscle {rnd.randint(0, 50)}", f"m{i}"], **({"modifiers": ["25"]} if i % 2 else {})}
                  for j, c in enumerate(CODES, 1)]
            f.write(json.dumps({"claim_id": f"C{i}", "patient_id": "P1", "payer": "medicare", "diagnoses": ["M79.18"],
                                "lines": ln}) + "\n")


def long_line(path: Path, megabytes: float) -> None:
    n = int(megabytes * 1_000_000 / 20)
    muscles = [f"muscle number {i:06d}" for i in range(n)]
    claim = {"claim_id": "C1", "patient_id": "P1", "payer": "medicare", "diagnoses": ["M79.18"],
             "lines": [{"line": 1, "date": "2025-03-03", "code": "20553", "muscles": muscles, "substances": ["lidocaine"]}]}
    path.write_text(json.dumps(claim) + "\n")


def many_rules(path: Path, rules: int) -> None:
    """A policy of `rules` rules of distinct sizes: unit limits, session limits (none implying another)
    and spacings (each implied by every narrower one): were the linter's pair checks quadratic, the
    limits alone would make them compare every pair."""
    out = ['policy many-tpi "Many rules"', "  payer many", '  source S "made up"', "  codes TPI = 20552, 20553", ""]
    for i in range(rules):
        cond = (f"units > {i + 2}", f"more than {i + 3} TPI sessions within {i + 1} days",
                f"less than {i + 1} days after the last TPI session")[i % 3]
        out += [f"  rule r{i}:", f"    deny line when code in TPI and {cond}", f'    message "rule {i} fired on {{code}}"',
                "    per S", ""]
    path.write_text("\n".join(out))


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([*PAYRULE, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, timeout=600,
                   env={**os.environ, "PAYRULE_NO_CACHE": "1"})
    return time.perf_counter() - started


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for name, make, small, big in (("same-day lines of one patient", same_day, 10_000, 100_000),
                                       ("one claim line, MB", long_line, 0.5, 5.0)):
            a, b = Path(tmp) / "a.jsonl", Path(tmp) / "b.jsonl"
            make(a, small)
            make(b, big)
            ta, tb = timed(["check", "-q", str(a)]), timed(["check", "-q", str(b)])
            rows.append((name, small, big, ta, tb))
        folders = {}
        for n in (1_000, 10_000):
            folders[n] = Path(tmp) / f"rules-{n}"
            folders[n].mkdir()
            many_rules(folders[n] / "many.policy", n)
        for command in (["fmt", "--diff"], ["lint"], ["check", "-q", str(EXAMPLES), "--no-shipped", "--policies"]):
            ta, tb = (timed([*command, str(folders[n] if command[0] == "check" else folders[n] / "many.policy")])
                      for n in (1_000, 10_000))
            rows.append((f"rules in a policy: {command[0]}", 1_000, 10_000, ta, tb))
        print(f"{'shape':32} {'small':>8} {'big':>8} {'time small':>11} {'time big':>9} {'growth':>7}")
        for name, small, big, ta, tb in rows:
            print(f"{name:32} {small:>8} {big:>8} {ta:>10.2f}s {tb:>8.2f}s {tb / ta:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
