"""The Python API: load policies, decide claims in-process, compile a policy to Python source.

    >>> from payrule import PolicySet
    >>> policies = PolicySet.load()                       # the shipped policies
    >>> out = policies.check([{"claim_id": "C1", "patient_id": "P1", "payer": "acme",
    ...     "lines": [{"line": 1, "date": "2025-03-01", "code": "12345"}]}])
    >>> out[0]["error"]                                    # no shipped policy for payer acme
    "no policy for payer 'acme'"
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from payrule.claims.readers import ClaimError, HistoryError, ReadSession, read_claim_objects, read_claims
from payrule.codegen.compiler import compile_ir
from payrule.lang import ir
from payrule.lang.diagnostics import render_all
from payrule.lang.source import SourceFile
from payrule.loader import Checker, Workspace, default_policy_dir, load_workspace
from payrule.run.engine import decide, decision_json
from payrule.run.loaded import Versions, load_module, route

__all__ = ["PolicySet", "PolicyError", "compile_policy", "check"]


class PolicyError(Exception):
    """A policy has errors; `diagnostics` lists them and `rendered` is the text `payrule` prints."""

    def __init__(self, workspace: Workspace | None = None, rendered: str | None = None):
        self.workspace = workspace
        self.diagnostics = workspace.diagnostics if workspace else []
        self.rendered = rendered if rendered is not None else render_all(self.diagnostics, workspace.sources if workspace else {})
        super().__init__(self.rendered)


class PolicySet:
    """Checked, compiled and loaded policies, routed by payer id (case-insensitive)."""

    def __init__(self, workspace: Workspace):
        if workspace.errors:
            raise PolicyError(workspace)
        self.workspace = workspace
        self.models = workspace.models  # checked
        self.policies = workspace.policies  # lowered: what the checkers are compiled from
        # The payers' generated modules, compiled once: loaded here, and what `source` gives.
        self._sources = {pid: compile_ir(p) for pid, p in workspace.policies.items() if p.payer is not None}
        self.checkers: dict[str, Checker | Versions] = route(
            Checker(load_module(text, pid)) for pid, text in self._sources.items())
        # Whether a rule reads a claim or line field the schema does not know (the readers then keep them).
        self.reads_extra = any(ir.reads_extra(r) for p in self.policies.values() for r in p.rules)

    @classmethod
    def load(cls, dirs: Sequence[str | Path] | None = None, files: Sequence[str | Path] = (), *,
             shipped: bool | None = None, replace: Sequence[str] = ()) -> "PolicySet":
        """Every `*.policy` under `dirs` plus `files`, with the shipped policies when `shipped` (by default,
        only when no `dirs` are given): `PolicySet.load()` is the shipped policies, `PolicySet.load(["mine"])`
        yours alone, and `PolicySet.load(["mine"], shipped=True)` yours beside the shipped ones, as the command
        line reads them. A policy of yours with a shipped policy's id, or for a shipped policy's payer, is
        then an error unless `replace` names the shipped one (its id or payer): yours takes its place. A file
        in `files` with a shipped policy's id takes its place unasked. Raises PolicyError (the policies have
        errors) and loader.PolicyPathError (a `replace` that names no shipped policy)."""
        with_shipped = dirs is None if shipped is None else shipped
        return cls(load_workspace(files=[(Path(f), Path(f).as_posix()) for f in files], dirs=[Path(d) for d in dirs or ()],
                                  shipped=default_policy_dir() if with_shipped else None, replace=replace))

    @classmethod
    def from_texts(cls, texts: dict[str, str], dirs: Sequence[str | Path] = ()) -> "PolicySet":
        """Policies given as text, by the name they are reported under (tests, notebooks); `dirs` are policy
        folders loaded with them, where their includes may be found (`dirs=[default_policy_dir()]` for the
        shipped policies)."""
        sources = [SourceFile(name, text) for name, text in sorted(texts.items())]
        return cls(load_workspace(dirs=[Path(d) for d in dirs], texts=sources))

    @property
    def payers(self) -> list[str]:
        """The payer ids that have a policy (aliases left out)."""
        return sorted({c.payer for c in self.checkers.values() if c.payer is not None})


    def check(self, claims: Iterable[dict] | bytes | str, history: Iterable[dict] | bytes | str = ()) -> list[dict]:
        """Decide claims given as dicts (or JSONL/CSV text); returns the contract's output objects.
        Each call reads with its own ReadSession: calls on several threads do not meet."""
        session = ReadSession(keep_extra=self.reads_extra)
        records = _records(claims, session)
        past = _records(history, session)
        bad = [r for r in past if isinstance(r, ClaimError)]
        if bad:
            raise HistoryError(f"history claim {bad[0].claim_id!r} cannot be read: {bad[0].error}")
        return [decision_json(d) for d in decide(self.checkers, records, [p for p in past if not isinstance(p, ClaimError)])]

    def source(self, policy_id: str) -> str:
        """The generated Python module of a policy."""
        return self._sources.get(policy_id) or compile_ir(self.policies[policy_id])


def _records(claims, session: ReadSession) -> list:
    if isinstance(claims, (bytes, str)):
        data = claims.encode("utf-8") if isinstance(claims, str) else claims
        return read_claims(data, session=session)
    return read_claim_objects(claims, session)


def compile_policy(path: str | Path, policies: Sequence[str | Path] | None = None) -> str:
    """The Python module for one policy file (includes are looked up in `policies`, default shipped;
    the file takes the place of a shipped policy with its id)."""
    p = Path(path)
    ws = load_workspace(files=[(p, p.as_posix())], dirs=[Path(d) for d in policies or ()],
                        shipped=default_policy_dir() if policies is None else None)
    if ws.errors:
        raise PolicyError(ws)
    return compile_ir(ws.policy_for_file(p))


def check(claims, history=(), policies: Sequence[str | Path] | None = None) -> list[dict]:
    """Decide claims with the policies in `policies` (default: the shipped ones)."""
    return PolicySet.load(policies).check(claims, history)
