"""A reference interpreter: decides claims by walking the lowered rule conditions directly.

It exists to be compared with the compiled checkers (tests/test_differential.py) and to explain a
decision (`payrule why`). It walks the lowered IR (`payrule.lang.ir`), as codegen does, and takes the
claim format (fields, normal forms, code ranges) from the schema (`payrule.runtime.schema`); it shares
nothing else with the generated-code path (emit, compiler, runtime, engine, loader) except the claims
reader's Claim and Line objects, which it only reads. Everything else is re-derived here from the
contract:

- section 3: history per patient and payer, decision order (date, input order, line number), what a
  session is, which sessions count (earlier days only, lines not denied, history as paid), the
  windows ("N months" is calendar months, clamped to the end of a short month; "N days"; the
  calendar year), the spacing rule, and the next eligible date;
- section 5: normal forms (codes and modifiers upper-cased; diagnoses without dots, by prefix; names
  trimmed, case-folded, runs of white space collapsed; blanks ignored), and stems (a word is a run of
  letters or digits; it matches when it starts with a stem, ignoring case).

It is written to be obviously right, not fast: sets are searched one value at a time, the lines a
condition looks at are found by scanning every line of the patient, and the next eligible date is
found by trying one day after another.

    decisions = interpret(models_by_payer(policy_set.policies), records, history)   # contract objects
    trace = trace_claim(models_by_payer(policy_set.policies), records, history, "C-4")  # for `why`
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Iterable, Sequence

from payrule.claims.readers import ClaimError
from payrule.lang import ir
from payrule.lang.ir import Placeholder, SetDef
from payrule.lang.printer import print_cond
from payrule.runtime.schema import CLAIM_FIELDS, LINE_FIELDS, LIST_FIELDS, in_code_range, normal, payer_key

__all__ = [
    "Check",
    "ClaimTrace",
    "LineTrace",
    "RuleTrace",
    "describe",
    "interpret",
    "models_by_payer",
    "months_before",
    "trace_claim",
    "window_first_day",
]

APPROVE, REVIEW, DENY = "approve", "review", "deny"
STRENGTH = {APPROVE: 0, REVIEW: 1, DENY: 2}

# ---- the claim format: the schema's normal forms ---------------------------------------------------


def normal_code(text: str) -> str:
    """Codes and modifiers compare case-insensitively (trimmed, upper-cased)."""
    return normal("code", text)


def normal_form(field_name: str, text: str) -> str:
    """A value of a line field in the field's normal form."""
    return normal(LINE_FIELDS[field_name].form or "text", text)


def words(text: str) -> list[str]:
    """The runs of letters or digits in `text`, case-folded."""
    out, current = [], ""
    for ch in text:
        if ch.isalnum():
            current += ch
        else:
            if current:
                out.append(current.casefold())
            current = ""
    if current:
        out.append(current.casefold())
    return out


def stem_matches(stem: str, written: str) -> str | None:
    """The words of `written` a stem matches, or None: a one-word stem matches a word that starts with
    it; a stem of several words matches as many words in a row, each starting with its stem word."""
    parts = words(stem)
    ws = words(written)
    for i in range(len(ws) - len(parts) + 1):
        if parts and all(ws[i + k].startswith(parts[k]) for k in range(len(parts))):
            return " ".join(ws[i:i + len(parts)])
    return None


def set_holds_code(s: SetDef, code: str) -> bool:
    """Whether a code set holds a code (or a modifier: code sets match modifiers exactly)."""
    code = normal_code(code)
    for member in s.values:
        if normal_code(member) == code:
            return True
    for lo, hi in s.ranges:
        if in_code_range(code, normal_code(lo), normal_code(hi)):
            return True
    return False


# ---- dates, from contract section 3 ---------------------------------------------------------------


def months_before(d: date, months: int) -> date | None:
    """`d` minus `months` calendar months; a day past the end of the month becomes its last day
    (2025-03-15 minus 12 months is 2024-03-15; 2024-02-29 minus 12 months is 2023-02-28). None when
    that is before 0001-01-01, the first day there is."""
    years_back, month = divmod(d.month - 1 - months, 12)
    year, month = d.year + years_back, month + 1
    if year < 1:
        return None
    last_day = calendar.monthrange(year, month)[1]
    return date(year, month, min(d.day, last_day))


def in_window(p: date, d: date, window: ir.Window) -> bool:
    """Whether an earlier session on day `p` counts for a line on day `d` (p < d is required). A window
    reaching back before 0001-01-01 holds every earlier day."""
    if not p < d:
        return False
    if window.unit == "calendar year":
        return p.year == d.year
    assert window.size is not None
    if window.unit == "days":
        return p.toordinal() > d.toordinal() - window.size
    floor = months_before(d, window.size)
    return floor is None or p > floor


def window_first_day(d: date, window: ir.Window) -> date:
    """The earliest day whose session counts for a line on day `d`."""
    if window.unit == "calendar year":
        return date(d.year, 1, 1)
    assert window.size is not None
    if window.unit == "days":
        return date.fromordinal(max(d.toordinal() - window.size + 1, 1))
    floor = months_before(d, window.size)
    return date.min if floor is None else floor + timedelta(days=1)


def day_after(d: date) -> date | None:
    """The next day, or None after 9999-12-31."""
    return d + timedelta(days=1) if d < date.max else None


def first_day_when(start: date, ok) -> date | None:
    """The first day from `start` on for which `ok(day)` holds, trying one day after another; None
    when no day up to 9999-12-31 does."""
    day: date | None = start
    while day is not None and not ok(day):
        day = day_after(day)
    return day


def iso_or_none(d: date | None) -> str:
    return d.isoformat() if d is not None else "none"


def window_words(window: ir.Window) -> str:
    if window.unit == "calendar year":
        return "the calendar year"
    assert window.size is not None
    n = window.size
    return f"{n} {window.unit if n != 1 else window.unit[:-1]}"


def ordinal_words(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, ..., 21st, 22nd, ..., 111th."""
    if n % 100 in (11, 12, 13):
        return f"{n}th"
    last = n % 10
    if last == 1:
        return f"{n}st"
    if last == 2:
        return f"{n}nd"
    if last == 3:
        return f"{n}rd"
    return f"{n}th"


# ---- the lines the interpreter looks at ----------------------------------------------------------


@dataclass(eq=False)
class Service:
    """One claim line (or history line) as the interpreter sees it."""

    claim: object  # the claims reader's Claim
    line: object  # the claims reader's Line
    no: int
    day: date
    code: str  # normal form
    code_as_written: str
    units: int
    values: dict[str, list[tuple[str, str]]]  # field -> [(as written, normal form)], blanks dropped
    from_history: bool
    order: int  # the claim's position in its input
    decision: str | None = None
    reasons: list[tuple[ir.Rule, str]] = field(default_factory=list)

    @classmethod
    def read(cls, claim, line, from_history: bool) -> "Service":
        values: dict[str, list[tuple[str, str]]] = {}
        for name in LIST_FIELDS:
            kept = []
            for written in line.raw.get(name, ()):
                n = normal_form(name, written)
                if n:  # a blank value is ignored
                    kept.append((written, n))
            values[name] = kept
        return cls(
            claim=claim, line=line, no=line.no, day=date.fromordinal(line.date),
            code=normal_code(line.code_raw), code_as_written=line.code_raw, units=line.units,
            values=values, from_history=from_history, order=claim.order,
        )

    @property
    def claim_id(self) -> str:
        return self.claim.claim_id

    def normals(self, field_name: str) -> list[str]:
        """The field's distinct values in normal form, in the order written."""
        out: list[str] = []
        for _, n in self.values[field_name]:
            if n not in out:
                out.append(n)
        return out

    def field_values(self, f: ir.FieldRef) -> list[tuple[str, str]]:
        """Any field a condition reads, as [(as written, normal form)]: a list field's values, a text
        field's one value (or none), or a field the schema does not know (each value in the name form)."""
        if f.extra:
            holder = self.line.extra if f.where == "line" else self.claim.extra
            v = holder.get(f.name)
            items = v if isinstance(v, list) else [v]
            out: list[tuple[str, str]] = []
            for item in items:
                if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                    continue
                n = normal(f.form or "name", str(item))
                if n and n not in [o[1] for o in out]:
                    out.append((n, n))
            return out
        if f.is_list:
            return self.values[f.name]
        if f.where == "claim":
            value = {"claim_id": self.claim.claim_id, "patient_id": self.claim.patient_id,
                     "payer": payer_key(self.claim.payer), "prior_auth": self.claim.prior_auth}[f.name]
        else:
            value = getattr(self.line, f.name)
        if value is None:
            return []
        n = normal(f.form or "text", value)
        return [(value, n)] if n else []

    def key(self, f: ir.FieldRef) -> str | None:
        """The value a line is grouped by (`at the same FIELD`), or None."""
        vs = self.field_values(f)
        return vs[0][1] if vs else None

    def sort_key(self) -> tuple:
        """Section 3: by date of service, then by order in the input, then by line number."""
        return (self.day, self.order, self.no)

    def label(self) -> str:
        """`claim C1 line 2 (12345 on 2025-03-01)`; `history claim H1 ...` for history."""
        return f"{self.short_label()} ({self.code} on {self.day.isoformat()})"

    def short_label(self) -> str:
        where = "history claim" if self.from_history else "claim"
        return f"{where} {self.claim_id} line {self.no}"


# ---- evaluating one condition --------------------------------------------------------------------


@dataclass
class Check:
    """One condition evaluated on one line: whether it held, the facts it used (in words, for `why`),
    the message placeholders it provides, and its sub-conditions."""

    cond: ir.Cond
    held: bool
    facts: list[str] = field(default_factory=list)
    provides: dict[str, str] = field(default_factory=dict)
    parts: list["Check"] = field(default_factory=list)

    @property
    def text(self) -> str:
        return print_cond(self.cond)


class Patient:
    """Everything the rules of one payer's policy see for one patient: the history lines, every claim
    line, and the decisions made so far."""

    def __init__(self, versions: list[ir.Policy], claims: list, history_claims: list):
        self.versions = versions  # the payer's policy, or its versions, each in force on its own dates
        self.model = versions[0]
        self.claims = claims
        self.history = [Service.read(c, ln, True) for c in history_claims for ln in c.lines]
        self.history.sort(key=Service.sort_key)
        self.services = [Service.read(c, ln, False) for c in claims for ln in c.lines]
        self.services.sort(key=Service.sort_key)
        self.decided: list[Service] = []

    def model_for(self, svc: Service) -> ir.Policy:
        """The version of the payer's policy in force on the line's date of service."""
        for m in self.versions:
            if m.in_force(svc.day):
                return m
        raise LookupError(f"no version in force on {svc.day}")  # pragma: no cover - the run routes such claims away

    def in_code_set(self, svc: Service, s: SetDef) -> bool:
        return set_holds_code(s, svc.code)

    # What counts as a session of a code set before day d: history lines, and claim lines already
    # decided and not denied. (Every line of an earlier day is decided before a line of day d.)
    # With `by` (`at the same FIELD`), only lines whose FIELD has the value `value` count.
    def session_days(self, s: SetDef, before: date, by: ir.FieldRef | None = None,
                     value: str | None = None) -> dict[date, list[Service]]:
        days: dict[date, list[Service]] = {}
        for h in self.history:
            if h.day < before and self.in_code_set(h, s) and (by is None or h.key(by) == value):
                days.setdefault(h.day, []).append(h)
        for d in self.decided:
            if (d.day < before and d.decision != DENY and self.in_code_set(d, s)
                    and (by is None or d.key(by) == value)):
                days.setdefault(d.day, []).append(d)
        return dict(sorted(days.items()))

    def _grouping(self, cond: ir.SessionLimit | ir.Spacing, svc: Service) -> tuple[str | None, str]:
        """This line's value of the grouping field, and the words for it (`at the same site (neck)`)."""
        if cond.by is None:
            return None, ""
        value = svc.key(cond.by)
        return value, f" at the same {cond.by.word} ({value if value is not None else 'none on this line'})"

    def same_day_lines(self, svc: Service, the_set: SetDef, earlier: bool) -> list[Service]:
        """Other lines that day with a code in the set: history first, then claim lines in decision
        order. With `earlier`, only claim lines already decided and not denied."""
        out = [h for h in self.history if h.day == svc.day and self.in_code_set(h, the_set)]
        pool = [s for s in self.decided if s.decision != DENY] if earlier else self.services
        out += [s for s in pool if s is not svc and s.day == svc.day and self.in_code_set(s, the_set)]
        return out

    # -- conditions ----------------------------------------------------------------------------
    def evaluate(self, cond: ir.Cond, svc: Service) -> Check:
        if isinstance(cond, ir.And):
            parts = [self.evaluate(c, svc) for c in cond.items]
            return Check(cond, all(p.held for p in parts), parts=parts)
        if isinstance(cond, ir.Or):
            parts = [self.evaluate(c, svc) for c in cond.items]
            return Check(cond, any(p.held for p in parts), parts=parts)
        if isinstance(cond, ir.Not):
            inner = self.evaluate(cond.item, svc)
            return Check(cond, not inner.held, parts=[inner])
        if isinstance(cond, ir.CodeIn):
            return self._code_in(cond, svc)
        if isinstance(cond, ir.CodeIs):
            wanted = cond.code
            held = svc.code == wanted
            return Check(cond, held, [f"the line's code is {svc.code}" + ("" if held else f", not {wanted}")])
        if isinstance(cond, ir.Has):
            return self._has(cond, svc)
        if isinstance(cond, ir.Every):
            return self._every(cond, svc)
        if isinstance(cond, ir.Compare):
            return self._compare(cond, svc)
        if isinstance(cond, ir.SameDay):
            return self._same_day(cond, svc)
        if isinstance(cond, ir.SessionLimit):
            return self._session_limit(cond, svc)
        if isinstance(cond, ir.Spacing):
            return self._spacing(cond, svc)
        raise TypeError(f"unknown condition {cond!r}")  # pragma: no cover

    def _code_in(self, cond: ir.CodeIn, svc: Service) -> Check:
        inside = self.in_code_set(svc, cond.set)
        verb = "is in" if inside else "is not in"
        held = inside != cond.negated
        return Check(cond, held, [f"{svc.code} {verb} {cond.set.name}"])

    def _has(self, cond: ir.Has, svc: Service) -> Check:
        fname = cond.field.name
        values = svc.field_values(cond.field)
        listed = [w for w, _ in values]
        shown = ", ".join(listed) if listed else "none documented"
        facts = [f"{fname}: {shown}"]
        provides: dict[str, str] = {}
        names = " or ".join(s.name for s in cond.sets)
        if cond.set is None and cond.value is None:
            found = bool(listed)
        elif cond.value is not None:
            wanted = normal(cond.field.form or "text", cond.value.text)
            normals = [n for _, n in values]
            if cond.field.form == "diagnosis":
                hits = [n for n in normals if n.startswith(wanted)]
            else:
                hits = [n for n in normals if n == wanted]
            found = bool(hits)
            facts.append(f"{hits[0]} matches {cond.value.text}" if hits else f"none matches {cond.value.text}")
        elif cond.outside:
            outside = [(w, n) for w, n in values if self._member(w, n, cond.sets) is None]
            found = bool(outside)
            if outside:
                provides["matched"] = outside[0][0].strip()
                facts.append(f"`{outside[0][0].strip()}` is in none of {names}")
            else:
                facts.append(f"each is in {names}")
        else:
            match = self._first_in_sets(values, cond.sets)
            found = match is not None
            if match is not None:
                provides["matched"] = match[0]
                facts.append(f"`{match[0]}` matches {match[2]}: {match[1]}")
            else:
                facts.append(f"none matches {names}")
        return Check(cond, found != cond.negated, facts, provides)

    def _every(self, cond: ir.Every, svc: Service) -> Check:
        values = svc.field_values(cond.field)
        names = " or ".join(s.name for s in cond.sets)
        facts = [f"{cond.field.name}: " + (", ".join(w for w, _ in values) if values else "none documented")]
        outside = [w for w, n in values if self._member(w, n, cond.sets) is None]
        held = bool(values) and not outside
        if not values:
            facts.append("no value, so not every value is in " + names)
        elif outside:
            facts.append(f"`{outside[0].strip()}` is in none of {names}")
        else:
            facts.append(f"each is in {names}")
        return Check(cond, held, facts, {"matched": values[0][0].strip()} if held else {})

    def _member(self, written: str, n: str, sets: tuple[SetDef, ...]) -> tuple[str, str] | None:
        """Why a value is in one of the sets (the reason, the set's name), or None."""
        for s in sets:
            if s.kind == "stems":
                for st in s.values:
                    hit = stem_matches(st, written)
                    if hit is not None:
                        what = f"words `{hit}` start" if " " in st else f"word `{hit}` starts"
                        return f"{what} with stem `{st}`", s.name
            elif s.kind == "diagnoses":
                for prefix in s.values:
                    if n.startswith(normal("diagnosis", prefix)):
                        return f"starts with {normal('diagnosis', prefix)}", s.name
            elif s.kind == "names":
                if any(n == normal("name", m) for m in s.values):
                    return "listed", s.name
            elif set_holds_code(s, n):
                return "listed", s.name
        return None

    def _first_in_sets(self, values: list[tuple[str, str]], sets: tuple[SetDef, ...]) -> tuple[str, str, str] | None:
        """The first of the line's values a set matches, why, and which set: stems give the value as
        written, the other kinds its normal form."""
        if all(s.kind == "stems" for s in sets):
            for written, n in values:
                why = self._member(written, n, sets)
                if why is not None:
                    return written.strip(), why[0], why[1]
            return None
        seen: list[str] = []
        for written, n in values:
            if n in seen:
                continue
            seen.append(n)
            why = self._member(written, n, sets)
            if why is not None:
                stem = all(s.kind == "stems" for s in sets if s.name == why[1])
                return (written.strip() if stem else n), why[0], why[1]
        return None

    def _compare(self, cond: ir.Compare, svc: Service) -> Check:
        limit = cond.value
        if cond.distinct:
            fname = cond.field.name
            distinct = svc.normals(fname)
            value = len(distinct)
            schema = LINE_FIELDS.get(fname) or CLAIM_FIELDS.get(fname)
            noun = schema.aliases[0] if value == 1 and schema is not None and schema.aliases else fname  # 1 distinct muscle
            facts = [f"{value} distinct {noun}" + (": " + "; ".join(distinct) if distinct else "")]
            provides = {f"distinct_{fname}": str(value)}
        else:
            value = svc.units
            facts = [f"units: {value}"]
            provides = {}
        held = {
            ">": value > limit, ">=": value >= limit, "<": value < limit,
            "<=": value <= limit, "=": value == limit, "!=": value != limit,
        }[cond.op]
        return Check(cond, held, facts, provides)

    def _same_day(self, cond: ir.SameDay, svc: Service) -> Check:
        others = self.same_day_lines(svc, cond.set, cond.earlier)
        what = "earlier lines not denied" if cond.earlier else "other lines"
        facts = [f"{what} that day in {cond.set.name}: " + ("; ".join(o.label() for o in others) if others else "none")]
        chosen, shared = None, ""
        for o in others:
            if cond.sharing is not None:
                fname = cond.sharing.name
                theirs = o.normals(fname)
                common = [v for v in svc.normals(fname) if v in theirs]
                if common:
                    chosen, shared = o, common[0]
                    facts.append(f"shares {fname} `{shared}` with {o.label()}")
                    break
            elif cond.lacking is not None:
                fname = cond.lacking.name
                if not o.values[fname]:
                    chosen = o
                    facts.append(f"{o.label()} documents no {fname}")
                    break
            else:
                chosen = o
                break
        if others and chosen is None:
            if cond.sharing is not None:
                facts.append(f"none shares a {cond.sharing.name} value with this line")
            else:
                facts.append(f"each documents {cond.lacking.name}")  # type: ignore[union-attr]
        provides: dict[str, str] = {}
        if chosen is not None:
            provides = {"other_code": chosen.code, "other_line": str(chosen.no),
                        "other_claim": chosen.claim_id, "other_date": chosen.day.isoformat()}
            if cond.sharing is not None:
                provides["shared"] = shared
        return Check(cond, chosen is not None, facts, provides)

    def _session_limit(self, cond: ir.SessionLimit, svc: Service) -> Check:
        limit, d, window = cond.count, svc.day, cond.window
        value, where = self._grouping(cond, svc)
        if cond.by is not None and value is None:
            return Check(cond, False, [f"this line has no {cond.by.word}: it matches no session{where}"])
        sessions = self.session_days(cond.set, d, cond.by, value)
        counted = [p for p in sessions if in_window(p, d, window)]
        first = window_first_day(d, window)
        if d > date.min:
            facts = [f"window ({window_words(window)} before {d.isoformat()}): {first.isoformat()} to "
                     f"{(d - timedelta(days=1)).isoformat()}"]
        else:
            facts = [f"window ({window_words(window)} before {d.isoformat()}): no earlier day"]
        if counted:
            facts.append(f"{len(counted)} {cond.set.name} session(s){where} counted: " + "; ".join(
                f"{p.isoformat()} ({', '.join(s.short_label() for s in sessions[p])})" for p in counted))
        else:
            facts.append(f"no {cond.set.name} session{where} counted")
        n = len(counted) + 1
        held = n > limit
        facts.append(f"this line's session would be the {ordinal_words(n)}; the limit is {limit}")
        provides: dict[str, str] = {}
        if held:
            start = day_after(d)
            nxt = None if start is None else first_day_when(
                start, lambda q: sum(1 for p in counted if in_window(p, q, window)) < limit)
            facts.append(f"next eligible date: {iso_or_none(nxt)}")
            provides = {"n": str(n), "nth": ordinal_words(n), "limit": str(limit), "window": window_words(window),
                        "sessions": ", ".join(p.isoformat() for p in counted), "next_date": iso_or_none(nxt),
                        "year": str(d.year)}
        return Check(cond, held, facts, provides)

    def _spacing(self, cond: ir.Spacing, svc: Service) -> Check:
        value, where = self._grouping(cond, svc)
        if cond.by is not None and value is None:
            return Check(cond, False, [f"this line has no {cond.by.word}: it matches no session{where}"])
        sessions = self.session_days(cond.set, svc.day, cond.by, value)
        if not sessions:
            return Check(cond, False, [f"no earlier {cond.set.name} session{where}"])
        last = max(sessions)
        days = (svc.day - last).days
        need = cond.days
        nxt: date | None
        if cond.unit == "days":
            nxt = date.fromordinal(last.toordinal() + need) if last.toordinal() + need <= date.max.toordinal() else None
            held = days < need
            required = f"at least {need} required"
        else:  # calendar months: apart enough when last <= d minus N months
            floor = months_before(svc.day, need)
            held = floor is None or last > floor

            def apart(q: date) -> bool:
                f = months_before(q, need)
                return f is not None and last <= f

            nxt = first_day_when(last, apart)
            required = (f"at least {need} month{'s' if need != 1 else ''} required (last session on or before "
                        f"{iso_or_none(floor)})")
        facts = [f"last {cond.set.name} session{where}: {last.isoformat()} ({', '.join(s.short_label() for s in sessions[last])})",
                 f"{days} days before this line; {required}",
                 f"next eligible date: {iso_or_none(nxt)}"]
        provides = {"days": str(days), "last_date": last.isoformat(), "min_days": str(need), "next_date": iso_or_none(nxt)}
        return Check(cond, held, facts, provides)

    # -- rules ---------------------------------------------------------------------------------
    def judge(self, rule: ir.Rule, svc: Service) -> tuple[bool, Check, str | None]:
        """Whether the rule fires on the line: in force on its date of service, its condition holds and
        its `unless` does not. Also the condition's evaluation, and why it did not fire when that was
        its dates or its `unless` (for `why`)."""
        check = self.evaluate(rule.cond, svc)
        if not rule.in_force(svc.day):
            dates = " ".join(p for p in (f"from {rule.start.isoformat()}" if rule.start else "",
                                         f"until {rule.end.isoformat()}" if rule.end else "") if p)
            return False, check, f"not in force on {svc.day.isoformat()} (in force {dates})"
        if not check.held or rule.unless is None:
            return check.held, check, None
        exception = self.evaluate(rule.unless, svc)
        if exception.held:
            return False, check, f"unless {print_cond(rule.unless)}: holds ({'; '.join(_all_facts(exception))})"
        return True, check, None

    def message(self, rule: ir.Rule, check: Check, svc: Service) -> str:
        """The reason's message: the rule's text with its placeholders filled in."""
        if not rule.message:
            return f"rule {rule.id} ({rule.source})"
        facts: dict[str, str] = {
            "code": svc.code, "date": svc.day.isoformat(), "line": str(svc.no), "units": str(svc.units),
            "claim_id": svc.claim_id, "patient_id": svc.claim.patient_id, "payer": svc.claim.payer,
            "policy": rule.policy, "rule": rule.id,
            "site": svc.key(ir.FieldRef("site", "site", "line", "name", False)) or "no site",
            "start_date": rule.start.isoformat() if rule.start else "",
            "end_date": rule.end.isoformat() if rule.end else "",
        }
        top = check.parts if isinstance(check.cond, ir.And) else [check]
        for part in top:  # the first top-level condition to provide a placeholder gives it
            for k, v in part.provides.items():
                facts.setdefault(k, v)
        out = []
        for seg in rule.message:
            out.append(facts[seg.name] if isinstance(seg, Placeholder) else seg)
        return "".join(out)


# ---- tracing and deciding ------------------------------------------------------------------------


@dataclass
class RuleTrace:
    """One rule on one line: `fired`, `not fired` or `not applicable` (a code test at the top of
    its condition failed), with the evaluation and, when it fired, the message."""

    rule: ir.Rule
    status: str
    check: Check
    message: str | None = None
    via_line: int | None = None  # a claim rule: the line whose facts made it fire
    note: str | None = None  # why a rule whose condition held did not fire: its dates or its `unless`


@dataclass
class LineTrace:
    line: int
    code: str
    date: str
    decision: str
    reasons: list[tuple[ir.Rule, str]]
    rules: list[RuleTrace]


@dataclass
class ClaimTrace:
    claim_id: str
    patient_id: str
    payer: str
    policy: ir.Policy
    decision: str
    lines: list[LineTrace]


def _all_facts(check: Check) -> list[str]:
    out = list(check.facts)
    for p in check.parts:
        out += _all_facts(p)
    return out


def _applicable(check: Check) -> bool:
    top = check.parts if isinstance(check.cond, ir.And) else [check]
    return all(p.held for p in top if isinstance(p.cond, (ir.CodeIn, ir.CodeIs)))


def _status(check: Check) -> str:
    if check.held:
        return "fired"
    return "not fired" if _applicable(check) else "not applicable"


def models_by_payer(models: dict[str, ir.Policy] | Iterable[ir.Policy]) -> dict[str, ir.Policy]:
    """Payer policies keyed by payer id (policies that are only included are left out); the versions of a
    payer's policy are keyed by id and start date (`acme@2025-01-01`)."""
    values = [m for m in (models.values() if isinstance(models, dict) else models) if m.payer is not None]
    versioned = {m.payer for m in values if m.start is not None or m.end is not None}
    return {(f"{m.payer}@{m.start.isoformat() if m.start else ''}" if m.payer in versioned else m.payer): m
            for m in values if m.payer is not None}


def _versions_for(models: dict[str, ir.Policy], payer: str) -> list[ir.Policy]:
    """The policies whose payer id or one of whose aliases is the claim's payer (contract section 1): one,
    or the versions of the payer's policy by date, or none."""
    wanted = payer_key(payer)
    found = [m for m in models.values() if any(payer_key(n) == wanted for n in m.payer_names)]
    return sorted(found, key=lambda m: m.start or date.min)


def _policy_for(models: dict[str, ir.Policy], payer: str) -> ir.Policy | None:
    found = _versions_for(models, payer)
    return found[0] if found else None


def _no_version(versions: list[ir.Policy], rec) -> str | None:
    """The error of a claim with a line dated when no version of its payer's policy is in force."""
    for ln in rec.lines:
        day = date.fromordinal(ln.date)
        if not any(v.in_force(day) for v in versions):
            return f"no policy for payer {rec.payer!r} in force on {day.isoformat()} (line {ln.no})"
    return None


class _Run:
    """One decision run over every record: groups claims and history by policy and patient, decides each
    group's lines in service order, and keeps the traces of the watched claim."""

    def __init__(self, models: dict[str, ir.Policy], records: Sequence, history: Iterable, watch: str | None = None):
        self.models = models
        self.records = list(records)
        self.watch = watch
        self.traces: dict[tuple[int, int], LineTrace] = {}  # (id(claim), line) -> trace of the watched claim
        # who is whose: (policy id, patient) -> claims; history kept the same way
        # who is whose: (payer, patient) -> claims (an alias's claims are its payer's); history the same way
        self.groups: dict[tuple[str, str], list] = {}
        self.errors: dict[int, str] = {}  # id(claim) -> why it cannot be decided
        self.versions: dict[str, list[ir.Policy]] = {}
        for rec in self.records:
            if isinstance(rec, ClaimError):
                continue
            found = _versions_for(models, rec.payer)
            if not found:
                continue
            why = _no_version(found, rec)
            if why is not None:
                self.errors[id(rec)] = why
                continue
            self.versions[found[0].payer or ""] = found
            self.groups.setdefault((found[0].payer or "", rec.patient_id), []).append(rec)
        self.past: dict[tuple[str, str], list] = {}
        for h in history:
            found = _versions_for(models, h.payer)
            if found:
                self.past.setdefault((found[0].payer or "", h.patient_id), []).append(h)
        self.services: dict[tuple[int, int], Service] = {}
        self.claim_hits: dict[int, dict[str, tuple[str, int]]] = {}

    def run(self) -> None:
        for (payer, patient_id), claims in self.groups.items():
            self._decide_patient(Patient(self.versions[payer], claims, self.past.get((payer, patient_id), [])))

    def _decide_patient(self, patient: Patient) -> None:
        for svc in patient.services:
            self.services[(id(svc.claim), svc.no)] = svc
        # Claim rules look only at the claim's own lines and same-day lines, never at decisions: a
        # claim rule fires when its condition holds on any line of the claim (the first such line
        # in service order - date of service, then line number - gives the message), and then holds
        # for every line of the claim.
        # A line is judged by the rules of the version in force on its date (one version for most payers).
        for claim in patient.claims:
            hits: dict[tuple[str, str], tuple[str, int]] = {}
            in_service_order = sorted((self.services[(id(claim), ln.no)] for ln in claim.lines),
                                      key=lambda s: (s.day, s.no))
            for svc in in_service_order:
                for rule in patient.model_for(svc).rules:
                    if rule.scope != "claim" or (rule.policy, rule.id) in hits:
                        continue
                    fires, check, _ = patient.judge(rule, svc)
                    if fires:
                        hits[(rule.policy, rule.id)] = (patient.message(rule, check, svc), svc.no)
            self.claim_hits[id(claim)] = hits
        for svc in patient.services:
            hits = self.claim_hits[id(svc.claim)]
            reasons: list[tuple[ir.Rule, str]] = []
            traces: list[RuleTrace] = []
            for rule in patient.model_for(svc).rules:
                if rule.scope == "claim":
                    _, check, note = patient.judge(rule, svc)
                    if (rule.policy, rule.id) in hits:
                        msg, via = hits[(rule.policy, rule.id)]
                        reasons.append((rule, msg))
                        traces.append(RuleTrace(rule, "fired", check, msg, via))
                    else:
                        traces.append(RuleTrace(rule, "not fired" if note else _status(check), check, note=note))
                    continue
                fires, check, note = patient.judge(rule, svc)
                if fires:
                    msg = patient.message(rule, check, svc)
                    reasons.append((rule, msg))
                    traces.append(RuleTrace(rule, "fired", check, msg))
                else:
                    status = ("not in force" if note.startswith("not in force") else "not fired") if note else _status(check)
                    traces.append(RuleTrace(rule, status, check, note=note))
            decision = APPROVE
            for rule, _ in reasons:
                if STRENGTH[rule.action] > STRENGTH[decision]:
                    decision = rule.action
            svc.decision = decision
            svc.reasons = reasons
            patient.decided.append(svc)
            if svc.claim_id == self.watch:
                self.traces[(id(svc.claim), svc.no)] = LineTrace(svc.no, svc.code_as_written, svc.day.isoformat(),
                                                                 decision, reasons, traces)

    def output(self) -> list[dict]:
        out = []
        for rec in self.records:
            if isinstance(rec, ClaimError):
                out.append(rec.as_json())
                continue
            if _policy_for(self.models, rec.payer) is None:
                out.append({"claim_id": rec.claim_id, "error": f"no policy for payer {rec.payer!r}", "input_line": rec.input_line})
                continue
            if id(rec) in self.errors:
                out.append({"claim_id": rec.claim_id, "error": self.errors[id(rec)], "input_line": rec.input_line})
                continue
            lines = []
            for ln in rec.lines:
                svc = self.services[(id(rec), ln.no)]
                lines.append({
                    "line": svc.no,
                    "code": svc.code_as_written,
                    "decision": svc.decision,
                    "reasons": [_reason(r, m) for r, m in svc.reasons],
                })
            worst = max((ln["decision"] for ln in lines), key=STRENGTH.__getitem__)
            out.append({"claim_id": rec.claim_id, "decision": worst, "lines": lines})
        return out


def _reason(r: ir.Rule, message: str) -> dict:
    out = {"policy": r.policy, "rule": r.id, "outcome": r.action, "message": message, "source": r.source}
    if r.carc is not None:
        out["carc"] = r.carc
    if r.rarc is not None:
        out["rarc"] = r.rarc
    return out


def interpret(models_by_payer: dict[str, ir.Policy], records: Sequence, history: Iterable = ()) -> list[dict]:
    """Decide every readable claim; one contract output object per record, in input order (the same
    objects `engine.decision_json` gives). `records` are the claims reader's Claims and ClaimErrors."""
    run = _Run(models_by_payer, records, history)
    run.run()
    return run.output()


def trace_claim(models_by_payer: dict[str, ir.Policy], records: Sequence, history: Iterable, claim_id: str) -> ClaimTrace | None:
    """Decide every claim (so that history and order are right) and return, for the claim `claim_id`,
    every rule of its payer's policy evaluated on each of its lines with the facts it used. None when
    no readable claim has that id or its payer has no policy."""
    run = _Run(models_by_payer, records, history, watch=claim_id)
    run.run()
    for rec in run.records:
        if isinstance(rec, ClaimError) or rec.claim_id != claim_id:
            continue
        model = _policy_for(models_by_payer, rec.payer)
        if model is None or id(rec) in run.errors:
            return None
        first = min(rec.lines, key=lambda ln: (ln.date, ln.no))
        model = next((v for v in _versions_for(models_by_payer, rec.payer) if v.in_force(date.fromordinal(first.date))), model)
        lines = [run.traces[(id(rec), ln.no)] for ln in rec.lines]
        worst = max((lt.decision for lt in lines), key=STRENGTH.__getitem__)
        return ClaimTrace(rec.claim_id, rec.patient_id, rec.payer, model, worst, lines)
    return None


# ---- conditions back to text ---------------------------------------------------------------------


def describe(cond: ir.Cond) -> str:
    """A condition in the policy language (one line, canonical spelling): the one printer's."""
    return print_cond(cond)
