"""Shared fixtures: the shipped policies, a claim builder, and the CLI run in-process."""
from __future__ import annotations

import atexit
import io
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

# `payrule check` keeps compiled checkers in a cache folder (payrule.run.cache): the tests, and every
# `payrule` they start, use one of their own, made empty for the run and removed after it, never the
# user's ~/.cache. Set before payrule is imported, and inherited by subprocesses.
os.environ.pop("PAYRULE_NO_CACHE", None)
os.environ["PAYRULE_CACHE_DIR"] = _CACHE = tempfile.mkdtemp(prefix="payrule-test-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

from payrule import PolicySet  # noqa: E402
from payrule.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"
CONFORMANCE = ROOT.parent / "shared" / "conformance-v2"  # contract v2 worked examples
# Tests that read the contract's worked examples skip, saying why, in a checkout without ../shared beside it
# (CI has it: they run there).
needs_conformance = pytest.mark.skipif(not (CONFORMANCE / "scenarios").is_dir(),
                                       reason=f"the contract's worked examples are not at {CONFORMANCE}")


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden/*.py from the compiler")


@pytest.fixture(scope="session")
def shipped() -> PolicySet:
    """The shipped policies, loaded once."""
    return PolicySet.load([POLICIES])


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def objects(self) -> list[dict]:
        return [json.loads(l) for l in self.out.split("\n") if l.strip()]  # not splitlines: U+2028 is data


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run `payrule ARGS...` in-process: returns exit code, stdout, stderr (stdin from `stdin=`)."""

    def run(*args: str, stdin: bytes = b"") -> CliResult:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
        code = main([str(a) for a in args])
        cap = capsys.readouterr()
        return CliResult(code, cap.out, cap.err)

    return run


def tpi(line=1, date="2025-03-01", code="20552", muscles=("left upper trapezius", "left levator scapulae"),
        substances=("lidocaine",), **extra) -> dict:
    """A TPI line that passes every common rule unless told otherwise (None drops a field)."""
    out = {"line": line, "date": date, "code": code}
    if muscles is not None:
        out["muscles"] = list(muscles)
    if substances is not None:
        out["substances"] = list(substances)
    out.update(extra)
    return out


def claim(claim_id, *lines, patient="P1", payer="medicare", diagnoses=("M79.18",), **extra) -> dict:
    out = {"claim_id": claim_id, "patient_id": patient, "payer": payer}
    if diagnoses is not None:
        out["diagnoses"] = list(diagnoses)
    out["lines"] = list(lines)
    out.update(extra)
    return out


def decisions(results: list[dict]) -> dict:
    """{claim_id: {line: decision}} (errors as {"error": text})."""
    out = {}
    for r in results:
        if "error" in r:
            out[r["claim_id"]] = {"error": r["error"]}
        else:
            out[r["claim_id"]] = {ln["line"]: ln["decision"] for ln in r["lines"]}
    return out


def fired(results: list[dict]) -> dict:
    """{(claim_id, line): [rule ids that fired, in order]}."""
    return {(r["claim_id"], ln["line"]): [x["rule"] for x in ln["reasons"]] for r in results if "lines" in r for ln in r["lines"]}


def generated_claims(n: int, seed: int) -> list[dict]:
    """bench/generate.py's claims as objects (`claim_objects`), for round trips through other formats."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("payrule_bench_generate", ROOT / "bench" / "generate.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.claim_objects(n, seed)


def claim_dicts(name, *, first_line: int = 1, dates=("2024-02-29", "2025-03-01", "2025-12-31"),
                codes=("20552", "20553", "J3301", "99213", "0232T", "76942"), min_units: int = 1):
    """A hypothesis strategy of section-1 claim objects whose text values come from `name`, for the
    round trips through another format (each format's test narrows or widens the values it can say)."""
    from hypothesis import strategies as st

    line = st.fixed_dictionaries(
        {"line": st.integers(first_line, 60), "date": st.sampled_from(list(dates)), "code": st.sampled_from(list(codes))},
        optional={"units": st.integers(min_units, 3),
                  "modifiers": st.lists(st.sampled_from(["25", "59", "RT", "lt", " 50 "]), max_size=3),
                  "diagnoses": st.lists(st.sampled_from(["M79.18", "m54.2", " G44.209 ", "R52"]), min_size=1, max_size=3),
                  "muscles": st.lists(name, max_size=4), "substances": st.lists(name, max_size=3), "site": name})
    return st.fixed_dictionaries(
        {"claim_id": name, "patient_id": name,
         "payer": st.sampled_from(["medicare", "Aetna", "bcbs", "emblem health", "humana"]),
         "lines": st.lists(line, min_size=1, max_size=4, unique_by=lambda ln: ln["line"])},
        optional={"provider_id": name,
                  "diagnoses": st.lists(st.sampled_from(["M79.18", "M54.50", "M62.830"]), min_size=1, max_size=3),
                  "prior_auth": name})
