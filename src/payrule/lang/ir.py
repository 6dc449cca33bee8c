"""The lowered IR: what codegen, the reference interpreter, explain, `why` and the printer walk.

`lower.lower_policy` builds it from a checked model. Every name is resolved here once: a condition
holds the `SetDef` it tests (not the set's name), the claim-schema field it reads (not the word the
author wrote), values in their field's normal form. Each condition is a typed node that says what it
reads (`READS`): the line's code, a line or claim field, same-day lines, or the patient's history
(a session count in a window, or the spacing since the last session).

Nodes are frozen dataclasses; spans are attributes (`compare=False`), as in `nodes`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import ClassVar, Iterator, Literal, Union

from payrule.lang.model import Placeholder, Segment, SetDef, SourceDoc
from payrule.lang.nodes import Action, CmpOp, Scope, WindowUnit
from payrule.lang.source import Span

__all__ = [
    "And", "Or", "Not", "CodeIn", "CodeIs", "Has", "Every", "Compare", "SameDay", "SessionLimit", "Spacing",
    "Cond", "FieldRef", "Value", "Window", "Rule", "Policy", "SetDef", "Placeholder", "Segment",
    "conjuncts", "walk", "rule_walk", "reads_extra", "NOSPAN",
]

NOSPAN = Span("<none>", 0, 0, 0, 0)


def _span() -> Span:
    return field(default=NOSPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A claim-schema field as a condition reads it: its schema `name` (`muscles`), the `word` the
    policy wrote (`muscle`), whether it lives on the line or the claim, and its normal form."""

    name: str
    word: str
    where: Literal["line", "claim"]
    form: str | None
    is_list: bool
    extra: bool = False  # not a field of the schema: read from the claim's or line's other fields

    @property
    def text(self) -> bool:
        """A single text value (`site`, `prior_auth`, or a field the schema does not know)."""
        return not self.is_list and (self.extra or self.form in ("name", "text"))


@dataclass(frozen=True, slots=True)
class Value:
    """A value a condition compares with: `value` in the field's normal form, `text` as written
    (decoded), `quoted` when it was a string, `raw` its spelling between the quotes in the source."""

    value: str
    text: str
    quoted: bool = False
    raw: str | None = None


@dataclass(frozen=True, slots=True)
class Window:
    """A look-back window: `size` days or months, or the calendar year (`size` None)."""

    unit: WindowUnit
    size: int | None


# ---- conditions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class And:
    READS: ClassVar[str] = "its parts"
    items: tuple["Cond", ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Or:
    READS: ClassVar[str] = "its parts"
    items: tuple["Cond", ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Not:
    READS: ClassVar[str] = "its part"
    item: "Cond"
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class CodeIn:
    """`code in SET` / `code not in SET`."""

    READS: ClassVar[str] = "the line's code"
    set: SetDef
    negated: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class CodeIs:
    """`code is CODE`: `code` upper-cased, `text` as written."""

    READS: ClassVar[str] = "the line's code"
    code: str
    text: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Has:
    """`has FIELD`, `has FIELD VALUE`, `has FIELD in SET` (a value in the set or in one of `others`),
    `has FIELD not in SET` (`outside`: a value in none of them); `lacks ...` when `negated`."""

    READS: ClassVar[str] = "a line or claim field"
    field: FieldRef
    negated: bool = False
    value: Value | None = None
    set: SetDef | None = None
    outside: bool = False
    others: tuple[SetDef, ...] = ()
    span: Span = _span()

    @property
    def sets(self) -> tuple[SetDef, ...]:
        return ((self.set,) if self.set is not None else ()) + self.others


@dataclass(frozen=True, slots=True)
class Every:
    """`every FIELD in SET`: at least one value, and every value in `set` or one of `others`."""

    READS: ClassVar[str] = "a line or claim field"
    field: FieldRef
    set: SetDef
    others: tuple[SetDef, ...] = ()
    span: Span = _span()

    @property
    def sets(self) -> tuple[SetDef, ...]:
        return (self.set,) + self.others


@dataclass(frozen=True, slots=True)
class Compare:
    """`units > 1` (a number field) or `distinct muscles < 3` (how many distinct values)."""

    READS: ClassVar[str] = "a line field"
    field: FieldRef
    op: CmpOp
    value: int
    distinct: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class SameDay:
    """Another line of the same patient, payer and day with a code in `set` (claims and history);
    with `earlier`, only lines decided before this one and not denied, and history lines."""

    READS: ClassVar[str] = "same-day lines"
    set: SetDef
    earlier: bool = False
    sharing: FieldRef | None = None
    lacking: FieldRef | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class SessionLimit:
    """History query: this line's session would be more than the `count`-th in `window`."""

    READS: ClassVar[str] = "the patient's history"
    set: SetDef
    count: int
    window: Window
    by: FieldRef | None = None  # `at the same FIELD`: only sessions with this line's value of FIELD
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Spacing:
    """History query: the last earlier session is fewer than `days` days (or `days` calendar months,
    `unit` "months") before this line."""

    READS: ClassVar[str] = "the patient's history"
    set: SetDef
    days: int
    unit: Literal["days", "months"] = "days"
    by: FieldRef | None = None
    span: Span = _span()


Cond = Union[And, Or, Not, CodeIn, CodeIs, Has, Every, Compare, SameDay, SessionLimit, Spacing]


def conjuncts(cond: Cond) -> tuple[Cond, ...]:
    """The top-level `and` items of a condition (the condition itself when it is not an `and`)."""
    return cond.items if isinstance(cond, And) else (cond,)


def walk(cond: Cond) -> Iterator[Cond]:
    """Every condition in the tree, parents before children."""
    stack: list[Cond] = [cond]
    while stack:
        c = stack.pop()
        yield c
        if isinstance(c, (And, Or)):
            stack.extend(reversed(c.items))
        elif isinstance(c, Not):
            stack.append(c.item)


def rule_walk(rule: "Rule") -> Iterator[Cond]:
    """Every condition of a rule: its condition's, then its `unless` clause's."""
    yield from walk(rule.cond)
    if rule.unless is not None:
        yield from walk(rule.unless)


def reads_extra(rule: "Rule") -> bool:
    """Whether a rule reads a field the claim schema does not know (a test of it, or grouping by it)."""
    for c in rule_walk(rule):
        if isinstance(c, (Has, Every)) and c.field.extra:
            return True
        if isinstance(c, (SessionLimit, Spacing)) and c.by is not None and c.by.extra:
            return True
    return False


# ---- rules and policies ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule, lowered. `guard` is the code set (or the one code) its condition starts with, which
    lets the engine skip it for other codes; `dynamic` when it reads decisions already made."""

    id: str
    policy: str
    action: Action
    scope: Scope
    cond: Cond
    message: tuple[Segment, ...]
    source: str  # "path:line", a decision's `source`
    text: str  # the rule as written
    cite: str | None
    citation: str | None
    guard: SetDef | str | None
    dynamic: bool
    unless: Cond | None = None  # the rule does not fire when this holds
    start: date | None = None  # in force for lines dated on or after
    end: date | None = None  # ... on or before
    carc: str | None = None  # X12 Claim Adjustment Reason Code
    rarc: str | None = None  # X12 Remittance Advice Remark Code
    span: Span = _span()

    def in_force(self, day: date) -> bool:
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)


@dataclass(frozen=True, slots=True)
class Policy:
    """A policy flattened with what it includes, lowered: what one generated module implements."""

    id: str
    title: str
    payer: str | None
    path: str
    digest: str
    sources: tuple[tuple[str, str, str], ...]  # (id, text, policy that declares it)
    sets: tuple[SetDef, ...]  # sorted by name
    rules: tuple[Rule, ...]  # included rules first, then the policy's own
    includes: tuple[str, ...]
    same_day_sets: tuple[SetDef, ...]  # sets read by `same day as SET`, sorted by name
    earlier_sets: tuple[SetDef, ...]  # ... by `same day as earlier SET`
    session_sets: tuple[SetDef, ...]  # ... by session limits and spacing
    grouped_sets: tuple[tuple[SetDef, FieldRef], ...] = ()  # ... counted `at the same FIELD`
    aliases: tuple[str, ...] = ()  # other payer names, in payer normal form
    documents: tuple[SourceDoc, ...] = ()  # each source's document id, URL, effective date, note
    start: date | None = None  # a version: the payer's policy for lines dated on or after
    end: date | None = None  # ... on or before

    def in_force(self, day: date) -> bool:
        """Whether this policy (a version of its payer's) is the one for a line dated `day`."""
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)

    @property
    def payer_names(self) -> tuple[str, ...]:
        """Every name a claim's payer may give for this policy (none for an included-only policy)."""
        return ((self.payer,) + self.aliases) if self.payer is not None else ()

    def set(self, name: str) -> SetDef:
        for s in self.sets:
            if s.name == name:
                return s
        raise KeyError(name)
