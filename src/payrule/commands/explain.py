"""`payrule explain`: every rule of a policy in plain English."""
from __future__ import annotations

import sys
from pathlib import Path

from ..api import PolicyError
from ..diagnostics import render_all
from ..explain import FORMATS, render_policy
from ..loader import default_policy_dir, load_workspace
from ._common import EXIT_OK, usage_error

NAME = "explain"
HELP = "say what each rule of a policy does, in plain English"
DESCRIPTION = (
    "Print each policy's title, payer and sources, then every rule it applies (included rules first): "
    "its id, where it is written, what it does in plain English and its message."
)


def add_arguments(k) -> None:
    k.add_argument("policy_files", nargs="+", metavar="POLICY", help="policy files to explain")
    k.add_argument("--policies", metavar="DIR", action="append",
                   help="folders where included policies are found (default: the shipped policies); may repeat")
    k.add_argument("--own", action="store_true",
                   help="only the policy's own rules and sources, not those of the policies it includes")
    k.add_argument("--format", choices=FORMATS, default="text", help="text (default) or markdown")


def run(args) -> int:
    files = []
    for f in args.policy_files:
        p = Path(f)
        if not p.is_file():
            return usage_error(f"cannot read policy file {f}: no such file")
        files.append((p, p.as_posix()))
    dirs = [Path(d) for d in (args.policies or [default_policy_dir()])]
    ws = load_workspace(files=files, dirs=dirs)
    if ws.errors:
        raise PolicyError(rendered=render_all(ws.diagnostics, ws.sources))
    parts, seen = [], set()
    for p, _ in files:
        model = ws.model_for_file(p)
        if model.id in seen:
            continue
        seen.add(model.id)
        parts.append(render_policy(model, args.format, own_only=args.own).rstrip("\n") + "\n")
    sys.stdout.write(("\n---\n\n" if args.format == "markdown" else "\n").join(parts))
    return EXIT_OK
