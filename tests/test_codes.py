"""The catalog of diagnostic codes (payrule.lang.codes) verifies itself: every bad example gets exactly
its code and its fix gets no finding; every `error(...)`/`warning(...)` in the source names a catalog
code, and every catalog code is used; docs/lint-codes.md is generated from the catalog (regenerate
with `pytest tests/test_codes.py --update-golden`); and every command prints the codes, as text or
JSON.
"""
from __future__ import annotations

import ast
import json
import re
import shutil
import textwrap

import pytest

from payrule.lang.codes import CODES, GROUPS, RETIRED, Severity, file_name
from payrule.lang.diagnostics import Diagnostic, render_all, render_json
from payrule.lang.source import SourceFile, Span
from payrule.loader import load_workspace
from payrule.tools.linter import lint

from conftest import ROOT

DOC = ROOT / "docs" / "lint-codes.md"
SRC = ROOT / "src" / "payrule"
ERRORS = ROOT / "tests" / "errors"
MARKER = "<!-- Everything below is generated from src/payrule/lang/codes.py"
NO_EXAMPLE = {"PR005"}  # a file that cannot be read is not a policy text
JSON_KEYS = ["code", "severity", "message", "help", "path", "line", "col", "end_line", "end_col"]


def files_of(texts: tuple[str, ...]) -> list[SourceFile]:
    return sorted((SourceFile(file_name(t), t) for t in texts), key=lambda f: f.name)  # as lint reads a folder


def linted(texts: tuple[str, ...]) -> tuple[list[Diagnostic], str]:
    files = files_of(texts)
    found = lint(files)
    return found, render_all(found, {f.name: f for f in files})


# ---- the catalog ---------------------------------------------------------------------------------


def test_the_catalog_is_well_formed():
    assert list(CODES) == sorted(CODES)
    for code, entry in CODES.items():
        assert entry.code == code and re.fullmatch(r"PR\d{3}", code)
        assert code[:3] in GROUPS, code
        assert isinstance(entry.severity, Severity)
        assert entry.title and entry.title == entry.title.strip() and not entry.title.endswith("."), code
        assert entry.explanation.endswith(".") and "\n" not in entry.explanation, code
        assert entry.fix_note.endswith(".") and "\n" not in entry.fix_note, code
        assert bool(entry.bad) == bool(entry.fix) == (code not in NO_EXAMPLE), code
    assert not set(RETIRED) & set(CODES), "a retired code is never reused"


@pytest.mark.parametrize("code", sorted(set(CODES) - NO_EXAMPLE))
def test_the_bad_example_gets_exactly_its_code_and_the_fix_gets_nothing(code):
    entry = CODES[code]
    found, shown = linted(entry.bad)
    assert {d.code for d in found} == {code}, shown
    assert all(d.severity is entry.severity for d in found)
    assert all(d.help for d in found), "every finding says how to fix it"
    fixed, shown = linted(entry.fix)
    assert fixed == [], shown


def test_every_diagnostic_in_the_error_corpus_has_a_catalog_code():
    seen = set()
    for case in sorted(ERRORS.iterdir()):
        if case.suffix == ".policy":
            texts = [SourceFile(case.name, case.read_text(encoding="utf-8"))]
        elif case.is_dir():
            texts = [SourceFile(p.name, p.read_text(encoding="utf-8")) for p in sorted(case.glob("*.policy"))]
        else:
            continue
        for d in lint(texts) + load_workspace(texts=texts).diagnostics:
            assert d.code in CODES
            assert d.severity is CODES[d.code].severity
            seen.add(d.code)
    assert len(seen) >= 25


def _calls(tree: ast.AST, nested: bool = True):
    """Calls of a plain name in `tree` (without `nested`, not those inside functions defined in it)."""
    todo = list(ast.iter_child_nodes(tree))
    while todo:
        node = todo.pop()
        if not nested and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            yield node
        todo.extend(ast.iter_child_nodes(node))


def _diagnostic_modules():
    """(file, tree) for each source file that imports `error` or `warning` from payrule.lang.diagnostics."""
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                 and n.module == "payrule.lang.diagnostics" for a in n.names}
        if names & {"error", "warning"}:
            yield path, tree


def test_every_error_and_warning_call_in_the_source_names_a_catalog_code():
    """A literal code, or (in a helper that several checks share) a parameter every caller gives as a
    literal code; and every code of the catalog is used somewhere."""
    used: set[str] = set()
    sites = 0
    for path, tree in _diagnostic_modules():
        helpers: dict[str, int] = {}  # function -> position of the `code` parameter it passes on
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                params = [a.arg for a in fn.args.args]
                for call in _calls(fn, nested=False):
                    if call.func.id in ("error", "warning") and call.args and isinstance(call.args[0], ast.Name):
                        assert call.args[0].id in params, f"{path.name}:{call.lineno}: the code is not a parameter"
                        helpers[fn.name] = params.index(call.args[0].id) - (1 if params[:1] == ["self"] else 0)
        for call in _calls(tree):
            if call.func.id in ("error", "warning"):
                sites += 1
                assert call.args, f"{path.name}:{call.lineno}: no code"
                first = call.args[0]
                if isinstance(first, ast.Name):
                    continue  # checked at the helper's call sites
                assert isinstance(first, ast.Constant) and first.value in CODES, f"{path.name}:{call.lineno}"
                assert CODES[first.value].severity.value == call.func.id, f"{path.name}:{call.lineno}"
                used.add(first.value)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
                if name in helpers:
                    arg = node.args[helpers[name]]
                    assert isinstance(arg, ast.Constant) and arg.value in CODES, f"{path.name}:{node.lineno}"
                    used.add(arg.value)
    assert sites >= 50
    assert used == set(CODES), sorted(set(CODES) ^ used)


def test_no_message_is_parsed_back_into_a_code():
    linter = (SRC / "tools" / "linter.py").read_text(encoding="utf-8")
    assert "_BY_MESSAGE" not in linter and "code_for" not in linter and "def coded" not in linter


def test_as_json_has_every_key():
    text = 'policy x "X"\n  payer x\n  rule r: deny line when code in NOPE\n'
    (d,) = [d for d in lint([SourceFile("x.policy", text)]) if d.severity is Severity.ERROR]
    assert list(d.as_json()) == JSON_KEYS
    assert d.as_json() == {"code": "PR201", "severity": "error", "message": "unknown code set `NOPE`",
                           "help": "declare it, e.g. `codes NOPE = ...`", "path": "x.policy",
                           "line": 3, "col": 34, "end_line": 3, "end_col": 38}
    assert json.loads(render_json([d])) == [d.as_json()]
    assert render_json([]) == "[]"


def test_a_diagnostic_needs_a_catalog_code():
    with pytest.raises(ValueError):
        Diagnostic("PR999", "m", Span("x", 1, 1, 1, 2))
    with pytest.raises(TypeError):
        Diagnostic(message="m", span=Span("x", 1, 1, 1, 2))  # type: ignore[call-arg]


# ---- docs/lint-codes.md --------------------------------------------------------------------------


def _fence(lang: str, text: str) -> str:
    return f"```{lang}\n{text.rstrip(chr(10))}\n```"


def _para(text: str) -> str:
    return textwrap.fill(text, width=104, break_long_words=False, break_on_hyphens=False)


def generated() -> str:
    """The part of docs/lint-codes.md after the marker: the table, then one section per code."""
    out = ["| code | kind | what |\n|---|---|---|\n" + "\n".join(
        f"| [{c}](#{c.lower()}) | {e.severity.value} | {e.title} |" for c, e in CODES.items())]
    out += [_para(f"Retired, and never reused: **{code}**, {why}") for code, why in RETIRED.items()]
    out.append(_para("Every example is a policy file called `example.policy` (or the name in its first comment), "
                     "linted alone (or with the other files of the example); the block under it is exactly what "
                     "`payrule lint` prints, and the fix after it lints clean. The tests check both "
                     "(`tests/test_codes.py`)."))
    group = None
    for code, e in CODES.items():
        if code[:3] != group:
            group = code[:3]
            out.append(f"## {GROUPS[group]}")
        out.append(f"### {code}")
        out.append(_para(f"**{e.severity.value.capitalize()}: {e.title}.** {e.explanation}"))
        if e.bad:
            found, shown = linted(e.bad)
            assert {d.code for d in found} == {code}, f"{code}'s example does not get it:\n{shown}"
            out += [_fence("payrule", t) for t in e.bad]
            out.append(_fence("text", shown))
        out.append(_para(f"**Fix:** {e.fix_note}"))
        out += [_fence("payrule", t) for t in e.fix if t not in e.bad]
    return "\n" + "\n\n".join(out) + "\n"


def _json_block(text: str) -> str:
    m = re.search(r"^```json\n(.*?)^```$", text, re.M | re.S)
    assert m, "docs/lint-codes.md has no ```json block"
    return m.group(1)


def test_the_docs_page_is_generated_from_the_catalog(request):
    text = DOC.read_text(encoding="utf-8")
    assert MARKER in text
    head, _, _ = text.partition(MARKER)
    marker_line = text[len(head):].split("\n", 2)
    head += marker_line[0] + "\n" + marker_line[1] + "\n"
    shown_json = render_json(lint(files_of(CODES["PR201"].bad))) + "\n"
    want = head.replace(_json_block(head), shown_json) + generated()
    if request.config.getoption("--update-golden") and want != text:
        DOC.write_text(want, encoding="utf-8")
        text = want
    assert text == want, "docs/lint-codes.md is not the catalog's: run pytest tests/test_codes.py --update-golden"


def test_the_docs_page_lists_exactly_the_catalog_with_its_titles():
    text = DOC.read_text(encoding="utf-8")
    assert set(re.findall(r"^### (PR\d{3})$", text, re.M)) == set(CODES)
    rows = dict(re.findall(r"^\| \[(PR\d{3})\]\(#pr\d{3}\) \| (?:error|warning) \| (.+) \|$", text, re.M))
    assert rows == {c: e.title for c, e in CODES.items()}


# ---- every command prints the codes --------------------------------------------------------------

BROKEN = 'policy broken "Broken"\n  payer acme\n  codes TPI = 20552\n  rule r:\n    deny line when code in TPl\n'


@pytest.fixture
def broken(tmp_path):
    folder = tmp_path / "mine"
    (folder / "cases").mkdir(parents=True)
    (folder / "broken.policy").write_text(BROKEN, encoding="utf-8")
    shutil.copy(sorted((ROOT / "policies" / "aetna" / "cases").glob("*.json"))[0], folder / "cases")
    empty = tmp_path / "empty"
    empty.mkdir()
    return folder, empty


def test_lint_format_json(cli, broken):
    folder, empty = broken
    res = cli("lint", "--policies", empty, "--format", "json", folder / "broken.policy")
    assert res.code == 1 and res.err == ""
    found = json.loads(res.out)
    assert [(d["code"], d["severity"], d["line"], d["col"]) for d in found] == [
        ("PR210", "warning", 3, 9), ("PR406", "warning", 4, 8), ("PR407", "warning", 4, 8), ("PR201", "error", 5, 28),
    ]
    assert found[3]["help"] == "did you mean `TPI`?" and found[3]["end_col"] == 31
    assert all(list(d) == JSON_KEYS for d in found)
    clean = cli("lint", "--format", "json")
    assert (clean.code, clean.out) == (0, "[]\n")


def test_compile_format_json(cli, broken, tmp_path):
    folder, empty = broken
    res = cli("compile", "--policies", empty, "--format", "json", "-o", tmp_path / "out", folder / "broken.policy")
    assert res.code == 2 and res.err == ""
    (d,) = json.loads(res.out)
    assert (d["code"], d["severity"], d["line"], d["col"]) == ("PR201", "error", 5, 28)
    assert d["message"] == "unknown code set `TPl`"
    assert d["help"] == "did you mean `TPI`?"
    assert not (tmp_path / "out").exists()
    good = ROOT / "policies" / "aetna" / "trigger_points.policy"
    res = cli("compile", "--format", "json", "-o", tmp_path / "out", good)
    assert (res.code, res.out) == (0, "[]\n")
    assert (tmp_path / "out" / "aetna_tpi.py").is_file()


def test_compile_text_prints_the_codes(cli, broken, tmp_path):
    folder, empty = broken
    res = cli("compile", "--policies", empty, "-o", tmp_path / "out", folder / "broken.policy")
    assert res.code == 2 and res.out == ""
    assert "broken.policy:5:28: error[PR201]: unknown code set `TPl`" in res.err


COMMANDS = [["check", "-"], ["explain", "POLICY"], ["why", "--claim", "C1", "-"], ["test", "DIR"]]


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_prints_the_codes(command, cli, broken, monkeypatch):
    folder, _ = broken
    monkeypatch.chdir(folder.parent)
    args = [{"POLICY": "mine/broken.policy", "DIR": "mine"}.get(a, a) for a in command]
    res = cli(args[0], "--policies", "mine", *args[1:])
    assert res.code == 2, (res.out, res.err)
    assert "broken.policy:5:28: error[PR201]: unknown code set `TPl`" in res.err


def test_check_with_a_broken_policy_folder_prints_the_code(cli, broken, monkeypatch):
    folder, _ = broken
    monkeypatch.chdir(folder.parent)
    res = cli("check", "--policies", "mine", "-")
    assert res.code == 2 and res.out == ""
    assert re.search(r"^mine/broken\.policy:5:28: error\[PR201\]: unknown code set `TPl`$", res.err, re.M), res.err
    assert "1 error, 0 warnings" in res.err


def test_fmt_prints_the_code_of_a_syntax_error(cli, tmp_path):
    bad = tmp_path / "bad.policy"
    bad.write_text('policy x "X"\n  source S "a \\q"\n', encoding="utf-8")
    res = cli("fmt", "--check", bad)
    assert res.code == 2
    assert f"{bad}:2:15: error[PR004]: unknown escape `\\q` in a string" in res.err


def test_an_unreadable_policy_file_gets_pr005(cli, tmp_path, monkeypatch):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "bad.policy").write_bytes(b'policy x "\xff"\n')
    monkeypatch.chdir(tmp_path)
    res = cli("check", "--policies", "mine", "-")
    assert res.code == 2
    assert "error[PR005]: cannot read policy file: UnicodeDecodeError" in res.err
