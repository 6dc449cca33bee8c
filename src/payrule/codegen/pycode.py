"""The only ways policy text enters generated Python: as a literal, an identifier, a docstring or a
comment, each built here and returned as PyCode. The template environment refuses anything else."""
from __future__ import annotations

import ast as pyast
import keyword
import re

__all__ = ["PyCode", "py_literal", "py_ident", "py_doc", "py_comment"]


class PyCode(str):
    """Python source text that is safe to paste into a module (the Markup idea, for Python)."""

    __slots__ = ()


_SAFE_ATOMS = (str, int, bool, type(None))


def py_literal(value) -> PyCode:
    """`repr()` of a str, int, bool, None, or a tuple/frozenset of those (frozensets sorted)."""
    if isinstance(value, _SAFE_ATOMS) and not isinstance(value, float):
        return PyCode(repr(value))
    if isinstance(value, tuple):
        inner = ", ".join(py_literal(v) for v in value)
        return PyCode(f"({inner},)" if len(value) == 1 else f"({inner})")
    if isinstance(value, frozenset):
        return PyCode(f"frozenset({py_literal(tuple(sorted(value)))})")
    raise TypeError(f"no safe Python literal for {type(value).__name__}")


_NOT_IDENT = re.compile(r"[^A-Za-z0-9_]")


def py_ident(name: str, prefix: str, taken: set[str] | None = None) -> PyCode:
    """`prefix` + the name with every other character as `_`; made unique against `taken`."""
    base = prefix + _NOT_IDENT.sub("_", name)
    if not base.isidentifier() or keyword.iskeyword(base):
        base = prefix + "x_" + _NOT_IDENT.sub("_", name)
    ident, n = base, 2
    while taken is not None and ident in taken:
        ident, n = f"{base}_{n}", n + 1
    if taken is not None:
        taken.add(ident)
    assert ident.isidentifier() and not keyword.iskeyword(ident), ident
    return PyCode(ident)


def _escape_char(text: str, i: int) -> str:
    ch = text[i]
    if ch == "\\":
        return "\\\\"
    if ch == '"':  # escaped only where it could close the literal: before another quote, or last
        return '\\"' if i + 1 == len(text) or text[i + 1] == '"' else ch
    if ch == "\n" or ch.isprintable():
        return ch
    return ch.encode("unicode_escape").decode("ascii")


def py_doc(text: str) -> PyCode:
    """A triple-quoted string literal whose value is exactly `text`: readable, yet every backslash,
    quote that could end it and unprintable character (carriage returns, line separators) is escaped."""
    body = "".join(_escape_char(text, i) for i in range(len(text)))
    lit = f'"""{body}"""'
    if pyast.literal_eval(lit) != text:  # pragma: no cover - guard against an escaping bug
        raise AssertionError("docstring literal does not round-trip")
    return PyCode(lit)


def py_comment(text: str) -> PyCode:
    """Text for a `#` comment: on one line, unprintable characters escaped."""
    return PyCode("".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text))
