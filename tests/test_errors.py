"""The error corpus: broken policies in tests/errors/ and the exact report each gets.

A case is `NAME.policy` (linted alone) or a folder `NAME/` of policies read together (an include cycle
needs two files); `NAME.err` is the exact output of `payrule lint` on it, run from tests/errors/. Each
case is also refused by `payrule check --policies` (exit 2, the same errors with the same codes, no
traceback).

Regenerate with `pytest tests/test_errors.py --update-golden`, then read every changed .err: the
message, the caret and the help line are what an analyst sees.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from payrule.lang.diagnostics import DiagnosticError
from payrule.lang.parser import parse_text

from conftest import ROOT

ERRORS = ROOT / "tests" / "errors"
CASES = sorted([p for p in ERRORS.glob("*.policy")] + [p for p in ERRORS.iterdir() if p.is_dir()], key=lambda p: p.name)
HEADER = re.compile(r"^(?P<path>\S+):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning)\[(?P<code>PR\d{3})\]: (?P<msg>.+)$")


def case_id(p: Path) -> str:
    return p.name.removesuffix(".policy")


def lint_case(cli, monkeypatch, tmp_path, case: Path):
    monkeypatch.chdir(ERRORS)
    if case.is_dir():
        return cli("lint", "--no-shipped", "--policies", case.name)
    empty = tmp_path / "empty"
    empty.mkdir()
    return cli("lint", "--no-shipped", "--policies", empty, case.name)


def check_case(cli, monkeypatch, tmp_path, case: Path):
    """`payrule check --policies DIR` on the case; reported paths are made the same as lint's."""
    if case.is_dir():
        monkeypatch.chdir(ERRORS)
        return cli("check", "--no-shipped", "--policies", case.name), lambda s: s
    folder = tmp_path / "case"
    folder.mkdir()
    shutil.copy(case, folder / case.name)
    monkeypatch.chdir(tmp_path)
    return cli("check", "--no-shipped", "--policies", "case"), lambda s: s.replace("case/", "", 1)


def headers(text: str, fix=lambda s: s) -> list[dict]:
    out = []
    for line in text.splitlines():
        m = HEADER.match(fix(line))
        if m:
            out.append(m.groupdict())
    return out


def test_the_corpus_is_big_enough():
    assert len(CASES) >= 30
    assert sum(1 for c in CASES if c.is_dir()) >= 2


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_lint_reports_exactly_the_expected_text(case, cli, monkeypatch, tmp_path, request):
    res = lint_case(cli, monkeypatch, tmp_path, case)
    expected_file = ERRORS / (case_id(case) + ".err")
    assert "Traceback" not in res.out + res.err
    if request.config.getoption("--update-golden"):
        expected_file.write_text(res.out, encoding="utf-8")
    assert expected_file.is_file(), f"no {expected_file.name}: run pytest --update-golden and review it"
    assert res.out == expected_file.read_text(encoding="utf-8")
    assert res.code == 1
    assert res.err == ""


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_check_refuses_the_case_with_the_same_errors(case, cli, monkeypatch, tmp_path):
    res, fix = check_case(cli, monkeypatch, tmp_path, case)
    assert res.code == 2
    assert res.out == ""
    assert "Traceback" not in res.err
    said = [(h["path"], h["line"], h["col"], h["code"], h["msg"]) for h in headers(res.err, fix)]
    assert said, res.err
    expected = (ERRORS / (case_id(case) + ".err")).read_text(encoding="utf-8")
    linted = {(h["path"], h["line"], h["col"], h["code"], h["msg"]) for h in headers(expected) if h["sev"] == "error"}
    assert set(said) <= linted


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_every_finding_has_a_place_a_caret_and_a_hint(case):
    lines = (ERRORS / (case_id(case) + ".err")).read_text(encoding="utf-8").splitlines()
    assert re.fullmatch(r"\d+ errors?, \d+ warnings?", lines[-1])
    starts = [i for i, l in enumerate(lines) if HEADER.match(l)]
    assert starts
    for n, i in enumerate(starts):
        block = lines[i : (starts[n + 1] if n + 1 < len(starts) else len(lines) - 1)]
        h = HEADER.match(block[0])
        assert h["code"], block[0]
        num = h["line"]
        assert block[1].startswith(f" {num} | "), block
        caret = block[2]
        assert re.fullmatch(rf" {' ' * len(num)} \| *\^+", caret), block
        assert caret.index("^") - len(num) - 4 == int(h["col"]) - 1, block  # under the column named
        assert any(l.lstrip().startswith("= help: ") for l in block[3:]), block


@pytest.mark.parametrize("cond, word", [("code inside A", "inside"), ("code inTPI", "inTPI")])
def test_a_keyword_glued_to_more_letters_is_not_a_keyword(cond, word):
    text = f'policy x "T"\n  rule r: deny line when {cond}\n'
    with pytest.raises(DiagnosticError) as exc:
        parse_text(text)
    assert exc.value.diagnostics[0].message == f"unexpected `{word}`"


@pytest.mark.parametrize("kind", ["codes", "diagnoses", "stems", "names"])
def test_a_set_after_a_rule_ending_in_a_field_name(kind):
    value = '"x"' if kind in ("stems", "names") else "M79.1" if kind == "diagnoses" else "20552"
    pol = parse_text(f'policy x "T"\n  rule r: deny line when has modifier\n  {kind} A = {value}\n')
    assert [type(s).__name__ for s in pol.statements] == ["Rule", "SetDecl"]
