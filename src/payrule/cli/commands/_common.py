"""What every subcommand shares: exit statuses and reading input."""
from __future__ import annotations

import sys
from pathlib import Path

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
EXIT_CLAIM_ERRORS = EXIT_FINDINGS


FORMAT_HELP = ("how to print the diagnostics: text (default: the located message, the source line, a caret "
               "and the help) or json (one JSON array of objects with code, severity, message, help, path, "
               "line, col, end_line and end_col)")


def usage_error(msg: str) -> int:
    sys.stderr.write(f"payrule: error: {msg}\n")
    return EXIT_USAGE


def read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


class NoSuchPolicyFile(Exception):
    pass


def load_policy_files(policy_files, policies):
    """The named policy files checked together with every policy in the folders (`--policies`,
    default the shipped ones) where their includes are found. Returns the workspace and the files;
    raises PolicyError (with the coded diagnostics) when any policy has errors, NoSuchPolicyFile for
    a missing file."""
    from payrule.api import PolicyError
    from payrule.loader import default_policy_dir, load_workspace

    files = []
    for f in policy_files:
        p = Path(f)
        if not p.is_file():
            raise NoSuchPolicyFile(f"cannot read policy file {f}: no such file")
        files.append((p, p.as_posix()))
    dirs = [Path(d) for d in (policies or [default_policy_dir()])]
    ws = load_workspace(files=files, dirs=dirs)
    if ws.errors:
        raise PolicyError(ws)  # its `diagnostics`, and `rendered` as every command prints them
    return ws, [p for p, _ in files]
