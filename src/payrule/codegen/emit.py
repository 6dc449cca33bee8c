"""Lowered IR -> Python source, written through one `Writer` (pycode.py); the template lays out the
module around what is written here.

A rule becomes one function `rule_<id>(ln, g)` that returns the reason's message when the rule fires
and None otherwise. Its top-level `and` items become early returns, in order; each fact an item finds
(the matching value, the other line, the counted sessions) is kept in a local for the message.
Anything under `or` or `not` becomes one boolean expression. Every value enters the code through
`py_literal`, every name through `py_ident`, every docstring through `py_doc`.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import assert_never

from payrule.codegen.pycode import WIDTH, PyCode, Writer, py_comment, py_doc, py_ident, py_literal
from payrule.lang import ir
from payrule.lang.model import Placeholder, SetDef
from payrule.runtime import RANK
from payrule.runtime.schema import LINE_FIELDS, LIST_FIELDS, NUMBER_FIELDS, in_code_range

TEXT_FIELDS = tuple(f.name for f in LINE_FIELDS.values() if f.kind == "text")

NO_SITE = "no site"  # what `{site}` says for a line without one

__all__ = ["NO_SITE", "MAX_PLAN_BLOCKS", "plan_signatures", "write_plan", "write_plans_table", "write_grouped_index", "set_value", "write_rule", "write_sets", "write_sources", "write_rules_table", "write_index", "set_idents"]

_CMP = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "=": "==", "!=": "!="}
_FLIP = {">": "<=", ">=": "<", "<": ">=", "<=": ">", "=": "!=", "!=": "="}
_IN = {True: "in", False: "not in"}  # membership that holds / fails
_FOUND = {True: "is not None", False: "is None"}  # a helper's hit that holds / fails


def set_idents(policy: ir.Policy, taken: set[str]) -> dict[str, PyCode]:
    """A module-level name for each set: `S_` and the set's name."""
    return {s.name: py_ident(s.name, "S_", taken) for s in policy.sets}


def set_value(s: SetDef) -> tuple[str, list[PyCode], str, str, str]:
    """(head, members, open, close, tail) of a set's runtime value: a frozenset for exact members,
    a tuple for prefixes and stems, a `CodeSet` for codes with ranges."""
    if s.kind == "codes" and s.ranges:
        return ("_rt.CodeSet(", [py_literal(s.values), py_literal(s.ranges)], "", "", ")")
    if s.kind in ("diagnoses", "stems"):
        return ("", [py_literal(v) for v in s.values], "(", ")", "")
    if not s.values:
        return ("frozenset()", [], "", "", "")
    return ("frozenset(", [py_literal(v) for v in s.values], "{", "}", ")")


def _field(f: ir.FieldRef) -> PyCode:
    """`ln.<field>`: a claim line's list or number field, by its schema name."""
    if f.extra or f.where != "line" or (f.name not in LIST_FIELDS and f.name not in NUMBER_FIELDS):
        raise ValueError(f"not a line list or number field: {f.name!r}")
    return PyCode(f"ln.{f.name}")


def _raw(f: ir.FieldRef) -> PyCode:
    """The field's values as written (stems match words of the written text)."""
    if f.name not in LIST_FIELDS or f.extra:
        raise ValueError(f"not a list field: {f.name!r}")
    return PyCode(f"ln.raw_{f.name}")


_CLAIM_ATTR = {"claim_id": "claim_id", "patient_id": "patient_id", "payer": "payer_key", "prior_auth": "prior_auth"}


def _single(f: ir.FieldRef) -> PyCode | None:
    """A schema field with one value (or None): `ln.site`, `ln.claim.prior_auth`."""
    if f.extra or f.is_list:
        return None
    if f.where == "line" and f.name in TEXT_FIELDS:
        return PyCode(f"ln.{f.name}")
    if f.where == "claim" and f.name in _CLAIM_ATTR:
        return PyCode(f"ln.claim.{_CLAIM_ATTR[f.name]}")
    raise ValueError(f"not a readable field: {f.name!r}")


def _values(f: ir.FieldRef) -> tuple[PyCode, PyCode]:
    """The field's values as a tuple: (normal forms, as written)."""
    if f.extra:
        holder = "ln.extra" if f.where == "line" else "ln.claim.extra"
        form = "" if f.form in (None, "name") else f", {py_literal(f.form)}"
        v = PyCode(f"_rt.extra_values({holder}, {py_literal(f.name)}{form})")
        return v, v
    if f.is_list:
        return _field(f), _raw(f)
    one = PyCode(f"_rt.one({_single(f)})")
    return one, one


_HOW = {"codes": "_rt.IN", "names": "_rt.IN", "diagnoses": "_rt.PREFIX", "stems": "_rt.STEM"}


@dataclass
class _RuleWriter:
    rule: ir.Rule
    idents: dict[str, PyCode]
    w: Writer
    facts: dict[str, PyCode] = field(default_factory=dict)  # placeholder -> expression
    locals_: set[str] = field(default_factory=set)
    today: dict[tuple[str, bool], PyCode] = field(default_factory=dict)  # same-day lines kept in a local
    # How the body leaves when the rule does not fire: `return None` in the rule's own function,
    # `break` in a plan, where the rule is one `while True:` block among others (write_plan).
    leave: str = "return None"
    in_plan: bool = False  # the guard is known to hold (a plan is only called for codes it admits)

    def S(self, s: SetDef) -> PyCode:
        return self.idents[s.name]

    def local(self, base: str) -> PyCode:
        return py_ident(base, "", self.locals_)

    # -- calls ---------------------------------------------------------------------------------
    def tests(self, sets: tuple[SetDef, ...]) -> PyCode:
        """The (how, set) pairs `_rt.first_in_any`, `first_outside` and `every_in` take."""
        pairs = [f"({_HOW[s.kind]}, {self.S(s)})" for s in sets]
        return PyCode("(" + ", ".join(pairs) + ("," if len(pairs) == 1 else "") + ")")

    def first(self, c: ir.Has | ir.Every) -> PyCode:
        """The first matching value of `has F in SET` / `has F VALUE` (the first outside the sets for
        `has F not in SET`, the first of all for `every F in SET`), or None."""
        norms, raws = _values(c.field)
        form = py_literal(c.field.form or "text")
        if isinstance(c, ir.Every):
            return PyCode(f"_rt.every_in({raws}, {form}, {self.tests(c.sets)})")
        if c.outside:
            return PyCode(f"_rt.first_outside({raws}, {form}, {self.tests(c.sets)})")
        if c.others:
            return PyCode(f"_rt.first_in_any({raws}, {form}, {self.tests(c.sets)})")
        if c.set is not None:
            s = self.S(c.set)
            if c.set.kind == "diagnoses":
                return PyCode(f"_rt.first_prefix({norms}, {s})")
            if c.set.kind == "stems":
                return PyCode(f"_rt.first_stem({raws}, {s})")
            return PyCode(f"_rt.first_in({norms}, {s})")
        assert c.value is not None
        if c.field.form == "diagnosis":
            return PyCode(f"_rt.first_prefix({norms}, {py_literal((c.value.value,))})")
        return PyCode(f"_rt.first_in({norms}, {py_literal(frozenset((c.value.value,)))})")

    def others(self, c: ir.SameDay) -> PyCode:
        key = (c.set.name, c.earlier)
        if key in self.today:
            return self.today[key]
        fn = "g.earlier_same_day" if c.earlier else "g.same_day"
        return PyCode(f"{fn}(ln, {py_literal(c.set.name)})")

    def same_day_call(self, c: ir.SameDay) -> PyCode:
        sharing = py_literal(c.sharing.name if c.sharing else None)
        lacking = py_literal(c.lacking.name if c.lacking else None)
        return PyCode(f"_rt.same_day_hit({self.others(c)}, ln, {sharing}, {lacking})")

    @staticmethod
    def limit_call(c: ir.SessionLimit) -> PyCode:
        w = c.window
        args = [py_literal(c.set.name), py_literal(c.count), py_literal(w.unit), py_literal(w.size or 0)]
        if c.by is not None:
            args.append(py_literal(c.by.name))
        return PyCode(f"_rt.session_limit(g, ln, {', '.join(args)})")

    @staticmethod
    def spacing_call(c: ir.Spacing) -> PyCode:
        args = [py_literal(c.set.name), py_literal(c.days)]
        if c.unit != "days" or c.by is not None:
            args.append(py_literal(c.unit))
        if c.by is not None:
            args.append(py_literal(c.by.name))
        return PyCode(f"_rt.spacing(g, ln, {', '.join(args)})")

    # -- boolean expressions -------------------------------------------------------------------
    def expr(self, c: ir.Cond) -> PyCode:
        """Python that is true when `c` holds."""
        return self.test(c, True)

    def neg(self, c: ir.Cond) -> PyCode:
        """Python that is true when `c` does not hold."""
        return self.test(c, False)

    def part(self, c: ir.Cond) -> PyCode:
        """An operand of `and` / `or`: compound ones in parentheses (atoms bind tighter)."""
        return PyCode(f"({self.expr(c)})") if isinstance(c, (ir.And, ir.Or)) else self.expr(c)

    def test(self, c: ir.Cond, holds: bool) -> PyCode:
        """Python that is true when `c` holds (`holds`) or when it does not, written the way a person
        would: `not in` for `in`, a flipped comparison, `is None` for `is not None`."""
        match c:
            case ir.And(items=items) | ir.Or(items=items):
                joined = (" and " if isinstance(c, ir.And) else " or ").join(self.part(i) for i in items)
                return PyCode(joined if holds else f"not ({joined})")
            case ir.Not(item=item):
                return self.test(item, not holds)
            case ir.CodeIn(set=s, negated=neg):
                return PyCode(f"ln.code {_IN[holds != neg]} {self.S(s)}")
            case ir.CodeIs(code=code):
                return PyCode(f"ln.code {'==' if holds else '!='} {py_literal(code)}")
            case ir.Has(negated=neg, value=None, set=None) if (one := self.single(c.field)) is not None:
                return PyCode(f"{one} {_FOUND[holds != neg]}")
            case ir.Has(negated=neg, value=None, set=None):
                values = _values(c.field)[0]
                return values if holds != neg else PyCode(f"not {values}")
            case ir.Has(negated=neg, value=v, set=None) if v is not None and (one := self.single(c.field)) is not None:
                return PyCode(f"{one} {'==' if holds != neg else '!='} {py_literal(v.value)}")
            case ir.Has(negated=neg, value=v, set=None) if v is not None and c.field.form != "diagnosis":
                return PyCode(f"{py_literal(v.value)} {_IN[holds != neg]} {_values(c.field)[0]}")
            case ir.Has(negated=neg):
                return PyCode(f"{self.first(c)} {_FOUND[holds != neg]}")
            case ir.Every():
                return PyCode(f"{self.first(c)} {_FOUND[holds]}")
            case ir.Compare(op=op, value=n, distinct=d):
                subject = f"len({_field(c.field)})" if d else _field(c.field)
                return PyCode(f"{subject} {_CMP[op if holds else _FLIP[op]]} {py_literal(n)}")
            case ir.SameDay():
                return PyCode(f"{self.same_day_call(c)} {_FOUND[holds]}")
            case ir.SessionLimit():
                return PyCode(f"{self.limit_call(c)} {_FOUND[holds]}")
            case ir.Spacing():
                return PyCode(f"{self.spacing_call(c)} {_FOUND[holds]}")
            case _:
                assert_never(c)

    @staticmethod
    def single(f: ir.FieldRef) -> PyCode | None:
        return None if f.extra or f.is_list else _single(f)

    # -- the body ------------------------------------------------------------------------------
    def return_if(self, test: PyCode) -> None:
        with self.w.block(PyCode(f"if {test}:")):
            self.w.line(PyCode(self.leave))

    def fact(self, base: str, call: PyCode, names: dict[str, str]) -> None:
        var = self.local(base)
        self.w.line(PyCode(f"{var} = {call}"))
        self.return_if(PyCode(f"{var} is None"))
        for ph, template in names.items():
            self.facts.setdefault(ph, PyCode(template.replace("{v}", var)))

    def hoist_same_day(self, c: ir.Cond, uses: dict[tuple[str, bool], int]) -> None:
        """Same-day lines a rule reads more than once are looked up once, into a local."""
        for sub in ir.walk(c):
            if isinstance(sub, ir.SameDay):
                key = (sub.set.name, sub.earlier)
                if uses[key] > 1 and key not in self.today:
                    var = self.local(("earlier_" if sub.earlier else "today_") + sub.set.name.lower())
                    self.w.line(PyCode(f"{var} = {self.others(sub)}"))
                    self.today[key] = var

    def dates(self) -> None:
        """A dated rule returns at once for a line outside its dates (ordinals, with the date beside)."""
        r = self.rule
        if r.start is not None:
            w = self.w
            w.line(PyCode(f"if ln.date < {py_literal(r.start.toordinal())}:  # {py_comment(r.start.isoformat())}"))
            with w.indented():
                w.line(PyCode(self.leave))
        if r.end is not None:
            self.w.line(PyCode(f"if ln.date > {py_literal(r.end.toordinal())}:  # {py_comment(r.end.isoformat())}"))
            with self.w.indented():
                self.w.line(PyCode(self.leave))

    def body(self) -> None:
        uses: dict[tuple[str, bool], int] = {}
        for sub in ir.rule_walk(self.rule):
            if isinstance(sub, ir.SameDay):
                uses[(sub.set.name, sub.earlier)] = uses.get((sub.set.name, sub.earlier), 0) + 1
        self.dates()
        items = ir.conjuncts(self.rule.cond)
        if self.in_plan and self.rule.guard is not None:
            items = items[1:]  # the guard: `_guard` in lower.py takes it from the first item
        for c in items:
            self.hoist_same_day(c, uses)
            match c:
                case ir.Has(negated=False, set=s) if s is not None:
                    self.fact("matched", self.first(c), {"matched": "{v}"})
                case ir.Every():
                    self.fact("matched", self.first(c), {"matched": "{v}"})
                case ir.SameDay():
                    names = {"other_code": "{v}.other.code", "other_line": "str({v}.other.no)",
                             "other_claim": "{v}.other.claim.claim_id", "other_date": "_rt.iso({v}.other.date)"}
                    if c.sharing is not None:
                        names["shared"] = "{v}.shared"
                    self.fact("hit", self.same_day_call(c), names)
                case ir.SessionLimit():
                    self.fact("sessions", self.limit_call(c), {
                        "n": "str({v}.n)", "nth": "_rt.nth({v}.n)", "limit": "str({v}.limit)",
                        "window": py_literal(_window_words(c.window)),
                        "sessions": "_rt.iso_list({v}.dates)", "next_date": "_rt.iso({v}.next_date)",
                        "year": "str({v}.year)"})
                case ir.Spacing():
                    self.fact("gap", self.spacing_call(c), {
                        "last_date": "_rt.iso({v}.last_date)", "days": "str({v}.days)",
                        "min_days": "str({v}.min_days)", "next_date": "_rt.iso({v}.next_date)"})
                case ir.Or(items=items) if not self.w.fits(f"if {self.neg(c)}:"):
                    self.w.wrapped("if not ", [self.part(i) for i in items], " or ", ":", "(", ")")
                    with self.w.indented():
                        self.w.line(PyCode(self.leave))
                case _:
                    if isinstance(c, ir.Compare) and c.distinct:
                        self.facts.setdefault(f"distinct_{c.field.name}", PyCode(f"str(len({_field(c.field)}))"))
                    self.return_if(self.neg(c))
        if self.rule.unless is not None:
            self.hoist_same_day(self.rule.unless, uses)
            self.return_if(self.expr(self.rule.unless))
        if not self.in_plan:
            self.w.wrapped("return ", self.message(), " + ")

    def message(self) -> list[PyCode]:
        base = {
            "code": "ln.code", "date": "_rt.iso(ln.date)", "line": "str(ln.no)", "units": "str(ln.units)",
            "claim_id": "ln.claim.claim_id", "patient_id": "ln.claim.patient_id", "payer": "ln.claim.payer",
            "policy": py_literal(self.rule.policy), "rule": py_literal(self.rule.id),
            "site": f"(ln.site or {py_literal(NO_SITE)})",
            "start_date": py_literal(self.rule.start.isoformat() if self.rule.start else ""),
            "end_date": py_literal(self.rule.end.isoformat() if self.rule.end else ""),
        }
        segs = self.rule.message or (f"rule {self.rule.id} ({self.rule.source})",)
        parts: list[PyCode] = []
        for seg in segs:
            if isinstance(seg, Placeholder):
                parts.append(self.facts.get(seg.name) or PyCode(base[seg.name]))
            elif seg:
                parts.append(py_literal(seg))
        return parts


def _window_words(w: ir.Window) -> str:
    if w.size is None:
        return "the calendar year"
    return f"{w.size} {w.unit if w.size != 1 else w.unit[:-1]}"


def _docstring(rule: ir.Rule, indent: str) -> PyCode:
    room = WIDTH - len(indent)
    head = f"{rule.policy} / {rule.id}, {rule.source}" + (f" (per {rule.cite})" if rule.cite else "")
    lines = textwrap.wrap(head, room - 3, break_long_words=False, break_on_hyphens=False) + [""]
    for text in rule.text.split("\n"):
        if text and len(text) <= room and text.isprintable() and not text.endswith(" "):
            lines.append(text)  # what textwrap gives a line that fits (it only drops trailing spaces), faster
            continue
        lead = text[: len(text) - len(text.lstrip())]
        lines += textwrap.wrap(text, room, initial_indent="", subsequent_indent=lead + "    ",
                               break_long_words=False, break_on_hyphens=False) or [""]
    doc = "\n".join((indent + l if l else "") for l in lines).lstrip() + "\n" + indent
    return py_doc(doc)


def write_rule(w: Writer, rule: ir.Rule, ident: PyCode, idents: dict[str, PyCode]) -> None:
    """`def rule_<id>(ln, g):` with its docstring and body."""
    with w.block(PyCode(f"def {ident}(ln, g):")):
        w.line(_docstring(rule, w.indent))
        _RuleWriter(rule, idents, w).body()


PLAN_LOCALS = frozenset({"ln", "g", "reasons", "rank", "msg"})  # names a plan's rule blocks leave alone
MAX_PLAN_BLOCKS = 2000  # rule blocks in all of a module's plans together; beyond it the module has none


def plan_signatures(rules: list[ir.Rule], limit: int = MAX_PLAN_BLOCKS) -> list[tuple[int, ...]]:
    """The plans worth writing: for each code the policy's sets name (a listed code, a range's bounds)
    and for a code no set names, the positions (in `rules`) of the line rules whose guard admits it
    (what `code in rule.guard` answers at run time), when that is two rules or more; sorted, so the
    same policy gives the same plans. None at all (`[]`) when they would hold more than `limit` rule
    blocks together. Another code the engine meets whose rules match none of these is decided rule
    by rule, with the same result.

    Linear in the policy's size, whatever the number of codes: each listed code finds its rules in
    an index by code; only rules whose guard has ranges are tried code by code."""
    every: list[int] = []  # line rules without a guard
    by_code: dict[str, list[int]] = {}  # a listed code -> the line rules whose guard lists it
    ranged: list[tuple[int, tuple[tuple[str, str], ...]]] = []  # line rules whose guard has ranges
    codes: set[str] = {"\x00"}  # a code no set holds: the rules without a guard
    for i, r in enumerate(rules):
        if r.scope != "line":
            continue
        guard = r.guard
        if guard is None:
            every.append(i)
            continue
        listed = (guard,) if isinstance(guard, str) else guard.values
        for code in listed:
            by_code.setdefault(code, []).append(i)
        codes.update(listed)
        if not isinstance(guard, str) and guard.ranges:
            ranged.append((i, guard.ranges))
            for lo, hi in guard.ranges:
                codes.update((lo, hi))
    signatures: set[tuple[int, ...]] = set()
    blocks = 0
    for code in sorted(codes):
        found = set(every)
        found.update(by_code.get(code, ()))
        found.update(i for i, ranges in ranged if any(in_code_range(code, lo, hi) for lo, hi in ranges))
        sig = tuple(sorted(found))
        if len(sig) > 1 and sig not in signatures:
            signatures.add(sig)
            blocks += len(sig)
            if blocks > limit:  # a policy of thousands of rules: decided rule by rule, no code explosion
                return []
    return sorted(signatures)


def write_plan(w: Writer, ident: PyCode, signature: tuple[int, ...], rules: list[ir.Rule],
               idents: dict[str, PyCode]) -> None:
    """`def plan_<n>(ln, g):` - the line rules at `signature` (positions in RULES) fused into one
    function for the codes they all admit: each rule is a `while True:` block that `break`s where the
    rule does not fire (its guard not tested again) and adds `(RULES[i], message)` to the reasons
    where it does. Returns (reasons or None, the highest rank of the outcomes that fired)."""
    with w.block(PyCode(f"def {ident}(ln, g):")):
        head = "The line rules of the codes they all admit, fused: " + ", ".join(rules[i].id for i in signature) + "."
        lines = textwrap.wrap(head, WIDTH - len(w.indent) - 3, break_long_words=False, break_on_hyphens=False)
        w.line(py_doc(("\n" + w.indent).join(lines)))
        w.line(PyCode("reasons = None"))
        w.line(PyCode("rank = 0"))
        for i in signature:
            rule = rules[i]
            with w.block(PyCode(f"while True:  # {py_comment(rule.policy + ' / ' + rule.id)}")):
                rw = _RuleWriter(rule, idents, w, leave="break", in_plan=True)
                rw.locals_.update(PLAN_LOCALS)
                rw.body()
                w.wrapped("msg = ", rw.message(), " + ")
                with w.block(PyCode("if reasons is None:")):
                    w.line(PyCode(f"reasons = [(RULES[{i}], msg)]"))
                with w.block(PyCode("else:")):
                    w.line(PyCode(f"reasons.append((RULES[{i}], msg))"))
                rank = RANK[rule.action]
                if rank:
                    with w.block(PyCode(f"if rank < {rank}:")):
                        w.line(PyCode(f"rank = {rank}"))
                w.line(PyCode("break"))
        w.line(PyCode("return reasons, rank"))


def write_plans_table(w: Writer, plans: list[tuple[tuple[int, ...], PyCode]]) -> None:
    items = [PyCode(f"{py_literal(sig)}: {ident}") for sig, ident in plans]
    w.wrapped("PLANS = ", items, ", ", "", "{", "}")


def write_sources(w: Writer, sources: tuple[tuple[str, str, str], ...]) -> None:
    with w.block(PyCode("SOURCES = (")):
        for sid, text, _ in sources:
            w.wrapped("", [py_literal(sid), py_literal(text)], ", ", ",", "(", ")")
    w.line(PyCode(")"))


def write_sets(w: Writer, policy: ir.Policy, idents: dict[str, PyCode]) -> None:
    for s in policy.sets:
        head, members, open_, close, tail = set_value(s)
        single = open_ == "(" and len(members) == 1
        w.wrapped(f"{idents[s.name]} = {head}", members, ", ", tail, open_, close, tuple_=single)


def _guard(guard: SetDef | str | None, idents: dict[str, PyCode]) -> PyCode:
    if guard is None:
        return py_literal(None)
    if isinstance(guard, str):
        return py_literal(frozenset((guard,)))
    return idents[guard.name]


def write_rules_table(w: Writer, rules: list[tuple[ir.Rule, PyCode]], idents: dict[str, PyCode]) -> None:
    with w.block(PyCode("RULES = (")):
        for r, ident in rules:
            args = [
                PyCode(f"policy={py_literal(r.policy)}"), PyCode(f"id={py_literal(r.id)}"),
                PyCode(f"outcome={py_literal(r.action)}"), PyCode(f"scope={py_literal(r.scope)}"),
                PyCode(f"source={py_literal(r.source)}"), PyCode(f"fn={ident}"),
                PyCode(f"guard={_guard(r.guard, idents)}"),
            ]
            if r.carc is not None:
                args.append(PyCode(f"carc={py_literal(r.carc)}"))
            if r.rarc is not None:
                args.append(PyCode(f"rarc={py_literal(r.rarc)}"))
            w.wrapped("_rt.Rule", args, ", ", ",", "(", ")")
    w.line(PyCode(")"))


def write_grouped_index(w: Writer, grouped: tuple[tuple[SetDef, ir.FieldRef], ...], idents: dict[str, PyCode]) -> None:
    """`GROUPED_SETS = {'SET@FIELD': (S_SET, 'SET', 'FIELD', extra), ...}`: sessions counted `at the same FIELD`."""
    items = [PyCode(f"{py_literal(s.name + '@' + f.name)}: ({idents[s.name]}, {py_literal(s.name)}, "
                    f"{py_literal(f.name)}, {py_literal(f.extra)})") for s, f in grouped]
    w.wrapped("GROUPED_SETS = ", items, ", ", "", "{", "}")


def write_index(w: Writer, name: str, sets: tuple[SetDef, ...], idents: dict[str, PyCode]) -> None:
    """`NAME = {'SET': S_SET, ...}`: the sets the engine indexes for the rules that read them."""
    items = [PyCode(f"{py_literal(s.name)}: {idents[s.name]}") for s in sets]
    w.wrapped(f"{name} = ", items, ", ", "", "{", "}")
