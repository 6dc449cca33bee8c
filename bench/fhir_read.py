"""How much slower claims read from FHIR R4 are than the same claims read from JSON Lines.

    python bench/fhir_read.py                 # 100k claims
    python bench/fhir_read.py --claims 1000000

Generates N claims with bench/generate.py, keeps those FHIR can say (write_fhir refuses a few, e.g. a
line whose own diagnosis list is empty; broken JSON lines have no claim to write), and writes them as
JSON Lines and as FHIR NDJSON (and a Bundle). Each side is read in-process by
`payrule.claims.readers.read_claims`, best of 3 with the garbage collector off (as `payrule check`
reads), and the mapping alone (`read_fhir`) is timed too, so the ratio can be split into the FHIR
mapping and the claim reader it feeds. Reading the same claims
both ways is the fair comparison: both end in the same runtime Claims (tests/test_fhir.py checks that).
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

from payrule.claims.fhir import read_fhir, write_fhir  # noqa: E402
from payrule.claims.readers import read_claims  # noqa: E402


def claims(n: int, seed: int) -> list[dict]:
    """The generated claims FHIR can say, as claim objects."""
    out = []
    for c in claim_objects(n, seed):
        try:
            write_fhir([c])
        except ValueError:
            continue
        out.append(c)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--claims", type=int, default=100_000, metavar="N", help="claims to generate (default 100000)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--runs", type=int, default=3, help="best of this many runs (default 3)")
    args = ap.parse_args(argv)
    cs = claims(args.claims, args.seed)
    jsonl = b"".join(json.dumps(c, ensure_ascii=False).encode("utf-8") + b"\n" for c in cs)
    ndjson = write_fhir(cs)
    bundle = write_fhir(cs, bundle=True)
    n = len(cs)
    del cs
    print(f"{n} claims: JSON Lines {len(jsonl) / 1e6:.1f} MB, FHIR NDJSON {len(ndjson) / 1e6:.1f} MB, "
          f"Bundle {len(bundle) / 1e6:.1f} MB")
    t_jsonl = best(lambda: read_claims(jsonl, "claims.jsonl"), args.runs)
    t_nd = best(lambda: read_claims(ndjson, "claims.ndjson", fmt="fhir"), args.runs)
    t_bundle = best(lambda: read_claims(bundle, "claims.json", fmt="fhir"), args.runs)
    t_map = best(lambda: sum(1 for _ in read_fhir(ndjson)), args.runs)
    rate = n / 1e3
    print(f"{'JSON Lines':<28}{t_jsonl:8.2f} s  {rate / t_jsonl:7.0f}k claims/s")
    print(f"{'FHIR NDJSON':<28}{t_nd:8.2f} s  {rate / t_nd:7.0f}k claims/s  x{t_nd / t_jsonl:.2f}")
    print(f"{'FHIR Bundle':<28}{t_bundle:8.2f} s  {rate / t_bundle:7.0f}k claims/s  x{t_bundle / t_jsonl:.2f}")
    print(f"{'  of which read_fhir alone':<28}{t_map:8.2f} s  (NDJSON: decoding and mapping to claim objects)")
    print(f"FHIR/JSONL read ratio: {t_nd / t_jsonl:.2f} (NDJSON), {t_bundle / t_jsonl:.2f} (Bundle)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
