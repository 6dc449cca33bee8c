"""Where the grammar lives, the cached lark parser, and plain-word names for its terminals."""
from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

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
    return Path(__file__).resolve().parents[2] / "grammar" / GRAMMAR_NAME


def grammar_text() -> str:
    return grammar_path().read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def parser() -> Lark:
    """The LALR parser, built once per process (no on-disk cache: see the style guide)."""
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
    )


# Terminals whose pattern is not one literal word get a hand-written description.
_DESCRIBED = {
    "NAME": "a name",
    "CODE": "a code",
    "INT": "a whole number",
    "STRING": 'a quoted string ("...")',
    "SET_KIND": "`codes`, `diagnoses`, `stems` or `names`",
    "ACTION": "`deny` or `review`",
    "SCOPE": "`line` or `claim`",
    "CMP": "a comparison (`>`, `>=`, `<`, `<=`, `=`, `!=`)",
    "$END": "the end of the file",
}


@functools.lru_cache(maxsize=None)
def _literal_terminals() -> dict[str, str]:
    out: dict[str, str] = {}
    for term in parser().terminals:
        if term.pattern.type == "str":
            out[term.name] = term.pattern.value
    return out


def friendly(terminal: str) -> str:
    """`RULE` -> "`rule`", `NAME` -> "a name"."""
    if terminal in _DESCRIBED:
        return _DESCRIBED[terminal]
    lit = _literal_terminals().get(terminal)
    return f"`{lit}`" if lit is not None else terminal.lower()


def keyword_of(terminal: str) -> list[str]:
    """The words a keyword terminal accepts (for "did you mean")."""
    lit = _literal_terminals().get(terminal)
    if lit is not None:
        return [lit] if lit.isalpha() else []
    return {
        "SET_KIND": ["codes", "diagnoses", "stems", "names"],
        "ACTION": ["deny", "review"],
        "SCOPE": ["line", "claim"],
    }.get(terminal, [])


def expected_words(terminals: set[str] | frozenset[str]) -> str:
    """"`when`", "`and`, `or` or `message`": the expected terminals in plain words, sorted."""
    names = sorted({friendly(t) for t in terminals if t not in ("WS", "COMMENT")})
    if not names:
        return "nothing more"
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]
