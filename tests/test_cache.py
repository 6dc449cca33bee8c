"""The cache of compiled checkers (payrule.run.cache): `payrule check` of policies it compiled before
starts without the compiler, decides exactly as an uncached run, and never reads an entry it should not.

Each test has a cache folder of its own (PAYRULE_CACHE_DIR); conftest gives the rest of the suite one.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from payrule.run import cache

from conftest import ROOT, claim, tpi

OWN = """\
policy acme-tpi "Acme: trigger point injections"
  payer acme
  source ACME "Acme test policy"
  codes TPI = 20552, 20553

  rule frequency:
    deny line when code in TPI and more than {limit} TPI sessions within 90 days
    message "{{nth}} session in 90 days"
    per ACME
"""

# Run `payrule check` in a fresh interpreter and report, beside its output, which of the compiler's
# modules it imported: a warm cache must leave them all out.
PROBE = """\
import json, sys
from payrule.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in sys.modules if m in ("lark", "jinja2") or m.startswith(("payrule.lang.", "payrule.codegen"))
               and m != "payrule.lang.grammar")  # the grammar file's path only: part of the key
sys.stderr.write("\\n" + json.dumps({"code": code, "heavy": heavy}) + "\\n")
"""


def run(folder: Path | None, *args: str, cwd: Path = ROOT, env: dict | None = None) -> tuple[int, str, list[str]]:
    """`payrule check ARGS` in a subprocess with the cache at `folder` (None: off): (exit, stdout, heavy)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("PAYRULE_")}
    e.update({"PAYRULE_CACHE_DIR": str(folder)} if folder is not None else {"PAYRULE_NO_CACHE": "1"})
    e.update(env or {})
    p = subprocess.run([sys.executable, "-c", PROBE, "check", *args], capture_output=True, text=True, cwd=cwd,
                       env=e, timeout=120)
    report = json.loads(p.stderr.strip().splitlines()[-1])
    assert report["code"] == p.returncode or p.returncode == 0, p.stderr
    return report["code"], p.stdout, report["heavy"]


@pytest.fixture
def claims_file(tmp_path) -> Path:
    """Four sessions of one patient for medicare and for acme, a claim each, 30 days apart."""
    rows = []
    for payer in ("medicare", "acme"):
        for i, day in enumerate(("2025-01-02", "2025-02-01", "2025-03-03", "2025-04-02"), 1):
            rows.append(claim(f"{payer}-{i}", tpi(date=day), payer=payer))
    path = tmp_path / "claims.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def own(tmp_path) -> Path:
    folder = tmp_path / "own"
    folder.mkdir()
    (folder / "acme.policy").write_text(OWN.format(limit=2))
    return folder


def entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json"))


def test_warm_run_imports_no_compiler_and_decides_as_uncached(tmp_path, claims_file, own):
    folder = tmp_path / "cache"
    args = (str(claims_file), "--policies", str(own))
    code0, plain, heavy0 = run(None, *args)
    assert code0 == 0 and "lark" in heavy0 and "jinja2" in heavy0  # uncached: the compiler runs
    code1, cold, heavy1 = run(folder, *args)
    assert len(entries(folder)) == 1 and "lark" in heavy1  # the first run compiles, and keeps it
    code2, warm, heavy2 = run(folder, *args)
    assert heavy2 == []  # neither lark, nor jinja2, nor any of payrule.lang or payrule.codegen
    assert code1 == code2 == 0 and plain == cold == warm
    assert [json.loads(l)["decision"] for l in warm.splitlines()].count("deny") >= 2  # acme's 3rd and 4th


def test_editing_a_policy_is_seen_at_once(tmp_path, claims_file, own):
    folder = tmp_path / "cache"
    args = (str(claims_file), "--policies", str(own))
    _, before, _ = run(folder, *args)
    run(folder, *args)
    (own / "acme.policy").write_text(OWN.format(limit=3))
    _, after, heavy = run(folder, *args)
    assert "lark" in heavy  # a new key: compiled again
    _, plain, _ = run(None, *args)
    assert after == plain != before
    assert len(entries(folder)) == 2


def test_options_and_working_folder_are_part_of_the_key(tmp_path, own):
    shipped_and_own = cache.inputs([own])
    only_own = cache.inputs([own], shipped=False)
    assert shipped_and_own is not None and only_own is not None
    keys = {cache.key(shipped_and_own), cache.key(only_own), cache.key(shipped_and_own, ["medicare"])}
    assert len(keys) == 3 and None not in keys
    assert cache.key(shipped_and_own) == cache.key(cache.inputs([own]) or [])  # the same inputs, the same key
    # A policy is reported by the name it was given (relative to the working folder): another name, another key.
    here = os.getcwd()
    try:
        os.chdir(own.parent)
        relative = cache.inputs([Path("own")])
    finally:
        os.chdir(here)
    assert relative is not None and cache.key(relative) != cache.key(shipped_and_own)
    assert cache.inputs([own / "missing"]) is None  # the loader says why, uncached


def test_a_broken_entry_is_a_miss_and_is_written_again(tmp_path, claims_file):
    folder = tmp_path / "cache"
    first, good, _ = run(folder, str(claims_file))  # exit 1: acme's claims are errors without its policy
    [entry] = entries(folder)
    for broken in (b"{not json", b"", json.dumps({"format": cache.FORMAT, "key": "other", "modules": []}).encode(),
                   json.dumps({"format": cache.FORMAT, "key": entry.stem}).encode()):
        entry.write_bytes(broken)
        code, out, heavy = run(folder, str(claims_file))
        assert code == first and out == good and "lark" in heavy
        assert json.loads(entry.read_bytes())["key"] == entry.stem  # rewritten whole


def test_a_folder_or_entry_others_may_write_is_not_read(tmp_path, claims_file):
    folder = tmp_path / "cache"
    first, good, _ = run(folder, str(claims_file))
    [entry] = entries(folder)
    name = entry.stem
    assert cache.read(folder, name) is not None
    entry.chmod(0o666)
    assert cache.read(folder, name) is None
    entry.chmod(0o600)
    folder.chmod(0o777)
    try:
        assert cache.read(folder, name) is None
        code, out, heavy = run(folder, str(claims_file))
        assert code == first and out == good and "lark" in heavy  # compiled, not read
        assert not cache.write(folder, name, [], False)  # nor written
    finally:
        folder.chmod(0o700)


def test_cache_off_writes_nothing_and_an_unwritable_folder_is_no_error(tmp_path, claims_file):
    folder = tmp_path / "cache"
    first, good, heavy = run(folder, str(claims_file), env={"PAYRULE_NO_CACHE": "1"})
    assert not folder.exists() and "lark" in heavy
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, out, _ = run(blocker / "cache", str(claims_file))
    assert code == first and out == good and out.count("\n") == 8


def test_a_policy_error_is_reported_and_not_cached(tmp_path, claims_file, own):
    folder = tmp_path / "cache"
    (own / "acme.policy").write_text(OWN.format(limit=2).replace("more than 2", "more than two"))
    for _ in range(2):
        code, out, _ = run(folder, str(claims_file), "--policies", str(own))
        assert code == 2 and out == ""
    assert not folder.exists() or entries(folder) == []


def test_old_entries_are_pruned(tmp_path):
    folder = tmp_path / "cache"
    names = [f"{i:064x}" for i in range(cache.KEEP + 5)]
    for i, name in enumerate(names):
        assert cache.write(folder, name, [], False)
        os.utime(folder / f"{name}.json", ns=(i * 10**9, i * 10**9))  # written in this order
    cache.write(folder, names[-1], [], False)
    kept = {p.stem for p in entries(folder)}
    assert kept == set(names[-cache.KEEP:])
    assert not list(folder.glob(".entry-*"))  # no temporary file left behind


def test_an_entry_loads_the_checkers_the_compiler_made(tmp_path, shipped):
    folder = tmp_path / "cache"
    modules = [(pid, shipped.source(pid)) for pid, p in sorted(shipped.policies.items()) if p.payer is not None]
    files = cache.inputs([])
    assert files is not None
    name = cache.key(files)
    assert cache.write(folder, name, modules, shipped.reads_extra)
    hit = cache.read(folder, name)
    assert hit is not None
    assert sorted(hit.checkers) == sorted(shipped.checkers) and hit.payers == shipped.payers
    assert hit.reads_extra == shipped.reads_extra
