"""Fuzz the front end: random and mutated policy text through the parser, the checker and, when a
mutant checks clean, the compiler and the loader.

The contract for any text whatsoever:

- parsing and checking either succeed or report payrule's own diagnostics (DiagnosticError, or the
  workspace's diagnostics); any other exception is a bug;
- every diagnostic points inside its file and renders as `file:line:col: ...`, then the source line
  and a caret under the column; its message is one line;
- text that checks clean compiles to a module that loads, and the loaded checkers decide the example
  claims without raising.

Bounded here (derandomized, a few hundred examples). A longer run:

    PAYRULE_FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/test_fuzz.py
    PAYRULE_FUZZ_EXAMPLES=20000 PAYRULE_FUZZ_SEED=7 .venv/bin/pytest tests/test_fuzz.py   # other inputs

and coverage-guided, with atheris installed: `.venv/bin/python tests/fuzz_atheris.py` (see there).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from hypothesis import HealthCheck, event, given, seed, settings
from hypothesis import strategies as st

from payrule import PolicySet
from payrule.codegen.compiler import compile_model
from payrule.lang.checker import Unit, check
from payrule.lang.diagnostics import SHOWN, Diagnostic, DiagnosticError, render
from payrule.lang.parser import parse
from payrule.lang.source import SourceFile
from payrule.loader import load_module, load_workspace

ROOT = Path(__file__).resolve().parents[1]
SHIPPED: dict[str, str] = {
    p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8") for p in sorted((ROOT / "policies").rglob("*.policy"))
}
CLAIMS = (ROOT / "examples" / "claims.jsonl").read_bytes()
HISTORY = (ROOT / "examples" / "history.jsonl").read_bytes()
N_CLAIMS = sum(1 for line in CLAIMS.split(b"\n") if line.strip())

# ---- the oracle --------------------------------------------------------------------------------

# Known core bug, tracked by the strict xfails of test_hostile.py::test_invalid_text_gets_a_located_one_line_diagnostic:
# a message quoting a decoded string value between backticks keeps that value's line breaks. Until it is fixed,
# line breaks are looked for only outside backticks; set this to False once it is.
KNOWN_QUOTED_LINE_BREAKS = False


def _unquoted(message: str) -> str:
    return "".join(message.split("`")[0::2]) if KNOWN_QUOTED_LINE_BREAKS else message


def assert_well_located(d: Diagnostic, sources: dict[str, SourceFile]) -> None:
    """A diagnostic names a place inside its file and shows it: location, source line, caret."""
    assert isinstance(d, Diagnostic), d
    src = sources.get(d.span.path)
    assert src is not None, f"diagnostic in unknown file {d.span.path!r}: {d}"
    sp = d.span
    assert 1 <= sp.line <= len(src.lines), f"line {sp.line} outside the file ({len(src.lines)} lines): {d}"
    line = src.line_text(sp.line)
    assert 1 <= sp.col <= len(line) + 1, f"column {sp.col} outside line {sp.line} ({len(line)} chars): {d}"
    outside = _unquoted(d.message)
    assert "\n" not in outside and "\r" not in outside, f"message is not one line: {d.message!r}"
    text = render(d, src)
    assert text.startswith(f"{sp.path}:{sp.line}:{sp.col}: "), text
    if not src.text.strip():
        return  # an empty file has no line to show
    assert line, f"diagnostic on an empty line {sp.line} of a non-empty file: {d}"
    shown = line.expandtabs(1)
    rows = text.split("\n")
    src_row = f" {sp.line} | {shown}"
    if len(shown) > SHOWN:  # a very long line is shown around the caret: the caret is under the same character
        head = f" {sp.line} | "
        (row,) = [r for r in rows if r.startswith(head)]
        caret_row = rows[rows.index(row) + 1]
        assert row[caret_row.index("^")] == shown[sp.col - 1], f"caret not under column {sp.col}:\n{text}"
        return
    assert src_row in rows, f"source line missing:\n{text}"
    caret_row = rows[rows.index(src_row) + 1]
    prefix = f" {' ' * len(str(sp.line))} | "
    assert caret_row.startswith(prefix), text
    carets = caret_row[len(prefix):]
    assert carets.lstrip(" ").startswith("^") and carets.index("^") == sp.col - 1, f"caret not under column {sp.col}:\n{text}"


def frontend(texts: dict[str, str]) -> str:
    """Run texts through parse + check (+ compile + load when clean); returns "clean" or "diagnostics".

    Raises AssertionError on a broken diagnostic; lets any unexpected exception through."""
    sources = {name: SourceFile(name, text) for name, text in texts.items()}
    # the parser on its own, file by file
    units = []
    for src in sources.values():
        try:
            units.append(Unit(src, parse(src)))
        except DiagnosticError as exc:
            assert exc.diagnostics, "DiagnosticError without diagnostics"
            for d in exc.diagnostics:
                assert_well_located(d, sources)
    # the checker on what parsed
    if units:
        try:
            result = check(units)
        except DiagnosticError as exc:
            for d in exc.diagnostics:
                assert_well_located(d, sources)
        else:
            for d in result.diagnostics:
                assert_well_located(d, sources)
    # the workspace, as every command loads policies
    try:
        ws = load_workspace(texts=list(sources.values()))
    except DiagnosticError as exc:
        for d in exc.diagnostics:
            assert_well_located(d, sources)
        return "diagnostics"
    for d in ws.diagnostics:
        assert_well_located(d, sources)
    if ws.errors:
        assert not ws.models
        return "diagnostics"
    for model in ws.models.values():
        module = load_module(compile_model(model), model.id)
        assert module.POLICY_ID == model.id
        assert len(module.RULES) == len(model.rules)
    # and the loaded checkers decide the example claims without raising (one object per claim)
    decided = PolicySet(ws).check(CLAIMS, HISTORY)
    assert len(decided) == N_CLAIMS
    return "clean"


# ---- settings ------------------------------------------------------------------------------------

_LONG = os.environ.get("PAYRULE_FUZZ_EXAMPLES")
_SEED = os.environ.get("PAYRULE_FUZZ_SEED")


def fuzz_settings(default: int):
    """Derandomized and bounded by default; PAYRULE_FUZZ_EXAMPLES / PAYRULE_FUZZ_SEED for long runs."""
    n = int(_LONG) if _LONG else default
    s = settings(max_examples=n, derandomize=_SEED is None, database=None, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])

    def wrap(fn):
        fn = s(fn)
        return seed(int(_SEED))(fn) if _SEED is not None else fn

    return wrap


# ---- inputs --------------------------------------------------------------------------------------

KEYWORDS = ("policy", "payer", "include", "source", "codes", "diagnoses", "stems", "names", "rule", "deny", "review",
            "line", "claim", "when", "message", "per", "and", "or", "not", "in", "is", "code", "has", "lacks",
            "distinct", "same", "day", "as", "earlier", "sharing", "a", "lacking", "more", "less", "than", "sessions",
            "session", "days", "after", "the", "last", "within", "months", "month", "calendar", "year",
            "muscle", "muscles", "modifier", "diagnosis", "substance", "units", "TPI", "common-tpi")
PUNCT = (":", ",", "=", "(", ")", "..", ">", ">=", "<", "<=", "!=", "#", '"', "\\", "{", "}", "{{", "}}", "'")
ODD = ('"', "'", "\\", "{", "}", "\x00", "\u2028", "\u2029", "\u0085", "\r", "\n", "\t", "\f", "\v", "\u200f",
       "\ufeff", "é", "İ", "ß", "\U0001f600", "\\u", "\\uD800", "\\n", "\\q", "#", "..", "-", "_", "0", "9", ".")
WORDS = KEYWORDS + PUNCT + ODD + ("20552", "M79.1", "00100..01999", "J3301", '"x"', '"{code}"', '"{{"', "3", "12")

_TOKEN = re.compile(r'"(?:[^"\\\n\r]|\\.)*"|#[^\n]*|\s+|[A-Za-z0-9_.-]+|.', re.S)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


OPS = ("delete", "duplicate", "swap", "replace", "insert", "truncate", "insert-text")
mutation = st.tuples(st.sampled_from(OPS), st.integers(0, 1 << 16), st.integers(0, 1 << 16),
                     st.sampled_from(WORDS), st.lists(st.sampled_from(ODD) | st.characters(), max_size=4).map("".join))


def mutate(text: str, ops: list[tuple]) -> str:
    """Apply token-level mutations (indices taken modulo the current length)."""
    toks = tokens(text)
    for op, i, j, word, junk in ops:
        if not toks:
            toks = [word]
            continue
        i, j = i % len(toks), j % len(toks)
        if op == "delete":
            del toks[i]
        elif op == "duplicate":
            toks.insert(i, toks[i])
        elif op == "swap":
            toks[i], toks[j] = toks[j], toks[i]
        elif op == "replace":
            toks[i] = word
        elif op == "insert":
            toks.insert(i, word)
        elif op == "insert-text":
            t = toks[i]
            k = j % (len(t) + 1)
            toks[i] = t[:k] + junk + t[k:]
        elif op == "truncate":
            flat = "".join(toks)
            toks = tokens(flat[: (i * 7919 + j) % (len(flat) + 1)])
    return "".join(toks)


# ---- tests ---------------------------------------------------------------------------------------


def test_shipped_policies_check_clean():
    """The oracle's baseline: the unmutated corpus is clean."""
    assert frontend(SHIPPED) == "clean"


@fuzz_settings(150)
@given(text=st.text(max_size=300))
def test_random_text(text):
    frontend({"policies/fuzz.policy": text})


word_soup = st.lists(st.sampled_from(WORDS) | st.text(max_size=3), max_size=40).map(" ".join)


@fuzz_settings(150)
@given(head=st.sampled_from(["", 'policy p "t" ', 'policy p "t" payer x codes S = 20552 rule r: deny line when ']),
       soup=word_soup)
def test_keyword_soup(head, soup):
    frontend({"policies/fuzz.policy": head + soup})


@fuzz_settings(300)
@given(target=st.sampled_from(sorted(SHIPPED)), ops=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_shipped_policies(target, ops):
    """One shipped file mutated, checked together with the other two (includes resolve among them)."""
    texts = dict(SHIPPED)
    texts[target] = mutate(texts[target], ops)
    event(frontend(texts))


@fuzz_settings(100)
@given(target=st.sampled_from(sorted(SHIPPED)), ops=st.lists(mutation, min_size=1, max_size=3),
       name=st.sampled_from(["policies/x.policy", 'odd "name"\n.policy', "{0}%s.policy", "\u2028.policy", ""]))
def test_mutated_policy_alone_under_odd_names(target, ops, name):
    """A mutated file on its own (its include now unknown), reported under a hostile file name."""
    event(frontend({name: mutate(SHIPPED[target], ops)}))
