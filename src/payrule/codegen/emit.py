"""Conditions -> Python source. The module layout is the template's; expressions are written here.

A rule's top-level `and` items become a sequence of early returns, each fact a condition finds (the
matching value, the other line, the counted sessions) kept in a local for the message. Anything under
`or` or `not` becomes one boolean expression.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import assert_never

from payrule.lang import nodes
from payrule.lang.checker import conjuncts, field_name
from payrule.claims.readers import LIST_FIELDS
from payrule.lang.model import CheckedRule, Model, Placeholder, SetDef
from payrule.codegen.pycode import PyCode, py_literal

_CMP = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "=": "==", "!=": "!="}


def set_value(s: SetDef) -> PyCode:
    """A set's runtime value: frozenset for exact members, tuples for prefixes and stems."""
    if s.kind == "codes":
        if s.ranges:
            return PyCode(f"_rt.CodeSet({py_literal(s.values)}, {py_literal(s.ranges)})")
        return py_literal(frozenset(s.values))
    if s.kind in ("diagnoses", "stems"):
        return py_literal(s.values)
    return py_literal(frozenset(s.values))


@dataclass
class RuleEmitter:
    model: Model
    set_idents: dict[str, PyCode]
    rule: CheckedRule
    lines: list[str] = field(default_factory=list)
    facts: dict[str, PyCode] = field(default_factory=dict)  # placeholder -> expression
    n: int = 0

    # -- helpers -----------------------------------------------------------------------------------
    def S(self, name: str) -> PyCode:
        return self.set_idents[name]

    def kind(self, name: str) -> str:
        return self.model.set(name).kind

    def fresh(self) -> PyCode:
        self.n += 1
        return PyCode(f"f{self.n}")

    @staticmethod
    def field(ident: nodes.Ident) -> PyCode:
        return py_literal(field_name(ident.value) or ident.value)

    def _first(self, c: nodes.Has) -> PyCode:
        """The call returning the first matching value of a `has F in SET` / `has F VALUE`, or None."""
        fname = field_name(c.field.value) or c.field.value
        values = _attr(fname)
        if c.set is not None:
            kind, s = self.kind(c.set.value), self.S(c.set.value)
            if kind == "diagnoses":
                return PyCode(f"_rt.first_prefix({values}, {s})")
            if kind == "stems":
                return PyCode(f"_rt.first_stem({_attr('raw_' + fname)}, {s})")
            return PyCode(f"_rt.first_in({values}, {s})")
        from payrule.claims.readers import normal

        form = LIST_FIELDS[fname]
        v = normal(form, c.value.text)  # type: ignore[union-attr]
        if form == "diagnosis":
            return PyCode(f"_rt.first_prefix({values}, {py_literal((v,))})")
        return PyCode(f"_rt.first_in({values}, {py_literal(frozenset((v,)))})")

    @staticmethod
    def _values(c: nodes.Has) -> PyCode:
        return _attr(field_name(c.field.value) or c.field.value)

    @staticmethod
    def _exact(c: nodes.Has) -> PyCode | None:
        """`has F VALUE` on a field compared exactly: the value's literal, in the field's normal form."""
        from payrule.claims.readers import normal

        fname = field_name(c.field.value) or c.field.value
        form = LIST_FIELDS.get(fname)
        if c.value is None or form in (None, "diagnosis"):
            return None
        return py_literal(normal(form, c.value.text))

    def _others(self, c: nodes.SameDay) -> PyCode:
        fn = "g.earlier_same_day" if c.earlier else "g.same_day"
        return PyCode(f"{fn}(ln, {py_literal(c.set.value)})")

    def _same_day_call(self, c: nodes.SameDay) -> PyCode:
        sharing = self.field(c.sharing) if c.sharing else py_literal(None)
        lacking = self.field(c.lacking) if c.lacking else py_literal(None)
        return PyCode(f"_rt.same_day_hit({self._others(c)}, ln, {sharing}, {lacking})")

    @staticmethod
    def _window(w: nodes.Window) -> tuple[str, int]:
        return (w.unit, w.size.value if w.size else 0)

    def _limit_call(self, c: nodes.SessionLimit) -> PyCode:
        unit, size = self._window(c.window)
        return PyCode(f"_rt.session_limit(g, ln, {py_literal(c.set.value)}, {py_literal(c.count.value)}, "
                      f"{py_literal(unit)}, {py_literal(size)})")

    def _spacing_call(self, c: nodes.Spacing) -> PyCode:
        return PyCode(f"_rt.spacing(g, ln, {py_literal(c.set.value)}, {py_literal(c.days.value)})")

    # -- boolean expressions ----------------------------------------------------------------------
    def expr(self, c: nodes.Cond) -> PyCode:
        match c:
            case nodes.And(items=items):
                return PyCode("(" + " and ".join(self.expr(i) for i in items) + ")")
            case nodes.Or(items=items):
                return PyCode("(" + " or ".join(self.expr(i) for i in items) + ")")
            case nodes.Not(item=item):
                return PyCode(f"(not {self.expr(item)})")
            case nodes.CodeIn(set=s, negated=neg):
                return PyCode(f"(ln.code {'not in' if neg else 'in'} {self.S(s.value)})")
            case nodes.CodeIs(code=code):
                return PyCode(f"(ln.code == {py_literal(code.text.upper())})")
            case nodes.Has(negated=neg, value=None, set=None):
                values = _attr(field_name(c.field.value) or c.field.value)
                return PyCode(f"(not {values})" if neg else f"bool({values})")
            case nodes.Has(negated=neg, value=v, set=None) if self._exact(c):
                return PyCode(f"({self._exact(c)} {'not in' if neg else 'in'} {self._values(c)})")
            case nodes.Has(negated=neg):
                return PyCode(f"({self._first(c)} {'is' if neg else 'is not'} None)")
            case nodes.Compare(field=f, op=op, value=v, distinct=True):
                return PyCode(f"(len({_attr(field_name(f.value) or f.value)}) {_CMP[op]} {py_literal(v.value)})")
            case nodes.Compare(field=f, op=op, value=v):
                return PyCode(f"(ln.units {_CMP[op]} {py_literal(v.value)})")
            case nodes.SameDay():
                return PyCode(f"({self._same_day_call(c)} is not None)")
            case nodes.SessionLimit():
                return PyCode(f"({self._limit_call(c)} is not None)")
            case nodes.Spacing():
                return PyCode(f"({self._spacing_call(c)} is not None)")
            case _:  # pragma: no cover
                assert_never(c)

    _FLIP = {">": "<=", ">=": "<", "<": ">=", "<=": ">", "=": "!=", "!=": "="}

    def negated(self, c: nodes.Cond) -> PyCode:
        """`not c`, written the way a person would (flipped comparisons, `is None`)."""
        match c:
            case nodes.Not(item=item):
                return self.expr(item)
            case nodes.CodeIn(set=s, negated=neg):
                return PyCode(f"(ln.code {'in' if neg else 'not in'} {self.S(s.value)})")
            case nodes.CodeIs(code=code):
                return PyCode(f"(ln.code != {py_literal(code.text.upper())})")
            case nodes.Has(negated=neg, set=None):
                return self.expr(nodes.Has(c.field, not neg, c.value))
            case nodes.Has(negated=neg):
                return PyCode(f"({self._first(c)} {'is not' if neg else 'is'} None)")
            case nodes.Compare(op=op):
                return self.expr(nodes.Compare(c.field, self._FLIP[op], c.value, c.distinct))  # type: ignore[arg-type]
            case nodes.SameDay():
                return PyCode(f"({self._same_day_call(c)} is None)")
            case nodes.SessionLimit():
                return PyCode(f"({self._limit_call(c)} is None)")
            case nodes.Spacing():
                return PyCode(f"({self._spacing_call(c)} is None)")
            case _:
                return PyCode(f"(not {self.expr(c)})")

    # -- the rule body ----------------------------------------------------------------------------
    def _fact(self, call: PyCode, names: dict[str, str]) -> None:
        var = self.fresh()
        self.lines.append(f"{var} = {call}")
        self.lines.append(f"if {var} is None:")
        self.lines.append("    return None")
        for ph, attr in names.items():
            self.facts.setdefault(ph, PyCode(attr.format(v=var)))

    def body(self) -> list[str]:
        for c in conjuncts(self.rule.cond):
            match c:
                case nodes.CodeIn(set=s, negated=neg):
                    self.lines.append(f"if ln.code {'in' if neg else 'not in'} {self.S(s.value)}:")
                    self.lines.append("    return None")
                case nodes.CodeIs(code=code):
                    self.lines.append(f"if ln.code != {py_literal(code.text.upper())}:")
                    self.lines.append("    return None")
                case nodes.Has(negated=False, set=s) if s is not None:
                    self._fact(self._first(c), {"matched": "{v}"})
                case nodes.SameDay():
                    names = {"other_code": "{v}.other.code", "other_line": "str({v}.other.no)",
                             "other_claim": "{v}.other.claim.claim_id", "other_date": "_rt.iso({v}.other.date)"}
                    if c.sharing is not None:
                        names["shared"] = "{v}.shared"
                    self._fact(self._same_day_call(c), names)
                case nodes.SessionLimit():
                    unit, size = self._window(c.window)
                    window = "the calendar year" if unit == "calendar year" else f"{size} {unit if size != 1 else unit[:-1]}"
                    self._fact(self._limit_call(c), {
                        "n": "str({v}.n)", "nth": "_rt.nth({v}.n)", "limit": "str({v}.limit)",
                        "window": py_literal(window).replace("{", "{{").replace("}", "}}"),
                        "sessions": "_rt.iso_list({v}.dates)", "next_date": "_rt.iso({v}.next_date)", "year": "str({v}.year)"})
                case nodes.Spacing():
                    self._fact(self._spacing_call(c), {
                        "last_date": "_rt.iso({v}.last_date)", "days": "str({v}.days)",
                        "min_days": "str({v}.min_days)", "next_date": "_rt.iso({v}.next_date)"})
                case _:
                    if isinstance(c, nodes.Compare) and c.distinct:
                        fname = field_name(c.field.value) or c.field.value
                        self.facts.setdefault(f"distinct_{fname}", PyCode(f"str(len({_attr(fname)}))"))
                    self.lines.append(f"if {_bare(self.negated(c))}:")
                    self.lines.append("    return None")
        self.lines.append(f"return {self.message()}")
        return self.lines

    def message(self) -> PyCode:
        base = {
            "code": "ln.code", "date": "_rt.iso(ln.date)", "line": "str(ln.no)", "units": "str(ln.units)",
            "claim_id": "ln.claim.claim_id", "patient_id": "ln.claim.patient_id", "payer": "ln.claim.payer",
            "policy": py_literal(self.rule.policy), "rule": py_literal(self.rule.id),
        }
        segs = self.rule.message or (f"rule {self.rule.id} ({self.rule.source})",)
        parts: list[str] = []
        for seg in segs:
            if isinstance(seg, Placeholder):
                parts.append(self.facts.get(seg.name) or base[seg.name])
            elif seg:
                parts.append(py_literal(seg))
        if len(parts) == 1 and not isinstance(segs[0], Placeholder):
            return PyCode(parts[0])
        return PyCode("".join(["''.join((", ", ".join(parts), ",))"]))


def _attr(field: str) -> PyCode:
    """`ln.<field>`: a claim line's list field (or its `raw_` twin), a name from the claim schema."""
    from payrule.runtime import LIST_FIELDS

    if field.removeprefix("raw_") not in LIST_FIELDS:  # the checker only lets schema fields through
        raise ValueError(f"not a list field: {field!r}")
    return PyCode(f"ln.{field}")


def _bare(code: PyCode) -> PyCode:
    """Drop one pair of outer parentheses when they wrap the whole expression."""
    if code.startswith("(") and code.endswith(")"):
        depth = 0
        for i, ch in enumerate(code):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(code) - 1:
                return code
        return PyCode(code[1:-1])
    return code


def rule_body(model: Model, set_idents: dict[str, PyCode], rule: CheckedRule) -> list[PyCode]:
    return [PyCode(line) for line in RuleEmitter(model, set_idents, rule).body()]


def index_sets(rules) -> tuple[list[str], list[str], list[str]]:
    """The code sets the runtime must index: (same day, earlier same day, sessions), sorted."""
    same, earlier, sessions = set(), set(), set()
    from payrule.lang.checker import walk

    for r in rules:
        for c in walk(r.cond):
            if isinstance(c, nodes.SameDay):
                (earlier if c.earlier else same).add(c.set.value)
            elif isinstance(c, (nodes.SessionLimit, nodes.Spacing)):
                sessions.add(c.set.value)
    return sorted(same), sorted(earlier), sorted(sessions)
