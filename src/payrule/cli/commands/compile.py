"""`payrule compile`: one Python module per policy."""
from __future__ import annotations

from pathlib import Path

from payrule.codegen.compiler import compile_model
from payrule.cli.commands._common import EXIT_OK, NoSuchPolicyFile, load_policy_files, usage_error

NAME = "compile"
HELP = "compile policies into Python modules"
DESCRIPTION = "Compile each policy into one Python module that needs only the standard library and payrule.runtime."


def add_arguments(k) -> None:
    k.add_argument("policy_files", nargs="+", metavar="POLICY")
    k.add_argument("-o", "--out", metavar="DIR", required=True, help="folder for the generated modules")
    k.add_argument("--policies", metavar="DIR", action="append", help="folders where included policies are found (default: the shipped policies)")


def run(args) -> int:
    try:
        ws, files = load_policy_files(args.policy_files, args.policies)
    except NoSuchPolicyFile as exc:
        return usage_error(str(exc))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for p in files:
        model = ws.model_for_file(p)
        target = out / (model.id.replace("-", "_") + ".py")
        target.write_text(compile_model(model), encoding="utf-8")
        print(f"{p.as_posix()} -> {target.as_posix()}")
    return EXIT_OK
