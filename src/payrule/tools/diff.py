"""`payrule diff`: what changed between two revisions of a policy file, and a claim that shows it.

Two parts:

- **the rule-level summary**: rules, sets, sources, payers (and any other policy field) added,
  removed or changed, compared on the lowered IR. A rule is compared field by field over the
  `ir.Rule` dataclass, so fields added to it later are compared too; only where a rule is written
  (`source`, `text`, `span`) and what is derived from its condition (`guard`, `dynamic`) are left out.
- **a claim decided differently**: candidate scenarios (claims, and history claims that count as
  already paid) are built from the two lowered policies alone: their code sets, diagnosis, stem and
  name sets, the values and numbers their conditions compare with, their session limits, windows and
  spacing, and any date bounds on their rules. Each scenario is decided by both policy sets; the
  first, smallest one whose decisions differ is the example. Decisions are compared on everything
  but a reason's `message` and `source` (where the rule is written).

    >>> old = 'policy k "K"\\n  payer acme\\n  codes KNEE = 12345\\n  rule units: deny line when code in KNEE and units > 1\\n'
    >>> new = old.replace("units > 1", "units > 2")
    >>> report = diff_texts(old, new)
    >>> [c.rule for c in report.rules_changed]
    ['units']
    >>> [line["units"] for claim in report.example.claims for line in claim["lines"]]
    [2]
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from payrule.api import PolicySet
from payrule.lang import ir
from payrule.lang.diagnostics import DiagnosticError
from payrule.lang.parser import parse
from payrule.lang.printer import print_cond, quote
from payrule.lang.source import SourceFile
from payrule.loader import default_policy_dir, discover
from payrule.runtime.schema import CODE_PATTERN, MODIFIER_PATTERN, in_code_range, normal

__all__ = [
    "DiffReport", "RuleChange", "Example", "load_pair", "load_revision", "diff_policy_sets", "diff_texts",
    "diff_files", "render_text", "render_json", "candidate_scenarios", "decisions_differ",
    "find_example", "compare_rules", "diff_summary", "DiffUsageError", "MAX_SCENARIOS", "BASE_DATE",
]

MAX_SCENARIOS = 3000  # candidate scenarios decided at most
BASE_DATE = dt.date(2025, 6, 16)  # the date of service a scenario's claim is on, unless a rule's dates say otherwise

# Fields of ir.Rule not compared: where the rule is written, and what follows from its condition.
RULE_LOCATION_FIELDS = frozenset({"id", "policy", "source", "text", "span", "guard", "dynamic"})
# Fields of ir.Policy compared by their own sections, or derived, or where the policy is written.
POLICY_SKIP_FIELDS = frozenset({"id", "path", "digest", "sources", "sets", "rules", "same_day_sets",
                                "earlier_sets", "session_sets", "grouped_sets", "span"})


# ---- loading -----------------------------------------------------------------------------------


class DiffUsageError(Exception):
    """A file or folder that cannot be read (a usage error, exit status 2)."""


def _policy_id(name: str, text: str) -> str | None:
    try:
        return parse(SourceFile(name, text)).id.value
    except DiagnosticError:
        return None  # the loader reports it, located


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DiffUsageError(f"cannot read policy file {path.as_posix()}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DiffUsageError(f"cannot read policy file {path.as_posix()}: {exc}") from None


def _library(dirs: Sequence[Path]) -> list[tuple[str, str, str | None]]:
    """(name, text, policy id) of every policy file in the folders, each file once."""
    out, seen = [], set()
    for d in dirs:
        if not Path(d).is_dir():
            raise DiffUsageError(f"policy folder `{Path(d).as_posix()}` does not exist")
        for p, name in discover(Path(d)):
            key = str(p.resolve())
            if key in seen:
                continue
            seen.add(key)
            text = _read(p)
            out.append((name, text, _policy_id(name, text)))
    return out


def load_revision(name: str, text: str, library: Sequence[tuple[str, str, str | None]],
                  exclude_ids: Iterable[str | None] = ()) -> PolicySet:
    """One revision of a policy file checked together with the library's files, leaving out those
    that define the same policy id (the same policy, another revision of it). Raises PolicyError."""
    skip = {i for i in exclude_ids if i is not None}
    texts = {n: t for n, t, pid in library if pid not in skip}
    texts[name] = text
    return PolicySet.from_texts(texts)


def load_pair(old: str | Path, new: str | Path, dirs: Sequence[str | Path] = ()) -> tuple[PolicySet, PolicySet, set[str]]:
    """The two revisions, each with the shipped policies plus `dirs` for its includes; and the ids
    the two files define."""
    old_p, new_p = Path(old), Path(new)
    old_text, new_text = _read(old_p), _read(new_p)
    return _pair(old_p.as_posix(), old_text, new_p.as_posix(), new_text, [default_policy_dir(), *map(Path, dirs)])


def _pair(old_name: str, old_text: str, new_name: str, new_text: str, dirs: Sequence[Path]):
    library = _library(dirs)
    ids = {_policy_id(old_name, old_text), _policy_id(new_name, new_text)}
    if old_name == new_name:  # two texts under one name: the second would replace the first
        old_name, new_name = "old:" + old_name, "new:" + new_name
    old_set = load_revision(old_name, old_text, library, ids)
    new_set = load_revision(new_name, new_text, library, ids)
    return old_set, new_set, {i for i in ids if i is not None}


# ---- the rule-level summary ----------------------------------------------------------------------


@dataclass
class RuleChange:
    policy: str
    rule: str
    fields: dict[str, tuple[str, str]]  # field -> (old, new), printed
    old_text: str
    new_text: str
    sets: tuple[str, ...] = ()  # sets the condition reads whose members changed


@dataclass
class SetChange:
    policy: str
    name: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    kind: tuple[str, str] | None = None


@dataclass
class Example:
    history: list[dict]
    claims: list[dict]
    old: list[dict]
    new: list[dict]


@dataclass
class DiffReport:
    rules_added: list[ir.Rule] = field(default_factory=list)
    rules_removed: list[ir.Rule] = field(default_factory=list)
    rules_changed: list[RuleChange] = field(default_factory=list)
    sets_added: list[ir.SetDef] = field(default_factory=list)
    sets_removed: list[ir.SetDef] = field(default_factory=list)
    sets_changed: list[SetChange] = field(default_factory=list)
    sources_changed: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)  # policy, id, old, new
    policies_added: list[str] = field(default_factory=list)
    policies_removed: list[str] = field(default_factory=list)
    policy_fields: list[tuple[str, str, str, str]] = field(default_factory=list)  # policy, field, old, new
    example: Example | None = None
    scenarios_tried: int = 0

    @property
    def payer_changes(self) -> list[tuple[str, str, str]]:
        return [(p, o, n) for p, f, o, n in self.policy_fields if f == "payer"]

    @property
    def any_rule_change(self) -> bool:
        return bool(self.rules_added or self.rules_removed or self.rules_changed)


def _message(segments) -> str:
    return quote("".join(s if isinstance(s, str) else "{" + s.name + "}" for s in segments))


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, ir.SetDef):
        return value.name
    if isinstance(value, (tuple, list, frozenset, set)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return ", ".join(_show(v) for v in items) or "(none)"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return repr(value)
    return str(value)


def _is_cond(value: Any) -> bool:
    """Whether a value is a condition node (every one says what it reads)."""
    return hasattr(type(value), "READS") and dataclasses.is_dataclass(value)


def _cond_text(c: Any) -> str:
    try:
        return print_cond(c)
    except Exception:  # a node the printer does not know yet
        return repr(c)


def _rule_conds(rule: ir.Rule) -> list[Any]:
    """The rule's conditions: `cond`, and any other field holding one (`unless`)."""
    return [v for f in dataclasses.fields(rule) for v in [getattr(rule, f.name, None)] if _is_cond(v)]


# How a rule field is printed: a condition as policy text, the message as a string; any other
# field (dates, denial codes, fields added to ir.Rule later) through `_show`.
FIELD_PRINTERS: dict[str, Callable[[Any], str]] = {
    "cond": _cond_text,
    "message": _message,
    "cite": lambda v: v or "(none)",
    "citation": lambda v: quote(v) if v else "(none)",
}


def _rule_fields(rule: ir.Rule) -> list[str]:
    return [f.name for f in dataclasses.fields(rule) if f.compare and f.name not in RULE_LOCATION_FIELDS]


def _sets_in(cond) -> dict[str, ir.SetDef]:
    """The sets a condition reads, by name: any attribute of any node that is a SetDef."""
    out: dict[str, ir.SetDef] = {}
    for node in ir.walk(cond):
        for value in _attrs(node):
            for s in (value if isinstance(value, tuple) else (value,)):
                if isinstance(s, ir.SetDef):
                    out.setdefault(s.name, s)
    return out


def _attrs(node) -> list[Any]:
    if dataclasses.is_dataclass(node):
        return [getattr(node, f.name, None) for f in dataclasses.fields(node)]
    return []


def _members(s: ir.SetDef) -> set[str]:
    return set(s.values) | {f"{lo}..{hi}" for lo, hi in s.ranges}


def _everywhere(ps: PolicySet, items: Callable[[ir.Policy], Iterable[tuple[tuple[str, str], Any]]]) -> dict:
    """What every policy of a set holds, keyed by (declaring policy, name): the first found of each."""
    out: dict = {}
    for pid in sorted(ps.policies):
        for key, value in items(ps.policies[pid]):
            out.setdefault(key, value)
    return out


def _all_rules(ps: PolicySet) -> dict[tuple[str, str], ir.Rule]:
    return _everywhere(ps, lambda p: (((r.policy, r.id), r) for r in p.rules))


def _all_sets(ps: PolicySet) -> dict[tuple[str, str], ir.SetDef]:
    return _everywhere(ps, lambda p: (((s.policy, s.name), s) for s in p.sets))


def _all_sources(ps: PolicySet) -> dict[tuple[str, str], str]:
    return _everywhere(ps, lambda p: (((owner, sid), text) for sid, text, owner in p.sources))


def compare_rules(old: ir.Rule, new: ir.Rule) -> RuleChange | None:
    names = _rule_fields(old) + [n for n in _rule_fields(new) if n not in _rule_fields(old)]
    fields: dict[str, tuple[str, str]] = {}
    sets: tuple[str, ...] = ()
    for name in names:
        a, b = getattr(old, name, None), getattr(new, name, None)
        if a == b:
            continue
        show = FIELD_PRINTERS.get(name, _cond_text if _is_cond(a) or _is_cond(b) else _show)
        fields[name] = (show(a) if a is not None else "(none)", show(b) if b is not None else "(none)")
        if _is_cond(a) and _is_cond(b):
            sa, sb = _sets_in(a), _sets_in(b)
            sets += tuple(n for n in sorted(set(sa) & set(sb)) if sa[n] != sb[n] and n not in sets)
    if not fields:
        return None
    return RuleChange(old.policy, old.id, fields, old.text, new.text, sets)


def diff_summary(old: PolicySet, new: PolicySet) -> DiffReport:
    rep = DiffReport()
    ro, rn = _all_rules(old), _all_rules(new)
    rep.rules_removed = [ro[k] for k in sorted(ro) if k not in rn]
    rep.rules_added = [rn[k] for k in sorted(rn) if k not in ro]
    rep.rules_changed = [c for k in sorted(ro) if k in rn for c in [compare_rules(ro[k], rn[k])] if c]
    so, sn = _all_sets(old), _all_sets(new)
    rep.sets_removed = [so[k] for k in sorted(so) if k not in sn]
    rep.sets_added = [sn[k] for k in sorted(sn) if k not in so]
    for k in sorted(so):
        if k in sn and so[k] != sn[k]:
            a, b = so[k], sn[k]
            ma, mb = _members(a), _members(b)
            kind = (a.kind, b.kind) if a.kind != b.kind else None
            rep.sets_changed.append(SetChange(k[0], k[1], tuple(sorted(mb - ma)), tuple(sorted(ma - mb)), kind))
    co, cn = _all_sources(old), _all_sources(new)
    for k in sorted(set(co) | set(cn)):
        if co.get(k) != cn.get(k):
            rep.sources_changed.append((k[0], k[1], co.get(k), cn.get(k)))
    rep.policies_removed = sorted(set(old.policies) - set(new.policies))
    rep.policies_added = sorted(set(new.policies) - set(old.policies))
    for pid in sorted(set(old.policies) & set(new.policies)):
        a, b = old.policies[pid], new.policies[pid]
        for f in dataclasses.fields(a):
            if f.name in POLICY_SKIP_FIELDS or not f.compare:
                continue
            va, vb = getattr(a, f.name, None), getattr(b, f.name, None)
            if va != vb:
                rep.policy_fields.append((pid, f.name, _show(va), _show(vb)))
    return rep


# ---- candidate scenarios ---------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+")


def _form(fr) -> str | None:
    return getattr(fr, "form", None)


def _is_list(fr) -> bool:
    return bool(getattr(fr, "is_list", False))


def _node_sets(node) -> tuple[ir.SetDef, ...]:
    """The sets a field test reads: `set`, and `others` when it names several."""
    sets = getattr(node, "sets", None)
    if isinstance(sets, tuple):
        return sets
    s = getattr(node, "set", None)
    return (s,) if isinstance(s, ir.SetDef) else ()


def _set_matches(s: ir.SetDef, value: str, form: str | None = None) -> bool:
    """Whether one claim value matches a set, by the set's kind (docs/language.md, Sets)."""
    kind = s.kind
    if kind == "codes":
        v = normal("code", value)
        return v in s.values or any(in_code_range(v, lo, hi) for lo, hi in s.ranges)
    if kind == "diagnoses":
        return bool(s.values) and normal("diagnosis", value).startswith(tuple(s.values))
    if kind == "stems":
        return bool(s.values) and any(w.startswith(tuple(s.values)) for w in _WORD.findall(value.casefold()))
    if kind == "names":
        return normal("name", value) in s.values
    return value in s.values


def _value_matches(v: ir.Value, value: str, form: str | None) -> bool:
    if form == "diagnosis":
        return normal("diagnosis", value).startswith(v.value)
    try:
        return (normal(form, value) if form else value) == v.value
    except ValueError:
        return value == v.value


def _items(value) -> list[str]:
    return [x for x in (value if isinstance(value, tuple) else ((value,) if value else ())) if str(x).strip()]


def _has_true(node, value) -> bool:
    """Whether `has ...` / `lacks ...` holds for a field holding `value` (a tuple for a list field)."""
    items = _items(value)
    form = _form(node.field)
    sets = _node_sets(node)
    if getattr(node, "value", None) is not None:
        hit = any(_value_matches(node.value, x, form) for x in items)
    elif sets and getattr(node, "outside", False):
        hit = any(not any(_set_matches(s, x, form) for s in sets) for x in items)
    elif sets:
        hit = any(_set_matches(s, x, form) for s in sets for x in items)
    else:
        hit = bool(items)
    return hit != bool(getattr(node, "negated", False))


def _every_true(node, value) -> bool:
    items = _items(value)
    return bool(items) and all(any(_set_matches(s, x, _form(node.field)) for s in _node_sets(node)) for x in items)


# How a field test holds for a value: used to choose the value a field gets by default.
_Every = getattr(ir, "Every", None)
TRUTH: dict[type, Callable[[Any, Any], bool]] = {ir.Has: _has_true, **({_Every: _every_true} if _Every else {})}


@dataclass
class _Pools:
    """What the two revisions' conditions mention, gathered with one table over `ir.walk`."""

    sets: list[ir.SetDef] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)  # field name -> its FieldRef
    values: dict[str, list[str]] = field(default_factory=dict)  # field name -> values it is compared with
    tests: dict[str, list[Any]] = field(default_factory=dict)  # field name -> the field tests on it
    numbers: dict[str, set[int]] = field(default_factory=dict)
    counts: dict[str, set[int]] = field(default_factory=dict)  # set name -> session counts
    windows: dict[str, list[Any]] = field(default_factory=dict)  # set name -> windows
    spacing: dict[str, set[tuple[int, str]]] = field(default_factory=dict)  # set name -> (size, unit)
    dates: list[dt.date] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)  # set members in one revision only
    neutral: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)

    def add_code(self, c: str) -> None:
        if c not in self.codes:
            self.codes.append(c)

    def add_set(self, s: ir.SetDef | None) -> None:
        if s is not None and s not in self.sets:
            self.sets.append(s)

    def add_field(self, fr) -> None:
        if fr is not None and getattr(fr, "name", None):
            self.fields.setdefault(fr.name, fr)

    def add_value(self, fr, v: str) -> None:
        self.add_field(fr)
        vals = self.values.setdefault(fr.name, [])
        if v not in vals:
            vals.append(v)


def _members_of(s: ir.SetDef, changed: set[str] = frozenset()) -> list[str]:
    """Values that match a set: each member and each range's two bounds, those in one revision only first."""
    out = list(s.values)
    for lo, hi in s.ranges:
        out += [lo, hi]
    out = list(dict.fromkeys(out))
    return sorted(out, key=lambda v: (v not in changed, out.index(v)))


def _g_codein(node, pools: _Pools) -> None:
    pools.add_set(node.set)
    for v in _members_of(node.set):
        pools.add_code(v)


def _g_codeis(node, pools: _Pools) -> None:
    pools.add_code(node.code)


def _g_fieldtest(node, pools: _Pools) -> None:
    fr = node.field
    pools.add_field(fr)
    pools.tests.setdefault(fr.name, []).append(node)
    if getattr(node, "value", None) is not None:
        pools.add_value(fr, node.value.text)
    for s in _node_sets(node):
        pools.add_set(s)
        for v in _members_of(s):
            pools.add_value(fr, v)


def _g_compare(node, pools: _Pools) -> None:
    pools.add_field(node.field)
    pools.numbers.setdefault(node.field.name, set()).add(node.value)


def _g_sameday(node, pools: _Pools) -> None:
    _g_codein(node, pools)
    pools.add_field(getattr(node, "sharing", None))
    pools.add_field(getattr(node, "lacking", None))


def _g_limit(node, pools: _Pools) -> None:
    _g_codein(node, pools)
    pools.add_field(getattr(node, "by", None))
    pools.counts.setdefault(node.set.name, set()).add(node.count)
    ws = pools.windows.setdefault(node.set.name, [])
    if node.window not in ws:
        ws.append(node.window)


def _g_spacing(node, pools: _Pools) -> None:
    _g_codein(node, pools)
    pools.add_field(getattr(node, "by", None))
    pools.spacing.setdefault(node.set.name, set()).add((node.days, getattr(node, "unit", "days")))


def _g_unknown(node, pools: _Pools) -> None:
    """A node this module does not know: still gather its sets, fields and dates."""
    for v in _attrs(node):
        for x in (v if isinstance(v, tuple) else (v,)):
            if isinstance(x, ir.SetDef):
                pools.add_set(x)
                if x.kind == "codes":
                    for c in _members_of(x):
                        pools.add_code(c)
            elif isinstance(x, ir.FieldRef):
                pools.add_field(x)
            elif isinstance(x, dt.date):
                _add_bound(pools, x)


def _g_none(node, pools: _Pools) -> None:
    return None


GATHER: dict[type, Callable[[Any, _Pools], None]] = {
    ir.CodeIn: _g_codein, ir.CodeIs: _g_codeis, ir.Has: _g_fieldtest, ir.Compare: _g_compare,
    ir.SameDay: _g_sameday, ir.SessionLimit: _g_limit, ir.Spacing: _g_spacing,
    ir.And: _g_none, ir.Or: _g_none, ir.Not: _g_none,
    **({_Every: _g_fieldtest} if _Every else {}),
}


def _add_bound(pools: _Pools, d: dt.date) -> None:
    if isinstance(d, dt.datetime):
        d = d.date()
    for x in (d - dt.timedelta(days=1), d, d + dt.timedelta(days=1)):
        if x not in pools.dates:
            pools.dates.append(x)


def _neutral(candidates: Iterable[str], bad: Callable[[str], bool]) -> str:
    for c in candidates:
        if not bad(c):
            return c
    return "neutral"  # pragma: no cover


def _gather(rules: Sequence[ir.Rule], changed: set[str]) -> _Pools:
    pools = _Pools(changed=changed)
    for rule in rules:
        for cond in _rule_conds(rule):
            for node in ir.walk(cond):
                GATHER.get(type(node), _g_unknown)(node, pools)
        for f in dataclasses.fields(rule):  # date bounds, whatever they are called
            v = getattr(rule, f.name, None)
            if isinstance(v, dt.date):
                _add_bound(pools, v)
    code_sets = [s for s in pools.sets if s.kind == "codes"]
    pools.neutral["code"] = _neutral(
        ("99999", "12345", "0000A", "ZZZZZ", "A0000", "54321"),
        lambda c: c in pools.codes or any(_set_matches(s, c, "code") for s in code_sets))

    def bad_for(name: str):
        tests = pools.tests.get(name, [])
        vals = pools.values.get(name, [])
        return lambda c: (c in vals or any(_set_matches(s, c, _form(n.field)) for n in tests for s in _node_sets(n))
                          or any(getattr(n, "value", None) is not None and _value_matches(n.value, c, _form(n.field))
                                 for n in tests))

    for name, fr in pools.fields.items():
        form = _form(fr)
        if form == "diagnosis":
            cands: Iterable[str] = ("Z00.00", "Y99.8", "R69", "Z99.89", "Q99.9")
        elif form == "code":
            cands = ("XY", "ZQ", "QX", "X9", "9X")
        else:
            word = name[:-1] if name.endswith("s") else name
            cands = (f"unlisted {word}", f"other {word}", "unlisted", "qx", "zq neutral", "xq", "qqq")
        pools.neutral[name] = _neutral(cands, bad_for(name))
    for name, fr in pools.fields.items():
        pools.defaults[name] = _default(pools, name, fr)
    return pools


def _default(pools: _Pools, name: str, fr) -> Any:
    """The value a field gets when the rule being exercised does not say: of none, a neutral value and
    the values conditions compare it with, the one that makes the fewest field tests hold."""
    tests = [(TRUTH[type(n)], n) for n in pools.tests.get(name, []) if type(n) in TRUTH]
    neutral = pools.neutral.get(name, "qx")
    if name in pools.numbers and not _is_list(fr):
        return None  # numbers are left out: the claim format's default
    if _is_list(fr):
        cands: list[Any] = [(), (neutral,)] + [(v,) for v in pools.values.get(name, [])]
    else:
        cands = [None, neutral] + list(pools.values.get(name, []))
    return min(cands, key=lambda v: (sum(holds(n, v) for holds, n in tests), cands.index(v)))


# An option is what one test needs of a scenario: the line's `code`, ("line"|"claim", field) values,
# companion lines the same day (`same`), history sessions (`hist`) and the date of service (`date`).

_ADD = ("same", "hist")


def _merge(a: dict, b: dict) -> dict | None:
    out = dict(a)
    for k, v in b.items():
        if k in _ADD:
            out[k] = out.get(k, ()) + v
        elif k in out and isinstance(v, tuple) and isinstance(out[k], tuple):
            out[k] = tuple(dict.fromkeys(out[k] + v))  # two tests of one list field: it lists both values
        elif k in out and out[k] != v:
            return None
        else:
            out[k] = v
    return out


PRODUCT_LIMIT = 150


def _and(options: list[list[dict]]) -> list[dict]:
    """Options for every part at once: all combinations when few, else each part's options in turn
    on top of the first option of every other part."""
    options = [o for o in options if o]
    if not options:
        return [{}]
    total = 1
    for o in options:
        total *= len(o)
    combos: Iterable[tuple[dict, ...]]
    if total <= PRODUCT_LIMIT:
        combos = itertools.product(*options)
    else:
        base = [o[0] for o in options]
        combos = [tuple(base)] + [tuple(base[:i] + [alt] + base[i + 1:]) for i, o in enumerate(options) for alt in o[1:]]
    out = []
    for combo in combos:
        merged: dict | None = {}
        for part in combo:
            merged = _merge(merged, part)
            if merged is None:
                break
        if merged is not None:
            out.append(merged)
    return out


def _key(fr) -> tuple[str, str]:
    return (getattr(fr, "where", "line"), fr.name)


def _wrap(fr, v):
    return (v,) if _is_list(fr) else v


def _empty(fr):
    return () if _is_list(fr) else None


def _o_and(node, pools):
    return _and([_options(c, pools) for c in node.items])


def _o_or(node, pools):
    return [o for c in node.items for o in _options(c, pools)]


def _o_not(node, pools):
    return _options(node.item, pools)


def _o_codein(node, pools):
    inside = [{"code": c} for c in _members_of(node.set, pools.changed)]
    outside = [{"code": pools.neutral["code"]}] + [{"code": c} for c in pools.codes if not _set_matches(node.set, c, "code")][:3]
    return outside + inside if node.negated else inside + outside


def _o_codeis(node, pools):
    return [{"code": node.code}, {"code": pools.neutral["code"]}]


def _hits(node, pools) -> list[str]:
    hits = [m for s in _node_sets(node) for m in _members_of(s, pools.changed)]
    if getattr(node.field, "name", None) == "modifiers":
        hits = [h for h in hits if MODIFIER_PATTERN.match(h)] or hits
    return list(dict.fromkeys(hits))


def _o_has(node, pools):
    fr = node.field
    k = _key(fr)
    neutral = pools.neutral.get(fr.name, "qx")
    if getattr(node, "value", None) is not None:
        hits = [node.value.text]
    elif _node_sets(node):
        hits = _hits(node, pools)
    else:
        hits = [neutral]
    yes = [{k: _wrap(fr, h)} for h in hits]
    no = [{k: _wrap(fr, neutral)}, {k: _empty(fr)}]
    if _node_sets(node) and getattr(node, "outside", False) and _is_list(fr) and hits:
        no.append({k: (hits[0], neutral)})
    return no + yes if node.negated and getattr(node, "value", None) is None and not _node_sets(node) else yes + no


def _o_every(node, pools):
    fr = node.field
    k = _key(fr)
    neutral = pools.neutral.get(fr.name, "qx")
    hits = _hits(node, pools)
    out = [{k: _wrap(fr, h)} for h in hits] + [{k: _wrap(fr, neutral)}, {k: _empty(fr)}]
    if hits and _is_list(fr):
        out.append({k: (hits[0], neutral)})
    return out


def _numbers_around(ns: Iterable[int], least: int) -> list[int]:
    return sorted({x for n in ns for x in (n - 1, n, n + 1) if x >= least})


def _o_compare(node, pools):
    fr = node.field
    k = _key(fr)
    nums = _numbers_around(pools.numbers.get(fr.name, {node.value}) | {node.value}, 0 if node.distinct else 1)
    if node.distinct:
        base = pools.neutral.get(fr.name, "qx")
        return [{k: tuple(f"{base} {i + 1}" for i in range(n))} for n in nums if n <= 12]
    return [{k: n} for n in nums]


def _o_sameday(node, pools):
    members = _members_of(node.set, pools.changed)[:3]
    sharing, lacking = getattr(node, "sharing", None), getattr(node, "lacking", None)
    out: list[dict] = []
    for where in ("claim", "history"):
        for code in members:
            if sharing is not None:
                shared = (pools.values.get(sharing.name) or [pools.neutral.get(sharing.name, "qx")])[0]
                other = pools.neutral.get(sharing.name, "qx") + " other"
                out.append({_key(sharing): _wrap(sharing, shared), "same": ((code, ((sharing.name, _wrap(sharing, shared)),), where),)})
                out.append({_key(sharing): _wrap(sharing, shared), "same": ((code, ((sharing.name, _wrap(sharing, other)),), where),)})
            elif lacking is not None:
                out.append({"same": ((code, ((lacking.name, _empty(lacking)),), where),)})
                out.append({"same": ((code, ((lacking.name, _wrap(lacking, pools.neutral.get(lacking.name, "qx"))),), where),)})
            else:
                out.append({"same": ((code, (), where),)})
    return out + [{}]


def _grouped(by, pools) -> list[tuple[dict, tuple]]:
    """For `at the same FIELD`: (what the line gets, what its earlier sessions get), the same value
    and another one. Without it, nothing."""
    if by is None:
        return [({}, ())]
    same = _wrap(by, pools.neutral.get(by.name, "qx"))
    other = _wrap(by, pools.neutral.get(by.name, "qx") + " other")
    return [({_key(by): same}, ((by.name, same),)), ({_key(by): same}, ((by.name, other),))]


def _o_limit(node, pools):
    code = _members_of(node.set, pools.changed)[0]
    counts = _numbers_around(pools.counts.get(node.set.name, set()) | {node.count}, 1)
    out = []
    for line_values, hist_values in _grouped(getattr(node, "by", None), pools):
        for w in pools.windows.get(node.set.name, [node.window]):
            unit, size = getattr(w, "unit", None), getattr(w, "size", None)
            for delta in (1, 0, -1):
                for k in counts:
                    out.append({**line_values, "hist": (("limit", code, unit, size, delta, k, hist_values),)})
    return out + [{}]


def _o_spacing(node, pools):
    code = _members_of(node.set, pools.changed)[0]
    sizes = pools.spacing.get(node.set.name, set()) | {(node.days, getattr(node, "unit", "days"))}
    out = []
    for line_values, hist_values in _grouped(getattr(node, "by", None), pools):
        for size, unit in sorted(sizes):
            for delta in (1, 0, -1):  # the day after the window's floor (inside), the floor, the day before
                out.append({**line_values, "hist": (("gap", code, unit, size, delta, 1, hist_values),)})
    return out + [{}]


OPTIONS: dict[type, Callable[[Any, _Pools], list[dict]]] = {
    ir.And: _o_and, ir.Or: _o_or, ir.Not: _o_not, ir.CodeIn: _o_codein, ir.CodeIs: _o_codeis,
    ir.Has: _o_has, ir.Compare: _o_compare, ir.SameDay: _o_sameday, ir.SessionLimit: _o_limit,
    ir.Spacing: _o_spacing, **({_Every: _o_every} if _Every else {}),
}


def _options(node, pools: _Pools) -> list[dict]:
    handler = OPTIONS.get(type(node))
    return handler(node, pools) if handler else [{}]  # a node this module does not know: no need of its own


def _sub_months(d: dt.date, months: int) -> dt.date:
    y, m = divmod(d.year * 12 + d.month - 1 - months, 12)
    day = d.day
    while True:
        try:
            return dt.date(y, m + 1, day)
        except ValueError:
            day -= 1


# A window's floor: a session on day p is in the window ending on day d when floor < p < d.
WINDOW_FLOORS: dict[str, Callable[[dt.date, int | None], dt.date]] = {
    "days": lambda d, n: d - dt.timedelta(days=n or 0),
    "day": lambda d, n: d - dt.timedelta(days=n or 0),
    "weeks": lambda d, n: d - dt.timedelta(days=7 * (n or 0)),
    "months": lambda d, n: _sub_months(d, n or 0),
    "month": lambda d, n: _sub_months(d, n or 0),
    "years": lambda d, n: _sub_months(d, 12 * (n or 0)),
    "calendar year": lambda d, n: dt.date(d.year, 1, 1) - dt.timedelta(days=1),
}


def _session_dates(plan: tuple, d: dt.date) -> list[dt.date] | None:
    """The dates of a plan's sessions before day `d`: the first `delta` days from the window's floor,
    the others spread evenly between it and `d`."""
    _, _, unit, size, delta, k, _ = plan
    floor = WINDOW_FLOORS.get(unit)
    if floor is None:
        return None
    try:
        first = floor(d, size) + dt.timedelta(days=delta)
    except (OverflowError, ValueError):
        return None
    span = (d - first).days
    if span < k or k < 1:
        return None
    return [first + dt.timedelta(days=(i * span) // k) for i in range(k)]


@dataclass(frozen=True)
class Scenario:
    history: tuple[dict, ...]
    claims: tuple[dict, ...]

    @property
    def size(self) -> int:
        return sum(len(c["lines"]) for c in (*self.history, *self.claims))

    def key(self) -> str:
        return json.dumps([self.history, self.claims], sort_keys=True)


def _line_fields(values: dict, pools: _Pools, where: str) -> dict:
    out = {}
    for name, fr in sorted(pools.fields.items()):
        if getattr(fr, "where", "line") != where or name in ("code", "line", "date"):
            continue
        v = values[(where, name)] if (where, name) in values else pools.defaults.get(name)
        if v is None or v == ():
            continue
        out[name] = list(v) if isinstance(v, tuple) else v
    return out


def _build(option: dict, payer: str, pools: _Pools) -> Scenario | None:
    d = option.get("date", BASE_DATE)
    code = option.get("code") or (pools.codes[0] if pools.codes else pools.neutral["code"])
    if not CODE_PATTERN.match(code):
        return None
    claim_fields = _line_fields(option, pools, "claim")
    default_claim = _line_fields({}, pools, "claim")

    def line(n: int, c: str, when: dt.date, values: dict) -> dict:
        return {"line": n, "date": when.isoformat(), "code": c, **_line_fields(values, pools, "line")}

    history, lines = [], []
    for plan in option.get("hist", ()):
        dates = _session_dates(plan, d)
        if dates is None:
            return None
        values = {("line", n): v for n, v in plan[-1]}
        history += [(when, plan[1], values) for when in dates]
    for c, fields, where in option.get("same", ()):
        values = {("line", n): v for n, v in fields}
        if where == "history":
            history.append((d, c, values))
        else:
            lines.append(line(len(lines) + 1, c, d, values))
    lines.append(line(len(lines) + 1, code, d, option))
    history.sort(key=lambda h: h[0])
    hist_claims = tuple(
        {"claim_id": f"H{i + 1}", "patient_id": "P1", "payer": payer, **default_claim, "lines": [line(1, c, when, values)]}
        for i, (when, c, values) in enumerate(history))
    claim = {"claim_id": "C1", "patient_id": "P1", "payer": payer, **claim_fields, "lines": lines}
    return Scenario(hist_claims, (claim,))


def _changed_members(old: PolicySet, new: PolicySet) -> set[str]:
    so, sn = _all_sets(old), _all_sets(new)
    out: set[str] = set()
    for k in set(so) | set(sn):
        a = set(_members_of(so[k])) if k in so else set()
        b = set(_members_of(sn[k])) if k in sn else set()
        out |= a ^ b
    return out


def _signature(p: ir.Policy | None) -> tuple | None:
    """What a policy decides with: its fields but where it is written, and its rules but where they are."""
    if p is None:
        return None
    head = tuple(getattr(p, f.name, None) for f in dataclasses.fields(p) if f.compare and f.name not in POLICY_SKIP_FIELDS
                 and f.name != "title")
    return head + tuple(tuple(getattr(r, n, None) for n in _rule_fields(r)) + (r.policy, r.id) for r in p.rules)


def _payer_names(p: ir.Policy | None) -> tuple[str, ...]:
    if p is None or p.payer is None:
        return ()
    names = getattr(p, "payer_names", None)
    return tuple(names) if isinstance(names, tuple) else (p.payer,)


def candidate_scenarios(old: PolicySet, new: PolicySet, limit: int = MAX_SCENARIOS) -> list[Scenario]:
    """Scenarios to decide, smallest first: for every policy that decides claims (has a payer) in
    either revision and decides them differently on paper, for each of its rules (changed rules
    first) in either revision, the options its conditions give, on each of that policy's payer names."""
    changed = _changed_members(old, new)
    deciding = []
    for pid in sorted(set(old.policies) | set(new.policies)):
        a, b = old.policies.get(pid), new.policies.get(pid)
        if _payer_names(a) or _payer_names(b):
            deciding.append((pid, a, b, _signature(a) != _signature(b)))
    # Policies whose rules or payer differ come first; when some do, the others cannot decide differently.
    if any(t[3] for t in deciding):
        deciding = [t for t in deciding if t[3]]
    out: dict[str, tuple[int, int, Scenario]] = {}
    for pid, a, b, _ in deciding:
        ra = {(r.policy, r.id): r for r in (a.rules if a else ())}
        rb = {(r.policy, r.id): r for r in (b.rules if b else ())}
        same = {k for k in ra.keys() & rb.keys() if compare_rules(ra[k], rb[k]) is None}  # where it is written aside
        rules = list(ra.values()) + [r for k, r in rb.items() if k not in same]
        pools = _gather(rules, changed)
        order = sorted(rules, key=lambda r: (r.policy, r.id) in same)
        payers = list(dict.fromkeys(n for p in (a, b) for n in _payer_names(p)))
        dates = [BASE_DATE] + [x for x in pools.dates if x != BASE_DATE]
        for rule in order:
            changed_rule = (rule.policy, rule.id) not in same
            options = _and([_options(c, pools) for c in _rule_conds(rule)]) + [{}]
            for option in options:
                for when in dates:
                    for payer in payers:
                        s = _build({**option, "date": when}, payer, pools)
                        if s is not None and s.key() not in out:
                            # a changed rule's scenarios first (however large), then the smallest
                            out[s.key()] = ((not changed_rule, s.size), len(out), s)
            if len(out) >= 4 * limit:
                break
    ranked = sorted(out.values(), key=lambda t: (t[0], t[1]))
    return [s for _, _, s in ranked[:limit]]


# ---- deciding ------------------------------------------------------------------------------------


def _comparable(obj: Any) -> Any:
    """A decision without what does not decide: a reason's message and where its rule is written."""
    if isinstance(obj, dict):
        return {k: _comparable(v) for k, v in obj.items() if k not in ("message", "source")}
    if isinstance(obj, list):
        return [_comparable(v) for v in obj]
    return obj


def decisions_differ(a: list[dict], b: list[dict]) -> bool:
    return _comparable(a) != _comparable(b)


def find_example(old: PolicySet, new: PolicySet, limit: int = MAX_SCENARIOS) -> tuple[Example | None, int]:
    tried = 0
    for s in candidate_scenarios(old, new, limit):
        tried += 1
        claims, history = list(s.claims), list(s.history)
        a, b = old.check(claims, history), new.check(claims, history)
        if decisions_differ(a, b):
            return Example(history, claims, a, b), tried
    return None, tried


def diff_policy_sets(old: PolicySet, new: PolicySet, search: bool = True) -> DiffReport:
    rep = diff_summary(old, new)
    if search:
        rep.example, rep.scenarios_tried = find_example(old, new)
    return rep


def diff_texts(old_text: str, new_text: str, dirs: Sequence[str | Path] = (), old_name: str = "old.policy",
               new_name: str = "new.policy") -> DiffReport:
    """The diff of two policy texts, with the shipped policies (and `dirs`) for their includes."""
    old, new, _ = _pair(old_name, old_text, new_name, new_text, [default_policy_dir(), *map(Path, dirs)])
    return diff_policy_sets(old, new)


def diff_files(old: str | Path, new: str | Path, dirs: Sequence[str | Path] = ()) -> DiffReport:
    a, b, _ = load_pair(old, new, dirs)
    return diff_policy_sets(a, b)


# ---- output --------------------------------------------------------------------------------------


def _jsonl(objs: Iterable[dict]) -> list[str]:
    return [json.dumps(o, ensure_ascii=False) for o in objs]


_REASON_SHOWN = frozenset({"policy", "rule", "outcome", "message", "source"})


def _decision_lines(decisions: list[dict]) -> list[str]:
    out = []
    for d in decisions:
        if "error" in d:
            out.append(f"  claim {d.get('claim_id')}: error: {d['error']}")
            continue
        out.append(f"  claim {d['claim_id']}: {d['decision']}")
        for ln in d.get("lines", []):
            out.append(f"    line {ln['line']} {ln['code']}: {ln['decision']}")
            for r in ln.get("reasons", []):
                extra = "".join(f" [{k} {_show(v)}]" for k, v in r.items() if k not in _REASON_SHOWN)
                out.append(f"      {r['outcome']} {r['policy']}/{r['rule']}{extra}: {r.get('message', '')}")
    return out


def render_text(rep: DiffReport) -> str:
    out: list[str] = []
    for pid in rep.policies_removed:
        out.append(f"policy removed: {pid}")
    for pid in rep.policies_added:
        out.append(f"policy added: {pid}")
    for pid, name, a, b in rep.policy_fields:
        out.append(f"{name} changed: {pid}: {a} -> {b}")
    if not rep.any_rule_change:
        out.append("no rule changed")
    for r in rep.rules_removed:
        out += [f"rule removed: {r.policy}/{r.id}", *("    " + t for t in r.text.splitlines())]
    for r in rep.rules_added:
        out += [f"rule added: {r.policy}/{r.id}", *("    " + t for t in r.text.splitlines())]
    for c in rep.rules_changed:
        out.append(f"rule changed: {c.policy}/{c.rule}")
        for name, (a, b) in c.fields.items():
            if name == "cond" and a == b and c.sets:
                out.append(f"  cond: {a}")
                out.append(f"    (same text; set{'s' if len(c.sets) > 1 else ''} {', '.join(c.sets)} changed)")
            else:
                out += [f"  {name}:", f"    old: {a}", f"    new: {b}"]
        if c.old_text != c.new_text:
            out += ["  old text:", *("    " + t for t in c.old_text.splitlines()),
                    "  new text:", *("    " + t for t in c.new_text.splitlines())]
    for s in rep.sets_removed:
        out.append(f"set removed: {s.policy}/{s.name} ({s.kind})")
    for s in rep.sets_added:
        out.append(f"set added: {s.policy}/{s.name} ({s.kind}): {', '.join(sorted(_members(s)))}")
    for sc in rep.sets_changed:
        parts = []
        if sc.kind:
            parts.append(f"kind {sc.kind[0]} -> {sc.kind[1]}")
        if sc.added:
            parts.append("added " + ", ".join(sc.added))
        if sc.removed:
            parts.append("removed " + ", ".join(sc.removed))
        out.append(f"set changed: {sc.policy}/{sc.name}: {'; '.join(parts) or 'members reordered'}")
    for pid, sid, a, b in rep.sources_changed:
        what = "added" if a is None else "removed" if b is None else "changed"
        out.append(f"source {what}: {pid}/{sid}")
        if a is not None:
            out.append(f"    old: {quote(a)}")
        if b is not None:
            out.append(f"    new: {quote(b)}")
    out.append("")
    ex = rep.example
    if ex is None:
        out.append("no difference in decisions")
    else:
        out.append("a claim decided differently:")
        out.append("history (JSON Lines):" if ex.history else "history: none")
        out += ["  " + t for t in _jsonl(ex.history)]
        out.append("claims (JSON Lines):")
        out += ["  " + t for t in _jsonl(ex.claims)]
        out.append("old:")
        out += _decision_lines(ex.old)
        out.append("new:")
        out += _decision_lines(ex.new)
    return "\n".join(out) + "\n"


def _rule_json(r: ir.Rule) -> dict:
    return {"policy": r.policy, "rule": r.id, "text": r.text}


def render_json(rep: DiffReport) -> str:
    ex = rep.example
    obj = {
        "rules_added": [_rule_json(r) for r in rep.rules_added],
        "rules_removed": [_rule_json(r) for r in rep.rules_removed],
        "rules_changed": [{"policy": c.policy, "rule": c.rule,
                           "fields": {k: {"old": a, "new": b} for k, (a, b) in c.fields.items()},
                           "sets": list(c.sets), "old_text": c.old_text, "new_text": c.new_text}
                          for c in rep.rules_changed],
        "sets_added": [{"policy": s.policy, "set": s.name, "kind": s.kind, "members": sorted(_members(s))} for s in rep.sets_added],
        "sets_removed": [{"policy": s.policy, "set": s.name, "kind": s.kind} for s in rep.sets_removed],
        "sets_changed": [{"policy": s.policy, "set": s.name, "added": list(s.added), "removed": list(s.removed)}
                         for s in rep.sets_changed],
        "sources_changed": [{"policy": p, "source": s, "old": a, "new": b} for p, s, a, b in rep.sources_changed],
        "policies_added": rep.policies_added,
        "policies_removed": rep.policies_removed,
        "policy_fields_changed": [{"policy": p, "field": f, "old": a, "new": b} for p, f, a, b in rep.policy_fields],
        "scenarios_tried": rep.scenarios_tried,
        "example": None if ex is None else {"history": ex.history, "claims": ex.claims, "old": ex.old, "new": ex.new},
    }
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
