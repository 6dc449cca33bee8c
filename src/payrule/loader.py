"""Policy files -> parsed, checked models -> generated modules -> loaded checkers."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Iterable, Sequence, Union

from payrule.codegen.compiler import compile_ir
from payrule.discovery import SHIPPED, SUFFIX, default_policy_dir, discover, shown_path, walk  # re-exported
from payrule.lang import ir, nodes
from payrule.lang.checker import Unit, check
from payrule.lang.diagnostics import Diagnostic, DiagnosticError, error
from payrule.lang.lower import lower_policy
from payrule.lang.model import Model
from payrule.lang.parser import parse
from payrule.lang.source import SourceFile, Span
from payrule.runtime.schema import payer_key

__all__ = ["default_policy_dir", "discover", "walk", "shown_path", "SHIPPED", "SUFFIX", "PolicyPathError", "Workspace",
           "load_workspace", "load_module", "Checker", "checker_for"]

from payrule.run.loaded import Checker, load_module  # noqa: E402  (re-exported: the light half of loading)


def checker_for(policy: ir.Policy) -> Checker:
    """Compile a lowered policy and load it."""
    return Checker(load_module(compile_ir(policy), policy.id))

class PolicyPathError(ValueError):
    """A `replace` that names no shipped policy, or one that none of one's own policies takes the place of."""


@dataclass(frozen=True)
class _Conflict:
    """A policy of one's own in the way of a shipped one: the error said instead of the checker's (which
    is found at one of `spans`)."""

    diagnostic: Diagnostic
    spans: frozenset[tuple[str, str, int, int]]  # (code, path, line, col) of the checker's diagnostics it replaces


@dataclass
class Workspace:
    """Policies read together: their sources, checked models (when every file checked clean), the
    same lowered (`policies`: what codegen, the interpreter and explain read) and findings."""

    sources: dict[str, SourceFile]
    models: dict[str, Model]
    diagnostics: list[Diagnostic]
    paths: dict[str, str]  # resolved path -> reported name
    shipped: frozenset[str] = frozenset()  # the reported names of the shipped policy files read
    conflicts: tuple[_Conflict, ...] = ()
    # Every file parsed, in the order read, when all of them parsed: `diagnostics` are then the checker's
    # over all of them, and the linter starts from these instead of parsing again. Empty otherwise.
    units: tuple[Unit, ...] = ()
    policies: dict[str, ir.Policy] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.policies = {pid: lower_policy(m) for pid, m in self.models.items()}

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity.value == "error"]

    def model_for_file(self, path: str | Path) -> Model:
        name = self.paths[str(Path(path).resolve())]
        for m in self.models.values():
            if m.path == name:
                return m
        raise KeyError(name)  # pragma: no cover

    def policy_for_file(self, path: str | Path) -> ir.Policy:
        """The lowered policy a file defines."""
        return self.policies[self.model_for_file(path).id]

    def explained(self, diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
        """The checker's diagnostics with those about a policy of one's own in the way of a shipped one
        replaced by the errors that say how to go on (`--replace`, `--no-shipped`)."""
        return _explained(list(diagnostics), self.conflicts)


def _explained(diags: list[Diagnostic], conflicts: Sequence[_Conflict]) -> list[Diagnostic]:
    if not conflicts:
        return diags
    gone = set().union(*(c.spans for c in conflicts))
    kept = [d for d in diags if (d.code, d.span.path, d.span.line, d.span.col) not in gone]
    return sorted(kept + [c.diagnostic for c in conflicts], key=lambda d: d.sort_key)


Folder = Union[Path, tuple[Path, str]]


@dataclass
class _File:
    path: Path | None
    name: str
    origin: str  # "shipped", "own" (from a folder of one's own), "named" (named on the command line) or "text"
    source: SourceFile | None = None
    unit: Unit | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)  # why it could not be read or parsed


def load_workspace(files: Iterable[tuple[Path, str]] = (), dirs: Iterable[Folder] = (), texts: Sequence[SourceFile] = (),
                   *, shipped: Path | None = None, replace: Iterable[str] = ()) -> Workspace:
    """Parse and check policy files together; a file given twice (by any path to it) is read once.

    `files` are (path, reported name) pairs; `dirs` are folders, each searched recursively, or (folder,
    name) pairs whose files are reported as `name/...` (by default as `FOLDER-NAME/...`).

    `shipped` is the folder of the shipped policies, read with the others and reported as `policies/...`
    wherever it is installed. A policy of one's own that has a shipped policy's id, or that answers to a
    shipped policy's payer on the same dates, is then an error (PR103, PR105) whose help says how to go on:
    `replace` names the shipped policies (by id, or by payer) that one's own take the place of; they are
    left out. A file of `files` (one named on the command line) that defines a shipped policy's id takes
    its place unasked: it is that policy, a revision or a copy of it. Raises PolicyPathError for a
    `replace` that names no shipped policy, or that none of one's own policies takes the place of.
    """
    entries: dict[str, _File] = {}

    def folder(d: Path, name: str | None, origin: str) -> None:
        if not Path(d).is_dir():
            what = "is not a folder" if Path(d).exists() else "does not exist"
            raise DiagnosticError([error("PR005", f"policy folder `{d}` {what}", Span(str(d), 1, 1, 1, 1))])
        for p, shown in discover(Path(d), name):
            entries.setdefault(str(p.resolve()), _File(p, shown, origin))

    if shipped is not None:
        folder(shipped, SHIPPED, "shipped")
    for d in dirs:
        d, name = d if isinstance(d, tuple) else (d, None)
        folder(Path(d), name, "own")
    for p, name in files:
        entry = entries.setdefault(str(Path(p).resolve()), _File(Path(p), name, "named"))
        if entry.origin == "own":
            entry.origin = "named"
    read: dict[str, _File] = {}  # resolved path (or "\0" and the text's name) -> the file, read and parsed
    for key, f in sorted(entries.items(), key=lambda kv: kv[1].name):
        _read(f)
        read[key] = f
    for src in texts:
        read["\0" + src.name] = f = _File(None, src.name, "text", src)
        _parse(f)
    conflicts: list[_Conflict] = []
    if shipped is not None:
        _leave_out_replaced(read, list(replace))
        taken = {f.name for f in read.values() if f.origin == "shipped"}
        for f in read.values():  # a file of one's own reported under a shipped file's name: `./` tells them apart
            if f.origin != "shipped" and f.path is not None and f.name in taken:
                f.name = "./" + f.name
                _read(f)
        conflicts = _in_the_way(read)
    sources: dict[str, SourceFile] = {}
    paths: dict[str, str] = {}
    diags: list[Diagnostic] = []
    for key, f in read.items():
        diags += f.diagnostics
        if f.source is not None:
            sources[f.source.name] = f.source
        if f.path is not None:
            paths[key] = f.name
    names = frozenset(f.name for f in read.values() if f.origin == "shipped")
    if diags:
        return Workspace(sources, {}, sorted(diags, key=lambda d: d.sort_key), paths, names, tuple(conflicts))
    units = tuple(f.unit for f in read.values() if f.unit is not None)
    result = check(list(units))
    return Workspace(sources, result.models, _explained(result.diagnostics, conflicts), paths, names, tuple(conflicts),
                     units)


def _read(f: _File) -> None:
    f.source, f.unit = None, None
    try:
        f.source = SourceFile.read(f.path, f.name)  # type: ignore[arg-type]
    except (OSError, UnicodeDecodeError) as exc:
        f.diagnostics = [error("PR005", f"cannot read policy file: {exc.__class__.__name__}", Span(f.name, 1, 1, 1, 1), help=str(exc))]
        return
    _parse(f)


def _parse(f: _File) -> None:
    assert f.source is not None
    try:
        f.unit = Unit(f.source, parse(f.source))
        f.diagnostics = []
    except DiagnosticError as exc:
        f.diagnostics = list(exc.diagnostics)


# ---- the shipped policies and one's own ------------------------------------------------------------


def _payer_names(policy: nodes.Policy) -> list[nodes.Ident]:
    return [policy.payer.name, *policy.aliases] if policy.payer is not None else []


def _period(policy: nodes.Policy) -> tuple[date, date]:
    v = policy.version
    if v is None:
        return (date.min, date.max)
    return (v.start.value if v.start else date.min, v.end.value if v.end else date.max)


def _key(code: str, sp: Span) -> tuple[str, str, int, int]:
    return (code, sp.path, sp.line, sp.col)


def _leave_out_replaced(read: dict[str, _File], replace: list[str]) -> None:
    """Leave out the shipped policies that one's own take the place of: those `replace` names (by id or
    payer), and those whose id a file named on the command line defines. A file of one's own folders that
    is a shipped file's exact copy is that file (the shipped one is kept)."""
    copies = {f.source.text for f in read.values() if f.origin == "shipped" and f.source is not None}
    for key in [k for k, f in read.items() if f.origin == "own" and f.source is not None and f.source.text in copies]:
        del read[key]
    shipped = [f for f in read.values() if f.origin == "shipped" and f.unit is not None]
    own = [f.unit.policy for f in read.values() if f.origin != "shipped" and f.unit is not None]
    complete = all(f.unit is not None for f in read.values() if f.origin != "shipped")
    gone: set[int] = set()
    for want in replace:
        hits = [f for f in shipped if _policy(f).id.value == want] or [
            f for f in shipped if payer_key(want) in {payer_key(n.value) for n in _payer_names(_policy(f))}]
        if not hits:
            choices = sorted({_policy(f).id.value for f in shipped})
            close = difflib.get_close_matches(want, choices, n=1, cutoff=0.6)
            raise PolicyPathError(f"--replace {want}: no shipped policy has the id or payer `{want}`"
                                  + (f" (did you mean `{close[0]}`?)" if close else "")
                                  + f"; the shipped policies are {', '.join(choices)}")
        for f in hits:
            p = _policy(f)
            keys = {payer_key(n.value) for n in _payer_names(p)}
            if complete and not any(o.id.value == p.id.value or keys & {payer_key(n.value) for n in _payer_names(o)} for o in own):
                payer = f" or `payer {p.payer.name.value}`" if p.payer is not None else ""
                raise PolicyPathError(f"--replace {want}: none of your policies takes the place of the shipped "
                                      f"`{p.id.value}` ({f.name}): give yours the id `{p.id.value}`{payer}, or leave --replace out")
            gone.add(id(f))
    named = {f.unit.policy.id.value for f in read.values() if f.origin == "named" and f.unit is not None}
    gone |= {id(f) for f in shipped if _policy(f).id.value in named}
    for key in [k for k, f in read.items() if id(f) in gone]:
        del read[key]


def _policy(f: _File) -> nodes.Policy:
    assert f.unit is not None
    return f.unit.policy


def _in_the_way(read: dict[str, _File]) -> list[_Conflict]:
    """The errors for one's own policies that have a shipped policy's id, or answer to its payer on the
    same dates: each says how to go on, in place of the checker's PR103 or PR105."""
    shipped = [_policy(f) for f in read.values() if f.origin == "shipped" and f.unit is not None]
    where = {_policy(f).id.value: f.name for f in read.values() if f.origin == "shipped" and f.unit is not None}
    how = "to use yours in its place, pass `--replace {id}`; to read your own policies alone, `--no-shipped`"
    out: list[_Conflict] = []
    for f in read.values():
        if f.origin == "shipped" or f.unit is None:
            continue
        mine = f.unit.policy
        for theirs in shipped:
            sid = theirs.id.value
            names = [n.span for n in _payer_names(mine) + _payer_names(theirs)]
            if mine.id.value == sid:
                spans = {_key(c, sp) for c in ("PR103", "PR105") for sp in (mine.id.span, theirs.id.span, *names)}
                out.append(_Conflict(error("PR103", f"policy `{sid}` is also a shipped policy ({where[sid]})", mine.id.span,
                                           help=how.format(id=sid) + "; or give yours another id"), frozenset(spans)))
                break
            if not (_period(mine)[0] <= _period(theirs)[1] and _period(theirs)[0] <= _period(mine)[1]):
                continue
            keys = {payer_key(n.value) for n in _payer_names(theirs)}
            name = next((n for n in _payer_names(mine) if payer_key(n.value) in keys), None)
            if name is not None:
                key = payer_key(name.value)
                out.append(_Conflict(error("PR105", f"payer `{key}` already has a shipped policy, `{sid}` ({where[sid]})", name.span,
                                           help="a claim's payer selects one policy: " + how.format(id=sid)),
                                     frozenset(_key("PR105", sp) for sp in names)))
                break
    return out
