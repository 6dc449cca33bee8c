"""What every subcommand shares: exit statuses and reading input."""
from __future__ import annotations

import sys
from pathlib import Path

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
EXIT_CLAIM_ERRORS = EXIT_FINDINGS


def usage_error(msg: str) -> int:
    sys.stderr.write(f"payrule: error: {msg}\n")
    return EXIT_USAGE


def read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()
