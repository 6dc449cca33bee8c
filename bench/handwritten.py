"""A hand-written checker of the shipped trigger point injection policies: the baseline payrule is
measured against (issue 7). It is what a programmer would write by hand, for speed, for the same rules
(shared/contract.md sections 3-5 and policies/*/trigger_points.policy), with no payrule code:

    python bench/handwritten.py CLAIMS.jsonl [--history FILE] [-o OUT]

It reads JSON Lines only (not CSV), decodes with msgspec typed structs when msgspec is installed and
the standard json module otherwise (or with --stdlib), and prints the same JSON Lines as
`payrule check`: one decision or error object per claim, in input order. Exit status as payrule's:
0, 1 when a claim was an error, 2 when the history cannot be read.

bench/verify.py checks that it agrees with payrule on generated claims.
"""
from __future__ import annotations

import argparse
import gc
import json
import re
import sys
from bisect import bisect_left, bisect_right, insort
from datetime import date
from pathlib import Path

try:
    import msgspec
except ImportError:  # pragma: no cover - the stdlib path
    msgspec = None

# ---- the rules, as the shipped policies state them ----------------------------------------------

COMMON, MEDICARE, AETNA = "common-tpi", "medicare-tpi", "aetna-tpi"
POLICY_FILES = {
    COMMON: "policies/common/trigger_points.policy",
    MEDICARE: "policies/medicare/trigger_points.policy",
    AETNA: "policies/aetna/trigger_points.policy",
}
PAYERS = {"medicare": MEDICARE, "aetna": AETNA}
TPI = ("20552", "20553")
DRY_NEEDLING = ("20560", "20561")
IMAGING = ("76942", "77002", "77021")  # allowed beside a TPI: no rule names them
COVERED = ("M791", "M797", "M608", "M6283", "M542", "M545", "M546", "G442")
EXCLUDED_STEMS = ("platelet", "prp", "amniotic", "placenta", "placental", "vitamin", "cyanocobalamin", "biologic")
MEDICARE_SESSIONS, MEDICARE_MONTHS = 3, 12
AETNA_SESSIONS, AETNA_MIN_DAYS = 4, 7

DENY, REVIEW, APPROVE = "deny", "review", "approve"
RANK = {APPROVE: 0, REVIEW: 1, DENY: 2}
BY_RANK = (APPROVE, REVIEW, DENY)

# rule id -> (policy, outcome), in the order a line's reasons are listed (the policies' rule order)
RULES = {
    "muscles-for-20552": (COMMON, DENY),
    "muscles-for-20553": (COMMON, DENY),
    "muscles-documented": (COMMON, REVIEW),
    "one-per-day": (COMMON, DENY),
    "units": (COMMON, DENY),
    "anesthesia": (COMMON, DENY),
    "dry-needling-overlap": (COMMON, DENY),
    "dry-needling-muscles": (COMMON, REVIEW),
    "em-needs-25": (COMMON, DENY),
    "modifier-25-on-tpi": (COMMON, DENY),
    "excluded-injectate": (COMMON, DENY),
    "substances-documented": (COMMON, REVIEW),
    "frequency": (None, DENY),  # medicare-tpi and aetna-tpi
    "bilateral": (MEDICARE, DENY),
    "covered-diagnosis": (MEDICARE, DENY),
    "spacing": (AETNA, DENY),
}


def _sources(root: Path) -> dict[tuple[str, str], str]:
    """(policy, rule) -> "policies/x/y.policy:N", read from the policy files when they are there."""
    out = {}
    for policy, rel in POLICY_FILES.items():
        try:
            text = (root / rel).read_text(encoding="utf-8")
        except OSError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            m = re.match(r"\s*rule\s+([A-Za-z0-9_-]+)\s*:", line)
            if m:
                out[(policy, m.group(1))] = f"{rel}:{n}"
    return out


_ESCAPE = re.compile(r'["\\\x00-\x1f\ud800-\udfff]')


def q(s: str) -> str:
    """A JSON string literal (non-ASCII kept, as `json.dumps(..., ensure_ascii=False)` writes it)."""
    if _ESCAPE.search(s) is None:
        return '"' + s + '"'
    return json.dumps(s, ensure_ascii=False)


class Reasons:
    """Pre-rendered JSON fragments of each reason, so that output needs no json.dumps."""

    def __init__(self, root: Path):
        src = _sources(root)
        self.head: dict[tuple[str, str], tuple[str, str]] = {}
        for rule, (policy, outcome) in RULES.items():
            for pol in ((MEDICARE, AETNA) if policy is None else (policy,)):
                s = src.get((pol, rule), "")
                self.head[(pol, rule)] = (
                    f'{{"policy": "{pol}", "rule": "{rule}", "outcome": "{outcome}", "message": ',
                    f', "source": {q(s)}}}',
                )


# ---- dates --------------------------------------------------------------------------------------

_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_DATES: dict[str, int | None] = {}
_ISO: dict[int, str] = {}


def ordinal(s: str) -> int | None:
    o = _DATES.get(s, 0)
    if o == 0:
        t = s.strip()
        o = None
        if _DATE_RE.match(t):
            try:
                o = date.fromisoformat(t).toordinal()
            except ValueError:
                pass
        if len(_DATES) < 200_000:
            _DATES[s] = o
    return o


def iso(o: int) -> str:
    s = _ISO.get(o)
    if s is None:
        s = _ISO[o] = date.fromordinal(o).isoformat()
    return s


def minus_months(o: int, months: int) -> int:
    d = date.fromordinal(o)
    y, m = divmod(d.year * 12 + d.month - 1 - months, 12)
    return _clamped(y, m + 1, d.day)


def plus_months(o: int, months: int) -> int:
    d = date.fromordinal(o)
    y, m = divmod(d.year * 12 + d.month - 1 + months, 12)
    return _clamped(y, m + 1, d.day)


def _clamped(y: int, m: int, day: int) -> int:
    while True:
        try:
            return date(y, m, day).toordinal()
        except ValueError:
            day -= 1


_FLOOR12: dict[int, int] = {}


def floor_12_months(o: int) -> int:
    """Sessions p with floor < p count in the 12 months ending on day o."""
    f = _FLOOR12.get(o)
    if f is None:
        f = _FLOOR12[o] = minus_months(o, MEDICARE_MONTHS)
    return f


def nth(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


# ---- reading claims -----------------------------------------------------------------------------


class Bad(Exception):
    pass


class Line:
    __slots__ = ("claim", "order", "no", "date", "code", "raw_code", "units", "mods", "covered", "muscles", "subs",
                 "decision", "reasons")

    def __init__(self, claim, order, no, d, code, raw_code, units, mods, covered, muscles, subs):
        self.claim = claim
        self.order = order
        self.no = no
        self.date = d
        self.code = code
        self.raw_code = raw_code
        self.units = units
        self.mods = mods
        self.covered = covered  # a TPI line with a covered diagnosis (Medicare)
        self.muscles = muscles
        self.subs = subs
        self.decision = APPROVE
        self.reasons = None


class Claim:
    __slots__ = ("claim_id", "patient_id", "payer", "lines", "excluded", "input_line")

    def __init__(self, claim_id, patient_id, payer, input_line):
        self.claim_id = claim_id
        self.patient_id = patient_id
        self.payer = payer
        self.lines = []
        self.excluded = None
        self.input_line = input_line


class Error:
    __slots__ = ("claim_id", "error", "input_line")

    def __init__(self, claim_id, error, input_line):
        self.claim_id = claim_id
        self.error = error
        self.input_line = input_line


_CODE_RE = re.compile(r"[A-Za-z0-9]{5}\Z")
_MOD_RE = re.compile(r"[A-Za-z0-9]{2}\Z")
_WORD_RE = re.compile(r"[^\W_]+")
_CODES: dict[str, tuple[str, str] | None] = {}


def code_of(s: str) -> tuple[str, str] | None:
    """(upper-cased code, code as written but trimmed), or None when it is not 5 letters or digits."""
    c = _CODES.get(s, 0)
    if c == 0:
        t = s.strip()
        c = (t.upper(), t) if _CODE_RE.match(t) else None
        if len(_CODES) < 100_000:
            _CODES[s] = c
    return c


# Normal forms are memoised per distinct string: a claims file repeats the same few hundred values.
_NAME: dict[str, str] = {}
_MOD: dict[str, str] = {}
_COVERED: dict[str, bool] = {}
_EXCLUDED: dict[str, bool] = {}
_MEMO_MAX = 200_000
_SHARED: dict[str, str] = {}  # one string object per patient id and payer, however many claims name it


def names(values) -> tuple:
    """Distinct names, trimmed, case-folded and spaces collapsed; blanks dropped."""
    out = []
    for v in values:
        n = _NAME.get(v)
        if n is None:
            n = " ".join(v.split()).casefold()
            if len(_NAME) < _MEMO_MAX:
                _NAME[v] = n
        if n and n not in out:
            out.append(n)
    return tuple(out)


def mods_of(values) -> tuple:
    out = []
    for v in values:
        t = _MOD.get(v)
        if t is None:
            s = v.strip()
            t = s.upper() if _MOD_RE.match(s) else ""
            if len(_MOD) < _MEMO_MAX:
                _MOD[v] = t
        if not t:
            raise Bad(f"modifier {json.dumps(v)} is not two letters or digits")
        if t not in out:
            out.append(t)
    return tuple(out)


def is_covered(dx) -> bool:
    for x in dx:
        c = _COVERED.get(x)
        if c is None:
            # contract section 5: "dots and surrounding spaces removed, upper-cased"
            c = x.strip().replace(".", "").upper().startswith(COVERED)
            if len(_COVERED) < _MEMO_MAX:
                _COVERED[x] = c
        if c:
            return True
    return False


def is_excluded(s: str) -> bool:
    e = _EXCLUDED.get(s)
    if e is None:
        e = False
        for w in _WORD_RE.findall(s.casefold()):
            if w.startswith(EXCLUDED_STEMS):
                e = True
                break
        if len(_EXCLUDED) < _MEMO_MAX:
            _EXCLUDED[s] = e
    return e


def make_line(claim: Claim, order: int, no, ds, cs, units, mods, dx, muscles, subs, claim_dx) -> Line:
    """Validate the values every line has, and keep only what the rules read."""
    d = _DATES.get(ds)
    if d is None:
        d = ordinal(ds)
        if d is None:
            raise Bad(f"date {json.dumps(ds)} is not a real date")
    c = _CODES.get(cs)
    if c is None:
        c = code_of(cs)
        if c is None:
            raise Bad(f"code {json.dumps(cs)} is not a procedure code")
    if units is None:
        units = 1
    elif units < 1:
        raise Bad(f"units must be at least 1, not {units}")
    m = mods_of(mods) if mods else ()
    code = c[0]
    if code == "20552" or code == "20553":
        ms = names(muscles) if muscles else ()
        ss = ()
        if subs:
            ss = tuple(t for t in (s.strip() for s in subs) if t)
            if claim.excluded is None:
                for s in ss:
                    if is_excluded(s):
                        claim.excluded = s
                        break
        if dx is None:
            dx = claim_dx
        return Line(claim, order, no, d, code, c[1], units, m, is_covered(dx) if dx else False, ms, ss)
    if code == "20560" or code == "20561":
        return Line(claim, order, no, d, code, c[1], units, m, False, names(muscles) if muscles else (), ())
    return Line(claim, order, no, d, code, c[1], units, m, False, (), ())


def finish_claim(claim: Claim, seen: set) -> Claim:
    lines = claim.lines
    if len(lines) > 1:
        nos = set()
        for ln in lines:
            if ln.no in nos:
                raise Bad(f"line {ln.no} is repeated within the claim")
            nos.add(ln.no)
    return claim


if msgspec is not None:

    class LineS(msgspec.Struct):
        line: int
        date: str
        code: str
        units: int | None = None
        modifiers: list[str] | None = None
        diagnoses: list[str] | None = None
        muscles: list[str] | None = None
        substances: list[str] | None = None

    class ClaimS(msgspec.Struct):
        claim_id: str
        patient_id: str
        payer: str
        lines: list[LineS]
        provider_id: str | None = None
        diagnoses: list[str] | None = None

    _decode_typed = msgspec.json.Decoder(ClaimS).decode

    def from_struct(c, n: int, order: int, seen: set) -> Claim:
        cid = c.claim_id
        if not cid.strip():
            raise Bad("claim_id is empty")
        if cid in seen:
            raise Bad("claim_id already used")
        seen.add(cid)
        if not c.patient_id.strip():
            raise Bad("patient_id is empty")
        if not c.payer.strip():
            raise Bad("payer is empty")
        if not c.lines:
            raise Bad("lines is empty")
        pid = c.patient_id
        claim = Claim(cid, _SHARED.setdefault(pid, pid), _SHARED.setdefault(c.payer, c.payer), n)
        cdx = c.diagnoses
        append = claim.lines.append
        for ln in c.lines:
            append(make_line(claim, order, ln.line, ln.date, ln.code, ln.units, ln.modifiers, ln.diagnoses, ln.muscles,
                             ln.substances, cdx))
        return finish_claim(claim, seen)


def _text(obj: dict, key: str, required: bool):
    v = obj.get(key)
    if v is None:
        if required:
            raise Bad(f"{key} is missing")
        return None
    if type(v) is not str:
        raise Bad(f"{key} must be a string")
    if required and not v.strip():
        raise Bad(f"{key} is empty")
    return v


def _list(obj: dict, key: str):
    v = obj.get(key)
    if v is None:
        return None
    if type(v) is not list or any(type(x) is not str for x in v):
        raise Bad(f"{key} must be a list of strings")
    return v


def _int(obj: dict, key: str, required: bool):
    v = obj.get(key)
    if v is None:
        if required:
            raise Bad(f"{key} is missing")
        return None
    if type(v) is not int:
        raise Bad(f"{key} must be a whole number")
    return v


def from_dict(obj, n: int, order: int, seen: set) -> Claim:
    if type(obj) is not dict:
        raise Bad("a claim must be a JSON object")
    cid = _text(obj, "claim_id", True)
    if cid in seen:
        raise Bad("claim_id already used")
    seen.add(cid)
    pid = _text(obj, "patient_id", True)
    payer = _text(obj, "payer", True)
    _text(obj, "provider_id", False)
    cdx = _list(obj, "diagnoses")
    lines = obj.get("lines")
    if lines is None:
        raise Bad("lines is missing")
    if type(lines) is not list:
        raise Bad("lines must be a list")
    if not lines:
        raise Bad("lines is empty")
    claim = Claim(cid, _SHARED.setdefault(pid, pid), _SHARED.setdefault(payer, payer), n)
    for lo in lines:
        if type(lo) is not dict:
            raise Bad("a line must be an object")
        no = _int(lo, "line", True)
        ds = _text(lo, "date", True)
        cs = _text(lo, "code", True)
        units = _int(lo, "units", False)
        mods = _list(lo, "modifiers")
        dx = _list(lo, "diagnoses")
        muscles = _list(lo, "muscles")
        subs = _list(lo, "substances")
        claim.lines.append(make_line(claim, order, no, ds, cs, units, mods, dx, muscles, subs, cdx))
    return finish_claim(claim, seen)


def _lone_surrogate(obj) -> bool:
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
            return False
        except UnicodeEncodeError:
            return True
    if isinstance(obj, dict):
        return any(_lone_surrogate(k) or _lone_surrogate(v) for k, v in obj.items())
    if isinstance(obj, list):
        return any(_lone_surrogate(v) for v in obj)
    return False


def _peek_id(obj):
    if isinstance(obj, dict):
        v = obj.get("claim_id")
        if isinstance(v, str) and v.strip():
            try:
                v.encode("utf-8")
                return v
            except UnicodeEncodeError:
                return None
    return None


def slow(raw: bytes, n: int, order: int, seen: set):
    """The standard library path, which also says what is wrong with a claim that cannot be read."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Error(None, "not UTF-8", n)
    try:
        obj = json.loads(text)
    except RecursionError:
        return Error(None, "not JSON: nested too deeply", n)
    except ValueError as exc:
        return Error(None, f"not JSON: {getattr(exc, 'msg', exc)}", n)
    if b"\\u" in raw and _lone_surrogate(obj):
        return Error(_peek_id(obj), "a string holds an unpaired surrogate escape", n)
    try:
        return from_dict(obj, n, order, seen)
    except Bad as exc:
        return Error(_peek_id(obj), str(exc), n)
    except RecursionError:
        return Error(None, "nested too deeply", n)


def read(lines, use_msgspec: bool) -> list:
    """One Claim or Error per non-blank line of a JSON Lines file (an iterable of byte lines)."""
    out = []
    seen: set = set()
    append = out.append
    typed = use_msgspec and msgspec is not None
    if typed:
        decode = _decode_typed
        build = from_struct
    for n, raw in enumerate(lines, 1):
        if raw[:1] != b"{":
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
        order = len(out)
        if typed and b"\\u" not in raw:
            try:
                c = decode(raw)
            except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError):
                append(slow(raw, n, order, seen))
                continue
            try:
                append(build(c, n, order, seen))
            except Bad as exc:
                append(Error(c.claim_id if c.claim_id.strip() else None, str(exc), n))
            continue
        append(slow(raw, n, order, seen))
    return out


# ---- deciding -----------------------------------------------------------------------------------


def decide(records: list, history: list) -> None:
    """Decide every line of every readable claim, patient and payer by patient and payer."""
    groups: dict[tuple[str, str], list] = {}
    payer_keys: dict[str, str] = {}
    for i, rec in enumerate(records):
        if type(rec) is Error:
            continue
        key = payer_keys.get(rec.payer)
        if key is None:
            key = payer_keys[rec.payer] = rec.payer.strip().lower()
        if key not in PAYERS:
            records[i] = Error(rec.claim_id, f"no policy for payer {rec.payer!r}", rec.input_line)
            continue
        g = groups.get((key, rec.patient_id))
        if g is None:
            groups[(key, rec.patient_id)] = [rec]
        else:
            g.append(rec)
    past: dict[tuple[str, str], list] = {}
    for h in history:
        key = h.payer.strip().lower()
        if key in PAYERS:
            tpis = [ln for ln in h.lines if ln.code == "20552" or ln.code == "20553"]
            if tpis:
                past.setdefault((key, h.patient_id), []).extend(tpis)
    for (payer, _), claims in groups.items():
        decide_group(payer == "medicare", claims, past.get((payer, claims[0].patient_id), ()))


def _sort_key(ln: Line):
    return (ln.date, ln.order, ln.no)


def decide_group(medicare: bool, claims: list, history) -> None:
    if len(claims) == 1:
        lines = list(claims[0].lines)
    else:
        lines = [ln for c in claims for ln in c.lines]
    # Which days have a TPI (input or history, whatever its decision): the same-day rules look there.
    tpi_days: dict[int, list] = {}
    for h in history:
        d = tpi_days.get(h.date)
        if d is None:
            tpi_days[h.date] = [h]
        else:
            d.append(h)
    any_tpi = bool(history)
    for ln in lines:
        if ln.code == "20552" or ln.code == "20553":
            any_tpi = True
            break
    if not any_tpi:
        return  # nothing to decide: every line is approved
    if len(lines) > 1:
        lines.sort(key=_sort_key)
    for ln in lines:
        if ln.code == "20552" or ln.code == "20553":
            d = tpi_days.get(ln.date)
            if d is None:
                tpi_days[ln.date] = [ln]
            else:
                d.append(ln)
    # TPI lines counted so far, by day (history, then lines not denied), and the sorted session days.
    earlier: dict[int, list] = {}
    for h in history:
        e = earlier.get(h.date)
        if e is None:
            earlier[h.date] = [h]
        else:
            e.append(h)
    sessions = sorted(earlier)
    for ln in lines:
        code = ln.code
        reasons = None
        if code == "20552" or code == "20553":
            reasons = []
            d = ln.date
            ms = ln.muscles
            if not ms:
                reasons.append(("muscles-documented", COMMON, REVIEW,
                                f"no muscles documented for {code}: the procedure note must name the muscles injected"))
            elif code == "20552":
                if len(ms) > 2:
                    reasons.append(("muscles-for-20552", COMMON, DENY,
                                    f"20552 is for 1 or 2 muscles but {len(ms)} distinct muscles were injected; bill 20553"))
            elif len(ms) < 3:
                reasons.append(("muscles-for-20553", COMMON, DENY,
                                f"20553 is for 3 or more muscles; {len(ms)} distinct documented, so bill 20552"))
            e = earlier.get(d)
            if e:
                o = e[0]
                reasons.append(("one-per-day", COMMON, DENY,
                                f"one trigger point injection code per patient per day: {o.code} is already billed for {iso(d)} (claim {o.claim.claim_id}, line {o.no})"))
            if ln.units > 1:
                reasons.append(("units", COMMON, DENY,
                                f"{code} is billed once per session whatever the number of injections, not {ln.units} units"))
            mods = ln.mods
            if "25" in mods:
                reasons.append(("modifier-25-on-tpi", COMMON, DENY, f"modifier 25 belongs on the E/M line, not on {code}"))
            if ln.claim.excluded is not None:
                reasons.append(("excluded-injectate", COMMON, DENY,
                                f"{ln.claim.excluded} is an excluded injectate: every line of the claim is denied"))
            if not ln.subs:
                reasons.append(("substances-documented", COMMON, REVIEW, f"no injected substances documented for {code}"))
            hi = bisect_left(sessions, d)
            if medicare:
                if hi >= MEDICARE_SESSIONS:
                    lo = bisect_right(sessions, floor_12_months(d), 0, hi)
                    if hi - lo >= MEDICARE_SESSIONS:
                        counted = sessions[lo:hi]
                        key = counted[hi - lo - MEDICARE_SESSIONS]
                        nxt = plus_months(key, MEDICARE_MONTHS)
                        while floor_12_months(nxt) < key:
                            nxt += 1
                        reasons.append(("frequency", MEDICARE, DENY,
                                        f"{nth(hi - lo + 1)} trigger point injection session in 12 months; Medicare allows 3 (sessions on {', '.join(map(iso, counted))}; next eligible {iso(nxt)})"))
                if "50" in mods:
                    reasons.append(("bilateral", MEDICARE, DENY, f"modifier 50 (bilateral) does not apply to {code}"))
                if not ln.covered:
                    reasons.append(("covered-diagnosis", MEDICARE, DENY,
                                    "no covered diagnosis for a trigger point injection: myalgia M79.1, fibromyalgia M79.7, myositis M60.8, muscle spasm M62.83, cervicalgia M54.2, low back pain M54.5, thoracic spine pain M54.6 or tension-type headache G44.2"))
            else:
                if hi >= AETNA_SESSIONS:
                    year = date.fromordinal(d).year
                    lo = bisect_right(sessions, date(year, 1, 1).toordinal() - 1, 0, hi)
                    if hi - lo >= AETNA_SESSIONS:
                        reasons.append(("frequency", AETNA, DENY,
                                        f"{nth(hi - lo + 1)} trigger point injection session in {year}; Aetna allows 4 a calendar year (next eligible {year + 1}-01-01)"))
                if hi:
                    last = sessions[hi - 1]
                    if d - last < AETNA_MIN_DAYS:
                        reasons.append(("spacing", AETNA, DENY,
                                        f"{d - last} days after the last trigger point injection session ({iso(last)}); Aetna requires at least 7 (next eligible {iso(last + AETNA_MIN_DAYS)})"))
            denied = False
            for r in reasons:
                if r[2] == DENY:
                    denied = True
                    break
            if not denied:
                e = earlier.get(d)
                if e is None:
                    earlier[d] = [ln]
                    i = bisect_left(sessions, d)
                    if i == len(sessions) or sessions[i] != d:
                        insort(sessions, d)
                else:
                    e.append(ln)
        else:
            others = tpi_days.get(ln.date)
            if others:
                if "00100" <= code <= "01999" and code.isdigit():
                    reasons = [("anesthesia", COMMON, DENY,
                                f"anesthesia {code} is not separately payable with a trigger point injection the same day")]
                elif code == "20560" or code == "20561":
                    reasons = []
                    ms = ln.muscles
                    for o in others:
                        shared = None
                        for m in ms:
                            if m in o.muscles:
                                shared = m
                                break
                        if shared is not None:
                            reasons.append(("dry-needling-overlap", COMMON, DENY,
                                            f"dry needling of {shared}, which also had a trigger point injection that day"))
                            break
                    if not ms or any(not o.muscles for o in others):
                        reasons.append(("dry-needling-muscles", COMMON, REVIEW,
                                        "dry needling the same day as a trigger point injection: both lines must name the muscles, to show they differ"))
                elif "99202" <= code <= "99215" and code.isdigit() and "25" not in ln.mods:
                    reasons = [("em-needs-25", COMMON, DENY,
                                f"E/M {code} the same day as trigger point injection {others[0].code} needs modifier 25")]
            if ln.claim.excluded is not None:
                if reasons is None:
                    reasons = []
                reasons.append(("excluded-injectate", COMMON, DENY,
                                f"{ln.claim.excluded} is an excluded injectate: every line of the claim is denied"))
        if reasons:
            rank = 0
            for r in reasons:
                k = RANK[r[2]]
                if k > rank:
                    rank = k
            ln.decision = BY_RANK[rank]
            ln.reasons = reasons


# ---- writing ------------------------------------------------------------------------------------


def render(rec, heads) -> str:
    if type(rec) is Error:
        cid = "null" if rec.claim_id is None else q(rec.claim_id)
        return f'{{"claim_id": {cid}, "error": {q(rec.error)}, "input_line": {rec.input_line}}}'
    rank = 0
    parts = []
    for ln in rec.lines:
        if ln.reasons is None:
            parts.append(f'{{"line": {ln.no}, "code": "{ln.raw_code}", "decision": "approve", "reasons": []}}')
            continue
        k = RANK[ln.decision]
        if k > rank:
            rank = k
        rs = []
        for rule, policy, _, msg in ln.reasons:
            h = heads[(policy, rule)]
            rs.append(h[0] + q(msg) + h[1])
        parts.append(f'{{"line": {ln.no}, "code": "{ln.raw_code}", "decision": "{ln.decision}", "reasons": [{", ".join(rs)}]}}')
    return f'{{"claim_id": {q(rec.claim_id)}, "decision": "{BY_RANK[rank]}", "lines": [{", ".join(parts)}]}}'


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="A hand-written checker of the shipped TPI policies (benchmark baseline).")
    ap.add_argument("claims", help="claims file (JSON Lines)")
    ap.add_argument("--history", metavar="FILE", help="earlier claims that count as already paid")
    ap.add_argument("-o", "--output", metavar="FILE", help="write decisions here instead of standard output")
    ap.add_argument("--stdlib", action="store_true", help="decode with the json module even when msgspec is installed")
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[1]), help="where policies/ is (for the source fields)")
    args = ap.parse_args(argv)
    # A batch run keeps millions of small objects alive: the cyclic collector would walk them again
    # and again (about half the run time) and would find no cycles to free.
    gc.disable()
    use_msgspec = not args.stdlib
    history = []
    if args.history:
        try:
            with open(args.history, "rb") as f:
                hist_records = read(f, use_msgspec)
        except OSError as exc:
            sys.stderr.write(f"handwritten: cannot read history file {args.history}: {exc}\n")
            return 2
        for rec in hist_records:
            if type(rec) is Error:
                sys.stderr.write(f"handwritten: {args.history}:{rec.input_line}: history claim cannot be read: {rec.error}\n")
                return 2
            history.append(rec)
    try:
        with open(args.claims, "rb") as f:  # line by line: the file is never all in memory
            records = read(f, use_msgspec)
    except OSError as exc:
        sys.stderr.write(f"handwritten: cannot read claims file {args.claims}: {exc}\n")
        return 2
    decide(records, history)
    heads = Reasons(Path(args.root)).head
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    errors = False
    try:
        buf = []
        for rec in records:
            if type(rec) is Error:
                errors = True
            buf.append(render(rec, heads))
            if len(buf) >= 20_000:
                buf.append("")
                out.write("\n".join(buf))
                buf = []
        if buf:
            buf.append("")
            out.write("\n".join(buf))
    finally:
        if args.output:
            out.close()
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
