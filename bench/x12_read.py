"""How much slower claims read from X12 837P are than the same claims read from JSON Lines (target: at
most 1.5 times).

    python bench/x12_read.py                  # 100k claims
    python bench/x12_read.py --claims 1000000

Generates N claims with bench/generate.py, keeps those X12 can say (`payrule.claims.x12.unsayable`
refuses a few: a non-ASCII muscle name, a line whose own diagnosis list is empty, a badly shaped date;
broken JSON lines have no claim to write), and writes them as JSON Lines and as one X12 interchange,
both in the same order: grouped by billing provider and patient (a stable sort), as an 837 batch
lays its claims out - one 2000A loop per provider, one 2000B loop per patient under it. With
`--shuffled` the claims stay in generate.py's order, where almost every claim changes provider and
patient and so has its own 2000A and 2000B loops: about half again as many segments, the worst case.
Each side is read in-process by `payrule.claims.readers.read_claims`, best of 3, and the mapping alone
(`read_x12`) is timed too, so the ratio splits into the X12 mapping and the claim reader it feeds
(`payrule.claims.formats.build_mapped`). Reading the same claims both ways is the fair comparison:
both end in the same runtime Claims (tests/test_x12.py checks that).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from generate import best_time as best  # noqa: E402
from generate import claim_objects  # noqa: E402

from payrule.claims.readers import read_claims  # noqa: E402
from payrule.claims.x12 import read_x12, unsayable, write_x12  # noqa: E402


def claims(n: int, seed: int) -> list[dict]:
    """The generated claims X12 can say, as claim objects."""
    out = []
    for c in claim_objects(n, seed):
        if unsayable(c) is None:
            out.append(c)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--claims", type=int, default=100_000, metavar="N", help="claims to generate (default 100000)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--runs", type=int, default=3, help="best of this many runs (default 3)")
    ap.add_argument("--shuffled", action="store_true", help="keep generate.py's order (a 2000A/2000B per claim)")
    args = ap.parse_args(argv)
    cs = claims(args.claims, args.seed)
    if not args.shuffled:
        cs.sort(key=lambda c: (c.get("provider_id") or "", c.get("patient_id") or "", c.get("payer") or ""))
    jsonl = b"".join(json.dumps(c, ensure_ascii=False).encode("utf-8") + b"\n" for c in cs)
    x12 = write_x12(cs)
    print(f"{len(cs)} claims ({'generate.py order' if args.shuffled else 'grouped by provider and patient'}): JSON Lines {len(jsonl) / 1e6:.1f} MB, X12 {len(x12) / 1e6:.1f} MB")
    t_jsonl = best(lambda: read_claims(jsonl, "claims.jsonl"), args.runs)
    t_x12 = best(lambda: read_claims(x12, "claims.x12"), args.runs)
    t_map = best(lambda: sum(1 for _ in read_x12(x12)), args.runs)
    rate = len(cs) / 1e3
    print(f"{'JSON Lines':<28}{t_jsonl:8.2f} s  {rate / t_jsonl:7.0f}k claims/s")
    print(f"{'X12 837P':<28}{t_x12:8.2f} s  {rate / t_x12:7.0f}k claims/s  x{t_x12 / t_jsonl:.2f}")
    print(f"{'  of which read_x12 alone':<28}{t_map:8.2f} s  (splitting and mapping to claim objects)")
    print(f"X12/JSONL read ratio: {t_x12 / t_jsonl:.2f} (target <= 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
