"""The small runtime that generated checkers import: claim lines, the per-patient state the rules look
back on, and the helpers behind each condition. Standard library only.

Dates are proleptic ordinals (`date.toordinal()`) so that windows are integer comparisons.
"""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right, insort
from calendar import monthrange
from datetime import date
from functools import lru_cache
from types import MappingProxyType
from typing import Callable, NamedTuple

from payrule.runtime.schema import CLAIM_FIELDS, LINE_FIELDS, LIST_FIELDS, in_code_range, normal
from payrule.runtime.schema import payer_key as payer_key

__all__ = [
    "API_VERSION",
    "Claim",
    "CodeSet",
    "Group",
    "Line",
    "Rule",
    "every_in",
    "extra_values",
    "first_in",
    "first_in_any",
    "first_outside",
    "first_prefix",
    "first_stem",
    "one",
    "iso",
    "iso_list",
    "nth",
    "payer_key",
    "same_day_hit",
    "session_limit",
    "spacing",
]

API_VERSION = 3  # 2: rules carry carc/rarc; modules name ALIASES, VERSION and GROUPED_SETS. 3: and PLANS
DENY, REVIEW, APPROVE = "deny", "review", "approve"
RANK = {APPROVE: 0, REVIEW: 1, DENY: 2}


_NO_EXTRA = MappingProxyType({})  # shared and read-only: most claims have no fields beyond the contract's


class Claim:
    """A readable claim. `order` is its position in the input; history claims have `history=True`.
    `prior_auth` is the claim's prior authorization number (trimmed), or None."""

    __slots__ = ("claim_id", "patient_id", "payer", "payer_key", "lines", "input_line", "order", "history", "extra",
                 "prior_auth")

    def __init__(self, claim_id, patient_id, payer, lines, input_line=0, order=0, history=False, extra=None,
                 prior_auth=None, key=None):
        self.claim_id = claim_id
        self.patient_id = patient_id
        self.payer = payer
        self.payer_key = payer_key(payer) if key is None else key
        self.lines = lines
        self.input_line = input_line
        self.order = order
        self.history = history
        self.extra = extra or _NO_EXTRA
        self.prior_auth = prior_auth


# A line's text fields (contract v2: `site`), kept in their normal form or None; Line and new_line set each.
TEXT_FIELDS = tuple(f.name for f in LINE_FIELDS.values() if f.kind == "text")
assert TEXT_FIELDS == ("site",), TEXT_FIELDS
assert "prior_auth" in CLAIM_FIELDS and "prior_auth" in Claim.__slots__


class Line:
    """One service line.

    Each list field (`ln.muscles`, ...) holds the field's values in the contract's normal form,
    distinct, blanks dropped; `ln.raw_muscles` (...) the same values as written (trimmed).
    `ln.site` is the site in normal form, or None. The fields are those of `payrule.runtime.schema`:
    `line` is kept as `no`, `date` as an ordinal, `code` upper-cased (and as written in `code_raw`).
    `decision` and `reasons` are filled in as lines are decided.
    """

    __slots__ = ("claim", "no", "date", "code", "code_raw", "units", *LIST_FIELDS,
                 *(f"raw_{f}" for f in LIST_FIELDS), *TEXT_FIELDS, "extra", "decision", "reasons")

    def __init__(self, claim, no, date_ord, code, units, lists, raw, extra=None, code_raw=None, site=None):
        self.claim = claim
        self.no = no
        self.date = date_ord
        self.code = code
        self.code_raw = code_raw if code_raw is not None else code
        self.units = units
        for f in LIST_FIELDS:
            setattr(self, f, lists.get(f, ()))
            setattr(self, "raw_" + f, raw.get(f, ()))
        self.site = site
        self.extra = extra or _NO_EXTRA
        self.decision = None
        self.reasons = ()

    @property
    def raw(self) -> dict:
        """The list fields as written, by name (a copy)."""
        return {f: getattr(self, "raw_" + f) for f in LIST_FIELDS}

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<Line {self.claim.claim_id}#{self.no} {self.code} {iso(self.date)}>"


_FIELD_OF_SLOT = {"no": "line"}  # a slot that keeps a schema field under another name
assert {_FIELD_OF_SLOT.get(s, s) for s in Line.__slots__} >= set(LINE_FIELDS), "every line field has a Line slot"
assert LIST_FIELDS == ("modifiers", "diagnoses", "muscles", "substances"), LIST_FIELDS  # new_line's order


def new_line(claim, no, date_ord, code, units, norm, raw, code_raw, site=None):
    """A Line from normalised and raw value tuples in LIST_FIELDS order (the readers' fast path)."""
    ln = object.__new__(Line)
    ln.claim = claim
    ln.no = no
    ln.date = date_ord
    ln.code = code
    ln.code_raw = code_raw
    ln.units = units
    ln.modifiers, ln.diagnoses, ln.muscles, ln.substances = norm
    ln.raw_modifiers, ln.raw_diagnoses, ln.raw_muscles, ln.raw_substances = raw
    ln.site = site
    ln.extra = _NO_EXTRA
    ln.decision = None
    ln.reasons = ()
    return ln


class Rule(NamedTuple):
    """One compiled rule: where it comes from, what it does, and its function `fn(line, group)`,
    which returns the reason's message when the rule fires and None otherwise. `guard` is the code
    set the rule's condition starts with (`code in SET`), or None; it lets the engine skip rules
    that cannot fire on a line's code. `carc` and `rarc` are the X12 adjustment reason and remark
    codes the rule's outcome maps to, when the policy names them."""

    policy: str
    id: str
    outcome: str
    scope: str
    source: str
    fn: Callable
    guard: object
    carc: str | None = None
    rarc: str | None = None


class CodeSet:
    """Codes listed one by one plus ranges `lo..hi` (a range holds codes of the bounds' shape:
    digits where the bounds have digits, letters where they have letters: `schema.in_code_range`).
    Answers for ranges are memoised per set, for at most MEMO codes (a set is shared by every run that
    loads its module; the answers never change)."""

    __slots__ = ("codes", "ranges", "_memo")
    MEMO = 4096

    def __init__(self, codes, ranges):
        self.codes = frozenset(codes)
        self.ranges = tuple(ranges)
        self._memo: dict[str, bool] = {}

    def __contains__(self, code) -> bool:
        hit = self._memo.get(code)
        if hit is None:
            hit = code in self.codes or any(in_code_range(code, lo, hi) for lo, hi in self.ranges)
            if len(self._memo) < self.MEMO:
                self._memo[code] = hit
        return hit


# ---- value matching ----------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+")


def first_in(values, members):
    """The first value that is a member, or None."""
    for v in values:
        if v in members:
            return v
    return None


def first_prefix(values, prefixes):
    """The first value starting with one of `prefixes` (a tuple), or None."""
    for v in values:
        if v.startswith(prefixes):
            return v
    return None


@lru_cache(maxsize=1024)
def _stem_parts(stems: tuple) -> tuple[tuple, tuple]:
    """One-word stems (for one `startswith`), and stems of several words, as tuples of words."""
    return (tuple(s for s in stems if " " not in s), tuple(tuple(s.split()) for s in stems if " " in s))


@lru_cache(maxsize=65536)
def _stem_hit(stems: tuple, value: str) -> bool:
    words = _WORD.findall(value.casefold())
    single, multi = _stem_parts(stems)
    if single and any(w.startswith(single) for w in words):
        return True
    for parts in multi:
        n = len(parts)
        for i in range(len(words) - n + 1):
            if all(words[i + k].startswith(parts[k]) for k in range(n)):
                return True
    return False


def first_stem(values, stems):
    """The first value one of whose words (runs of letters or digits) starts with a stem, or None; a stem
    of several words matches as many words in a row. `stems` are case-folded; matching ignores case.
    Answers are memoised (a bounded cache)."""
    for v in values:
        if _stem_hit(stems, v):
            return v
    return None


# Set tests for unions `(A or B)` and `every`/`not in`: (how, set) pairs, how one of these.
IN, PREFIX, STEM = 0, 1, 2


def _holds(tests, norm: str, raw: str) -> bool:
    for how, members in tests:
        if how == IN:
            if norm in members:
                return True
        elif how == PREFIX:
            if norm.startswith(members):
                return True
        elif _stem_hit(members, raw):
            return True
    return False


# These take a field's values as written (`ln.raw_substances`: every non-blank value, in order) and the
# field's normal form, in which names, codes and diagnoses compare (stems match the written words).

def first_in_any(raws, form: str, tests):
    """The first value (as written) that one of the set tests holds for, or None."""
    for r in raws:
        if _holds(tests, normal(form, r), r):
            return r
    return None


def first_outside(raws, form: str, tests):
    """The first value (as written) that no set test holds for, or None."""
    for r in raws:
        if not _holds(tests, normal(form, r), r):
            return r
    return None


def every_in(raws, form: str, tests):
    """The first value (as written) when there is at least one and the set tests hold for each, else None."""
    if not raws:
        return None
    for r in raws:
        if not _holds(tests, normal(form, r), r):
            return None
    return raws[0]


def one(value) -> tuple:
    """A single value (or None) as the tuple of its values."""
    return () if value is None else (value,)


def extra_values(extra, name: str, form: str = "name") -> tuple:
    """A field the schema does not know, from a claim's or line's other fields: its values (a string or
    number, or a list of them), each in a normal form (`name` unless the sets it is tested against are
    codes or diagnoses), blanks dropped."""
    v = extra.get(name)
    if v is None or isinstance(v, (dict, bool)):
        return ()
    items = v if isinstance(v, list) else (v,)
    out = []
    for item in items:
        if isinstance(item, (str, int, float)) and not isinstance(item, bool):
            n = normal(form, str(item))
            if n and n not in out:
                out.append(n)
    return tuple(out)


def line_key(ln, field: str, extra: bool):
    """The value a line is grouped by for `at the same FIELD`: a text field's normal form, else None."""
    if extra:
        vs = extra_values(ln.extra, field)
        return vs[0] if vs else None
    return getattr(ln, field)


# ---- dates -------------------------------------------------------------------------------------

@lru_cache(maxsize=16384)
def iso(ordinal: int | None) -> str:
    """A date ordinal as YYYY-MM-DD; `none` for no date (a next eligible date past 9999-12-31)."""
    return "none" if ordinal is None else date.fromordinal(ordinal).isoformat()


def iso_list(ordinals) -> str:
    return ", ".join(iso(o) for o in ordinals)


def nth(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 21st..."""
    if 10 <= n % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


_LAST_DAY = date.max.toordinal()  # 9999-12-31: dates end there, and so does every computation on them


def _shift_months(d: date, months: int) -> date | None:
    """`d` plus `months` calendar months (negative: minus), a day past the end of the month becoming its
    last day (2024-02-29 minus 12 months is 2023-02-28); None outside 0001-01-01..9999-12-31."""
    y, m = divmod(d.year * 12 + d.month - 1 + months, 12)
    if not 1 <= y <= 9999:
        return None
    return date(y, m + 1, min(d.day, monthrange(y, m + 1)[1]))


@lru_cache(maxsize=65536)
def window_floor(d: int, unit: str, size: int) -> int:
    """The exclusive lower bound of the window ending on day `d`: a session on day p counts when
    floor < p < d. "N months" is calendar months (2024-02-29 minus 12 months is 2023-02-28). A window
    reaching back before 0001-01-01 holds every earlier day (floor 0)."""
    if unit == "days":
        return max(d - size, 0)
    if unit == "months":
        floor = _shift_months(date.fromordinal(d), -size)
        return floor.toordinal() if floor is not None else 0
    return date(date.fromordinal(d).year, 1, 1).toordinal() - 1  # calendar year


def _next_eligible(key_session: int, unit: str, size: int) -> int | None:
    """The first day whose window no longer holds `key_session`; None when that is after 9999-12-31."""
    if unit == "days":
        nxt = key_session + size
    elif unit == "months":
        shifted = _shift_months(date.fromordinal(key_session), size)
        if shifted is None:
            return None
        nxt = shifted.toordinal()
        while nxt <= _LAST_DAY and window_floor(nxt, unit, size) < key_session:  # a day or three at most
            nxt += 1
    else:
        year = date.fromordinal(key_session).year + 1
        nxt = date(year, 1, 1).toordinal() if year <= 9999 else _LAST_DAY + 1
    return nxt if nxt <= _LAST_DAY else None


class LimitHit(NamedTuple):
    n: int  # this line's session would be the n-th in the window
    limit: int
    dates: tuple  # the earlier sessions counted
    next_date: int | None  # first date a session would be within the limit again (None: after 9999-12-31)
    year: int


class SpacingHit(NamedTuple):
    last_date: int
    days: int
    min_days: int
    next_date: int | None  # None: after 9999-12-31


class SameDayHit(NamedTuple):
    other: Line
    shared: str


def _dates_for(g: "Group", ln: Line, set_name: str, by: str | None):
    if by is None:
        return g.sessions[set_name]
    key, field, extra = g.grouped_keys[(set_name, by)]
    value = line_key(ln, field, extra)
    if value is None:  # a line with no value matches no session
        return None
    return g.grouped[key].get(value, ())


def session_limit(g: "Group", ln: Line, set_name: str, limit: int, unit: str, size: int, by: str | None = None):
    """LimitHit when this line's session would be more than `limit` in the window, else None. With `by`,
    only sessions whose counted line has this line's value of that field count."""
    dates = _dates_for(g, ln, set_name, by)
    if not dates:
        return None
    d = ln.date
    hi = bisect_left(dates, d)
    if hi < limit:
        return None
    lo = bisect_right(dates, window_floor(d, unit, size), 0, hi)
    prior = hi - lo
    if prior < limit:
        return None
    counted = tuple(dates[lo:hi])
    nxt = _next_eligible(counted[prior - limit], unit, size)
    return LimitHit(prior + 1, limit, counted, nxt, date.fromordinal(d).year)


def spacing(g: "Group", ln: Line, set_name: str, min_gap: int, unit: str = "days", by: str | None = None):
    """SpacingHit when the last earlier session is fewer than `min_gap` days (or calendar months) before
    this line: for months, when it is after this line's date minus `min_gap` months."""
    dates = _dates_for(g, ln, set_name, by)
    if not dates:
        return None
    hi = bisect_left(dates, ln.date)
    if not hi:
        return None
    last = dates[hi - 1]
    days = ln.date - last
    if unit == "days":
        if days >= min_gap:
            return None
        return SpacingHit(last, days, min_gap, _next_eligible(last, "days", min_gap))
    if last <= window_floor(ln.date, "months", min_gap):
        return None
    return SpacingHit(last, days, min_gap, _next_eligible(last, "months", min_gap))


class DayLines(list):
    """The lines of one day with a code in a set, in decision order (history first), as `same day as`
    reads them: a list (made and appended to in C; most days hold a line or two). `hit` finds the
    first line other than the asking one that meets a qualifier in time linear in the asking line's
    values, whatever the number of lines that day: for each field asked about, the positions of the
    first two lines holding each value (and lacking any) are indexed once, the first time one is
    asked about, and kept up to date as lines are added."""

    # (field -> value -> first two positions, field -> first two positions of lines without values,
    # field -> how many lines are indexed); unset until a qualifier is first asked about
    __slots__ = ("_ix",)

    def _index(self, field: str):
        try:
            ix = self._ix
        except AttributeError:
            ix = self._ix = ({}, {}, {})
        values, lacking_by, done = ix
        start = done.get(field, 0)
        if start == len(self):  # nothing new
            return ix
        by = values.setdefault(field, {})
        lacking = lacking_by.setdefault(field, [])
        for pos in range(start, len(self)):
            vs = getattr(self[pos], field)
            if not vs:
                if len(lacking) < 2:
                    lacking.append(pos)
                continue
            for v in vs:
                first = by.get(v)
                if first is None:
                    by[v] = [pos]
                elif len(first) < 2 and first[-1] != pos:
                    first.append(pos)
        done[field] = len(self)
        return ix

    def hit(self, ln, sharing: str | None, lacking: str | None):
        if sharing is not None:
            by = self._index(sharing)[0].get(sharing, {})
            best = None
            for v in getattr(ln, sharing):
                for pos in by.get(v, ()):
                    if self[pos] is not ln:
                        if best is None or pos < best:
                            best = pos
                        break
            if best is None:
                return None
            for v in getattr(ln, sharing):  # the first of this line's values that line holds
                if best in by.get(v, ()):
                    return SameDayHit(self[best], v)
            return None  # pragma: no cover - best came from one of them
        if lacking is not None:
            for pos in self._index(lacking)[1].get(lacking, ()):
                if self[pos] is not ln:
                    return SameDayHit(self[pos], "")
            return None
        if self:  # the first line, or the second when the first is the asking one
            o = self[0]
            if o is not ln:
                return SameDayHit(o, "")
            if len(self) > 1:
                return SameDayHit(self[1], "")
        return None


_NO_LINES: tuple = ()  # a day with no line in the set: nothing to write to, nothing shared that changes


def same_day_hit(others, ln: Line, sharing: str | None = None, lacking: str | None = None):
    """The first other line (in decision order) meeting the qualifier, as a SameDayHit, or None."""
    if others.__class__ is DayLines:
        if not others:  # most days have no line in the set: nothing to index or look at
            return None
        return others.hit(ln, sharing, lacking)
    for o in others:
        if o is ln:
            continue
        if sharing is not None:
            mine = getattr(ln, sharing)
            theirs = getattr(o, sharing)
            for v in mine:
                if v in theirs:
                    return SameDayHit(o, v)
            continue
        if lacking is not None and getattr(o, lacking):
            continue
        return SameDayHit(o, "")
    return None


# ---- per patient and payer state ---------------------------------------------------------------


class Group:
    """What the rules of one patient and payer look back on.

    - `same_day(ln, S)`: every other line that day with a code in S, claims and history alike,
      whatever its decision;
    - `earlier_same_day(ln, S)`: lines in S that day already decided and not denied, and history;
    - `sessions[S]`: the sorted dates with a line in S not denied (or from history);
    - `grouped[S@F][v]`: the same, for lines whose field F has the value v (`at the same F`).
    """

    __slots__ = ("_day", "_earlier", "sessions", "_session_sets", "_earlier_sets", "grouped", "grouped_keys",
                 "_grouped_sets")

    def __init__(self, lines, history, same_day_sets, earlier_sets, session_sets, grouped_sets=None):
        self._day: dict[str, dict[int, list]] = {}
        for name, members in same_day_sets.items():
            idx: dict[int, DayLines] = {}
            for ln in history:
                if ln.code in members:
                    _day_of(idx, ln.date).append(ln)
            for ln in lines:  # every line of a group: the day's list looked up here, not by a call
                if ln.code in members:
                    day = idx.get(ln.date)
                    if day is None:
                        idx[ln.date] = DayLines((ln,))
                    else:
                        day.append(ln)
            self._day[name] = idx
        self._earlier: dict[str, dict[int, DayLines]] = {}
        self._earlier_sets = tuple(earlier_sets.items())
        for name, members in self._earlier_sets:
            idx = {}
            for ln in history:
                if ln.code in members:
                    _day_of(idx, ln.date).append(ln)
            self._earlier[name] = idx
        self.sessions: dict[str, list] = {}
        self._session_sets = tuple(session_sets.items())
        for name, members in self._session_sets:
            self.sessions[name] = sorted({ln.date for ln in history if ln.code in members})
        # grouped_sets: {"S@F": (members, set name, field, extra)}
        self.grouped: dict[str, dict[str, list]] = {}
        self.grouped_keys: dict[tuple[str, str], tuple[str, str, bool]] = {}
        self._grouped_sets = tuple((key, members, field, extra)
                                   for key, (members, _set, field, extra) in (grouped_sets or {}).items())
        for key, (members, set_name, field, extra) in (grouped_sets or {}).items():
            self.grouped_keys[(set_name, field)] = (key, field, extra)
            by_value: dict[str, set] = {}
            for ln in history:
                if ln.code in members:
                    v = line_key(ln, field, extra)
                    if v is not None:
                        by_value.setdefault(v, set()).add(ln.date)
            self.grouped[key] = {v: sorted(ds) for v, ds in by_value.items()}

    def same_day(self, ln: Line, set_name: str):
        """The day's lines in the set (the asking line among them: same_day_hit passes over it)."""
        return self._day[set_name].get(ln.date, _NO_LINES)

    def earlier_same_day(self, ln: Line, set_name: str):
        return self._earlier[set_name].get(ln.date, _NO_LINES)

    def record(self, ln: Line) -> None:
        """Count a line that was not denied toward later lines' limits."""
        code = ln.code
        for name, members in self._earlier_sets:
            if code in members:
                idx = self._earlier[name]
                day = idx.get(ln.date)
                if day is None:
                    idx[ln.date] = DayLines((ln,))
                else:
                    day.append(ln)
        for name, members in self._session_sets:
            if code in members:
                _add_date(self.sessions[name], ln.date)
        for key, members, field, extra in self._grouped_sets:
            if code in members:
                v = line_key(ln, field, extra)
                if v is not None:
                    _add_date(self.grouped[key].setdefault(v, []), ln.date)


def _day_of(idx: dict, day: int) -> DayLines:
    found = idx.get(day)
    if found is None:
        found = idx[day] = DayLines()
    return found


def _add_date(dates: list, d: int) -> None:
    i = bisect_left(dates, d)
    if i == len(dates) or dates[i] != d:
        insort(dates, d)
