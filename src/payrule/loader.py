"""Policy files -> parsed, checked models -> generated modules -> loaded checkers."""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

from payrule.codegen.compiler import compile_ir
from payrule.lang import ir
from payrule.lang.checker import Unit, check
from payrule.lang.diagnostics import Diagnostic, DiagnosticError, error
from payrule.lang.lower import lower_policy
from payrule.lang.model import Model
from payrule.lang.parser import parse
from payrule.lang.source import SourceFile, Span

__all__ = ["default_policy_dir", "discover", "Workspace", "load_workspace", "load_module", "Checker", "checker_for"]

from payrule.run.loaded import Checker, load_module  # noqa: E402  (re-exported: the light half of loading)


def checker_for(policy: ir.Policy) -> Checker:
    """Compile a lowered policy and load it."""
    return Checker(load_module(compile_ir(policy), policy.id))

SUFFIX = ".policy"


def default_policy_dir() -> Path:
    """The shipped policies: inside the installed package (wheel), else the repository's `policies/`."""
    try:
        packaged = resources.files("payrule") / "policies"
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, NotADirectoryError):  # pragma: no cover
        pass
    return Path(__file__).resolve().parents[2] / "policies"


def discover(root: Path) -> list[tuple[Path, str]]:
    """Every `*.policy` under `root`, sorted, with the name it is reported under (`policies/x/y.policy`)."""
    root = Path(root)
    base = root.resolve()
    return [(p, (Path(base.name) / p.resolve().relative_to(base)).as_posix()) for p in sorted(root.rglob("*" + SUFFIX)) if p.is_file()]


@dataclass
class Workspace:
    """Policies read together: their sources, checked models (when every file checked clean), the
    same lowered (`policies`: what codegen, the interpreter and explain read) and findings."""

    sources: dict[str, SourceFile]
    models: dict[str, Model]
    diagnostics: list[Diagnostic]
    paths: dict[str, str]  # resolved path -> reported name
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


def load_workspace(files: Iterable[tuple[Path, str]] = (), dirs: Iterable[Path] = (), texts: Sequence[SourceFile] = ()) -> Workspace:
    """Parse and check policy files together; a file given twice is read once."""
    entries: dict[str, tuple[Path | None, str]] = {}
    for d in dirs:
        if not Path(d).is_dir():
            what = "is not a folder" if Path(d).exists() else "does not exist"
            raise DiagnosticError([error("PR005", f"policy folder `{d}` {what}", Span(str(d), 1, 1, 1, 1))])
        for p, name in discover(Path(d)):
            entries.setdefault(str(p.resolve()), (p, name))
    for p, name in files:
        entries.setdefault(str(Path(p).resolve()), (Path(p), name))
    sources: dict[str, SourceFile] = {}
    units: list[Unit] = []
    diags: list[Diagnostic] = []
    paths: dict[str, str] = {}
    for key, (p, name) in sorted(entries.items(), key=lambda kv: kv[1][1]):
        try:
            src = SourceFile.read(p, name)  # type: ignore[arg-type]
        except (OSError, UnicodeDecodeError) as exc:
            diags.append(error("PR005", f"cannot read policy file: {exc.__class__.__name__}", Span(name, 1, 1, 1, 1), help=str(exc)))
            continue
        _add(src, sources, units, diags)
        paths[key] = name
    for src in texts:
        _add(src, sources, units, diags)
    if diags:
        return Workspace(sources, {}, sorted(diags, key=lambda d: d.sort_key), paths)
    result = check(units)
    return Workspace(sources, result.models, result.diagnostics, paths)


def _add(src: SourceFile, sources: dict, units: list, diags: list) -> None:
    sources[src.name] = src
    try:
        units.append(Unit(src, parse(src)))
    except DiagnosticError as exc:
        diags.extend(exc.diagnostics)
