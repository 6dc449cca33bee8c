"""The only ways policy text enters generated Python: as a literal, an identifier, a docstring or a
comment, each built here and returned as PyCode. The template environment refuses anything else."""
from __future__ import annotations

import ast as pyast
import keyword
import re

__all__ = ["PyCode", "Writer", "WIDTH", "py_literal", "py_ident", "py_doc", "py_comment", "py_str_lines"]


class PyCode(str):
    """Python source text that is safe to paste into a module (the Markup idea, for Python)."""

    __slots__ = ()


_SAFE_ATOMS = (str, int, bool, type(None))


def py_literal(value: object) -> PyCode:
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


# What a docstring literal may need to escape: a backslash; a quote that could close the literal (before
# another quote, or last); anything but a newline outside printable ASCII (escaped unless printable).
_DOC_SPECIAL = re.compile(r'\\|"(?="|\Z)|[^\n -~]')


def _escape_special(m: re.Match[str]) -> str:
    ch = m.group()
    if ch == "\\":
        return "\\\\"
    if ch == '"':
        return '\\"'
    return ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")


def py_doc(text: str) -> PyCode:
    """A triple-quoted string literal whose value is exactly `text`: readable, yet every backslash,
    quote that could end it and unprintable character (carriage returns, line separators) is escaped."""
    if "\\" not in text and '"' not in text and text.replace("\n", "").isprintable():
        return PyCode(f'"""{text}"""')  # nothing to escape (the usual docstring): it is its own literal
    # (tests/test_compiler.py checks, over any text, that the literal's value is the text)
    return PyCode(f'"""{_DOC_SPECIAL.sub(_escape_special, text)}"""')


def py_comment(text: str) -> PyCode:
    """Text for a `#` comment: on one line, unprintable characters escaped."""
    return PyCode("".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text))


# ---- the writer --------------------------------------------------------------------------------

WIDTH = 99  # generated lines stay under 100 columns


def py_str_lines(text: str, room: int) -> list[PyCode]:
    """`text` as adjacent string literals (Python joins them) of at most `room` columns each,
    split after spaces where possible; one literal when it fits."""
    whole = py_literal(text)
    if len(whole) <= room or not text:
        return [whole]
    out: list[PyCode] = []
    piece = ""
    for word in _words_keeping_spaces(text):
        if piece and len(py_literal(piece + word)) > room:
            out.append(py_literal(piece))
            piece = ""
        while len(py_literal(word)) > room:  # a word longer than a line: cut it
            cut = max(1, room - 4)
            while cut > 1 and len(py_literal(word[:cut])) > room:
                cut -= 1
            out.append(py_literal(word[:cut]))
            word = word[cut:]
        piece += word
    if piece:
        out.append(py_literal(piece))
    return out


def _words_keeping_spaces(text: str) -> list[str]:
    return re.findall(r"\S*\s*|\s+", text)[:-1] or [text]


class Writer:
    """Lines of Python with the indentation managed: `line()` writes one, `block(header)` opens an
    indented block, `wrapped()` writes an expression made of parts, on one line when it fits and
    otherwise one part a line inside parentheses. Everything written is PyCode."""

    def __init__(self, level: int = 0) -> None:
        self.out: list[str] = []
        self.level = level

    @property
    def indent(self) -> str:
        return "    " * self.level

    def line(self, code: PyCode | None = None) -> None:
        if code is not None and not isinstance(code, PyCode):
            raise TypeError("the writer takes PyCode only")
        self.out.append(self.indent + code if code else "")

    class _Block:
        def __init__(self, writer: "Writer") -> None:
            self.writer = writer

        def __enter__(self) -> "Writer":
            self.writer.level += 1
            return self.writer

        def __exit__(self, *exc: object) -> None:
            self.writer.level -= 1

    def block(self, header: PyCode) -> "Writer._Block":
        """`with w.block(PyCode("if x:")):` writes the header and indents what follows."""
        self.line(header)
        return Writer._Block(self)

    def indented(self) -> "Writer._Block":
        """`with w.indented():` one level deeper, with no header line."""
        return Writer._Block(self)

    def fits(self, text: str) -> bool:
        return len(self.indent) + len(text) <= WIDTH

    def wrapped(self, head: str, parts: list[PyCode], sep: str, tail: str = "", open_: str = "",
                close: str = "", tuple_: bool = False) -> None:
        """`head` `open_` parts joined by `sep` `close` `tail`, on one line when it fits. Otherwise
        `head open_` ends the line, the parts follow one a line (an operator `sep` leads each line
        after the first; a comma trails every part), then `close tail`; with no `open_`, parentheses
        are added. A string part too long for its line is split into adjacent literals."""
        flat = head + open_ + sep.join(parts) + ("," if tuple_ else "") + close + tail
        if self.fits(flat) or not parts:
            self.line(PyCode(flat))
            return
        if not open_:
            open_, close = "(", ")"
        self.line(PyCode(head + open_))
        op = sep.strip()
        lead = op != ","
        self.level += 1
        room = WIDTH - len(self.indent) - len(op) - 2
        current = ""  # parts fill each line; a string split into literals takes lines of its own
        for i, part in enumerate(parts):
            pieces = py_str_lines(_literal_value(part), room) if _is_str_literal(part) else [part]
            for j, piece in enumerate(pieces):
                last = j == len(pieces) - 1
                if lead:
                    text = (op + " " if i and not j else "") + piece
                    joined = current + (" " if not j else "") + text if current else text
                else:
                    text = piece + ("," if last else "")
                    joined = current + " " + text if current else text
                if current and len(pieces) == 1 and self.fits(joined):
                    current = joined
                    continue
                if current:
                    self.line(PyCode(current))
                current = text
                if len(pieces) > 1 and not last:
                    self.line(PyCode(current))
                    current = ""
        if current:
            self.line(PyCode(current))
        self.level -= 1
        self.line(PyCode(close + tail))

    def text(self) -> PyCode:
        return PyCode("\n".join(self.out))


def _is_str_literal(code: PyCode) -> bool:
    if not (code.startswith("'") or code.startswith('"')):
        return False
    try:
        return isinstance(pyast.literal_eval(code), str)
    except (ValueError, SyntaxError):
        return False


def _literal_value(code: PyCode) -> str:
    value = pyast.literal_eval(code)
    assert isinstance(value, str)
    return value
