"""Where the grammar lives, the cached lark parser, and plain-word names for its terminals."""
from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lark import Lark

GRAMMAR_NAME = "policy.lark"


def grammar_path() -> Path:
    """The grammar file: inside the installed package (wheel), else the repository's `grammar/`."""
    try:
        packaged = resources.files("payrule") / "grammar" / GRAMMAR_NAME
        if packaged.is_file():
            return Path(str(packaged))
    except (ModuleNotFoundError, NotADirectoryError):  # pragma: no cover - unusual installs
        pass
    return Path(__file__).resolve().parents[3] / "grammar" / GRAMMAR_NAME


def grammar_text() -> str:
    return grammar_path().read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def parser() -> Lark:
    """The LALR parser, built once per process (no on-disk cache of lark's: see the style guide). lark is
    imported here, not above: `grammar_path` is all a run with its checkers compiled already needs."""
    from lark import Lark

    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
    )


# Terminals that are not keywords or punctuation get a hand-written description.
_DESCRIBED = {
    "NAME": "a name",
    "CODE": "a code",
    "INT": "a whole number",
    "STRING": 'a quoted string ("...")',
    "CMP": "a comparison (`>`, `>=`, `<`, `<=`, `=`, `!=`)",
    "$END": "the end of the file",
}
# A keyword terminal is written /word(?![\w-])/ or /(one|two)(?![\w-])/ in the grammar.
_KEYWORD = re.compile(r"^\(?([a-z|]+)\)?\(\?!\[\\w-\]\)$")


@functools.lru_cache(maxsize=None)
def _terminal_words() -> dict[str, list[str]]:
    """Terminal name -> the literal words or punctuation it matches."""
    out: dict[str, list[str]] = {}
    for term in parser().terminals:
        if term.pattern.type == "str":
            out[term.name] = [term.pattern.value]
        else:
            m = _KEYWORD.match(term.pattern.value)
            if m:
                out[term.name] = m.group(1).split("|")
    return out


def friendly(terminal: str) -> str:
    """`RULE` -> "`rule`", `ACTION` -> "`deny` or `review`", `NAME` -> "a name"."""
    if terminal in _DESCRIBED:
        return _DESCRIBED[terminal]
    words = _terminal_words().get(terminal)
    if words:
        return " or ".join(f"`{w}`" for w in words)
    return terminal.lower()


@functools.lru_cache(maxsize=None)
def reserved_words() -> frozenset[str]:
    """Every keyword of the language: an id may contain one (`per-day`) but not be one."""
    return frozenset(w for words in _terminal_words().values() for w in words if w.isalpha())


def keyword_of(terminal: str) -> list[str]:
    """The words a keyword terminal accepts (for "did you mean")."""
    return [w for w in _terminal_words().get(terminal, []) if w.isalpha()]


def expected_words(terminals: set[str] | frozenset[str]) -> str:
    """"`when`", "`and`, `or` or `message`": the expected terminals in plain words, sorted."""
    names = sorted({f"`{w}`" for t in terminals for w in _terminal_words().get(t, []) if t not in _DESCRIBED}
                   | {friendly(t) for t in terminals if t in _DESCRIBED or t not in _terminal_words()}
                   - {"ws", "comment"})
    if not names:
        return "nothing more"
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]
