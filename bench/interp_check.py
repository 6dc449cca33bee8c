"""`payrule check` through the reference interpreter (payrule.run.interpreter), for bench/run.py:

    python bench/interp_check.py CLAIMS [--history FILE]

Reads claims with payrule.claims.readers, decides them with `payrule.run.interpreter.interpret(models_by_payer,
records, history)` and prints the contract's JSON Lines. Exit status as `payrule check` (0, 1 when a
claim was an error, 2 when the interpreter or the history is missing or unreadable).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("claims")
    ap.add_argument("--history", metavar="FILE")
    args = ap.parse_args(argv)
    try:
        from payrule import interpreter
    except ImportError as exc:
        sys.stderr.write(f"interp_check: no reference interpreter: {exc}\n")
        return 2
    from payrule.claims.readers import ClaimError, HistoryError, read_claims, read_history
    from payrule.loader import default_policy_dir, load_workspace
    from payrule.run.engine import decision_json

    ws = load_workspace(dirs=[default_policy_dir()])
    if ws.errors:
        sys.stderr.write("interp_check: the shipped policies have errors\n")
        return 2
    models = {m.payer: m for m in ws.policies.values() if m.payer is not None}
    history = []
    if args.history:
        try:
            history = read_history(Path(args.history).read_bytes(), args.history)
        except (OSError, HistoryError) as exc:
            sys.stderr.write(f"interp_check: {exc}\n")
            return 2
    records = read_claims(Path(args.claims).read_bytes(), args.claims)
    decided = interpreter.interpret(models, records, history)
    write = sys.stdout.write
    errors = False
    for d in decided:
        obj = d if isinstance(d, dict) else decision_json(d)
        errors = errors or isinstance(d, ClaimError) or "error" in obj
        write(json.dumps(obj, ensure_ascii=False))
        write("\n")
    sys.stdout.flush()
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
