"""Checkers compiled by an earlier run, kept in the user's cache folder, so that `payrule check` of policies
it has compiled before reads no grammar, imports neither lark nor jinja2 nor the compiler, and starts
deciding at once.

An entry is named by a SHA-256 of everything the generated modules are made from: every policy file read
(where it is, the name it is reported under, its bytes), the options that choose among them (--no-shipped,
--replace), the compiler's own source files and grammar, the runtime API version and the Python version.
Change any of these and the key changes: a stale entry is never read, only left to be pruned.

Where: `$PAYRULE_CACHE_DIR`, else `$XDG_CACHE_HOME/payrule`, else `~/.cache/payrule`; one's own folder,
never a folder beside the installed package, never a shared /tmp (the style guide: hcl2 #8, lark #1178).
`PAYRULE_NO_CACHE=1` turns it off. An entry holds Python that is executed, so a folder or entry that is
not the user's own, or that others may write to, is not read. Every failure to read or write the cache is
a miss: the policies are compiled as if there were none, never an error of the run.

Standard library only, besides payrule.run.loaded: importing this must not load the compiler.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from payrule import __version__
from payrule.discovery import SHIPPED, default_policy_dir, discover, shown_path
from payrule.lang.grammar import grammar_path
from payrule.run.loaded import Checker, Versions, load_module, route
from payrule.runtime import API_VERSION

__all__ = ["CompiledPolicies", "directory", "inputs", "key", "read", "write", "KEEP"]

FORMAT = 1  # of an entry's JSON; part of the key
KEEP = 64  # entries kept; the least recently written beyond that are removed
_PACKAGE = Path(__file__).resolve().parents[1]
# What the generated modules are made from besides the policies: the language, the code generator, the loader.
_COMPILER = ("lang", "codegen", "loader.py", "discovery.py")


@dataclass(frozen=True)
class Input:
    """One policy file as the key sees it."""

    origin: str  # "shipped" or "own"
    name: str  # as reported
    path: str  # resolved: two names of one file are one file to the loader
    data: bytes


class CompiledPolicies:
    """Loaded checkers routed by payer, as PolicySet has them, made from an entry's generated modules: what
    `payrule check` decides with. (No models, no sources: `why`, `explain` and `lint` load the policies.)"""

    def __init__(self, modules: Sequence[tuple[str, str]], reads_extra: bool):
        self.modules = tuple(modules)
        self.reads_extra = reads_extra
        self.checkers: dict[str, Checker | Versions] = route(Checker(load_module(text, pid)) for pid, text in modules)

    @property
    def payers(self) -> list[str]:
        return sorted({c.payer for c in self.checkers.values() if c.payer is not None})


def directory() -> Path | None:
    """The cache folder, or None when the cache is off."""
    if os.environ.get("PAYRULE_NO_CACHE"):
        return None
    given = os.environ.get("PAYRULE_CACHE_DIR")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "payrule"


def inputs(dirs: Iterable[str | Path], *, shipped: bool = True) -> list[Input] | None:
    """The policy files a run with these --policies folders reads (and the shipped ones, unless not
    `shipped`), or None when a folder or file cannot be read: the loader then says why, uncached."""
    out: list[Input] = []
    folders = ([(default_policy_dir(), SHIPPED, "shipped")] if shipped else []) + [
        (Path(d), shown_path(d), "own") for d in dirs]
    try:
        for folder, name, origin in folders:
            if not folder.is_dir():
                return None
            for path, shown in discover(folder, name):
                out.append(Input(origin, shown, str(path.resolve()), path.read_bytes()))
    except OSError:
        return None
    return out


def _compiler_files() -> list[Path]:
    files = [grammar_path()]
    for part in _COMPILER:
        here = _PACKAGE / part
        files += sorted(p for p in here.rglob("*") if p.is_file() and "__pycache__" not in p.parts) if here.is_dir() else [here]
    return files


def key(files: Sequence[Input], replace: Sequence[str] = ()) -> str | None:
    """The entry name for these inputs, or None when the compiler's own files cannot be read."""
    h = hashlib.sha256()

    def part(b: bytes) -> None:  # length-prefixed: no two different inputs run together alike
        h.update(len(b).to_bytes(8, "big"))
        h.update(b)

    part(f"payrule-cache {FORMAT} {__version__} api {API_VERSION} python {sys.version_info[:2]}".encode())
    try:
        for p in _compiler_files():
            part(p.relative_to(_PACKAGE).as_posix().encode() if p.is_relative_to(_PACKAGE) else b"grammar")
            part(p.read_bytes())
    except OSError:
        return None
    for f in files:
        for b in (f.origin.encode(), f.name.encode(), f.path.encode(), f.data):
            part(b)
    part("\0".join(["replace", *replace]).encode())
    return h.hexdigest()


def _own(st: os.stat_result) -> bool:
    """A folder or file that is the user's own and that nobody else may write to."""
    mine = not hasattr(os, "getuid") or st.st_uid == os.getuid()
    return mine and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def read(folder: Path | None, name: str | None) -> CompiledPolicies | None:
    """The entry `name`, loaded; None when there is none or it is not to be trusted or read."""
    if folder is None or name is None:
        return None
    path = folder / f"{name}.json"
    try:
        if not _own(os.stat(folder)):
            return None
        with open(path, "rb") as f:
            if not _own(os.fstat(f.fileno())):
                return None
            entry = json.loads(f.read())
        if entry.get("format") != FORMAT or entry.get("key") != name:
            return None
        modules = [(str(pid), str(text)) for pid, text in entry["modules"]]
        reads_extra = bool(entry["reads_extra"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return CompiledPolicies(modules, reads_extra)


def write(folder: Path | None, name: str | None, modules: Sequence[tuple[str, str]], reads_extra: bool) -> bool:
    """Keep the generated modules under `name` (written whole, then renamed: a reader sees all of an
    entry or none); prune the folder to KEEP entries. False when it could not be written."""
    if folder is None or name is None:
        return False
    data = json.dumps({"format": FORMAT, "key": name, "payrule": __version__, "reads_extra": reads_extra,
                       "modules": [list(m) for m in modules]}, sort_keys=True).encode()
    tmp = None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _own(os.stat(folder)):
            return False
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".entry-", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, folder / f"{name}.json")
        tmp = None
        _prune(folder)
    except OSError:
        return False
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return True


def _prune(folder: Path) -> None:
    entries = []
    for p in folder.glob("*.json"):
        try:
            entries.append((p.stat().st_mtime_ns, p.name, p))
        except OSError:  # removed by another run meanwhile
            pass
    for _, _, p in sorted(entries, reverse=True)[KEEP:]:
        try:
            p.unlink()
        except OSError:
            pass
