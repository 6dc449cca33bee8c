"""Conditions and strings back to policy text: the one printer `payrule fmt`, `payrule why`,
`payrule explain`, the linter and the diagnostics use.

    >>> quote('say "hi"\\n')
    '"say \\\\"hi\\\\"\\\\n"'
    >>> from payrule.lang.parser import parse_text
    >>> from payrule.lang.lower import lower_cond
    >>> p = parse_text('policy x "X"\\n  rule r: deny line when code in S and (has muscle "a\\\\nb" or units > 1)')
    >>> print(print_cond(lower_cond(p.rules[0].cond)))
    code in S and (has muscle "a\\nb" or units > 1)

`quote` is the inverse of the parser's `decode_string`: `parse(quote(s)) == s` for every string.
"""
from __future__ import annotations

from typing import assert_never

from payrule.lang import ir

__all__ = ["quote", "atom", "print_cond", "window_text", "needs_parens"]

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ch.isprintable():
        return ch
    cp = ord(ch)
    if cp > 0xFFFF:  # a surrogate pair of \\u escapes, which the parser reads back as one character
        cp -= 0x10000
        return f"\\u{0xD800 + (cp >> 10):04X}\\u{0xDC00 + (cp & 0x3FF):04X}"
    return f"\\u{cp:04X}"


def quote(text: str) -> str:
    """A string as the policy language writes it: double quotes; `"`, `\\`, line breaks, tabs and
    every other unprintable character escaped, so it always stays on one line."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return '"' + "".join(_escape(c) for c in text) + '"'


def _value(v: ir.Value) -> str:
    if not v.quoted:
        return v.text
    return f'"{v.raw}"' if v.raw is not None else quote(v.text)


def _scope(f: ir.FieldRef) -> str:
    """`claim ` before a test of the claim's own field (the canonical spelling: `claim has prior_auth`)."""
    return "claim " if f.where == "claim" else ""


def _sets(sets: tuple[ir.SetDef, ...]) -> str:
    return sets[0].name if len(sets) == 1 else "(" + " or ".join(s.name for s in sets) + ")"


def _grouping(by: ir.FieldRef | None) -> str:
    return f" at the same {by.word}" if by is not None else ""


def window_text(w: ir.Window) -> str:
    """`within 12 months`, `within 1 month`, `per calendar year`."""
    if w.size is None:
        return "per calendar year"
    unit = w.unit if w.size != 1 else w.unit[:-1]
    return f"within {w.size} {unit}"


def atom(c: ir.Cond) -> str:
    """One condition that is not `and`, `or` or `not`, in canonical spelling."""
    match c:
        case ir.CodeIn(set=s, negated=neg):
            return f"code {'not in' if neg else 'in'} {s.name}"
        case ir.CodeIs(text=text):
            return f"code is {text}"
        case ir.Has(field=f, negated=neg, value=v, set=s):
            out = f"{_scope(f)}{'lacks' if neg else 'has'} {f.word}"
            if v is not None:
                out += " " + _value(v)
            elif s is not None:
                out += f" {'not in' if c.outside else 'in'} {_sets(c.sets)}"
            return out
        case ir.Every(field=f):
            return f"{_scope(f)}every {f.word} in {_sets(c.sets)}"
        case ir.Compare(field=f, op=op, value=n, distinct=d):
            return f"{'distinct ' if d else ''}{f.word} {op} {n}"
        case ir.SameDay(set=s, earlier=e, sharing=sh, lacking=la):
            out = f"same day as {'earlier ' if e else ''}{s.name}"
            if sh is not None:
                out += f" sharing a {sh.word}"
            elif la is not None:
                out += f" lacking {la.word}"
            return out
        case ir.SessionLimit(set=s, count=n, window=w, by=by):
            return f"more than {n} {s.name} sessions {window_text(w)}{_grouping(by)}"
        case ir.Spacing(set=s, days=n, unit=unit, by=by):
            return f"less than {n} {unit if n != 1 else unit[:-1]} after the last {s.name} session{_grouping(by)}"
        case ir.And() | ir.Or() | ir.Not():
            raise TypeError("not an atom")
        case _:
            assert_never(c)


def needs_parens(item: ir.Cond, parent: ir.Cond) -> bool:
    """Parentheses where precedence needs them (`not` > `and` > `or`), and around an `and` inside an
    `and` (or an `or` inside an `or`), a grouping the author wrote and the tree keeps."""
    if isinstance(parent, ir.Or):
        return isinstance(item, ir.Or)
    return isinstance(item, (ir.And, ir.Or))


def print_cond(c: ir.Cond, parent: ir.Cond | None = None) -> str:
    """A condition on one line, as `payrule fmt` writes it."""
    if isinstance(c, (ir.And, ir.Or)):
        op = " and " if isinstance(c, ir.And) else " or "
        text = op.join(print_cond(i, c) for i in c.items)
        return f"({text})" if parent is not None and needs_parens(c, parent) else text
    if isinstance(c, ir.Not):
        return "not " + print_cond(c.item, c)
    return atom(c)
