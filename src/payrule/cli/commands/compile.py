"""`payrule compile`: one Python module per policy."""
from __future__ import annotations

from pathlib import Path

from payrule.api import PolicyError
from payrule.cli.commands._common import (
    EXIT_OK,
    EXIT_USAGE,
    FORMAT_HELP,
    NoSuchPolicyFile,
    add_policy_arguments,
    load_policy_files,
    usage_error,
)
from payrule.codegen.compiler import compile_model
from payrule.lang.diagnostics import render_json

NAME = "compile"
HELP = "compile policies into Python modules"
DESCRIPTION = (
    "Compile each policy into one Python module that needs only the standard library and payrule.runtime. "
    "A policy with errors compiles nothing: the errors go to standard error and the exit status is 2. With "
    "--format json, standard output is one JSON array of the errors instead (`[]` when every module was "
    "written), and nothing else."
)


def add_arguments(k) -> None:
    k.add_argument("policy_files", nargs="+", metavar="POLICY")
    k.add_argument("-o", "--out", metavar="DIR", required=True, help="folder for the generated modules")
    add_policy_arguments(k, "a folder of your own policies where included ones are found, beside the shipped ones; may repeat")
    k.add_argument("--format", choices=("text", "json"), default="text", help=FORMAT_HELP)


def module_file(policy_id: str) -> str:
    """The file a policy's module is written to: `acme-knee` -> `acme_knee.py`."""
    return policy_id.replace("-", "_").replace(".", "_") + ".py"


def run(args) -> int:
    try:
        ws, files = load_policy_files(args.policy_files, args)
    except NoSuchPolicyFile as exc:
        return usage_error(str(exc), "PR005")
    except PolicyError as exc:
        if args.format != "json":
            raise  # printed as every command prints policy errors (payrule.cli.main)
        print(render_json(exc.diagnostics))
        return EXIT_USAGE
    out = Path(args.out)
    targets: dict[str, str] = {}  # module file -> the policy it is for: two policies never share one
    for p in files:
        model = ws.model_for_file(p)
        name = module_file(model.id)
        if targets.setdefault(name, model.id) != model.id:
            return usage_error(f"policies `{targets[name]}` and `{model.id}` would both compile to {name}: "
                               "rename one (module names replace `-` with `_`)")
    out.mkdir(parents=True, exist_ok=True)
    for p in files:
        model = ws.model_for_file(p)
        target = out / module_file(model.id)
        target.write_text(compile_model(model), encoding="utf-8")
        if args.format != "json":
            print(f"{p.as_posix()} -> {target.as_posix()}")
    if args.format == "json":
        print(render_json([]))
    return EXIT_OK
