"""Reading claims (JSON Lines or CSV) into runtime Claims, or error records for claims that cannot be
read (contract sections 1 and 5). Which fields there are, their shapes, normal forms and the words the
errors use come from the schema (`payrule.runtime.schema`).

The memo tables that make reading fast (normal forms of lists that repeat, one string object per repeated
value, date ordinals) belong to a `ReadSession`, created per run (one `payrule check`, one
`PolicySet.check`) with its `Limits`, and passed down: nothing here is global and mutable, so two runs in
one process, on two threads, with different limits, do not meet. A session is used by one thread at a time.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any, BinaryIO, Iterable, Iterator, NamedTuple

from payrule.runtime import Claim, Line, new_line
from payrule.runtime import payer_key as _payer_key
from payrule.runtime.schema import CLAIM_FIELDS, DATE_PATTERN, LINE_FIELDS, NUMBER_FIELDS, Field, normal
from payrule.runtime.schema import LIST_FIELDS as _LIST_ORDER

__all__ = ["ClaimError", "HistoryError", "Limits", "LOW_MEMORY", "ReadSession", "read_claims", "read_claims_stream",
           "read_claim_objects", "read_jsonl_rows", "read_one", "read_history", "history_error", "duplicate_id_error",
           "build_claim", "claim_from_object", "fast_row_reader", "typed_object_reader", "is_csv", "LIST_FIELDS", "NUMBER_FIELDS", "FIELD_ALIASES", "normal"]

# The old names, derived from the schema, for modules that still import them from here:
# the line list fields and the normal form their values compare in, the words policies may use for them.
LIST_FIELDS: dict[str, str] = {name: LINE_FIELDS[name].form for name in _LIST_ORDER}  # type: ignore[misc]
FIELD_ALIASES: dict[str, str] = {a: f.name for f in LINE_FIELDS.values() for a in f.aliases}

_CLAIM_KNOWN = tuple(CLAIM_FIELDS)
_LINE_KNOWN = tuple(LINE_FIELDS)
_LINES = CLAIM_FIELDS["lines"]
_DATE_SHAPE = LINE_FIELDS["date"].item_pattern or DATE_PATTERN
_LONE_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


try:  # typed decoding in C; the stdlib reader below stays the arbiter for anything it rejects
    import msgspec
except ImportError:  # pragma: no cover - msgspec is a dependency; keep working without it
    msgspec = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class ClaimError:
    """A claim that could not be read; printed in its place as `{"claim_id", "error", "input_line"}`."""

    claim_id: str | None
    error: str
    input_line: int

    def as_json(self) -> dict:
        return {"claim_id": self.claim_id, "error": self.error, "input_line": self.input_line}


class HistoryError(Exception):
    """The history file, or a claim in it, cannot be read (exit status 2)."""


class _Bad(Exception):
    pass


def duplicate_id_error(claim_id: str) -> str:
    """What is wrong with a claim whose claim_id an earlier claim already used."""
    return f"claim_id {json.dumps(claim_id)} was already used by an earlier claim"


def history_error(name: str, rec: ClaimError) -> HistoryError:
    """The HistoryError for an unreadable claim at `rec.input_line` of the history file `name`."""
    return HistoryError(f"{name}:{rec.input_line}: history claim {json.dumps(rec.claim_id)} cannot be read: {rec.error}")


# ---- one run's memo tables -----------------------------------------------------------------------


class Limits(NamedTuple):
    """Sizes of a ReadSession's memo tables (entries). A table that is full stops memoising; nothing
    read depends on them, only time and memory."""

    normalized: int = 200_000  # list values -> (normal form, as written)
    shared: int = 2_000_000  # one string object for values that repeat (patients, payers, codes)
    dates: int = 100_000  # date text -> ordinal, and decoded dates -> ordinal
    codes: int = 100_000  # a code as written -> upper-cased, a payer as written -> its key


# --low-memory: each patient's claims are freed once decided, so sharing strings across the whole file buys
# nothing there.
LOW_MEMORY = Limits(normalized=20_000, shared=0)
_EMPTY: tuple[tuple, tuple] = ((), ())


class ReadSession:
    """The memo tables of one run of the readers, bounded by `limits`. Create one per run and pass it to
    every read of that run (claims and history); do not share one between threads."""

    __slots__ = ("limits", "normalized", "from_fast", "_dates", "_ordinals", "_upper", "_payers", "_norm", "_strings",
                 "_lists", "keep_extra")

    def __init__(self, limits: Limits = Limits(), _tables: ReadSession | None = None, keep_extra: bool = False):
        """`keep_extra`: keep every field a claim or line has beyond the contract's, for policies that read
        them (the fast path drops them, so it is not used then)."""
        self.limits = limits
        self.keep_extra: bool = keep_extra if _tables is None else _tables.keep_extra
        t = _tables
        self._norm: dict[tuple, tuple[tuple, tuple]] = {} if t is None else t._norm
        self._strings: dict[str, str] = {} if t is None else t._strings
        self._dates: dict[str, int | None] = {} if t is None else t._dates
        self._ordinals: dict[date, int] = {} if t is None else t._ordinals
        self._upper: dict[str, str] = {} if t is None else t._upper
        self._payers: dict[str, str] = {} if t is None else t._payers
        # The fast path's lists (decoded as tuples) -> normalized(): modifiers, diagnoses, names.
        self._lists: tuple[dict, dict, dict] = ({}, {}, {}) if t is None else t._lists
        self.normalized = _normalizer(self._norm, limits.normalized)
        self.from_fast = _fast_builder(self)

    def with_limits(self, limits: Limits) -> ReadSession:
        """A session of the same run with other limits, over the same tables: what is memoised already is
        used, and the tables grow only within the new limits (--low-memory after reading the history)."""
        return ReadSession(limits, self)

    def date_ordinal(self, s: str) -> int | None:
        """The ordinal of a real YYYY-MM-DD date, else None."""
        memo = self._dates
        o = memo.get(s, 0)
        if o == 0:
            o = None
            if _DATE_SHAPE.match(s):
                try:
                    o = date.fromisoformat(s).toordinal()
                except ValueError:
                    o = None
            if len(memo) < self.limits.dates:
                memo[s] = o
        return o

    def payer_key(self, payer: str) -> str:
        memo = self._payers
        k = memo.get(payer)
        if k is None:
            k = _payer_key(payer)
            if len(memo) < self.limits.codes:
                memo[payer] = k
        return k


def _normalizer(memo: dict, limit: int):
    def normalized(form: str, vs) -> tuple[tuple, tuple]:
        """(distinct values in normal form, the non-blank values as written), memoised: lists repeat."""
        if not vs:
            return _EMPTY
        key = (form, *vs)
        hit = memo.get(key)
        if hit is None:
            kept: list[str] = []
            seen: dict[str, None] = {}  # a dict keeps the first-seen order and finds a repeat at once
            for v in vs:
                n = normal(form, v)
                if n:
                    kept.append(v.strip())
                    seen.setdefault(n, None)
            norm, raw = tuple(seen), tuple(kept)
            hit = (norm, norm if raw == norm else raw)  # most lists are already in normal form: share it
            if len(memo) < limit:
                memo[key] = hit
        return hit

    return normalized


# ---- the stdlib reader: every check, worded from the schema ---------------------------------------



def _text_value(form: str | None, v: str | None) -> str | None:
    """An optional text field's value in its normal form; None when absent or blank."""
    if v is None:
        return None
    return (normal(form, v) if form else v) or None


def _text(obj: dict, key: str, where: str, required: bool) -> str | None:
    v = obj.get(key)
    if v is None:
        if required:
            raise _Bad(f"{where}{key} is missing")
        return None
    if not isinstance(v, str):
        raise _Bad(f"{where}{key} must be a string, not {_kind(v)}")
    if required and not v.strip():
        raise _Bad(f"{where}{key} is empty")
    return v


def _strings(obj: dict, f: Field, where: str) -> list[str] | None:
    key = f.name
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _Bad(f"{where}{key} must be a list of strings")
    if f.item_pattern is not None:
        for x in v:
            if not f.item_pattern.match(x.strip()):
                raise _Bad(f"{where}{key}: {json.dumps(x)} is not {f.item_words}")
    return v


def _int(obj: dict, key: str, where: str, required: bool, minimum: int | None = None) -> int | None:
    v = obj.get(key)
    if v is None:
        if required:
            raise _Bad(f"{where}{key} is missing")
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise _Bad(f"{where}{key} must be a whole number, not {json.dumps(v)}")
    if minimum is not None and v < minimum:
        raise _Bad(f"{where}{key} must be at least {minimum}, not {v}")
    return v


def _kind(v) -> str:
    return {dict: "an object", list: "a list", bool: "true/false", int: "a number", float: "a number"}.get(type(v), "null" if v is None else "a string")


def _value(obj: dict, f: Field, where: str, session: ReadSession):
    """Field `f` of `obj` checked as the schema says: a text field's value as written (None when
    absent), a list of strings, an int, a date's ordinal, a code (untrimmed: `"12345 "` is not 5 letters
    or digits); raises _Bad saying what and where."""
    kind, key = f.kind, f.name
    if kind == "list":
        return _strings(obj, f, where)
    if kind == "int":
        return _int(obj, key, where, f.required, f.minimum)
    v = _text(obj, key, where, f.required)
    if v is None or kind == "text":
        return v
    if kind == "date":  # exactly YYYY-MM-DD, as the contract says: nothing is trimmed
        d = session.date_ordinal(v)
        if d is None:
            raise _Bad(f"{where}{key} {json.dumps(v)} is not a real date ({f.item_words})")
        return d
    if f.item_pattern is not None and not f.item_pattern.match(v):
        raise _Bad(f"{where}{key} {json.dumps(v)} is not a procedure code ({f.item_words})")
    return v


def build_claim(obj, input_line: int, order: int, seen: set, history: bool = False,
                session: ReadSession | None = None) -> Claim:
    """Validate one decoded claim object and build a runtime Claim; raises _Bad naming what and where.
    Fields are checked in schema order, so the first problem of a claim is the one reported."""
    s = session if session is not None else ReadSession()
    if not isinstance(obj, dict):
        raise _Bad(f"a claim must be a JSON object, not {_kind(obj)}")
    cv: dict = {}
    lines_in: list = []
    for f in CLAIM_FIELDS.values():
        if f is _LINES:
            got = obj.get("lines")
            if got is None:
                raise _Bad("lines is missing")
            if not isinstance(got, list):
                raise _Bad(f"lines must be a list, not {_kind(got)}")
            lines_in = got
            if not lines_in:
                raise _Bad("lines is empty: a claim needs at least one line")
            continue
        cv[f.name] = _value(obj, f, "", s)
        if f.name == "claim_id":
            if cv["claim_id"] in seen:
                raise _Bad(duplicate_id_error(cv["claim_id"]))
            seen.add(cv["claim_id"])
    extra = {k: v for k, v in obj.items() if k not in _CLAIM_KNOWN}
    payer = cv["payer"]
    claim = Claim(cv["claim_id"], cv["patient_id"], payer, [], input_line, order, history, extra,
                  prior_auth=_text_value(_PRIOR_AUTH.form, cv["prior_auth"]), key=s.payer_key(payer))
    claim_dx = cv["diagnoses"]
    numbers = set()
    normalized = s.normalized
    for i, lo in enumerate(lines_in):
        where = f"lines[{i}]."
        if not isinstance(lo, dict):
            raise _Bad(f"lines[{i}] must be an object, not {_kind(lo)}")
        lv: dict = {}
        for f in LINE_FIELDS.values():
            lv[f.name] = _value(lo, f, where, s)
            if f.name == "line":
                if lv["line"] in numbers:
                    raise _Bad(f"{where}line {lv['line']} is repeated within the claim")
                numbers.add(lv["line"])
        if lv["diagnoses"] is None:  # a line's own list, even empty, replaces the claim's
            lv["diagnoses"] = claim_dx
        lists, raw = {}, {}
        for key in _LIST_ORDER:
            lists[key], raw[key] = normalized(LIST_FIELDS[key], lv[key])
        lx = {k: v for k, v in lo.items() if k not in _LINE_KNOWN}
        code_raw, units = lv["code"], lv["units"]
        claim.lines.append(Line(claim, lv["line"], lv["date"], code_raw.upper(), 1 if units is None else units,
                                lists, raw, lx, code_raw, site=_text_value(_SITE.form, lv["site"])))
    return claim


_PRIOR_AUTH = CLAIM_FIELDS["prior_auth"]
_SITE = LINE_FIELDS["site"]


def _not_json(word: str):
    raise ValueError(f"{word} is not a JSON value")


def _has_lone_surrogate(obj) -> bool:
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(obj, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in obj.items())
    if isinstance(obj, list):
        return any(_has_lone_surrogate(v) for v in obj)
    return False


def _peek_id(obj) -> str | None:
    if isinstance(obj, dict) and isinstance(obj.get("claim_id"), str) and obj["claim_id"].strip():
        return obj["claim_id"]
    return None


def _jsonl(data: bytes, history: bool, first_order: int, progress, session: ReadSession) -> Iterator[Claim | ClaimError]:
    rows = data.split(b"\n")
    total = len(rows)
    tick = (lambda n, _raw: progress(n, total)) if progress is not None else None
    return read_jsonl_rows(rows, history, first_order, tick, session=session)


def read_jsonl_rows(rows: Iterable[bytes], history: bool, first_order: int, tick=None, start: int = 1,
                    seen: set | None = None, session: ReadSession | None = None) -> Iterator[Claim | ClaimError]:
    """Claims (or ClaimErrors) from JSON Lines rows (bytes, newline already removed), the first numbered
    `start` (only row 1 may begin with a byte-order mark), orders counted from `first_order`; `history`
    marks the claims as history. `seen` holds the claim ids already used before these rows, and gains
    each id the reader counts as used - a readable claim's, and an unreadable one's once its claim_id
    itself was read. `tick(n, raw)`, if given, is called every 8192 rows."""
    seen = set() if seen is None else seen
    session = session if session is not None else ReadSession()
    order = first_order
    fast = _FAST_DECODE if not session.keep_extra else None
    from_fast = session.from_fast
    for n, raw in enumerate(rows, start):
        if tick is not None and not n & 8191:
            tick(n, raw)
        if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if fast is not None and (raw.isascii() or _is_utf8(raw)):  # msgspec skips unknown fields unread
            try:
                m = fast(raw)
            except _FAST_ERRORS:
                pass  # the stdlib reader below decides, and says what is wrong
            else:
                claim = from_fast(m, n, order, seen, history)
                if claim is not None:
                    yield claim
                    order += 1
                    continue
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield ClaimError(None, f"not UTF-8 (byte {exc.start + 1} of the line)", n)
            continue
        try:
            obj = json.loads(text, parse_constant=_not_json)
        except RecursionError:
            yield ClaimError(None, "not JSON: nested too deeply to read", n)
            continue
        except ValueError as exc:
            msg = getattr(exc, "msg", str(exc))
            col = getattr(exc, "colno", None)
            yield ClaimError(None, f"not JSON: {msg}" + (f" at column {col}" if col else ""), n)
            continue
        if _LONE_SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(obj):
            yield ClaimError(_peek_id(obj) if not _has_lone_surrogate(_peek_id(obj) or "") else None,
                             "not JSON text: a string holds an unpaired surrogate escape", n)
            continue
        try:
            yield build_claim(obj, n, order, seen, history, session)
        except _Bad as exc:
            yield ClaimError(_peek_id(obj), str(exc), n)
        except RecursionError:  # pragma: no cover - json already bounds nesting
            yield ClaimError(None, "nested too deeply to read", n)
        order += 1


def _is_utf8(raw: bytes) -> bool:
    """Whether a line is UTF-8 throughout, in fields no reader looks at too (contract section 5)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# ---- the fast path: msgspec structs built from the schema -----------------------------------------


def _fast_struct(name: str, fields, lines=None):
    """A msgspec Struct with the schema's fields, typed as the fast path reads them: text as str, lists as
    tuples (so that a list is its own memo key), dates as dates, bounded ints with their bound. Optional
    fields default to None (JSON null is absent). The patterns (a required text is not blank, codes and
    modifiers have their shape) are not checked here but by `from_fast`, once per distinct value in its
    memo tables: msgspec calls back into Python's re for each pattern, which cost more than the rest of
    the decoding. Anything either refuses goes to the stdlib reader."""
    from typing import Annotated, Optional

    spec = []
    for f in fields:
        if f is _LINES:
            t: object = Annotated[list[lines], msgspec.Meta(min_length=1)]
        elif f.kind == "text" or f.kind == "code":
            t = str
        elif f.kind == "int":
            t = int if f.minimum is None else Annotated[int, msgspec.Meta(ge=f.minimum)]
        elif f.kind == "date":
            t = date
        else:  # a list of strings
            t = tuple[str, ...]
        spec.append((f.name, t) if f.required else (f.name, Optional[t], None))
    return msgspec.defstruct(name, spec, kw_only=True)


# What from_fast checks that the struct does not (see _fast_struct): the required texts, and the fields
# whose values (or items) have a pattern. A new patterned field fails this assert until from_fast checks it.
_FAST_REQUIRED_TEXT = tuple(f.name for f in CLAIM_FIELDS.values() if f.kind == "text" and f.required)
assert _FAST_REQUIRED_TEXT == ("claim_id", "patient_id", "payer")
assert [f.name for f in (*CLAIM_FIELDS.values(), *LINE_FIELDS.values()) if f.item_pattern is not None and f.kind != "date"] == [
    "code", "modifiers"]
_CODE_SHAPE = LINE_FIELDS["code"].item_pattern.match  # type: ignore[union-attr]
_MODIFIER_SHAPE = LINE_FIELDS["modifiers"].item_pattern.match  # type: ignore[union-attr]


if msgspec is not None:
    _FastLine = _fast_struct("_FastLine", LINE_FIELDS.values())
    _FastClaim = _fast_struct("_FastClaim", CLAIM_FIELDS.values(), _FastLine)
    assert _FastLine.__struct_fields__ == tuple(LINE_FIELDS) and _FastClaim.__struct_fields__ == tuple(CLAIM_FIELDS)
    _FAST_DECODE = msgspec.json.Decoder(_FastClaim).decode
    _FAST_ERRORS: tuple = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)
else:  # pragma: no cover
    _FAST_DECODE, _FAST_ERRORS = None, ()

assert _LIST_ORDER == ("modifiers", "diagnoses", "muscles", "substances")  # from_fast reads them in this order


def _fast_builder(session: ReadSession):
    """The session's `from_fast(m, n, order, seen, history)`: a Claim from a well-typed decoded claim, or
    None to let the stdlib reader report the problem (a blank claim_id, patient_id or payer, a code or
    modifier of the wrong shape, a repeated claim_id or line number). Fields not in the contract are
    not kept on this path. A closure over the session's tables: this runs once a claim."""
    normalized = session.normalized
    strings, ordinals, uppers, payers = session._strings, session._ordinals, session._upper, session._payers
    mods_memo, dx_memo, names_memo = session._lists
    limits = session.limits
    s_limit, d_limit, c_limit, n_limit = limits.shared, limits.dates, limits.codes, limits.normalized
    setdefault = strings.setdefault
    pa_form, site_form = _PRIOR_AUTH.form, _SITE.form
    code_shape, modifier_shape = _CODE_SHAPE, _MODIFIER_SHAPE

    def listed(memo: dict, form: str, vs):
        """normalized(form, vs) for a decoded tuple, the tuple its own memo key."""
        hit = memo.get(vs)
        if hit is None:
            hit = normalized(form, vs)
            if len(memo) < n_limit:
                memo[vs] = hit
        return hit

    def from_fast(m, n: int, order: int, seen: set, history: bool) -> Claim | None:
        cid = m.claim_id
        if cid in seen:
            return None
        patient, payer = m.patient_id, m.payer
        if not cid or not patient or not payer or cid.isspace() or patient.isspace() or payer.isspace():
            return None  # blank: the stdlib reader says which
        if len(strings) < s_limit:  # one string object for values that repeat: memory, not meaning
            patient, payer = setdefault(patient, patient), setdefault(payer, payer)
        key = payers.get(payer)
        if key is None:
            key = _payer_key(payer)
            if len(payers) < c_limit:
                payers[payer] = key
        pa = m.prior_auth
        if pa is not None:
            pa = _text_value(pa_form, pa)
        claim = Claim(cid, patient, payer, [], n, order, history, None, pa, key)
        numbers = set()
        claim_dx = m.diagnoses
        lines = claim.lines
        for lo in m.lines:
            no = lo.line
            if no in numbers:
                return None
            numbers.add(no)
            code = lo.code
            upper = uppers.get(code)
            if upper is None:
                if not code_shape(code):
                    return None
                upper = code.upper()
                if len(uppers) < c_limit:
                    uppers[code] = upper
            vs = lo.modifiers
            if not vs:
                mods, mods_raw = _EMPTY
            else:
                got = mods_memo.get(vs)
                if got is None:
                    for v in vs:
                        if not modifier_shape(v):
                            return None
                    got = listed(mods_memo, "code", vs)
                mods, mods_raw = got
            vs = lo.diagnoses if lo.diagnoses is not None else claim_dx
            dxs, dx_raw = dx_memo.get(vs) or listed(dx_memo, "diagnosis", vs) if vs else _EMPTY
            vs = lo.muscles
            mus, mus_raw = names_memo.get(vs) or listed(names_memo, "name", vs) if vs else _EMPTY
            vs = lo.substances
            subs, subs_raw = names_memo.get(vs) or listed(names_memo, "name", vs) if vs else _EMPTY
            if len(strings) < s_limit:
                code = setdefault(code, code)
            d = lo.date
            o = ordinals.get(d)
            if o is None:
                o = d.toordinal()
                if len(ordinals) < d_limit:
                    ordinals[d] = o
            site = lo.site
            if site is not None:
                site = _text_value(site_form, site)
                if site is not None and len(strings) < s_limit:
                    site = setdefault(site, site)
            lines.append(new_line(claim, no, o, upper, 1 if lo.units is None else lo.units,
                                  (mods, dxs, mus, subs), (mods_raw, dx_raw, mus_raw, subs_raw), code, site))
        seen.add(cid)
        return claim

    return from_fast


# ---- CSV: one row per line, columns named by the schema -------------------------------------------

_CSV_CLAIM_ONLY = frozenset(f.csv for f in CLAIM_FIELDS.values()) - {f.csv for f in LINE_FIELDS.values()}
_CSV_CLAIM_TEXT = tuple(f for f in CLAIM_FIELDS.values() if f.kind == "text")  # taken from a claim's first row
_CSV_LINE = {f.csv: f for f in LINE_FIELDS.values()}
# A list field that is also the claim's: a line's own list, even empty, replaces the claim's, so an empty
# cell is an empty list (every row has its own cell); any other empty list cell is absent.
_CSV_OWN_LIST = frozenset(f.csv for f in LINE_FIELDS.values() if f.name in CLAIM_FIELDS)
_CSV_INT = re.compile(r"[+-]?[0-9]+")


def _csv(data: bytes, history: bool, first_order: int, progress, session: ReadSession) -> Iterator[Claim | ClaimError]:
    text = data.decode("utf-8", "surrogateescape")
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    groups: dict[str, list] = {}  # claim_id -> [first input line, claim_id, rows...]
    out: list[tuple[int, Any]] = []  # (first input line, a ClaimError or [line, claim_id, rows...])
    prev = 0
    for row in reader:
        start, prev = prev + 1, reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if header is None:
            header = [h.strip() for h in row]
            continue
        if any(_surrogate(c) for c in row):
            out.append((start, ClaimError(None, "not UTF-8", start)))
            continue
        cid = _cell(header, row, "claim_id")
        if len(row) > len(header):
            problem = f"the row on line {start} has {len(row)} cells but the header has {len(header)}"
            if not cid:
                out.append((start, ClaimError(None, problem, start)))
                continue
            g = groups.get(cid)
            if g is None:
                groups[cid] = g = [start, cid]
                out.append((start, g))
            g.append({"__problem__": problem})
            continue
        if not cid:
            missing = "claim_id" not in header
            out.append((start, ClaimError(None, "the CSV has no claim_id column" if missing else "claim_id is empty", start)))
            continue
        g = groups.get(cid)
        if g is None:
            groups[cid] = g = [start, cid]
            out.append((start, g))
        g.append(dict(zip(header, row)))
    seen: set = set()
    order = first_order
    for start, item in out:
        if isinstance(item, ClaimError):
            yield item
            continue
        cid, rows = item[1], item[2:]
        problems = [r["__problem__"] for r in rows if "__problem__" in r]
        rows = [r for r in rows if "__problem__" not in r]
        first = rows[0] if rows else {}
        if problems:
            seen.add(cid)
            yield ClaimError(cid, problems[0], start)
            order += 1
            continue
        try:
            for key in ("patient_id", "payer"):
                vals = {r.get(key, "").strip() for r in rows}
                if len(vals) > 1:
                    raise _Bad(f"rows of the claim disagree on {key}: " + ", ".join(sorted(json.dumps(v) for v in vals)))
            obj: dict = {}
            for f in _CSV_CLAIM_TEXT:
                v = first.get(f.csv, "").strip()
                obj[f.name] = v if v else None
            obj["claim_id"] = cid
            obj["lines"] = [_csv_line(r) for r in rows]
            yield build_claim(obj, start, order, seen, history, session)
        except _Bad as exc:
            yield ClaimError(cid, str(exc), start)
        order += 1


def _surrogate(s: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in s)


def _cell(header: list[str], row: list[str], key: str) -> str:
    try:
        i = header.index(key)
    except ValueError:
        return ""
    return row[i].strip() if i < len(row) else ""


def _csv_line(row: dict) -> dict:
    """One row's line fields as the JSON reader sees them: ints as ints (when they read as one), list
    cells split on `;`, empty cells absent. Claim columns are left out; unknown columns are kept."""
    out: dict = {}
    for key, v in row.items():
        if key in _CSV_CLAIM_ONLY:
            continue
        v = v.strip()
        f = _CSV_LINE.get(key)
        if f is None or f.kind not in ("int", "list"):
            out[f.name if f is not None else key] = v if v else None
        elif f.kind == "int":
            out[f.name] = (int(v) if _CSV_INT.fullmatch(v) else v) if v else None
        else:
            parts = [p.strip() for p in v.split(";")]
            parts = [p for p in parts if p]
            out[f.name] = parts if key in _CSV_OWN_LIST else parts or None
    return out


def is_csv(name: str, data: bytes) -> bool:
    """CSV by extension; otherwise (standard input, other names) only when the first non-blank line is
    a header naming `claim_id` - anything else is JSON Lines, so a stray first line is one error."""
    if name.lower().endswith(".csv"):
        return True
    if name.lower().endswith((".jsonl", ".json", ".ndjson")):
        return False
    for raw in data.lstrip(b"\xef\xbb\xbf").split(b"\n", 64)[:64]:
        if raw.strip():
            head = raw.strip()
            if head[:1] in (b"{", b"["):
                return False
            try:
                cells = next(csv.reader([head.decode("utf-8", "replace")]))
            except (csv.Error, StopIteration):
                return False
            return "claim_id" in [c.strip() for c in cells]
    return False


def read_claims(data: bytes, name: str = "<stdin>", first_order: int = 0, progress=None,
                session: ReadSession | None = None, fmt: str | None = None) -> list[Claim | ClaimError]:
    """Every record of a claims file, in input order: a Claim, or a ClaimError in its place.
    `fmt`: jsonl, csv, x12 or fhir (`payrule.claims.formats`); found from the name and content when None.
    `progress(done, total)`, if given, is called now and then with input lines read so far.
    `session`: the run's ReadSession (a new one with the default limits when not given).
    Raises `FormatError` for an X12 or FHIR file that cannot be read as one."""
    return list(_records(data, name, False, first_order, progress, session if session is not None else ReadSession(), fmt))


def _records(data: bytes, name: str, history: bool, first_order: int, progress, session: ReadSession,
             fmt: str | None) -> Iterator[Claim | ClaimError]:
    from payrule.claims import formats

    fmt = fmt or formats.detect(name, data[:65536])
    if fmt in ("x12", "fhir"):
        return formats.build_mapped(formats.mapper(fmt)(data), history, first_order, session)
    reader = _csv if fmt == "csv" else _jsonl
    return reader(data, history, first_order, progress, session)


def claim_from_object(obj, input_line: int, order: int, seen: set, history: bool = False,
                      session: ReadSession | None = None) -> Claim | ClaimError:
    """One decoded claim object (contract section 1) as a Claim, or the ClaimError saying what is wrong."""
    try:
        return build_claim(obj, input_line, order, seen, history, session)
    except _Bad as exc:
        return ClaimError(_peek_id(obj), str(exc), input_line)
    except RecursionError:
        return ClaimError(None, "nested too deeply to read", input_line)


def read_claims_stream(stream: BinaryIO, name: str, size: int = 0, first_order: int = 0, progress=None,
                       session: ReadSession | None = None, fmt: str | None = None) -> list[Claim | ClaimError]:
    """Like read_claims, but JSON Lines are read from the stream line by line, so the whole file is
    never held in memory (the other formats are read whole). `progress(bytes_read, size)` is called now
    and then."""
    from payrule.claims.formats import detect

    session = session if session is not None else ReadSession()
    head = stream.peek(65536)[:65536] if hasattr(stream, "peek") else b""
    if not head:  # a stream that cannot peek: read it whole, the format found from all of it
        return read_claims(stream.read(), name, first_order, progress, session, fmt)
    fmt = fmt or detect(name, head)
    if fmt != "jsonl":
        return read_claims(stream.read(), name, first_order, progress, session, fmt)
    read = 0

    def rows() -> Iterator[bytes]:
        nonlocal read
        for raw in stream:
            read += len(raw)
            yield raw[:-1] if raw.endswith(b"\n") else raw

    tick = (lambda _n, _raw: progress(read, max(size, read))) if progress is not None else None
    return list(read_jsonl_rows(rows(), False, first_order, tick, session=session))


def typed_object_reader(session: ReadSession):
    """`read(obj, input_line, order, seen, history) -> Claim | None` for a decoded claim object (a dict a
    format mapping made): msgspec converts it to the typed struct and the fast builder makes the Claim;
    None where the full reader (claim_from_object) must decide. None when the session keeps unknown fields."""
    if msgspec is None or session.keep_extra:
        return None
    convert, from_fast, errors = msgspec.convert, session.from_fast, _FAST_ERRORS

    def read(obj, input_line: int, order: int, seen: set, history: bool) -> Claim | None:
        try:
            m = convert(obj, _FastClaim)
        except errors:
            return None
        return from_fast(m, input_line, order, seen, history)

    return read


def fast_row_reader(session: ReadSession):
    """`read(raw, input_line, order) -> Claim | None` for a JSON Lines row (no newline, no byte-order
    mark) whose claim_id no earlier row used: the typed fast path of read_jsonl_rows alone, None where
    the full reader (read_one) must decide. None when the session keeps unknown fields (no fast path)."""
    if _FAST_DECODE is None or session.keep_extra:
        return None
    fast, from_fast, errors = _FAST_DECODE, session.from_fast, _FAST_ERRORS
    used: set = set()

    def read(raw: bytes, input_line: int, order: int) -> Claim | None:
        if not (raw.isascii() or _is_utf8(raw)):
            return None
        try:
            m = fast(raw)
        except errors:
            return None
        claim = from_fast(m, input_line, order, used, False)
        used.clear()
        return claim

    return read


def read_one(raw: bytes, input_line: int, order: int, seen: set, session: ReadSession | None = None,
             history: bool = False) -> Claim | ClaimError | None:
    """One JSON Lines row read alone, exactly as read_claims reads it in place, given the claim ids
    earlier rows used (`seen`, at least this row's own id when an earlier row used it; not changed).
    None for a blank row."""
    for rec in read_jsonl_rows([raw], history, order, None, input_line, set(seen), session):
        return rec
    return None


def read_claim_objects(objs: Iterable, session: ReadSession | None = None) -> list[Claim | ClaimError]:
    """Claims given as decoded JSON objects (dicts), numbered from 1 as if they were the lines of a
    JSON Lines file: a Claim, or a ClaimError in its place."""
    session = session if session is not None else ReadSession()
    out: list[Claim | ClaimError] = []
    seen: set = set()
    for n, obj in enumerate(objs, 1):
        try:
            out.append(build_claim(json.loads(json.dumps(obj)), n, n - 1, seen, False, session))
        except _Bad as exc:
            cid = obj.get("claim_id") if isinstance(obj, dict) else None
            out.append(ClaimError(cid if isinstance(cid, str) else None, str(exc), n))
    return out


def read_history(data: bytes, name: str, session: ReadSession | None = None, fmt: str | None = None) -> list[Claim]:
    """Claims from a history file (any format); any unreadable claim makes the whole file unreadable
    (HistoryError), and so does a file that cannot be read as its format."""
    from payrule.claims.formats import FormatError

    out = []
    try:
        for rec in _records(data, name, True, 0, None, session if session is not None else ReadSession(), fmt):
            if isinstance(rec, ClaimError):
                raise history_error(name, rec)
            out.append(rec)
    except FormatError as exc:
        raise HistoryError(f"{name}: {exc}") from None
    return out
