"""`payrule lint`: every finding in a set of policies, each with its code (payrule.lang.codes,
docs/lint-codes.md).

The errors are the parser's and the checker's (`checker.check`), which carry their codes; the warnings,
and the errors `payrule check` lets through (a rule that can never fire), come from the passes here.
"""
from __future__ import annotations

import re
from typing import Iterable, Iterator, Sequence

from payrule.lang import nodes
from payrule.lang.checker import LIST_FIELDS, Unit, check, conjuncts, field_name, readable_field, rule_conds, walk
from payrule.lang.codes import CODES
from payrule.lang.diagnostics import Diagnostic, DiagnosticError, Severity, did_you_mean, error, warning
from payrule.lang.parser import parse
from payrule.lang.source import SourceFile
from payrule.loader import Workspace
from payrule.runtime.schema import FIELDS, NUMBER_FIELDS, normal
from payrule.tools.formatter import format_cond
from payrule.tools.implied import ByRarest, covers, first_overlapping, implied, unique

__all__ = ["lint", "SYNTAX"]

# Codes of a file that could not be read or parsed (PR0xx): what it holds (and uses) is not known.
SYNTAX = frozenset(c for c in CODES if c.startswith("PR0"))


# ---- inputs ------------------------------------------------------------------------------------

_POLICY_ID = re.compile(r"^\s*policy\s+([A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*)", re.M)


def _inputs(target) -> tuple[list[Unit], list[Diagnostic], set[str]]:
    """Parsed units, syntax and read errors, and the ids of policies that failed to parse."""
    if isinstance(target, Workspace):
        found = [d for d in target.diagnostics if d.code == "PR005"]
        items: Iterable = target.sources.values()
    else:
        found, items = [], target
    units: list[Unit] = []
    broken: set[str] = set()
    for item in items:
        if isinstance(item, Unit):
            units.append(item)
            continue
        try:
            units.append(Unit(item, parse(item)))
        except DiagnosticError as exc:
            found.extend(exc.diagnostics)
            text = re.sub(r"#[^\n]*", "", item.text)
            m = _POLICY_ID.search(text)
            if m:
                broken.add(m.group(1))
    return units, found, broken


class _Scope:
    """Policies by id, what each includes (transitively, included first), and the names each sees."""

    def __init__(self, units: list[Unit]):
        self.by_id: dict[str, Unit] = {}
        for u in units:
            self.by_id.setdefault(u.policy.id.value, u)
        self.order: dict[str, list[str]] = {pid: self._closure(pid, [pid], []) for pid in self.by_id}

    def _closure(self, pid: str, stack: list[str], out: list[str]) -> list[str]:
        for inc in self.by_id[pid].policy.of_type(nodes.Include):
            name = inc.policy.value
            if name in self.by_id and name not in stack and name not in out:
                self._closure(name, stack + [name], out)
                out.append(name)
        return out

    def includes(self, unit: Unit) -> list[str]:
        """Every policy id `unit` includes, transitively (unknown ones too)."""
        out: list[str] = []
        todo = [unit]
        while todo:
            for inc in todo.pop().policy.of_type(nodes.Include):
                name = inc.policy.value
                if name not in out:
                    out.append(name)
                    if name in self.by_id:
                        todo.append(self.by_id[name])
        return out

    def chain(self, unit: Unit) -> list[Unit]:
        pid = unit.policy.id.value
        if self.by_id.get(pid) is not unit:
            return [unit]
        return [self.by_id[n] for n in self.order[pid]] + [unit]

    def sets(self, unit: Unit) -> dict[str, tuple[nodes.SetDecl, Unit]]:
        out: dict[str, tuple[nodes.SetDecl, Unit]] = {}
        for u in self.chain(unit):
            for s in u.policy.of_type(nodes.SetDecl):
                out.setdefault(s.name.value, (s, u))
        return out

    def sources(self, unit: Unit) -> dict[str, tuple[nodes.Source, Unit]]:
        out: dict[str, tuple[nodes.Source, Unit]] = {}
        for u in self.chain(unit):
            for s in u.policy.of_type(nodes.Source):
                out.setdefault(s.name.value, (s, u))
        return out


# ---- conditions --------------------------------------------------------------------------------


_walk = walk  # every condition in a tree, the checker's walk


def _flat_and(cond: nodes.Cond) -> list[nodes.Cond]:
    """The items of an `and`, with `and`s nested by parentheses flattened."""
    out: list[nodes.Cond] = []
    for c in conjuncts(cond):
        out.extend(_flat_and(c) if isinstance(c, nodes.And) else [c])
    return out


def _set_names(rule: nodes.Rule) -> Iterator[str]:
    for c in rule_conds(rule):
        if isinstance(c, (nodes.CodeIn, nodes.SameDay, nodes.SessionLimit, nodes.Spacing)):
            yield c.set.value
        elif isinstance(c, (nodes.Has, nodes.Every)):
            if c.set is not None:
                yield c.set.value
            yield from (o.value for o in c.others)


class _Codes:
    """A `codes` set's members as the runtime matches them (runtime.CodeSet)."""

    def __init__(self, decl: nodes.SetDecl):
        self.values: set[str] = set()
        self.ranges: list[tuple[str, str]] = []
        for m in decl.members:
            if isinstance(m, nodes.Range):
                self.ranges.append((m.lo.text.upper(), m.hi.text.upper()))
            else:
                self.values.add(normal("code", m.text))

    def __contains__(self, code: str) -> bool:
        return code in self.values or any(lo <= code <= hi and _shape(code) == _shape(lo) for lo, hi in self.ranges)

    def meets(self, other: "_Codes") -> bool:
        if any(v in other for v in self.values) or any(v in self for v in other.values):
            return True
        for lo1, hi1 in self.ranges:
            for lo2, hi2 in other.ranges:
                lo, hi = max(lo1, lo2), min(hi1, hi2)
                if lo <= hi and _shape(lo1) == _shape(lo2) == _shape(lo):
                    return True
        return False


def _shape(code: str) -> str:
    return "".join("9" if c.isdigit() else "A" for c in code)


_FLIP = {">": "<=", ">=": "<", "<": ">=", "<=": ">", "=": "!=", "!=": "="}


class _Facts:
    """What the `and` items of one condition say about a line; `clash` names the first contradiction."""

    def __init__(self, sets: dict[str, tuple[nodes.SetDecl, Unit]]):
        self.sets = sets
        self.code_is: tuple[str, nodes.Cond] | None = None
        self.code_not: dict[str, nodes.Cond] = {}
        self.code_in: dict[str, nodes.Cond] = {}
        self.code_not_in: dict[str, nodes.Cond] = {}
        self.has: dict[tuple, nodes.Cond] = {}  # (field, kind, what) -> the condition saying so
        self.lacks: dict[tuple, nodes.Cond] = {}
        self.shown: dict[int, nodes.Cond] = {}  # id(inner item) -> the item as written
        self.bounds: dict[tuple[str, bool], list] = {}  # (field, distinct) -> [lo, by, hi, by, excluded]

    def _codes(self, name: str) -> _Codes | None:
        found = self.sets.get(name)
        return _Codes(found[0]) if found and found[0].kind == "codes" else None

    def add(self, c: nodes.Cond, negated: bool = False) -> tuple[nodes.Cond, nodes.Cond] | None:
        """Record `c` (or `not c`); returns (earlier, c) when they cannot both hold. The items returned
        are the ones written (`not has X`, not the `has X` inside it)."""
        shown = c
        while isinstance(c, nodes.Not):
            c, negated = c.item, not negated
        found = self._add(c, negated, shown)
        return None if found is None else (self.shown.get(id(found[0]), found[0]), shown)

    def _add(self, c: nodes.Cond, negated: bool, shown: nodes.Cond) -> tuple[nodes.Cond, nodes.Cond] | None:
        self.shown[id(c)] = shown
        if isinstance(c, nodes.CodeIs):
            code = c.code.text.upper()
            if negated:
                if self.code_is and self.code_is[0] == code:
                    return self.code_is[1], c
                for name, other in self.code_in.items():
                    if (s := self._codes(name)) is not None and s.values == {code} and not s.ranges:
                        return other, c
                self.code_not[code] = c
                return None
            if self.code_is and self.code_is[0] != code:
                return self.code_is[1], c
            if code in self.code_not:
                return self.code_not[code], c
            for name, other in self.code_in.items():
                if (s := self._codes(name)) is not None and code not in s:
                    return other, c
            for name, other in self.code_not_in.items():
                if (s := self._codes(name)) is not None and code in s:
                    return other, c
            self.code_is = (code, c)
            return None
        if isinstance(c, nodes.CodeIn):
            name = c.set.value
            if c.negated != negated:
                if name in self.code_in:
                    return self.code_in[name], c
                if self.code_is and (s := self._codes(name)) is not None and self.code_is[0] in s:
                    return self.code_is[1], c
                self.code_not_in.setdefault(name, c)
                return None
            if name in self.code_not_in:
                return self.code_not_in[name], c
            s = self._codes(name)
            if s is not None:
                if self.code_is and self.code_is[0] not in s:
                    return self.code_is[1], c
                for other_name, other in self.code_in.items():
                    o = self._codes(other_name)
                    if o is not None and not s.meets(o):
                        return other, c
            self.code_in.setdefault(name, c)
            return None
        if isinstance(c, nodes.Has):
            fname = field_name(c.field.value)
            if fname is None or fname not in LIST_FIELDS:
                return None
            if c.value is not None:
                key = (fname, "value", normal(LIST_FIELDS[fname], c.value.text))
            elif c.set is not None:
                sets = (c.set.value, *(o.value for o in c.others))
                key = (fname, "outside" if c.outside else "set", sets)
            else:
                key = (fname, "any", None)
            lacking = c.negated != negated
            mine, theirs = (self.lacks, self.has) if lacking else (self.has, self.lacks)
            if key in theirs:
                return theirs[key], c
            if not lacking and (fname, "any", None) in self.lacks:
                return self.lacks[(fname, "any", None)], c
            if lacking and key[1] == "any":
                for k, other in self.has.items():
                    if k[0] == fname:
                        return other, c
            mine.setdefault(key, c)
            if key[1] == "any" or not lacking:  # `has F ...` means at least one value; `lacks F` none
                return self._bound(fname, True, "<=" if lacking else ">=", 0 if lacking else 1, c)
            return None
        if isinstance(c, nodes.Compare):
            fname = field_name(c.field.value)
            if fname is None or (c.distinct and fname not in LIST_FIELDS) or (not c.distinct and fname not in NUMBER_FIELDS):
                return None  # the checker's business
            op = _FLIP[c.op] if negated else c.op
            return self._bound(fname, c.distinct, op, c.value.value, c)
        return None

    def _bound(self, fname: str, distinct: bool, op: str, n: int, c: nodes.Cond) -> tuple[nodes.Cond, nodes.Cond] | None:
        """Narrow the values a count can take (units are at least 1, counts at least 0); on a clash,
        return the item that set the bound `c` crossed (or `c` itself when it is never true)."""
        b = self.bounds.setdefault((fname, distinct), [0 if distinct else 1, None, None, None, frozenset()])
        lo, lo_by, hi, hi_by, excluded = b
        if op in (">", ">=", "=") and (n + (op == ">")) > lo:
            lo, lo_by = n + (op == ">"), c
        if op in ("<", "<=", "=") and (hi is None or n - (op == "<") < hi):
            hi, hi_by = n - (op == "<"), c
        if op == "!=":
            excluded = excluded | {n}
        while lo in excluded and (hi is None or lo <= hi):
            lo, lo_by = lo + 1, c
        b[:] = [lo, lo_by, hi, hi_by, excluded]
        if hi is not None and lo > hi:
            partner = hi_by if hi_by is not c else lo_by
            return (partner or c), c
        return None


def _unsat(cond: nodes.Cond, sets) -> tuple[nodes.Cond | None, nodes.Cond] | None:
    """(earlier, later) `and` items that cannot both hold; (c, c) for an item never true alone;
    (None, cond) for an `or` none of whose branches can hold; None when the condition can be met."""
    if isinstance(cond, nodes.Or):
        return (None, cond) if all(_unsat(c, sets) for c in cond.items) else None
    facts = _Facts(sets)
    for c in _flat_and(cond):
        if isinstance(c, nodes.Or):
            if _unsat(c, sets):
                return (None, c)
            continue
        clash = facts.add(c)
        if clash is not None:
            return clash
    return None


# ---- the passes --------------------------------------------------------------------------------


class _Linter:
    def __init__(self, units: list[Unit], checked: list[Unit], found: list[Diagnostic], complete: bool):
        self.units = units
        self.checked = checked  # the units whose includes all parsed
        self.scope = _Scope(units)
        self.found = found
        self.complete = complete  # every file parsed: what is unused is known

    def _rule_spans_with(self, code: str) -> set[tuple]:
        out = set()
        for d in self.found:
            if d.code == code:
                out.add((d.span.path, d.span.line))
        return out

    def sets_and_sources(self) -> list[Diagnostic]:
        """PR210 unused sets, PR405 unused sources (a name is used when a rule that sees it names it).
        Only when every file parsed: a file that did not might be the one using them."""
        if not self.complete:
            return []
        used_sets: set[tuple[str, str]] = set()
        used_sources: set[tuple[str, str]] = set()
        for u in self.units:
            sets, sources = self.scope.sets(u), self.scope.sources(u)
            for rule in u.policy.rules:
                for name in _set_names(rule):
                    if name in sets:
                        used_sets.add((sets[name][1].source.name, name))
                if rule.cite is not None and rule.cite.value in sources:
                    used_sources.add((sources[rule.cite.value][1].source.name, rule.cite.value))
        out = []
        redefined = {(d.span.path, d.span.line, d.span.col) for d in self.found if d.code in ("PR209", "PR404")}
        for u in self.checked:
            for s in u.policy.of_type(nodes.SetDecl):
                sp = s.name.span
                if (sp.path, sp.line, sp.col) in redefined:
                    continue  # defined twice: that error says it all
                if (u.source.name, s.name.value) not in used_sets:
                    out.append(warning("PR210", f"set `{s.name.value}` is never used", s.name.span,
                                       help="no rule here or in a policy that includes this one names it; remove it, or use it in a rule"))
            for s in u.policy.of_type(nodes.Source):
                sp = s.name.span
                if (u.source.name, s.name.value) not in used_sources and (sp.path, sp.line, sp.col) not in redefined:
                    out.append(warning("PR405", f"source `{s.name.value}` is never cited", s.name.span,
                                       help=f"cite it from the rules it backs with `per {s.name.value}`, or remove it"))
        return out

    def members(self) -> list[Diagnostic]:
        """PR211: a value listed twice, or inside a range of the same set, or overlapping ranges."""
        out = []
        for u in self.checked:
            for decl in u.policy.of_type(nodes.SetDecl):
                form = {"codes": "code", "diagnoses": "diagnosis", "names": "name"}.get(decl.kind)
                seen: dict[str, nodes.Value] = {}
                ranges: list[tuple[str, str, nodes.Range]] = []
                for m in decl.members:
                    if isinstance(m, nodes.Range):
                        lo, hi = m.lo.text.upper(), m.hi.text.upper()
                        if decl.kind != "codes" or _shape(lo) != _shape(hi) or lo > hi:
                            continue  # the checker's business
                        for lo2, hi2, r2 in ranges:
                            if _shape(lo2) == _shape(lo) and max(lo, lo2) <= min(hi, hi2):
                                out.append(warning("PR211", f"range `{m.lo.text}..{m.hi.text}` overlaps `{r2.lo.text}..{r2.hi.text}` in set `{decl.name.value}`",
                                                   m.span, help="merge the two ranges into one"))
                                break
                        ranges.append((lo, hi, m))
                        continue
                    key = normal(form, m.text) if form else m.text.strip().casefold()
                    if key in seen:
                        out.append(warning("PR211", f"`{m.text}` is listed twice in set `{decl.name.value}`", m.span,
                                           help=f"it is already listed on line {seen[key].span.line}; remove the second one"))
                    else:
                        seen[key] = m
                if decl.kind == "codes":
                    for key, m in seen.items():
                        for lo, hi, r in ranges:
                            if lo <= key <= hi and _shape(key) == _shape(lo):
                                out.append(warning("PR211", f"`{m.text}` is already in range `{r.lo.text}..{r.hi.text}` of set `{decl.name.value}`",
                                                   m.span, help="remove the code, the range holds it"))
                                break
        return out

    def fields(self) -> list[Diagnostic]:
        """PR310: a `has`/`lacks`/`every` test of a field the claim schema does not know. Allowed (a
        claim's other fields are kept and may be read), but a misspelled field name would never match."""
        out = []
        known = sorted({w for f in FIELDS for w in (f.name, *f.aliases)})
        for u in self.checked:
            for r in u.policy.rules:
                for c in rule_conds(r):
                    if isinstance(c, (nodes.Has, nodes.Every)):
                        word, claim = c.field, c.claim
                    elif isinstance(c, (nodes.SessionLimit, nodes.Spacing)) and c.by is not None:
                        word, claim = c.by, False
                    else:
                        continue
                    if readable_field(word.value, claim) is not None:
                        continue
                    line_field = readable_field(word.value)
                    if claim and line_field is not None and line_field.where == "line":
                        hint = f"`{word.value}` is a field of each line, not of the claim: write `has {word.value}`."
                    else:
                        hint = did_you_mean(word.value, known) or ""
                    where = "claim" if claim else "line"
                    out.append(warning("PR310", f"`{word.value}` is not a field of the claim schema", word.span,
                                       help=(hint + " " if hint else "") + f"A field the schema does not know is read from the {where}'s other fields "
                                       "(a claim's fields beyond the contract's are kept); if that is meant, ignore this"))
        return out

    def citations(self) -> list[Diagnostic]:
        """PR406 rules citing no source, PR407 rules with no message."""
        out = []
        for u in self.checked:
            for r in u.policy.rules:
                if r.cite is None:
                    out.append(warning("PR406", f"rule `{r.id.value}` cites no source", r.id.span,
                                       help="add `per SOURCE` naming the policy text the rule comes from, so a denial can be traced"))
                if r.message is None:
                    out.append(warning("PR407", f"rule `{r.id.value}` has no message", r.id.span,
                                       help='add `message "..."` telling the biller why the line is denied or held'))
        return out

    def never_fires(self) -> list[Diagnostic]:
        """PR303: a rule whose condition contradicts itself (decided from its `and` items alone)."""
        out = []
        flagged = self._rule_spans_with("PR303") | self._rule_spans_with("PR304")
        for u in self.checked:
            sets = self.scope.sets(u)
            for r in u.policy.rules:
                if any((u.source.name, n) in flagged for n in range(r.span.line, r.span.end_line + 1)):
                    continue  # the checker has said why already
                found = _unsat(r.cond, sets)
                if found is None:
                    continue
                first, second = found
                rid = r.id.value
                if first is None:
                    out.append(error("PR303", f"rule `{rid}` can never fire: none of its alternatives can be true", r.id.span,
                                     help="each `or` branch contradicts itself; check the codes and fields"))
                elif first is second:
                    out.append(error("PR303", f"rule `{rid}` can never fire: `{format_cond(second, u.source)}` is never true", second.span,
                                     help="units are at least 1 and a count of distinct values at least 0"))
                else:
                    out.append(error("PR303", f"rule `{rid}` can never fire: `{format_cond(second, u.source)}` contradicts "
                                     f"`{format_cond(first, u.source)}`", second.span,
                                     help="no line meets both; remove one, or join them with `or` if either should do"))
        return out

    def shadowed(self) -> list[Diagnostic]:
        """PR306: an earlier rule (in the policy or one it includes) with the same action and scope whose
        `and` items are all among this rule's: whenever this one fires, that one already has."""
        out = []
        for u in self.checked:
            chain = [(v, r) for v in self.scope.chain(u) for r in v.policy.rules]
            items = [frozenset(_flat_and(r.cond)) for _, r in chain]
            earlier = ByRarest(items)  # r1's items all among r2's: its rarest item is one of r2's
            for j, (v2, r2) in enumerate(chain):
                if v2 is not u:
                    continue
                mine = items[j]
                for i in earlier.candidates(mine, before=j):
                    v1, r1 = chain[i]
                    if (r1.action, r1.scope) != (r2.action, r2.scope) or r1.id.value == r2.id.value:
                        continue
                    if not covers(r1, r2):
                        continue  # r1 has an exception, or is in force on fewer dates
                    if items[i] <= mine:
                        where = f"line {r1.span.line}" if v1 is u else f"{v1.source.name}:{r1.span.line}"
                        does = {"deny": "denies", "review": "holds for review"}[r1.action]
                        why = ("the two rules have the same condition" if items[i] == mine
                               else f"every condition of `{r1.id.value}` is also in `{r2.id.value}`")
                        out.append(warning("PR306", f"rule `{r2.id.value}` is shadowed by rule `{r1.id.value}` ({where}), which has the same effect",
                                           r2.id.span,
                                           help=f"{why}, so `{r1.id.value}` already {does} every {r1.scope} `{r2.id.value}` would; "
                                                f"remove `{r2.id.value}`, or make it differ"))
                        break
        return out


    def overlapping(self) -> list[Diagnostic]:
        """PR311: another rule (of the policy or one it includes) fires whenever this one does and decides at
        least as much (a deny over a review), seen when their `and` items are the same but for a session
        limit or a spacing that the other's contains (more than 6 sessions are more than 4; within 12 months
        holds within 6), or the same with the other denying what this one holds for review. The plain case,
        the same action and items, is PR306's."""
        out = []
        shadowed = {(d.span.path, d.span.line, d.span.col) for d in self.found if d.code == "PR306"}
        for u in self.checked:
            chain = [(v, r) for v in self.scope.chain(u) for r in v.policy.rules]
            items = [unique(_flat_and(r.cond)) for _, r in chain]
            targets = [j for j, (v, r) in enumerate(chain)
                       if v is u and (r.id.span.path, r.id.span.line, r.id.span.col) not in shadowed]
            first = first_overlapping([r for _, r in chain], items, targets)
            for j in sorted(first):
                (v1, r1), (_, r2) = chain[first[j]], chain[j]
                out.append(self._overlap(u, v1, r1, r2, implied(items[first[j]], items[j]) or ""))
        return out

    def _overlap(self, u: Unit, v1: Unit, r1: nodes.Rule, r2: nodes.Rule, why: str) -> Diagnostic:
        a, b = r1.id.value, r2.id.value
        where = f"line {r1.span.line}" if v1 is u else f"{v1.source.name}:{r1.span.line}"
        fires = f"whenever `{b}` fires, `{a}` fires too ({why or 'the same conditions'})"
        if r1.action != r2.action:
            message = f"rule `{b}` holds for review what rule `{a}` ({where}) denies: the two contradict"
            help = (f"{fires} and its deny decides, so `{b}` never changes a decision; keep the outcome the payer's "
                    "text asks for and remove the other rule")
            if why:
                help += f", or swap the outcomes (`{a}` review, `{b}` deny) so that each decides lines the other does not"
        else:
            does = {"deny": "denies", "review": "holds for review"}[r1.action]
            message = f"rule `{b}` overlaps rule `{a}` ({where}): `{a}` already {does} every {r2.scope} `{b}` would"
            help = f"{fires}, so `{b}` never changes a decision; keep the one the payer's text gives and remove the other rule"
            if r1.action == "deny":
                help += f", or make `{a}` a review that `{b}` turns into a deny"
        return warning("PR311", message, r2.id.span, help=help)

    def deciding_nothing(self) -> list[Diagnostic]:
        """PR108: a policy with no `payer` that no policy includes: no claim is routed to it and no payer's
        policy uses its rules. Only when every file parsed and every include was found (the include that
        was meant might be the one that failed)."""
        if not self.complete or any(d.code in ("PR101", "PR103") for d in self.found):
            return []
        included = {inc.policy.value for u in self.units for inc in u.policy.of_type(nodes.Include)}
        out = []
        for u in self.checked:
            p = u.policy
            if p.payer is None and p.id.value not in included:
                out.append(warning("PR108", f"policy `{p.id.value}` decides no claim: it has no `payer` and no policy includes it",
                                   p.id.span,
                                   help="claims are routed to a policy by their payer: add `payer ID` (the payer the claims name), "
                                        f"or include it from a payer's policy with `include {p.id.value}`"))
        return out


def lint(target: Workspace | Sequence[Unit] | Sequence[SourceFile], only: Iterable[str] | None = None) -> list[Diagnostic]:
    """Every finding about the policies, each with a code, sorted by file, line and column.

    `target` is a loaded Workspace, parsed units or source files; they are checked together, so includes
    resolve among them. A policy that includes one with a syntax error is not checked further. With
    `only` (reported file names), the findings in those files and the errors in what they include.
    """
    if isinstance(target, Workspace) and target.units:  # every file parsed and checked already: not again
        units, found, broken = list(target.units), [], set()
        scope = _Scope(units)
        checked, checked_found = units, list(target.diagnostics)
    else:
        units, found, broken = _inputs(target)
        scope = _Scope(units)
        checked = [u for u in units if not broken.intersection(scope.includes(u))]
        checked_found = check(checked).diagnostics
        if isinstance(target, Workspace):  # a policy of one's own in the way of a shipped one: say how to go on
            checked_found = target.explained(checked_found)
    found = list(found) + checked_found
    linter = _Linter(units, checked, found, complete=not any(d.code in SYNTAX for d in found))
    for extra in (linter.sets_and_sources, linter.members, linter.fields, linter.citations, linter.never_fires,
                  linter.shadowed, linter.overlapping, linter.deciding_nothing):
        found += extra()
    if only is not None:
        names = set(only)
        deps: set[str] = set()
        for u in units:
            if u.source.name in names:
                deps.update(scope.by_id[i].source.name for i in scope.includes(u) if i in scope.by_id)
        found = [d for d in found if d.span.path in names or (d.span.path in deps and d.severity is Severity.ERROR)]
    unique = {(d.sort_key, d.code, d.help): d for d in found}
    return sorted(unique.values(), key=lambda d: (*d.sort_key, d.code))
