"""The checked model: what the checker hands the compiler. A policy flattened with everything it
includes, every name resolved, every value in normal form, every message split into literal text and
placeholders. Nothing here can fail to compile."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Union

from payrule.lang import nodes
from payrule.lang.source import Span


@dataclass(frozen=True, slots=True)
class SetDef:
    name: str
    kind: nodes.SetKind
    values: tuple[str, ...]  # in the kind's normal form, distinct, sorted
    ranges: tuple[tuple[str, str], ...]
    policy: str
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class SourceDoc:
    """A source's document: its id, URL, effective date and a note, each None when not given."""

    id: str
    policy: str
    document: str | None = None
    url: str | None = None
    effective: date | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Placeholder:
    name: str


Segment = Union[str, Placeholder]


@dataclass(frozen=True, slots=True)
class CheckedRule:
    id: str
    policy: str
    action: nodes.Action
    scope: nodes.Scope
    cond: nodes.Cond
    message: tuple[Segment, ...]
    source: str  # "path:line", the decision's `source`
    text: str  # the rule as written
    cite: str | None  # the source id it cites
    citation: str | None  # that source's text
    unless: nodes.Cond | None = None
    start: date | None = None  # `from D`
    end: date | None = None  # `until D`
    carc: str | None = None
    rarc: str | None = None
    span: Span = field(default=None, compare=False, repr=False)  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Model:
    id: str
    title: str
    payer: str | None  # lower-cased payer id; None for a policy that is only included
    path: str
    digest: str  # sha256 of the policy text and every text it includes
    sources: tuple[tuple[str, str, str], ...]  # (id, text, policy)
    sets: tuple[SetDef, ...]  # sorted by name
    rules: tuple[CheckedRule, ...]  # included rules first, in include order, then this policy's
    includes: tuple[str, ...]
    aliases: tuple[str, ...] = ()  # other payer names, in payer normal form
    documents: tuple[SourceDoc, ...] = ()  # sorted by source id, as `sources`
    start: date | None = None  # `version from D`: the payer's policy for lines dated D or later
    end: date | None = None  # `version until D`

    def set(self, name: str) -> SetDef:
        for s in self.sets:
            if s.name == name:
                return s
        raise KeyError(name)
