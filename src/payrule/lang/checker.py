"""Semantic checks: an ordered list of named passes over parsed policies, then the checked model.

Every pass reads the AST and returns diagnostics; none mutates anything. `check()` runs them all and
reports every error (sorted by file, line and column); models are built only when there is none.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable, Iterator

from payrule.lang import nodes
from payrule.lang.diagnostics import Diagnostic, Severity, did_you_mean, error
from payrule.lang.grammar import reserved_words
from payrule.lang.model import CheckedRule, Model, Placeholder, Segment, SetDef, SourceDoc
from payrule.lang.source import SourceFile, Span
from payrule.runtime.schema import (
    CARC_PATTERN,
    CODE_PATTERN,
    ICD10_PATTERN,
    LINE_FIELDS,
    MODIFIER_PATTERN,
    NUMBER_FIELDS,
    RARC_PATTERN,
    READABLE_CLAIM_FIELDS,
    Field,
    claim_field_for_word,
    code_shape,
    field_for_word,
    normal,
    payer_key,
)
from payrule.runtime.schema import LIST_FIELDS as _LIST_NAMES

__all__ = ["Unit", "CheckResult", "check", "PLACEHOLDERS", "BASE_PLACEHOLDERS", "conjuncts", "walk"]


@dataclass(frozen=True)
class Unit:
    """One parsed policy file."""

    source: SourceFile
    policy: nodes.Policy


@dataclass
class CheckResult:
    models: dict[str, Model]
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]


# What a message may quote, by what the rule's condition says (top-level `and` items only: a fact
# under `or` or `not` may not exist when the rule fires).
BASE_PLACEHOLDERS = ("claim_id", "code", "date", "line", "patient_id", "payer", "policy", "rule", "site", "units")
DATE_PLACEHOLDERS = {"start": "start_date", "end": "end_date"}  # a dated rule's own dates
PLACEHOLDERS: dict[type, tuple[str, ...]] = {
    nodes.Has: ("matched",),
    nodes.Every: ("matched",),
    nodes.SameDay: ("other_claim", "other_code", "other_date", "other_line"),
    nodes.SessionLimit: ("limit", "n", "next_date", "nth", "sessions", "window", "year"),
    nodes.Spacing: ("days", "last_date", "min_days", "next_date"),
}
_KIND_FORM = {"codes": "code", "diagnoses": "diagnosis", "names": "name", "stems": "stem"}
_CODE, _MODIFIER, _ICD10 = CODE_PATTERN, MODIFIER_PATTERN, ICD10_PATTERN  # the schema's, one place
# The line's list fields and the normal form their values compare in; the words that name them.
LIST_FIELDS: dict[str, str] = {n: LINE_FIELDS[n].form or "text" for n in _LIST_NAMES}
FIELD_ALIASES: dict[str, str] = {a: f.name for f in LINE_FIELDS.values() for a in f.aliases}
_STEM = re.compile(r"[^\W_]+( +[^\W_]+)*\Z")  # one word, or several in a row
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def conjuncts(cond: nodes.Cond) -> tuple[nodes.Cond, ...]:
    return cond.items if isinstance(cond, nodes.And) else (cond,)


def walk(cond: nodes.Cond) -> Iterator[nodes.Cond]:
    yield cond
    if isinstance(cond, (nodes.And, nodes.Or)):
        for c in cond.items:
            yield from walk(c)
    elif isinstance(cond, nodes.Not):
        yield from walk(cond.item)


def provided(cond: nodes.Cond) -> set[str]:
    out = set(BASE_PLACEHOLDERS)
    for c in conjuncts(cond):
        if isinstance(c, nodes.Has):
            if not c.negated and c.set is not None:
                out.add("matched")
        elif isinstance(c, nodes.Every):
            out.add("matched")
        elif isinstance(c, nodes.Compare) and c.distinct:
            out.add(f"distinct_{field_name(c.field.value) or c.field.value}")
        elif isinstance(c, nodes.SameDay):
            out.update(PLACEHOLDERS[nodes.SameDay])
            if c.sharing is not None:
                out.add("shared")
        elif type(c) in PLACEHOLDERS:
            out.update(PLACEHOLDERS[type(c)])
    return out


def rule_provides(rule: nodes.Rule) -> set[str]:
    """What a rule's message may quote: its condition's facts and its own dates."""
    out = provided(rule.cond)
    out.update(name for attr, name in DATE_PLACEHOLDERS.items() if getattr(rule, attr) is not None)
    return out


def rule_conds(rule: nodes.Rule) -> Iterator[nodes.Cond]:
    """Every condition of a rule, its `unless` included."""
    yield from walk(rule.cond)
    if rule.unless is not None:
        yield from walk(rule.unless)


def provided_anywhere(cond: nodes.Cond) -> set[str]:
    """What every condition in the tree would provide, wherever it stands."""
    out: set[str] = set()
    for c in walk(cond):
        out |= provided(c)
    return out


def field_name(name: str) -> str | None:
    """The claim field a policy's word names (`muscle` and `muscles` both name `muscles`)."""
    if name in LIST_FIELDS or name in NUMBER_FIELDS:
        return name
    return FIELD_ALIASES.get(name)


def readable_field(word: str, claim: bool = False) -> Field | None:
    """The schema field `has WORD` reads: a line's (or, with `claim`, the claim's) field named or aliased
    by the word; None for a word the schema does not know (read from the claim's other fields)."""
    return claim_field_for_word(word) if claim else field_for_word(word)


def is_dynamic(cond: nodes.Cond) -> bool:
    return any(isinstance(c, (nodes.SessionLimit, nodes.Spacing)) or (isinstance(c, nodes.SameDay) and c.earlier) for c in walk(cond))


_SOURCE_OF = {
    "matched": "`has FIELD in SET`, `has FIELD not in SET` or `every FIELD in SET`",
    "start_date": "`from DATE`",
    "end_date": "`until DATE`",
    **{p: "`same day as SET`" for p in PLACEHOLDERS[nodes.SameDay]},
    "shared": "`same day as SET sharing a FIELD`",
    **{p: "`more than N SET sessions ...`" for p in PLACEHOLDERS[nodes.SessionLimit]},
    **{p: "`less than N days after the last SET session`" for p in PLACEHOLDERS[nodes.Spacing]},
    "next_date": "a session limit or `less than N days after ...`",
}


def split_message(text: nodes.Text, allowed: set[str], diags: list[Diagnostic], nested: frozenset[str] | set[str] = frozenset()) -> tuple[Segment, ...]:
    """"{nth} session" -> (Placeholder('nth'), ' session'); `{{` and `}}` stand for braces.
    `nested` names the placeholders conditions under `or`/`not` would find (for a better hint)."""
    out: list[Segment] = []
    buf: list[str] = []
    pos = 0
    value = text.value
    for m in _PLACEHOLDER.finditer(value):
        buf.append(value[pos:m.start()])
        pos = m.end()
        tok = m.group(0)
        if tok in ("{{", "}}"):
            buf.append(tok[0])
            continue
        name = m.group(1)
        sp = _inner_span(text, m.start(), m.end())
        if name is None:
            diags.append(error("PR402", f"unmatched `{tok}` in a message", sp,
                               help="write `{{` or `}}` for a literal brace"))
            continue
        if name not in allowed:
            hint = did_you_mean(name, allowed)
            listing = ", ".join(f"{{{a}}}" for a in sorted(allowed))
            if name in nested:
                hint = (f"`{{{name}}}` is found by a condition under `or` or `not`, which may not hold when the "
                        "rule fires: only conditions joined by `and` at the top can be quoted;")
            elif name in _SOURCE_OF or name.startswith("distinct_"):
                hint = f"`{{{name}}}` comes from {_SOURCE_OF.get(name, '`distinct FIELD ...`')}, which this rule does not have;"
            diags.append(error("PR401", f"the message quotes `{{{name}}}`, which this rule does not provide", sp,
                               help=(hint + " " if hint else "") + f"this rule can quote {listing}"))
            continue
        if buf:
            out.append("".join(buf))
            buf = []
        out.append(Placeholder(name))
    buf.append(value[pos:])
    if "".join(buf):
        out.append("".join(buf))
    return tuple(out)


def _inner_span(text: nodes.Text, start: int, end: int) -> Span:
    sp = text.span
    # Columns inside the string are exact when it holds no escapes; otherwise point at the string.
    if text.raw == text.value and sp.line == sp.end_line:
        return Span(sp.path, sp.line, sp.col + 1 + start, sp.line, sp.col + 1 + end)
    return sp


class _Checker:
    def __init__(self, units: list[Unit]):
        self.units = units
        self.by_id: dict[str, Unit] = {}
        self.diags: list[Diagnostic] = []
        self.order: dict[str, list[str]] = {}  # policy -> every policy it includes, transitively, in order

    # -- passes -------------------------------------------------------------------------------
    def pass_policy_ids(self) -> None:
        for u in self.units:
            pid = u.policy.id.value
            if pid in self.by_id:
                other = self.by_id[pid].policy.id.span
                self.diags.append(error("PR103", f"policy `{pid}` is defined twice", u.policy.id.span,
                                        help=f"the other definition is at {other}; give each policy its own id"))
            else:
                self.by_id[pid] = u

    def pass_includes(self) -> None:
        for u in self.units:
            for inc in u.policy.of_type(nodes.Include):
                name = inc.policy.value
                if name not in self.by_id:
                    hint = did_you_mean(name, self.by_id)
                    self.diags.append(error("PR101", f"include of unknown policy `{name}`", inc.policy.span,
                                            help=hint or "no policy file in the policy folders has this id"))
                elif name == u.policy.id.value:
                    self.diags.append(error("PR102", f"policy `{name}` includes itself", inc.policy.span, help="remove the include"))
        for u in self.units:
            pid = u.policy.id.value
            if self.by_id.get(pid) is not u:
                continue
            self.order[pid] = self._closure(pid, [pid], [], u)

    def _closure(self, pid: str, stack: list[str], out: list[str], root: Unit) -> list[str]:
        """Every policy `pid` includes, transitively, dependencies first; reports cycles through `root`."""
        for inc in self.by_id[pid].policy.of_type(nodes.Include):
            name = inc.policy.value
            if name not in self.by_id or name == pid:
                continue
            if name in stack:
                if name == stack[0]:
                    cycle = " -> ".join(stack + [name])
                    self.diags.append(error("PR102", f"include cycle: {cycle}", self._include_span(root, stack),
                                            help="a policy cannot include itself, directly or through others"))
                continue
            if name not in out:
                self._closure(name, stack + [name], out, root)
                out.append(name)
        return out

    @staticmethod
    def _include_span(root: Unit, stack: list[str]) -> Span:
        nxt = stack[1] if len(stack) > 1 else stack[0]
        for inc in root.policy.of_type(nodes.Include):
            if inc.policy.value == nxt:
                span: Span = inc.policy.span
                return span
        return root.policy.id.span

    def pass_reserved(self) -> None:
        """An id that is a keyword reads as the keyword to a person (`code in deny`): refused."""
        reserved = reserved_words()
        for u in self.units:
            named: list[tuple[str, nodes.Ident]] = [("policy", u.policy.id)]
            named += [("set", s.name) for s in u.policy.of_type(nodes.SetDecl)]
            named += [("rule", r.id) for r in u.policy.rules]
            named += [("source", s.name) for s in u.policy.of_type(nodes.Source)]
            for what, ident in named:
                if ident.value in reserved:
                    self.diags.append(error("PR110", f"`{ident.value}` is a reserved word and cannot name a {what}", ident.span,
                                            help=f"choose another name, e.g. `{ident.value}-{what}` (an id may contain a reserved word)"))

    def pass_duplicates(self) -> None:
        for u in self.units:
            payers = u.policy.of_type(nodes.Payer)
            for p in payers[1:]:
                self.diags.append(error("PR104", "a policy names one payer", p.span, help=f"the payer is already `{payers[0].name.value}`; write one policy per payer"))
            self._no_dupes(u, nodes.SetDecl, "set", lambda s: s.name, "PR209")
            self._no_dupes(u, nodes.Source, "source", lambda s: s.name, "PR404")
            self._no_dupes(u, nodes.Rule, "rule", lambda s: s.id, "PR301")
        seen: dict[str, list[tuple[nodes.Ident, str, tuple[date, date]]]] = {}
        for u in self.units:
            p = u.policy.payer
            versions = u.policy.of_type(nodes.Version)
            for v in versions[1:]:
                self.diags.append(error("PR107", "a policy has one `version` line", v.span,
                                        help="a new version of a payer's policy is a new file, with its own `version` dates"))
            if versions:
                v = versions[0]
                if p is None:
                    self.diags.append(error("PR107", "a version needs a payer", v.span,
                                            help="a version is a payer's policy for some dates of service: write `payer ID` too"))
                if v.start is not None and v.end is not None and v.start.value > v.end.value:
                    self.diags.append(error("PR308", "this version ends before it starts", v.end.span,
                                            help=f"`from {v.start.text}` is after `until {v.end.text}`: swap them, or fix one"))
            period = _period(versions[0] if versions else None)
            if p is None:
                if u.policy.aliases:
                    self.diags.append(error("PR106", "an alias needs a payer", u.policy.aliases[0].span,
                                            help="write `payer ID` before the aliases; a policy that is only included answers to no payer"))
                continue
            mine: set[str] = set()
            for name in (p.name, *u.policy.aliases):
                key = payer_key(name.value)
                if not key:
                    self.diags.append(error("PR106", "a payer name cannot be blank", name.span, help="write the name, or remove it"))
                    continue
                if key in mine:
                    self.diags.append(error("PR106", f"`{name.value}` names this policy's payer twice", name.span,
                                            help="payer names compare trimmed, case-folded, runs of spaces as one; remove the repeat"))
                    continue
                mine.add(key)
                for other, path, theirs in seen.get(key, ()):
                    if period[0] <= theirs[1] and theirs[0] <= period[1]:
                        both = _period_words(period, theirs)
                        self.diags.append(error("PR105", f"two policies answer to payer `{key}`{both}: {path} and {u.source.name}", name.span,
                                                help=f"the other is at {other.span}; a claim's payer must select exactly one policy on each "
                                                     "date of service: give each version `version from ... until ...` dates that do not overlap"))
                        break
                seen.setdefault(key, []).append((name, u.source.name, period))

    def _no_dupes(self, u: Unit, kind: type, what: str, key: Callable[[Any], nodes.Ident], code: str) -> None:
        seen: dict[str, nodes.Ident] = {}
        for s in u.policy.of_type(kind):
            ident = key(s)
            if ident.value in seen:
                self.diags.append(error(code, f"{what} `{ident.value}` is defined twice", ident.span,
                                        help=f"the first is on line {seen[ident.value].span.line}; rename one of them"))
            else:
                seen[ident.value] = ident

    def pass_members(self) -> None:
        for u in self.units:
            for s in u.policy.of_type(nodes.SetDecl):
                for m in s.members:
                    if isinstance(m, nodes.Range):
                        self._range(s, m)
                    else:
                        self._member(s.kind, m)

    def _member(self, kind: str, v: nodes.Value) -> None:
        t = v.text.strip()
        if kind == "codes" and not _CODE.match(t.upper()):
            self.diags.append(error("PR203", f"malformed code `{v.text}`", v.span, help="a procedure code has 5 letters or digits, e.g. `12345`, `A1234`, `1234A`"))
        elif kind == "diagnoses" and not _ICD10.match(normal("diagnosis", t)):
            self.diags.append(error("PR204", f"malformed diagnosis code `{v.text}`", v.span, help="an ICD-10-CM code is a letter, two digits and up to four more characters, e.g. `M79.1`"))
        elif kind == "stems" and not _STEM.match(t):
            self.diags.append(error("PR206", f"a stem is letters and digits, not `{v.text}`", v.span, help="write a word (`saline`) or words in a row (`sodium chloride`); a value matches when its words start with the stem's, in a row"))
        elif kind == "names" and not t:
            self.diags.append(error("PR206", "a name cannot be blank", v.span, help="write the name between the quotes, or remove the empty string"))

    def _range(self, s: nodes.SetDecl, r: nodes.Range) -> None:
        if s.kind != "codes":
            self.diags.append(error("PR207", f"ranges are for code sets, not `{s.kind}`", r.span, help="list the values one by one"))
            return
        self._member("codes", r.lo)
        self._member("codes", r.hi)
        lo, hi = r.lo.text.upper(), r.hi.text.upper()
        if not (_CODE.match(lo) and _CODE.match(hi)):
            return
        if code_shape(lo) != code_shape(hi):
            self.diags.append(error("PR207", f"the bounds of `{r.lo.text}..{r.hi.text}` have different shapes", r.span,
                                    help="both bounds need letters and digits in the same places, e.g. `J0000..J9999`"))
        elif lo > hi:
            self.diags.append(error("PR208", f"range `{r.lo.text}..{r.hi.text}` is upside down", r.span, help=f"write `{r.hi.text}..{r.lo.text}`"))

    def scope(self, pid: str) -> tuple[dict[str, tuple[nodes.SetDecl, str]], dict[str, tuple[nodes.Source, str]]]:
        sets: dict[str, tuple[nodes.SetDecl, str]] = {}
        sources: dict[str, tuple[nodes.Source, str]] = {}
        for name in self.order.get(pid, []) + [pid]:
            for s in self.by_id[name].policy.of_type(nodes.SetDecl):
                sets.setdefault(s.name.value, (s, name))
            for s in self.by_id[name].policy.of_type(nodes.Source):
                sources.setdefault(s.name.value, (s, name))
        return sets, sources

    def pass_clashes(self) -> None:
        for pid, unit in self.by_id.items():
            for name in self.order.get(pid, []):
                other = self.by_id[name].policy
                theirs = {s.name.value for s in other.of_type(nodes.SetDecl)}
                their_rules = {r.id.value for r in other.rules}
                for s in unit.policy.of_type(nodes.SetDecl):
                    if s.name.value in theirs:
                        self.diags.append(error("PR209", f"set `{s.name.value}` is already defined by included policy `{name}`", s.name.span, help="use that set, or give this one another name"))
                for r in unit.policy.rules:
                    if r.id.value in their_rules:
                        self.diags.append(error("PR301", f"rule `{r.id.value}` is already defined by included policy `{name}`", r.id.span, help="give this rule another id"))

    def pass_references(self) -> None:
        for pid, unit in self.by_id.items():
            sets, sources = self.scope(pid)
            for rule in unit.policy.rules:
                if rule.cite is not None and rule.cite.value not in sources:
                    hint = did_you_mean(rule.cite.value, sources)
                    self.diags.append(error("PR403", f"unknown source `{rule.cite.value}`", rule.cite.span,
                                            help=hint or "declare it with `source NAME \"...\"`"))
                for c in rule_conds(rule):
                    self._refs(c, sets)
                self._rule_clauses(rule)

    def _rule_clauses(self, rule: nodes.Rule) -> None:
        if rule.start is not None and rule.end is not None and rule.start.value > rule.end.value:
            self.diags.append(error("PR308", f"rule `{rule.id.value}` ends before it starts", rule.end.span,
                                    help=f"`from {rule.start.text}` is after `until {rule.end.text}`: swap them, or fix one"))
        for word, code, pattern, shape in (("carc", rule.carc, CARC_PATTERN, "up to 3 digits, or a letter and one or two digits (`119`, `16`, `B7`, `P12`)"),
                                           ("rarc", rule.rarc, RARC_PATTERN, "M, MA or N and up to 3 digits (`N130`, `M80`, `MA130`)")):
            if code is not None and not pattern.match(code.value.upper()):
                self.diags.append(error("PR408", f"malformed {word.upper()} `{code.value}`", code.span,
                                        help=f"a {word.upper()} is {shape}"))

    def _set(self, ident: nodes.Ident, sets: dict[str, Any], want: str | None = None) -> nodes.SetDecl | None:
        found = sets.get(ident.value)
        if found is None:
            hint = did_you_mean(ident.value, sets)
            what = {"codes": "code set", "diagnoses": "diagnosis set", "stems": "stem set", "names": "name set"}.get(want or "", "set")
            self.diags.append(error("PR201", f"unknown {what} `{ident.value}`", ident.span,
                                    help=hint or f"declare it, e.g. `{want or 'codes'} {ident.value} = ...`"))
            return None
        decl = found[0]
        if want is not None and decl.kind != want:
            self.diags.append(error("PR202", f"`{ident.value}` is a `{decl.kind}` set, not a `{want}` set", ident.span,
                                    help=f"this condition needs a set declared with `{want}`"))
        found_decl: nodes.SetDecl = decl
        return found_decl

    def _field(self, ident: nodes.Ident, want: str) -> str | None:
        name = field_name(ident.value)
        pool = list(LIST_FIELDS) + list(FIELD_ALIASES) if want == "list" else list(NUMBER_FIELDS)
        if name is None or (want == "list" and name not in LIST_FIELDS) or (want == "number" and name not in NUMBER_FIELDS):
            hint = did_you_mean(ident.value, pool)
            kinds = "list field (" + ", ".join(sorted(LIST_FIELDS)) + ")" if want == "list" else "number field (" + ", ".join(NUMBER_FIELDS) + ")"
            if want == "number" and name in LIST_FIELDS:
                self.diags.append(error("PR302", f"`{ident.value}` is a list; compare how many distinct values it has", ident.span, help=f"write `distinct {ident.value} ...`"))
            else:
                self.diags.append(error("PR302", f"unknown {kinds.split(' (')[0]} `{ident.value}`", ident.span, help=hint or f"a claim line's {kinds}"))
            return None
        return name

    def _refs(self, c: nodes.Cond, sets: dict[str, Any]) -> None:
        if isinstance(c, nodes.CodeIn):
            self._set(c.set, sets, "codes")
        elif isinstance(c, nodes.CodeIs):
            if not _CODE.match(c.code.text.upper()):
                self.diags.append(error("PR203", f"malformed code `{c.code.text}`", c.code.span, help="a procedure code has 5 letters or digits, e.g. `12345`"))
        elif isinstance(c, (nodes.Has, nodes.Every)):
            f = self._has_field(c)
            for ref in ((c.set,) if c.set is not None else ()) + c.others:
                decl = self._set(ref, sets)
                if decl is not None and f is not None and f.form is not None:
                    form = _KIND_FORM[decl.kind]
                    if form not in ("stem", f.form):
                        good = sorted(k for k, fm in _KIND_FORM.items() if fm == f.form) + ["stems"]
                        self.diags.append(error("PR202", f"a `{decl.kind}` set cannot match `{c.field.value}`",
                                                ref.span,
                                                help=f"`{f.name}` values match " + " or ".join(f"`{g}`" for g in good) + " sets"))
            value = c.value if isinstance(c, nodes.Has) else None
            fname = f.name if f is not None else None
            if value is not None and fname == "modifiers" and not _MODIFIER.match(value.text.strip().upper()):
                self.diags.append(error("PR205", f"malformed modifier `{value.text}`", value.span, help="a modifier is two letters or digits, e.g. `25`, `59`, `LT`"))
            if value is not None and fname == "diagnoses" and not _ICD10.match(normal("diagnosis", value.text)):
                self.diags.append(error("PR204", f"malformed diagnosis code `{value.text}`", value.span, help="e.g. `M79.1`"))
        elif isinstance(c, nodes.Compare):
            self._field(c.field, "list" if c.distinct else "number")
            if c.op == "<" and c.value.value == 0 or (c.distinct is False and c.op == "<" and c.value.value <= 1):
                self.diags.append(error("PR303", f"`{c.field.value} {c.op} {c.value.value}` can never be true", c.span,
                                        help="a count is never below 0, and units are at least 1"))
        elif isinstance(c, nodes.SameDay):
            self._set(c.set, sets, "codes")
            for word in (c.sharing, c.lacking):
                if word is not None:
                    self._field(word, "list")
        elif isinstance(c, (nodes.SessionLimit, nodes.Spacing)):
            self._set(c.set, sets, "codes")
            if c.by is not None:
                g = field_for_word(c.by.value)
                if g is not None and (g.where != "line" or g.kind != "text"):
                    texts = ", ".join(f.name for f in LINE_FIELDS.values() if f.kind == "text")
                    self.diags.append(error("PR309", f"sessions cannot be counted at the same `{c.by.value}`", c.by.span,
                                            help=f"`at the same FIELD` needs a line field with one text value ({texts}, or a field of your claims)"))

    def _has_field(self, c: nodes.Has | nodes.Every) -> Field | None:
        """The schema field a `has`/`every` test reads; None (and no error) for a word the schema does not
        know: the claims' other fields may hold it, and the linter warns about it."""
        f = readable_field(c.field.value, c.claim)
        if f is None:
            return None
        if f.where == "claim" and f.name not in READABLE_CLAIM_FIELDS:
            readable = ", ".join(READABLE_CLAIM_FIELDS)
            extra = " (a line's diagnoses are the claim's unless the line has its own: write `has diagnosis ...`)" if f.name == "diagnoses" else ""
            self.diags.append(error("PR302", f"`claim has {c.field.value}` cannot be tested", c.field.span,
                                    help=f"a rule may test the claim's {readable}{extra}"))
            return None
        if f.kind not in ("list", "text"):
            self.diags.append(error("PR302", f"`{c.field.value}` is a {f.kind} field, not a list or text", c.field.span,
                                    help="compare a number with `units > 1`; test the code with `code in SET` or `code is CODE`"))
            return None
        if isinstance(c, nodes.Every) and f.kind != "list":
            self.diags.append(error("PR302", f"`every {c.field.value}` needs a list field", c.field.span,
                                    help=f"`{f.name}` has one value: write `has {c.field.value} in SET`"))
            return None
        return f

    def pass_limits(self) -> None:
        for unit in self.by_id.values():
            for rule in unit.policy.rules:
                for c in rule_conds(rule):
                    span_of = _too_long(c)
                    if span_of is not None:
                        self.diags.append(error("PR304", f"a window or gap of {span_of[0]} is longer than {MAX_YEARS} years",
                                                span_of[1], help=f"payer rules look back days, months or a few years: use at most "
                                                f"{MAX_YEARS * 12} months or {MAX_DAYS} days"))
                        continue
                    if isinstance(c, nodes.SessionLimit):
                        if c.count.value == 0:
                            self.diags.append(error("PR304", "a limit of `more than 0` sessions denies every session", c.count.span,
                                                    help=f"to refuse every line in the set, drop the limit: `code in {c.set.value}`"))
                        if c.window.size is not None and c.window.size.value == 0:
                            self.diags.append(error("PR304", f"a window of 0 {c.window.unit} holds no earlier session", c.window.size.span,
                                                    help="use a window of at least 1"))
                    elif isinstance(c, nodes.Spacing) and c.unit == "months" and c.days.value == 0:
                        self.diags.append(error("PR304", "`less than 0 months` can never be true", c.days.span,
                                                help="use at least 1 month"))
                    elif isinstance(c, nodes.Spacing) and c.unit == "days" and c.days.value <= 1:
                        self.diags.append(error("PR304", f"`less than {c.days.value} days` can never be true",
                                                c.days.span,
                                                help="earlier sessions are always at least 1 day before; use 2 or more days"))

    def pass_scopes(self) -> None:
        for unit in self.by_id.values():
            for rule in unit.policy.rules:
                if rule.scope == "claim" and (is_dynamic(rule.cond) or (rule.unless is not None and is_dynamic(rule.unless))):
                    self.diags.append(error("PR305", f"rule `{rule.id.value}` denies the whole claim on a fact about other claims' decisions",
                                            rule.id.span,
                                            help="a `claim` rule may use the claim's own lines and same-day lines only; use `line` for limits and `earlier`"))

    def pass_messages(self) -> None:
        for unit in self.by_id.values():
            for rule in unit.policy.rules:
                if rule.message is not None:
                    split_message(rule.message, rule_provides(rule), self.diags, provided_anywhere(rule.cond))

    PASSES: tuple[tuple[str, Callable[["_Checker"], None]], ...] = (
        ("policy ids", pass_policy_ids),
        ("reserved words", pass_reserved),
        ("includes", pass_includes),
        ("duplicates", pass_duplicates),
        ("clashes", pass_clashes),
        ("members", pass_members),
        ("references", pass_references),
        ("limits", pass_limits),
        ("scopes", pass_scopes),
        ("messages", pass_messages),
    )

    def run(self) -> CheckResult:
        for _name, fn in self.PASSES:
            fn(self)
        errors = [d for d in self.diags if d.severity is Severity.ERROR]
        models = {} if errors else {pid: self.build(pid) for pid in sorted(self.by_id)}
        return CheckResult(models, sorted(self.diags, key=lambda d: d.sort_key))

    # -- model ------------------------------------------------------------------------------------
    def build(self, pid: str) -> Model:
        unit = self.by_id[pid]
        chain = self.order.get(pid, []) + [pid]
        sets_scope, sources_scope = self.scope(pid)
        sets = tuple(self._setdef(decl, owner) for _, (decl, owner) in sorted(sets_scope.items()))
        rules: list[CheckedRule] = []
        digest = hashlib.sha256()
        for name in chain:
            u = self.by_id[name]
            digest.update(u.source.text.encode("utf-8"))
            for rule in u.policy.rules:
                rules.append(self._rule(rule, u, sources_scope))
        payer = unit.policy.payer
        version = unit.policy.version
        return Model(
            start=version.start.value if version and version.start else None,
            end=version.end.value if version and version.end else None,
            id=pid,
            title=unit.policy.title.value,
            payer=payer_key(payer.name.value) if payer else None,
            aliases=tuple(payer_key(a.value) for a in unit.policy.aliases) if payer else (),
            documents=tuple(SourceDoc(n, owner, s.document.value if s.document else None,
                                      s.url.value if s.url else None, s.effective.value if s.effective else None,
                                      s.note.value if s.note else None)
                            for n, (s, owner) in sorted(sources_scope.items())),
            path=unit.source.name,
            digest=digest.hexdigest(),
            sources=tuple((n, s.text.value, owner) for n, (s, owner) in sorted(sources_scope.items())),
            sets=sets,
            rules=tuple(rules),
            includes=tuple(self.order.get(pid, [])),
        )

    @staticmethod
    def _setdef(decl: nodes.SetDecl, owner: str) -> SetDef:
        form = _KIND_FORM[decl.kind]
        values, ranges = set(), []
        for m in decl.members:
            if isinstance(m, nodes.Range):
                ranges.append((m.lo.text.upper(), m.hi.text.upper()))
            elif form == "stem":
                values.add(" ".join(m.text.split()).casefold())
            else:
                values.add(normal(form, m.text))
        return SetDef(decl.name.value, decl.kind, tuple(sorted(values)), tuple(sorted(ranges)), owner, decl.name.span)

    def _rule(self, rule: nodes.Rule, unit: Unit, sources: dict[str, Any]) -> CheckedRule:
        diags: list[Diagnostic] = []
        msg = split_message(rule.message, rule_provides(rule), diags) if rule.message else ()
        sp = rule.span
        text = "\n".join(unit.source.line_text(n) for n in range(sp.line, sp.end_line + 1))
        cite = rule.cite.value if rule.cite else None
        return CheckedRule(
            id=rule.id.value,
            policy=unit.policy.id.value,
            action=rule.action,
            scope=rule.scope,
            cond=rule.cond,
            message=msg,
            source=sp.where,
            text=_dedent(text),
            cite=cite,
            citation=sources[cite][0].text.value if cite in sources else None,
            unless=rule.unless,
            start=rule.start.value if rule.start else None,
            end=rule.end.value if rule.end else None,
            carc=rule.carc.value.upper() if rule.carc else None,
            rarc=rule.rarc.value.upper() if rule.rarc else None,
            span=sp,
        )


MAX_YEARS = 100  # the longest window or gap a rule may name (a bound, so date arithmetic stays small)
MAX_DAYS = MAX_YEARS * 366


def _too_long(c: nodes.Cond) -> tuple[str, Span] | None:
    """(`N unit`, where) of a window or spacing longer than MAX_YEARS, else None."""
    if isinstance(c, nodes.SessionLimit) and c.window.size is not None:
        n, unit, sp = c.window.size.value, c.window.unit, c.window.size.span
    elif isinstance(c, nodes.Spacing):
        n, unit, sp = c.days.value, c.unit, c.days.span
    else:
        return None
    limit = MAX_DAYS if unit == "days" else MAX_YEARS * 12
    return (f"{n} {unit}", sp) if n > limit else None


def _period(v: nodes.Version | None) -> tuple[date, date]:
    """The dates of service a policy is in force for: its version's, else all of them."""
    if v is None:
        return (date.min, date.max)
    return (v.start.value if v.start else date.min, v.end.value if v.end else date.max)


def _period_words(a: tuple[date, date], b: tuple[date, date]) -> str:
    lo, hi = max(a[0], b[0]), min(a[1], b[1])
    if (lo, hi) == (date.min, date.max):
        return ""
    if lo == date.min:
        return f" on dates of service until {hi.isoformat()}"
    if hi == date.max:
        return f" on dates of service from {lo.isoformat()}"
    return f" on dates of service from {lo.isoformat()} until {hi.isoformat()}"


def _dedent(text: str) -> str:
    lines = text.split("\n")
    indent = min((len(l) - len(l.lstrip()) for l in lines if l.strip()), default=0)
    return "\n".join(l[indent:].rstrip() for l in lines)


def check(units: list[Unit]) -> CheckResult:
    """Check parsed policies together (includes resolve among them) and build their models."""
    return _Checker(units).run()
