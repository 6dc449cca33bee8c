"""The `payrule` command line. Exit status: 0 ok; 1 a claim was an error (check) or there were
findings (lint, fmt --check, test); 2 a usage or policy error, nothing decided.

Subcommands live in `payrule.cli.commands`, one module each, and are found at start-up.
"""
from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from typing import Sequence

from payrule import __version__
from payrule.cli import commands
from payrule.cli.commands._common import EXIT_OK, EXIT_USAGE, NoPolicies, NoSuchPolicyFile, usage_error

GC_EVERY = 100_000  # allocations between the collector's passes while a command runs (see main)
# The order subcommands are listed in `payrule --help`; modules not named here follow, sorted.
ORDER = ("check", "compile", "explain", "why", "fmt", "lint", "test", "diff")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors exit 2, as the contract wants
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"payrule: error: {message}\n")


def _command_names() -> list[str]:
    """The subcommands' module names, in `payrule --help` order (found without importing them, and without
    pkgutil, whose import of inspect costs start-up more than the listing)."""
    names = {f[:-3] for d in commands.__path__ for f in os.listdir(d) if f.endswith(".py") and not f.startswith("_")}
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def _command_modules(only: str | None = None) -> list:
    names = [only] if only is not None else _command_names()
    return [importlib.import_module(f"{commands.__name__}.{n}") for n in names]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with `only`, the parser of that one subcommand (the others are not imported:
    `payrule check` does not pay for importing the linter, the formatter and the server)."""
    ap = _Parser(prog="payrule", description="Compile payer policies into claim checkers and decide claims.")
    ap.add_argument("--version", action="version", version=f"payrule {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for mod in _command_modules(only):
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.DESCRIPTION)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    only = argv[0].replace("-", "_") if argv and argv[0].replace("-", "_") in _command_names() else None
    ap = build_parser(only)
    args = ap.parse_args(argv)
    if args.command is None:
        ap.print_help(sys.stderr)
        return EXIT_USAGE
    # A command's objects (a policy's parse tree and nodes, claims) mostly live until it ends, and make no
    # cycles: the collector's default, a pass every 700 allocations that rescans the older objects now and
    # then, took half the time of parsing a 10,000-rule policy. A command runs with a pass every GC_EVERY;
    # the process's own setting is put back after (tests call main in-process). `check` pauses it.
    thresholds = gc.get_threshold()
    gc.set_threshold(GC_EVERY, *thresholds[1:])
    try:
        return args._run(args)
    except NoSuchPolicyFile as exc:  # a policy file named on the command line that is not there
        return usage_error(str(exc), "PR005")
    except NoPolicies as exc:  # --no-shipped and nothing else
        return usage_error(str(exc))
    except BrokenPipeError:  # pragma: no cover - `payrule check ... | head`
        return EXIT_OK
    except KeyboardInterrupt:  # Ctrl-C: no traceback; an output file is left only as `FILE.partial`
        sys.stderr.write("payrule: interrupted\n")
        return 130
    except Exception as exc:
        status = _policy_failure(exc)
        if status is None:
            raise
        return status
    finally:
        gc.set_threshold(*thresholds)


def _policy_failure(exc: Exception) -> int | None:
    """The exit status for an error about the policies (printed here), or None for any other. The classes
    are looked up among the modules loaded (an exception of a class means its module was imported), so that
    `payrule check` with its checkers cached never loads the compiler to catch what it cannot raise."""
    api, diagnostics, loader = (sys.modules.get(f"payrule.{m}") for m in ("api", "lang.diagnostics", "loader"))
    if api is not None and isinstance(exc, api.PolicyError):
        sys.stderr.write(exc.rendered + "\n")
        return EXIT_USAGE
    if diagnostics is not None and isinstance(exc, diagnostics.DiagnosticError):
        for d in exc.diagnostics:  # a policy folder or file that cannot be read: one line each, exit 2
            sys.stderr.write(f"payrule: error[{d.code}]: {d.message}\n")
        return EXIT_USAGE
    if loader is not None and isinstance(exc, loader.PolicyPathError):  # --replace that cannot be done
        return usage_error(str(exc))
    return None
