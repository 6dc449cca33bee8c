"""What every subcommand shares: exit statuses, reading input, and where the policies come from."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # the light commands do not load the language at start-up
    from payrule.api import PolicySet
    from payrule.loader import Workspace
    from payrule.run.cache import CompiledPolicies

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
EXIT_CLAIM_ERRORS = EXIT_FINDINGS


FORMAT_HELP = ("how to print the diagnostics: text (default: the located message, the source line, a caret "
               "and the help) or json (one JSON array of objects with code, severity, message, help, path, "
               "line, col, end_line and end_col)")


def usage_error(msg: str, code: str | None = None) -> int:
    """`payrule: error: MSG` on standard error (`error[CODE]` for a diagnostic's code); exit status 2."""
    sys.stderr.write(f"payrule: error{f'[{code}]' if code else ''}: {msg}\n")
    return EXIT_USAGE


def read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


# ---- where the policies come from ------------------------------------------------------------------
# Every command that reads policies reads the shipped ones and the user's own beside them:
#
#     --policies DIR    a folder of one's own policies, added to the shipped ones (may repeat)
#     --no-shipped      leave the shipped policies out: only one's own
#     --replace ID      one's own policy takes the place of the shipped policy ID (its id or payer)
#
# A policy of one's own with a shipped policy's id or payer is refused, the error naming the two flags.
# Policy files named on the command line (compile, explain, lint) take the place of the shipped policy
# with their id unasked: they are that policy, a revision or a copy of it.

POLICIES_HELP = "a folder of your own policies, read beside the shipped ones (searched recursively); may repeat"
NO_SHIPPED_HELP = "leave the shipped policies out: read only your own"
REPLACE_HELP = "your own policy takes the place of the shipped policy ID (a policy id or a payer); may repeat"


def add_policy_arguments(p, policies_help: str = POLICIES_HELP) -> None:
    """--policies, --no-shipped and --replace, as every command that reads policies takes them."""
    p.add_argument("--policies", metavar="DIR", action="append", default=[], help=policies_help)
    p.add_argument("--no-shipped", action="store_true", help=NO_SHIPPED_HELP)
    p.add_argument("--replace", metavar="ID", action="append", default=[], help=REPLACE_HELP)


class NoSuchPolicyFile(Exception):
    pass


class NoPolicies(Exception):
    """--no-shipped and nothing else: there would be no policy to decide with."""


def policy_workspace(args, files: Sequence[tuple[Path, str]] = (), named: Sequence[str | Path] = ()) -> "Workspace":
    """The shipped policies (unless --no-shipped), the --policies folders, and `files` and the policies in
    the folders `named` (named on the command line: each takes the place of the shipped policy with its id),
    read together. Your own files are reported as you gave them: relative to the working directory when
    under it, else as given; the shipped ones as `policies/...`. Raises DiagnosticError (a folder that
    cannot be read, PR005) and loader.PolicyPathError (a --replace that cannot be done)."""
    from payrule import loader

    no_shipped = getattr(args, "no_shipped", False)
    replace = getattr(args, "replace", None) or []
    if no_shipped and replace:
        raise loader.PolicyPathError("--replace with --no-shipped: there is no shipped policy to replace")
    dirs = [(Path(d), loader.shown_path(d)) for d in getattr(args, "policies", None) or []]
    if no_shipped and not dirs and not files and not named:
        raise NoPolicies("--no-shipped leaves no policies: give your own with --policies DIR")
    found = list(files)
    for d in named:
        if not Path(d).is_dir():
            dirs.append((Path(d), loader.shown_path(d)))  # the loader says why it cannot be read
            continue
        found += loader.discover(Path(d), loader.shown_path(d))
    return loader.load_workspace(files=found, dirs=dirs, shipped=None if no_shipped else loader.default_policy_dir(),
                                 replace=replace)


def load_policies(args, named: Sequence[str | Path] = ()) -> "PolicySet":
    """The checked, compiled policies a command decides with (see policy_workspace); raises PolicyError
    (with the coded diagnostics) when any has errors. `payrule why`, `test` and `serve` call it."""
    from payrule.api import PolicySet

    return PolicySet(policy_workspace(args, named=named))


def load_checkers(args) -> "PolicySet | CompiledPolicies":
    """The policies `payrule check` decides with: the checkers an earlier run compiled from these very
    files, from the cache (payrule.run.cache: no parse, no compile, no lark or jinja2 imported), else
    load_policies, keeping what it compiled for the next run."""
    from payrule.run import cache

    folder = cache.directory()
    no_shipped = getattr(args, "no_shipped", False)
    found = None  # no key: load_policies says what is wrong with these options, or there is no cache
    if folder is not None and not (no_shipped and not args.policies):
        found = cache.inputs(args.policies, shipped=not no_shipped)
    name = None if found is None else cache.key(found, getattr(args, "replace", None) or [])
    hit = cache.read(folder, name)
    if hit is not None:
        return hit
    policies = load_policies(args)
    cache.write(folder, name, [(pid, policies.source(pid)) for pid, p in sorted(policies.policies.items())
                               if p.payer is not None], policies.reads_extra)
    return policies


def named_file(f: str | Path) -> tuple[Path, str]:
    """A policy file named on the command line and the name it is reported under; NoSuchPolicyFile when
    it is not a file."""
    from payrule.loader import shown_path

    p = Path(f)
    if not p.is_file():
        raise NoSuchPolicyFile(f"cannot read policy file {f}: {'it is a folder' if p.is_dir() else 'no such file'}")
    return p, shown_path(p)


def load_policy_files(policy_files, args):
    """The named policy files checked together with the policies read beside them (see policy_workspace)
    where their includes are found. Returns the workspace and the files; raises PolicyError (with the coded
    diagnostics) when any policy has errors, NoSuchPolicyFile for a missing file."""
    from payrule.api import PolicyError

    files = [named_file(f) for f in policy_files]
    ws = policy_workspace(args, files=files)
    if ws.errors:
        raise PolicyError(ws)  # its `diagnostics`, and `rendered` as every command prints them
    return ws, [p for p, _ in files]
