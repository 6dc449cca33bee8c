"""The `payrule` command. Exit status: 0 ok; 1 some claim was an error (check) or a finding (lint, fmt
--check, test); 2 usage or policy error, nothing decided."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from .api import PolicySet, PolicyError
from .claims import ClaimError, HistoryError, read_claims, read_history
from .compiler import compile_model
from .diagnostics import render_all
from .engine import decide, decision_json
from .loader import default_policy_dir, load_workspace

EXIT_OK, EXIT_CLAIM_ERRORS, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 on usage errors, as the contract wants
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"payrule: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="payrule", description="Compile payer policies into claim checkers and decide claims.")
    ap.add_argument("--version", action="version", version=f"payrule {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    c = sub.add_parser("check", help="decide claims with the policies", description="Decide claims (JSON Lines or CSV) with the policies; print one decision or error object per claim.")
    c.add_argument("claims", nargs="*", metavar="CLAIMS", help="claims files (JSON Lines or CSV); standard input when none")
    c.add_argument("--history", metavar="FILE", help="earlier claims that count as already paid; not decided, not printed")
    c.add_argument("--policies", metavar="DIR", action="append", help="policy folder (default: the shipped policies); may repeat")
    c.add_argument("--format", choices=("jsonl", "table"), default="jsonl", help="jsonl (default) or a table for people")
    c.add_argument("-o", "--output", metavar="FILE", help="write decisions here instead of standard output")

    k = sub.add_parser("compile", help="compile policies into Python modules", description="Compile each policy into one Python module that needs only the standard library and payrule.runtime.")
    k.add_argument("policy_files", nargs="+", metavar="POLICY")
    k.add_argument("-o", "--out", metavar="DIR", required=True, help="folder for the generated modules")
    k.add_argument("--policies", metavar="DIR", action="append", help="folders where included policies are found (default: the shipped policies)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.command is None:
        ap.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return {"check": cmd_check, "compile": cmd_compile}[args.command](args)
    except PolicyError as exc:
        sys.stderr.write(exc.rendered + "\n")
        return EXIT_USAGE
    except BrokenPipeError:  # pragma: no cover - `payrule check ... | head`
        return EXIT_OK


def _usage_error(msg: str) -> int:
    sys.stderr.write(f"payrule: error: {msg}\n")
    return EXIT_USAGE


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


def cmd_check(args) -> int:
    dirs = [Path(d) for d in (args.policies or [default_policy_dir()])]
    policies = PolicySet.load(dirs)
    history = []
    if args.history:
        try:
            history = read_history(_read(args.history), args.history)
        except OSError as exc:
            return _usage_error(f"cannot read history file {args.history}: {exc.strerror or exc}")
        except HistoryError as exc:
            return _usage_error(str(exc))
    records = []
    files = args.claims or ["-"]
    for path in files:
        try:
            data = _read(path)
        except OSError as exc:
            return _usage_error(f"cannot read claims file {path}: {exc.strerror or exc}")
        recs = read_claims(data, path if path != "-" else "<stdin>", first_order=len(records))
        if len(files) > 1:
            recs = [ClaimError(r.claim_id, f"{path}: {r.error}", r.input_line) if isinstance(r, ClaimError) else r for r in recs]
        records.extend(recs)
    decided = decide(policies.checkers, records, history)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        if args.format == "table":
            out.write(format_table(decided))
        else:
            write = out.write
            for d in decided:
                write(json.dumps(decision_json(d), ensure_ascii=False))
                write("\n")
    finally:
        if args.output:
            out.close()
    return EXIT_CLAIM_ERRORS if any(isinstance(d, ClaimError) for d in decided) else EXIT_OK


def format_table(decided) -> str:
    """Decisions for people: one row per line, reasons beneath, a count at the end."""
    rows = []
    counts = {"approve": 0, "review": 0, "deny": 0, "error": 0}
    for d in decided:
        obj = decision_json(d)
        if "error" in obj:
            counts["error"] += 1
            rows.append(f"{obj['claim_id'] or '-':<12} {'':>4} {'':<6} {'ERROR':<8} input line {obj['input_line']}: {obj['error']}")
            continue
        counts[obj["decision"]] += 1
        for ln in obj["lines"]:
            rows.append(f"{obj['claim_id']:<12} {ln['line']:>4} {ln['code']:<6} {ln['decision'].upper()}")
            for r in ln["reasons"]:
                rows.append(f"{'':<12} {'':>4} {'':<6} {'':<8} {r['outcome']}: {r['message']} [{r['policy']}/{r['rule']}, {r['source']}]")
    head = f"{'CLAIM':<12} {'LINE':>4} {'CODE':<6} DECISION"
    total = ", ".join(f"{n} {k}" for k, n in counts.items())
    return "\n".join([head, *rows, "", f"{sum(counts.values())} claims: {total}", ""])


def cmd_compile(args) -> int:
    files = []
    for f in args.policy_files:
        p = Path(f)
        if not p.is_file():
            return _usage_error(f"cannot read policy file {f}: no such file")
        files.append((p, p.as_posix()))
    dirs = [Path(d) for d in (args.policies or [default_policy_dir()])]
    ws = load_workspace(files=files, dirs=dirs)
    if ws.errors:
        raise PolicyError(render_all(ws.diagnostics, ws.sources))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for p, _ in files:
        model = ws.model_for_file(p)
        target = out / (model.id.replace("-", "_") + ".py")
        target.write_text(compile_model(model), encoding="utf-8")
        print(f"{p.as_posix()} -> {target.as_posix()}")
    return EXIT_OK
