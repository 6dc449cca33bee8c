"""Where policy files are: the shipped folder, the `*.policy` files under a folder and the names they are
reported under. Light (the standard library only), so that a run that finds its checkers compiled already
(payrule.run.cache) can list the policy files without loading the compiler."""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path, PurePosixPath

__all__ = ["SUFFIX", "SHIPPED", "default_policy_dir", "walk", "discover", "shown_path"]

SUFFIX = ".policy"
SHIPPED = "policies"  # the shipped policies are reported as `policies/FOLDER/FILE`, wherever they are installed


def default_policy_dir() -> Path:
    """The shipped policies: inside the installed package (wheel), else the repository's `policies/`."""
    try:
        packaged = resources.files("payrule") / "policies"
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, NotADirectoryError):  # pragma: no cover
        pass
    return Path(__file__).resolve().parents[2] / "policies"


def walk(root: Path, suffix: str) -> list[Path]:
    """Every file named `*SUFFIX` under `root`, sorted, following symlinked folders (each real folder once,
    so a link back up the tree is no loop). The paths are under `root` as given, not resolved."""
    root = Path(root)
    seen = {os.path.realpath(root)}
    out: list[Path] = []
    for here, dirs, names in os.walk(root, followlinks=True):
        keep = []
        for d in sorted(dirs):
            real = os.path.realpath(os.path.join(here, d))
            if real not in seen:
                seen.add(real)
                keep.append(d)
        dirs[:] = keep
        out.extend(p for p in (Path(here) / n for n in names if n.endswith(suffix)) if p.is_file())
    return sorted(out)


def discover(root: Path, name: str | None = None) -> list[tuple[Path, str]]:
    """Every `*.policy` under `root` (symlinked folders followed), sorted, with the name it is reported
    under: `NAME/sub/x.policy`, NAME being `name` or, by default, the folder's own name (`policies/x/y.policy`)."""
    root = Path(root)
    prefix = PurePosixPath(name if name is not None else root.resolve().name)
    return [(p, (prefix / p.relative_to(root).as_posix()).as_posix()) for p in walk(root, SUFFIX)]


def shown_path(path: str | Path) -> str:
    """A path of the user's as payrule reports it: relative to the working directory when it is under it
    (`docs/examples/acme`), else as given (`../elsewhere/acme`, `/srv/policies`)."""
    given = Path(path)
    try:
        full, cwd = Path(os.path.abspath(given)), Path(os.getcwd())
    except OSError:  # pragma: no cover - the working directory was removed
        return given.as_posix()
    if full.is_relative_to(cwd):
        return full.relative_to(cwd).as_posix()
    return given.as_posix()
