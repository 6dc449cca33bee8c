"""The policy AST: frozen dataclasses, children as tuples, each node with a source span.

Spans are attributes, not fields (`compare=False`): two trees that say the same thing are equal
wherever they were written, which is what parser tests and the formatter's round trip compare.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
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
class DateLit:
    """A date as written (`2024-04-01`) and its value."""

    text: str
    value: date
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Has:
    """`has FIELD`, `has FIELD VALUE`, `has FIELD in SET` (any value in the set), `has FIELD not in SET`
    (`outside`: some value in none of the sets); `lacks ...` when `negated`. `others` are further sets of a
    union `(A or B)`; `claim` when written `claim has ...` (the claim's own field, not the line's)."""

    field: Ident
    negated: bool = False
    value: Value | None = None
    set: Ident | None = None
    outside: bool = False
    others: tuple[Ident, ...] = ()
    claim: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Every:
    """`every FIELD in SET`: the field has at least one value, and each is in one of the sets."""

    field: Ident
    set: Ident
    others: tuple[Ident, ...] = ()
    claim: bool = False
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
    by: Ident | None = None  # `at the same FIELD`: count only sessions with this line's value of FIELD
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Spacing:
    """`less than N days|months after the last SET session [at the same FIELD]`."""

    days: Number  # N, in `unit`
    set: Ident
    unit: Literal["days", "months"] = "days"
    by: Ident | None = None
    span: Span = _span()


Cond = Union[And, Or, Not, CodeIn, CodeIs, Has, Every, Compare, SameDay, SessionLimit, Spacing]

# ---- statements ------------------------------------------------------------------------------

SetKind = Literal["codes", "diagnoses", "stems", "names"]
Action = Literal["deny", "review"]
Scope = Literal["line", "claim"]


@dataclass(frozen=True, slots=True)
class Payer:
    name: Ident
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Alias:
    """`alias "acme health plan", ...`: other names a claim's payer may give."""

    names: tuple[Ident, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Version:
    """`version from D1 until D2`: this policy is the payer's policy for lines dated D1 through D2."""

    start: DateLit | None
    end: DateLit | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Include:
    policy: Ident
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Source:
    """`source ID "text"` and what identifies the document: its id, URL, effective date, and a note
    (what could and could not be verified)."""

    name: Ident
    text: Text
    document: Text | None = None
    url: Text | None = None
    effective: DateLit | None = None
    note: Text | None = None
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
    unless: Cond | None = None  # the rule does not fire when this holds
    start: DateLit | None = None  # `from D`: for lines dated D or later
    end: DateLit | None = None  # `until D`: for lines dated D or earlier
    carc: Ident | None = None  # X12 Claim Adjustment Reason Code
    rarc: Ident | None = None  # X12 Remittance Advice Remark Code
    span: Span = _span()


Statement = Union[Payer, Alias, Version, Include, Source, SetDecl, Rule]


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
    def version(self) -> Version | None:
        found = self.of_type(Version)
        return found[0] if found else None

    @property
    def aliases(self) -> list[Ident]:
        return [n for a in self.of_type(Alias) for n in a.names]

    @property
    def rules(self) -> list[Rule]:
        return self.of_type(Rule)
