"""The policy AST: frozen dataclasses, children as tuples, each node with a source span.

Spans are attributes, not fields (`compare=False`): two trees that say the same thing are equal
wherever they were written, which is what parser tests and the formatter's round trip compare.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Union

from payrule.lang.source import Span

_NOSPAN = Span("<none>", 0, 0, 0, 0)


def _span() -> Span:
    return field(default=_NOSPAN, compare=False, repr=False)


# ---- leaves ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ident:
    """A name as written: a policy, set, rule, source or field name."""

    value: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Text:
    """A double-quoted string; `value` is decoded, `raw` is the text between the quotes as written."""

    value: str
    raw: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Number:
    value: int
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Value:
    """A set member or compared value: a bare code (`12345`, `A12.3`, `25`) or a quoted string."""

    text: str
    quoted: bool
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Range:
    """`lo..hi`: every code of the same shape between the two, inclusive."""

    lo: Value
    hi: Value
    span: Span = _span()


Member = Union[Value, Range]

# ---- conditions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class And:
    items: tuple["Cond", ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple["Cond", ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Not:
    item: "Cond"
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class CodeIn:
    """`code in SET` / `code not in SET`."""

    set: Ident
    negated: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class CodeIs:
    """`code is 12345`."""

    code: Value
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Has:
    """`has FIELD`, `has FIELD VALUE`, `has FIELD in SET`; `lacks ...` when `negated`."""

    field: Ident
    negated: bool = False
    value: Value | None = None
    set: Ident | None = None
    span: Span = _span()


CmpOp = Literal[">", ">=", "<", "<=", "=", "!="]


@dataclass(frozen=True, slots=True)
class Compare:
    """`units > 1` or `distinct muscles < 3`."""

    field: Ident
    op: CmpOp
    value: Number
    distinct: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class SameDay:
    """`same day as [earlier] SET [sharing a FIELD | lacking FIELD]`: another line of the same patient,
    payer and date of service whose code is in SET (from the claims or the history).

    With `earlier`, only a line decided before this one and not denied, or a history line, counts.
    """

    set: Ident
    earlier: bool = False
    sharing: Ident | None = None
    lacking: Ident | None = None
    span: Span = _span()


WindowUnit = Literal["days", "months", "calendar year"]


@dataclass(frozen=True, slots=True)
class Window:
    unit: WindowUnit
    size: Number | None  # None for the calendar year
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class SessionLimit:
    """`more than N SET sessions within W`: this line's session would be more than the N-th in W.

    A session is a date of service with a line in SET that was not denied (or a history line).
    Only sessions on earlier days inside the window count, plus this line's own.
    """

    count: Number
    set: Ident
    window: Window
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Spacing:
    """`less than N days after the last SET session`."""

    days: Number
    set: Ident
    span: Span = _span()


Cond = Union[And, Or, Not, CodeIn, CodeIs, Has, Compare, SameDay, SessionLimit, Spacing]

# ---- statements ------------------------------------------------------------------------------

SetKind = Literal["codes", "diagnoses", "stems", "names"]
Action = Literal["deny", "review"]
Scope = Literal["line", "claim"]


@dataclass(frozen=True, slots=True)
class Payer:
    name: Ident
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Include:
    policy: Ident
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Source:
    name: Ident
    text: Text
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class SetDecl:
    kind: SetKind
    name: Ident
    members: tuple[Member, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Rule:
    id: Ident
    action: Action
    scope: Scope
    cond: Cond
    message: Text | None = None
    cite: Ident | None = None
    span: Span = _span()


Statement = Union[Payer, Include, Source, SetDecl, Rule]


@dataclass(frozen=True, slots=True)
class Comment:
    text: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Policy:
    """One policy file: `policy ID "title"` and its statements, in the order written."""

    id: Ident
    title: Text
    statements: tuple[Statement, ...]
    comments: tuple[Comment, ...] = field(default=(), compare=False, repr=False)
    span: Span = _span()

    def of_type(self, kind: type) -> list[Any]:
        return [s for s in self.statements if isinstance(s, kind)]

    @property
    def payer(self) -> Payer | None:
        found = self.of_type(Payer)
        return found[0] if found else None

    @property
    def rules(self) -> list[Rule]:
        return self.of_type(Rule)
