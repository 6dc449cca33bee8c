"""Checked model -> lowered IR (`payrule.lang.ir`): names resolved once, values in normal form.

`lower_policy` is the pipeline stage. `lower_cond` lowers one condition on its own; without the
policy's sets (the formatter and the linter work on files that may not check) a set reference
becomes a `SetDef` that knows only its name, which is all the printer needs.
"""
from __future__ import annotations

from typing import Mapping, assert_never

from payrule.lang import ir, nodes
from payrule.lang.model import CheckedRule, Model, SetDef
from payrule.lang.source import SourceFile
from payrule.runtime.schema import claim_field_for_word, field_for_word, normal

__all__ = ["lower_policy", "lower_rule", "lower_cond", "field_ref"]


def field_ref(word: str, claim: bool = False) -> ir.FieldRef:
    """The schema field a policy's word names (`muscle` -> `muscles`; with `claim`, the claim's own field).
    A word the schema does not know names one of the claim's (or line's) other fields, compared as a name."""
    f = claim_field_for_word(word) if claim else field_for_word(word)
    if f is None:
        return ir.FieldRef(word, word, "claim" if claim else "line", "name", False, extra=True)
    form = f.form or ("text" if f.kind == "text" else None)
    return ir.FieldRef(f.name, word, f.where, form, f.kind == "list")


class _Lowering:
    def __init__(self, sets: Mapping[str, SetDef] | None, source: SourceFile | None = None):
        self.sets = sets
        self.source = source

    def set(self, ident: nodes.Ident, kind: nodes.SetKind) -> SetDef:
        if self.sets is not None and ident.value in self.sets:
            return self.sets[ident.value]
        return SetDef(ident.value, kind, (), (), "", ident.span)

    def value(self, f: ir.FieldRef, v: nodes.Value) -> ir.Value:
        raw = None
        sp = v.span
        if v.quoted and self.source is not None and sp.path == self.source.name and sp.line == sp.end_line:
            written = self.source.line_text(sp.line)[sp.col - 1 : sp.end_col - 1]
            if len(written) >= 2 and written[0] == written[-1] == '"':
                raw = written[1:-1]
        form = f.form or "text"
        return ir.Value(normal(form, v.text), v.text, v.quoted, raw)

    def extra_form(self, f: ir.FieldRef, refs: tuple[nodes.Ident, ...]) -> ir.FieldRef:
        """A field the schema does not know takes the normal form of the sets it is tested against: codes
        (upper-cased) for `codes` sets, diagnoses for `diagnoses` sets, else names."""
        if not f.extra or not refs:
            return f
        kinds = {self.set(r, "names").kind for r in refs}
        form = "code" if kinds == {"codes"} else "diagnosis" if kinds == {"diagnoses"} else "name"
        return ir.FieldRef(f.name, f.word, f.where, form, f.is_list, f.extra)

    def cond(self, c: nodes.Cond) -> ir.Cond:
        match c:
            case nodes.And(items=items):
                return ir.And(tuple(self.cond(i) for i in items), c.span)
            case nodes.Or(items=items):
                return ir.Or(tuple(self.cond(i) for i in items), c.span)
            case nodes.Not(item=item):
                return ir.Not(self.cond(item), c.span)
            case nodes.CodeIn(set=s, negated=neg):
                return ir.CodeIn(self.set(s, "codes"), neg, c.span)
            case nodes.CodeIs(code=v):
                return ir.CodeIs(normal("code", v.text), v.text, c.span)
            case nodes.Has(field=fw, negated=neg, value=v, set=s, outside=out, others=more, claim=cl):
                f = self.extra_form(field_ref(fw.value, cl), (s, *more) if s is not None else ())
                return ir.Has(f, neg, self.value(f, v) if v is not None else None,
                              self.set(s, "names") if s is not None else None, out,
                              tuple(self.set(o, "names") for o in more), c.span)
            case nodes.Every(field=fw, set=s, others=more, claim=cl):
                return ir.Every(self.extra_form(field_ref(fw.value, cl), (s, *more)), self.set(s, "names"),
                                tuple(self.set(o, "names") for o in more), c.span)
            case nodes.Compare(field=fw, op=op, value=n, distinct=d):
                return ir.Compare(field_ref(fw.value), op, n.value, d, c.span)
            case nodes.SameDay(set=s, earlier=e, sharing=sh, lacking=la):
                return ir.SameDay(self.set(s, "codes"), e, field_ref(sh.value) if sh else None,
                                  field_ref(la.value) if la else None, c.span)
            case nodes.SessionLimit(count=n, set=s, window=w, by=by):
                window = ir.Window(w.unit, w.size.value if w.size is not None else None)
                return ir.SessionLimit(self.set(s, "codes"), n.value, window,
                                       field_ref(by.value) if by is not None else None, c.span)
            case nodes.Spacing(days=n, set=s, unit=unit, by=by):
                return ir.Spacing(self.set(s, "codes"), n.value, unit,
                                  field_ref(by.value) if by is not None else None, c.span)
            case _:
                assert_never(c)


def lower_cond(cond: nodes.Cond, sets: Mapping[str, SetDef] | None = None,
               source: SourceFile | None = None) -> ir.Cond:
    """One condition, lowered: set references resolved in `sets` when given; with the `source` it
    was parsed from, quoted values keep their spelling (`raw`) for the printer."""
    return _Lowering(sets, source).cond(cond)


def _guard(cond: ir.Cond) -> SetDef | str | None:
    first = ir.conjuncts(cond)[0]
    if isinstance(first, ir.CodeIn) and not first.negated:
        return first.set
    if isinstance(first, ir.CodeIs):
        return first.code
    return None


def _dynamic(cond: ir.Cond) -> bool:
    return any(isinstance(c, (ir.SessionLimit, ir.Spacing)) or (isinstance(c, ir.SameDay) and c.earlier)
               for c in ir.walk(cond))


def lower_rule(rule: CheckedRule, sets: Mapping[str, SetDef]) -> ir.Rule:
    cond = lower_cond(rule.cond, sets)
    unless = lower_cond(rule.unless, sets) if rule.unless is not None else None
    return ir.Rule(
        id=rule.id, policy=rule.policy, action=rule.action, scope=rule.scope, cond=cond,
        message=rule.message, source=rule.source, text=rule.text, cite=rule.cite,
        citation=rule.citation, guard=_guard(cond),
        dynamic=_dynamic(cond) or (unless is not None and _dynamic(unless)),
        unless=unless, start=rule.start, end=rule.end, carc=rule.carc, rarc=rule.rarc, span=rule.span,
    )


_Indexes = tuple[tuple[SetDef, ...], tuple[SetDef, ...], tuple[SetDef, ...], tuple[tuple[SetDef, ir.FieldRef], ...]]


def _index_sets(rules: tuple[ir.Rule, ...]) -> _Indexes:
    same: dict[str, SetDef] = {}
    earlier: dict[str, SetDef] = {}
    sessions: dict[str, SetDef] = {}
    grouped: dict[tuple[str, str], tuple[SetDef, ir.FieldRef]] = {}
    for r in rules:
        for c in ir.rule_walk(r):
            if isinstance(c, ir.SameDay):
                (earlier if c.earlier else same)[c.set.name] = c.set
            elif isinstance(c, (ir.SessionLimit, ir.Spacing)):
                if c.by is None:
                    sessions[c.set.name] = c.set
                else:
                    grouped[(c.set.name, c.by.name)] = (c.set, c.by)
    same_t, earlier_t, sessions_t = (tuple(d[k] for k in sorted(d)) for d in (same, earlier, sessions))
    return same_t, earlier_t, sessions_t, tuple(grouped[k] for k in sorted(grouped))


def lower_policy(model: Model) -> ir.Policy:
    """A checked model, lowered."""
    sets = {s.name: s for s in model.sets}
    rules = tuple(lower_rule(r, sets) for r in model.rules)
    same, earlier, sessions, grouped = _index_sets(rules)
    return ir.Policy(
        id=model.id, title=model.title, payer=model.payer, path=model.path, digest=model.digest,
        sources=model.sources, sets=model.sets, rules=rules, includes=model.includes,
        same_day_sets=same, earlier_sets=earlier, session_sets=sessions, grouped_sets=grouped,
        aliases=model.aliases, documents=model.documents, start=model.start, end=model.end,
    )
