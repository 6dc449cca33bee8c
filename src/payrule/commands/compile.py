"""`payrule compile`: one Python module per policy."""
from __future__ import annotations

from pathlib import Path

from ..api import PolicyError
from ..compiler import compile_model
from ..diagnostics import render_all
from ..loader import default_policy_dir, load_workspace
from ._common import EXIT_OK, usage_error

NAME = "compile"
HELP = "compile policies into Python modules"
DESCRIPTION = "Compile each policy into one Python module that needs only the standard library and payrule.runtime."


def add_arguments(k) -> None:
    k.add_argument("policy_files", nargs="+", metavar="POLICY")
    k.add_argument("-o", "--out", metavar="DIR", required=True, help="folder for the generated modules")
    k.add_argument("--policies", metavar="DIR", action="append", help="folders where included policies are found (default: the shipped policies)")


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
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for p, _ in files:
        model = ws.model_for_file(p)
        target = out / (model.id.replace("-", "_") + ".py")
        target.write_text(compile_model(model), encoding="utf-8")
        print(f"{p.as_posix()} -> {target.as_posix()}")
    return EXIT_OK
