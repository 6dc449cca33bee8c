"""Reading claims (JSON Lines or CSV) into runtime Claims, or error records for claims that cannot be
read (contract sections 1 and 5). Every field's shape and normal form is data in the tables below."""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import date
from typing import BinaryIO, Iterable, Iterator

from payrule.runtime import LIST_FIELDS as _FIELD_ORDER, Claim, Line, new_line

__all__ = ["ClaimError", "HistoryError", "read_claims", "read_claims_stream", "read_history", "LIST_FIELDS", "NUMBER_FIELDS", "FIELD_ALIASES"]

# The claim format's list fields and the normal form their values are compared in.
#   code: trimmed, upper-cased          diagnosis: dots and surrounding spaces removed, upper-cased
#   name: trimmed, case-folded, runs of white space collapsed to one space
LIST_FIELDS: dict[str, str] = {
    "modifiers": "code",
    "diagnoses": "diagnosis",
    "muscles": "name",
    "substances": "name",
}
FIELD_ALIASES = {"modifier": "modifiers", "diagnosis": "diagnoses", "muscle": "muscles", "substance": "substances"}
NUMBER_FIELDS = ("units",)
_CLAIM_KNOWN = ("claim_id", "patient_id", "payer", "provider_id", "diagnoses", "lines")
_LINE_KNOWN = ("line", "date", "code", "units") + tuple(LIST_FIELDS)
_VALUE_SHAPE = {"modifiers": (re.compile(r"[A-Za-z0-9]{2}\Z"), "two letters or digits")}
_CODE = re.compile(r"[A-Za-z0-9]{5}\Z")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_LONE_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


try:  # typed decoding in C; the stdlib reader below stays the arbiter for anything it rejects
    import msgspec
except ImportError:  # pragma: no cover - msgspec is a dependency; keep working without it
    msgspec = None


def normal(form: str, value: str) -> str:
    """A value in its field's normal form ("" for a blank)."""
    if form == "code":
        return value.strip().upper()
    if form == "diagnosis":  # contract: dots and surrounding spaces removed, upper-cased
        return value.strip().replace(".", "").upper()
    return " ".join(value.split()).casefold()


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


_DATES: dict[str, int | None] = {}


def _date_ordinal(s: str) -> int | None:
    o = _DATES.get(s, 0)
    if o == 0:
        o = None
        if _DATE.match(s):
            try:
                o = date.fromisoformat(s).toordinal()
            except ValueError:
                o = None
        if len(_DATES) < 100_000:
            _DATES[s] = o
    return o


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


def _strings(obj: dict, key: str, where: str) -> list[str] | None:
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _Bad(f"{where}{key} must be a list of strings")
    shape = _VALUE_SHAPE.get(key)
    if shape:
        for x in v:
            if not shape[0].match(x.strip()):
                raise _Bad(f"{where}{key}: {json.dumps(x)} is not {shape[1]}")
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


_NORMALIZED: dict[tuple, tuple[tuple, tuple]] = {}
# Sizes of the reader's memo tables (entries). --low-memory lowers them: it frees each patient's claims
# once decided, so sharing strings across the whole file buys nothing there.
LIMITS = {"normalized": 200_000, "shared": 2_000_000}
_EMPTY: tuple[tuple, tuple] = ((), ())


def _normalized(form: str, vs) -> tuple[tuple, tuple]:
    """(distinct values in normal form, the non-blank values as written), memoised: lists repeat."""
    if not vs:
        return _EMPTY
    key = (form, *vs)
    hit = _NORMALIZED.get(key)
    if hit is None:
        kept, seen = [], []
        for v in vs:
            n = normal(form, v)
            if n:
                kept.append(v.strip())
                if n not in seen:
                    seen.append(n)
        norm, raw = tuple(seen), tuple(kept)
        hit = (norm, norm if raw == norm else raw)  # most lists are already in normal form: share it
        if len(_NORMALIZED) < LIMITS["normalized"]:
            _NORMALIZED[key] = hit
    return hit


def _lists(values: dict[str, list[str] | None]) -> tuple[dict, dict]:
    lists, raw = {}, {}
    for key, form in LIST_FIELDS.items():
        lists[key], raw[key] = _normalized(form, values.get(key))
    return lists, raw


def build_claim(obj, input_line: int, order: int, seen: set, history: bool = False) -> Claim:
    """Validate one decoded claim object and build a runtime Claim; raises _Bad naming what and where."""
    if not isinstance(obj, dict):
        raise _Bad(f"a claim must be a JSON object, not {_kind(obj)}")
    claim_id = _text(obj, "claim_id", "", True)
    if claim_id in seen:
        raise _Bad(f"claim_id {json.dumps(claim_id)} was already used by an earlier claim")
    seen.add(claim_id)
    patient_id = _text(obj, "patient_id", "", True)
    payer = _text(obj, "payer", "", True)
    _text(obj, "provider_id", "", False)
    claim_dx = _strings(obj, "diagnoses", "")
    lines_in = obj.get("lines")
    if lines_in is None:
        raise _Bad("lines is missing")
    if not isinstance(lines_in, list):
        raise _Bad(f"lines must be a list, not {_kind(lines_in)}")
    if not lines_in:
        raise _Bad("lines is empty: a claim needs at least one line")
    extra = {k: v for k, v in obj.items() if k not in _CLAIM_KNOWN}
    claim = Claim(claim_id, patient_id, payer, [], input_line, order, history, extra)
    numbers = set()
    for i, lo in enumerate(lines_in):
        where = f"lines[{i}]."
        if not isinstance(lo, dict):
            raise _Bad(f"lines[{i}] must be an object, not {_kind(lo)}")
        no = _int(lo, "line", where, True)
        if no in numbers:
            raise _Bad(f"{where}line {no} is repeated within the claim")
        numbers.add(no)
        ds = _text(lo, "date", where, True)
        d = _date_ordinal(ds.strip())
        if d is None:
            raise _Bad(f"{where}date {json.dumps(ds)} is not a real date (YYYY-MM-DD)")
        code_raw = _text(lo, "code", where, True).strip()
        if not _CODE.match(code_raw):
            raise _Bad(f"{where}code {json.dumps(code_raw)} is not a procedure code (5 letters or digits)")
        units = _int(lo, "units", where, False, minimum=1)
        values = {key: _strings(lo, key, where) for key in LIST_FIELDS}
        if lo.get("diagnoses") is None:
            values["diagnoses"] = claim_dx
        lists, raw = _lists(values)
        lx = {k: v for k, v in lo.items() if k not in _LINE_KNOWN}
        claim.lines.append(Line(claim, no, d, code_raw.upper(), 1 if units is None else units, lists, raw, lx, code_raw))
    return claim


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


def _jsonl(data: bytes, history: bool, first_order: int, progress=None) -> Iterator[Claim | ClaimError]:
    rows = data.split(b"\n")
    total = len(rows)
    tick = (lambda n, _raw: progress(n, total)) if progress is not None else None
    return _jsonl_rows(rows, history, first_order, tick)


def _jsonl_rows(rows: Iterable[bytes], history: bool, first_order: int, tick=None, start: int = 1,
                seen: set | None = None) -> Iterator[Claim | ClaimError]:
    """Claims from JSON Lines rows (bytes, newline already removed), numbered from `start`;
    `seen` holds the claim ids already used before these rows."""
    seen = set() if seen is None else seen
    order = first_order
    fast = _FAST_DECODE
    for n, raw in enumerate(rows, start):
        if tick is not None and not n & 8191:
            tick(n, raw)
        if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if fast is not None:
            try:
                m = fast(raw)
            except _FAST_ERRORS:
                pass  # the stdlib reader below decides, and says what is wrong
            else:
                claim = _from_fast(m, n, order, seen, history)
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
            yield build_claim(obj, n, order, seen, history)
        except _Bad as exc:
            yield ClaimError(_peek_id(obj), str(exc), n)
        except RecursionError:  # pragma: no cover - json already bounds nesting
            yield ClaimError(None, "nested too deeply to read", n)
        order += 1


if msgspec is not None:
    from typing import Annotated, Optional

    _Text = Annotated[str, msgspec.Meta(pattern=r"\S")]
    _Code = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9]{5}\Z")]
    _Modifier = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9]{2}\Z")]

    class _FastLine(msgspec.Struct):
        line: int
        date: date
        code: _Code
        units: Optional[Annotated[int, msgspec.Meta(ge=1)]] = None
        modifiers: Optional[list[_Modifier]] = None
        diagnoses: Optional[list[str]] = None
        muscles: Optional[list[str]] = None
        substances: Optional[list[str]] = None

    class _FastClaim(msgspec.Struct):
        claim_id: _Text
        patient_id: _Text
        payer: _Text
        lines: Annotated[list[_FastLine], msgspec.Meta(min_length=1)]
        provider_id: Optional[str] = None
        diagnoses: Optional[list[str]] = None

    assert tuple(LIST_FIELDS) == _FIELD_ORDER == ("modifiers", "diagnoses", "muscles", "substances")  # the struct's fields
    _FAST_DECODE = msgspec.json.Decoder(_FastClaim).decode
    _FAST_ERRORS: tuple = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)
else:  # pragma: no cover
    _FAST_DECODE, _FAST_ERRORS = None, ()


_ORDINALS: dict = {}
_UPPER: dict[str, str] = {}
_SHARED: dict[str, str] = {}


def _shared(s: str) -> str:
    """One string object for values that repeat (payers, patients, codes): memory, not meaning."""
    if len(_SHARED) >= LIMITS["shared"]:
        return s
    return _SHARED.setdefault(s, s)


def _ordinal(d: date) -> int:
    o = _ORDINALS.get(d)
    if o is None:
        o = _ORDINALS[d] = d.toordinal()
    return o


def _from_fast(m, n: int, order: int, seen: set, history: bool) -> Claim | None:
    """A Claim from a well-typed decoded claim, or None to let the stdlib reader report the problem
    (a repeated claim_id or line number). Fields not in the contract are not kept on this path."""
    cid = m.claim_id
    if cid in seen:
        return None
    claim = Claim(cid, _shared(m.patient_id), _shared(m.payer), [], n, order, history)
    numbers = set()
    claim_dx = m.diagnoses
    lines = claim.lines
    for lo in m.lines:
        if lo.line in numbers:
            return None
        numbers.add(lo.line)
        dx = lo.diagnoses if lo.diagnoses is not None else claim_dx
        mods, mods_raw = _normalized("code", lo.modifiers)
        dxs, dx_raw = _normalized("diagnosis", dx)
        mus, mus_raw = _normalized("name", lo.muscles)
        subs, subs_raw = _normalized("name", lo.substances)
        code = _shared(lo.code)
        upper = _UPPER.get(code)
        if upper is None:
            upper = _UPPER[code] = code.upper()
        lines.append(new_line(claim, lo.line, _ordinal(lo.date), upper, 1 if lo.units is None else lo.units,
                              (mods, dxs, mus, subs), (mods_raw, dx_raw, mus_raw, subs_raw), code))
    seen.add(cid)
    return claim


_CSV_LISTS = tuple(LIST_FIELDS)
_CSV_INTS = ("line", "units")


def _csv(data: bytes, history: bool, first_order: int, progress=None) -> Iterator[Claim | ClaimError]:
    text = data.decode("utf-8", "surrogateescape")
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    groups: dict[str, list] = {}  # claim_id -> [first input line, claim_id, rows...]
    out: list[tuple[int, object]] = []
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
            for key in ("claim_id", "patient_id", "payer", "provider_id"):
                v = first.get(key, "").strip()
                obj[key] = v if v else None
            obj["claim_id"] = cid
            obj["lines"] = [_csv_line(r) for r in rows]
            yield build_claim(obj, start, order, seen, history)
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
    out: dict = {}
    for key, v in row.items():
        if key in _CLAIM_KNOWN and key != "diagnoses":
            continue
        v = v.strip()
        if key in _CSV_INTS:
            out[key] = (int(v) if re.fullmatch(r"[+-]?[0-9]+", v) else v) if v else None
        elif key in _CSV_LISTS:
            parts = [p.strip() for p in v.split(";")]
            parts = [p for p in parts if p]
            if key == "diagnoses":
                out[key] = parts
            else:
                out[key] = parts or None
        else:
            out[key] = v if v else None
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


def read_claims(data: bytes, name: str = "<stdin>", first_order: int = 0, progress=None) -> list[Claim | ClaimError]:
    """Every record of a claims file, in input order: a Claim, or a ClaimError in its place.
    `progress(done, total)`, if given, is called now and then with input lines read so far."""
    reader = _csv if is_csv(name, data) else _jsonl
    return list(reader(data, False, first_order, progress))


def read_claims_stream(stream: BinaryIO, name: str, size: int = 0, first_order: int = 0, progress=None) -> list[Claim | ClaimError]:
    """Like read_claims, but JSON Lines are read from the stream line by line, so the whole file is
    never held in memory (CSV is read whole). `progress(bytes_read, size)` is called now and then."""
    head = stream.peek(65536)[:65536] if hasattr(stream, "peek") else b""
    if not head or is_csv(name, head):
        return read_claims(stream.read(), name, first_order, progress)
    read = 0

    def rows() -> Iterator[bytes]:
        nonlocal read
        for raw in stream:
            read += len(raw)
            yield raw[:-1] if raw.endswith(b"\n") else raw

    tick = (lambda _n, _raw: progress(read, max(size, read))) if progress is not None else None
    return list(_jsonl_rows(rows(), False, first_order, tick))


def read_one(raw: bytes, input_line: int, order: int, seen: set) -> Claim | ClaimError | None:
    """One JSON Lines row read alone, exactly as read_claims reads it in place, given the claim ids
    earlier rows used (`seen`, at least this row's own id when an earlier row used it). None for a
    blank row."""
    for rec in _jsonl_rows([raw], False, order, None, input_line, set(seen)):
        return rec
    return None


def read_history(data: bytes, name: str) -> list[Claim]:
    """Claims from a history file; any unreadable claim makes the whole file unreadable."""
    reader = _csv if is_csv(name, data) else _jsonl
    out = []
    for rec in reader(data, True, 0):
        if isinstance(rec, ClaimError):
            raise HistoryError(f"{name}:{rec.input_line}: history claim {json.dumps(rec.claim_id)} cannot be read: {rec.error}")
        out.append(rec)
    return out

