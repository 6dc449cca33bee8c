"""X12 837P (005010X222A1) in and out: professional claims read into the claim objects of contract
section 1 (section 6 is the mapping, field by field), and section-1 claims written as an interchange
(for tests, docs and the benchmark).

Reading is built for a million claims. An interchange is one long string of segments, so the reader
splits it on the segment terminator once and walks the segments in one loop that dispatches on the
first three characters of each (`NM1`, `HL*`) with plain string comparisons. The service line segments
that nearly always have one shape (`DTP*472*D8*`, `REF*6R*`, `NTE*ADD*`) are read by their prefix
without being split; the others the mapping reads are split on the element separator once; the rest
(addresses, contacts, other payers' loops) are not split at all. What repeats from claim to claim - an
SV1 segment, an HI segment, a date - is parsed once per read and looked up after that. The claim
objects are plain dicts and lists; no object is made per segment.

The envelope (ISA/IEA, GS/GE, ST/SE) is checked before the first claim is mapped: one regular
expression scan of the whole text finds the few control segments, `str.count` numbers them, both in C.
A file whose envelope is broken raises `FormatError` (exit 2) and decides nothing, rather than failing
after half its claims were decided.

The mapping passes values on as written and leaves judging them to the claim reader (a bad date, units 0,
a code of four characters are reported by `payrule.claims.readers` as for JSON Lines). Only what the
mapping itself cannot carry over becomes an `Unmapped` error record: a diagnosis pointer that names no
diagnosis, a service line segment with no LX before it, text that is not ASCII.

**Non-ASCII bytes.** X12's character sets (basic and extended) are ASCII. A byte outside it in a control
segment (ISA, GS, ST, SE, GE, IEA) makes the envelope unreadable: `FormatError`. Anywhere else the file
is still split (separators are ASCII, so UTF-8 or Latin-1 text cannot hide one), and every claim that
reads a segment with such a byte - its own segments, or the provider, subscriber or patient loop it sits
in - is an error record naming the segment; the other claims are decided. Header segments no claim reads
(BHT, the submitter and receiver names) are not judged.
"""
from __future__ import annotations

import re
from datetime import date
from typing import Iterable, Iterator

from payrule.claims.formats import FormatError, Mapped, Unmapped

__all__ = ["read_x12", "write_x12", "unsayable", "GUIDE", "MAX_LINES", "MAX_DIAGNOSES", "MAX_POINTERS",
           "MAX_MODIFIERS", "CLAIMS_PER_TRANSACTION"]

GUIDE = "005010X222A1"  # the 837P implementation guide, ASC X12N/005010X222A1
MAX_LINES = 50  # loop 2400 repeats at most 50 times
MAX_DIAGNOSES = 12  # HI01..HI12
MAX_POINTERS = 4  # SV107-1..SV107-4
MAX_MODIFIERS = 4  # SV101-3..SV101-6
CLAIMS_PER_TRANSACTION = 5000  # the guide's advice for the CLM segments of one ST..SE

ISA_LENGTH = 106  # the ISA segment with its terminator: fixed layout, every element padded
# Where the ISA's 16 element separators stand (ISA01 is 2 characters, ISA02 10, ... ISA16 1).
_ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)
_ISA_SEPARATORS: tuple[int, ...] = tuple(3 + sum(w + 1 for w in _ISA_WIDTHS[:i]) for i in range(16))
assert _ISA_SEPARATORS[-1] == 103 and _ISA_SEPARATORS[-1] + 2 == ISA_LENGTH - 1
_LINE_BREAKS = "\r\n"


# ---- reading ----------------------------------------------------------------------------------


def read_x12(data: bytes) -> Iterator[Mapped]:
    """The claims of an X12 837P interchange, in file order: `(input_line, claim_object)` for each CLM
    segment, `input_line` being the CLM's 1-based number among the file's segments, or an `Unmapped`
    for a claim the mapping cannot complete. Raises `FormatError` at once (before any claim) when the
    file is not an interchange: no ISA, an ISA that is not the fixed 106-character layout, control
    segments out of order, a count or control number in a trailer that does not match."""
    text, ascii_only = _decode(data)
    sep, comp, term, text = _separators(text)
    _check_envelope(text, sep, term, ascii_only)
    return _map(text.split(term), sep, comp, ascii_only)


def _decode(data: bytes) -> tuple[str, bool]:
    """The interchange as text, and whether it is all ASCII. A byte-order mark and white space before
    the ISA are skipped (the format detector skips them too). Bytes beyond ASCII are kept, one
    character each (Latin-1), so that segments still split where they should and the claims that hold
    them can be named (see the module's docstring)."""
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    data = data.lstrip()
    if data.isascii():
        return data.decode("ascii"), True
    return data.decode("latin-1"), False


def _separators(text: str) -> tuple[str, str, str, str]:
    """(element separator, component separator, segment terminator, text) from the ISA segment. The
    text comes back without the line breaks that are not the terminator (a line break after each
    segment, or a file wrapped at a fixed width, carries nothing in X12) and without the terminator
    and white space after the last segment, so that it is the segments joined by the terminator."""
    if text[:3] != "ISA":
        raise FormatError("segment 1: an X12 interchange starts with an ISA segment" +
                          (f", not {text[:3]!r}" if text else "; the file is empty"))
    if "\n" in text[:ISA_LENGTH - 1] or "\r" in text[:ISA_LENGTH - 1]:  # wrapped at a fixed width, ISA and all
        text = text.replace("\r", "").replace("\n", "")
    sep = text[3:4]
    where = "segment 1 (ISA): "
    if len(text) < ISA_LENGTH:
        raise FormatError(f"{where}the ISA segment is {ISA_LENGTH} characters of fixed layout; the file has only {len(text)}")
    if sep.isalnum() or sep.isspace():
        raise FormatError(f"{where}the element separator (the 4th character) is {sep!r}, a letter, digit or space")
    for i, p in enumerate(_ISA_SEPARATORS):
        if text[p] != sep:
            raise FormatError(f"{where}not the fixed 106-character layout: ISA{i:02d} should end at character {p}, "
                              f"where the element separator {sep!r} belongs, but character {p + 1} is {text[p]!r}")
    if text.count(sep, 0, ISA_LENGTH - 1) != 16:
        raise FormatError(f"{where}the element separator {sep!r} stands inside an ISA element")
    if not text[:ISA_LENGTH].isascii():
        raise FormatError(f"{where}holds a byte that is not ASCII")
    version = text[84:89]
    if version != "00501":
        raise FormatError(f"{where}ISA12 is {version!r}; payrule reads version 00501 interchanges ({GUIDE})")
    rep, comp, term = text[82], text[104], text[105]
    if len({sep, rep, comp, term}) != 4:
        raise FormatError(f"{where}the separators must differ: element {sep!r}, repetition {rep!r} (ISA11), "
                          f"component {comp!r} (ISA16), segment terminator {term!r}")
    if comp.isalnum() or comp.isspace() or rep.isalnum() or rep.isspace() or term.isalnum() or term == " ":
        raise FormatError(f"{where}a separator is a letter, digit or space: repetition {rep!r} (ISA11), "
                          f"component {comp!r} (ISA16), segment terminator {term!r}")
    for br in _LINE_BREAKS:
        if br != term and br in text:
            text = text.replace(br, "")
    return sep, comp, term, text.rstrip(term + " \t")


def _check_envelope(text: str, sep: str, term: str, ascii_only: bool) -> None:
    """Raise FormatError unless the control segments nest (ISA > GS > ST..SE > GE > IEA, any number of
    each), each trailer's count and control number match its header, and no segment stands outside a
    transaction set. Only the control segments are looked at: found by one regular expression scan of
    the whole text (a terminator, a control segment id, a separator; in C, a third the time of six
    `str.find` scans), numbered by counting the terminators in between."""
    control = re.compile(re.escape(term) + "(ISA|IEA|GS|GE|ST|SE)" + re.escape(sep))
    found: list[tuple[int, str]] = [(0, "ISA")]
    found += [(m.start() + 1, m.group(1)) for m in control.finditer(text)]
    total = text.count(term) + 1
    n, at = 1, 0
    isa: tuple[int, list[str]] | None = None  # (segment number, elements) of the open header
    gs: tuple[int, list[str]] | None = None
    st: tuple[int, list[str]] | None = None
    groups = sets = 0
    prev, prev_end = 0, -1  # the number of the last control segment, and where its terminator stands

    def stray(number: int, pos: int) -> str:
        """`segment N (ID)` for the segment that starts at pos."""
        end = text.find(term, pos)
        seg = text[pos:] if end < 0 else text[pos:end]
        return f"segment {number} ({seg.split(sep, 1)[0]})"

    for pos, sid in found:
        n += text.count(term, at, pos)
        at = pos
        end = text.find(term, pos)
        seg = text[pos:] if end < 0 else text[pos:end]
        e = seg.split(sep)
        where = f"segment {n} ({sid}): "
        if not ascii_only and not seg.isascii():
            raise FormatError(f"{where}holds a byte that is not ASCII")
        if st is None and n != prev + 1:
            raise FormatError(f"{stray(prev + 1, prev_end + 1)}: outside a transaction set (no ST..SE around it)")
        if sid == "ISA":
            if isa is not None:
                raise FormatError(f"{where}a new interchange before the one that began at segment {isa[0]} ended (no IEA)")
            if n > 1:
                _same_isa(seg + term, text[:ISA_LENGTH], where)
            isa, groups = (n, e), 0
        elif sid == "GS":
            if isa is None:
                raise FormatError(f"{where}a functional group outside an interchange (no ISA before it)")
            if gs is not None:
                raise FormatError(f"{where}a new functional group before the one that began at segment {gs[0]} ended (no GE)")
            gs, sets, groups = (n, e), 0, groups + 1
        elif sid == "ST":
            if gs is None:
                raise FormatError(f"{where}a transaction set outside a functional group (no GS before it)")
            if st is not None:
                raise FormatError(f"{where}a new transaction set before the one that began at segment {st[0]} ended (no SE)")
            kind = _el(e, 1)
            if kind != "837":
                raise FormatError(f"{where}ST01 is {kind!r}: payrule reads 837 claims")
            version = _el(e, 3) or _el(gs[1], 8)
            if not version.startswith("005010X222"):
                raise FormatError(f"{where}the transaction set follows {version or 'no guide'!r}; payrule reads the 837P "
                                  f"guide {GUIDE}")
            st, sets = (n, e), sets + 1
        elif sid == "SE":
            if st is None:
                raise FormatError(f"{where}SE with no ST before it")
            has = n - st[0] + 1
            _count(e, 1, has, f"{where}SE01 says {{}} segments, the transaction set has {has}")
            _same(e, 2, st[1], 2, f"{where}SE02 {{}} does not match ST02 {{}} of segment {st[0]}")
            st = None
        elif sid == "GE":
            if gs is None:
                raise FormatError(f"{where}GE with no GS before it")
            if st is not None:
                raise FormatError(f"{where}GE before the transaction set that began at segment {st[0]} ended (no SE)")
            _count(e, 1, sets, f"{where}GE01 says {{}} transaction sets, the functional group has {sets}")
            _same(e, 2, gs[1], 6, f"{where}GE02 {{}} does not match GS06 {{}} of segment {gs[0]}", numeric=True)
            gs = None
        else:  # IEA
            if isa is None:
                raise FormatError(f"{where}IEA with no ISA before it")
            if gs is not None:
                raise FormatError(f"{where}IEA before the functional group that began at segment {gs[0]} ended (no GE)")
            _count(e, 1, groups, f"{where}IEA01 says {{}} functional groups, the interchange has {groups}")
            _same(e, 2, isa[1], 13, f"{where}IEA02 {{}} does not match ISA13 {{}} of segment {isa[0]}")
            isa = None
        prev, prev_end = n, (len(text) if end < 0 else end)
    for hdr, trailer, kind in ((st, "SE", "transaction set"), (gs, "GE", "functional group"), (isa, "IEA", "interchange")):
        if hdr is not None:
            raise FormatError(f"segment {hdr[0]} ({hdr[1][0]}): the {kind} that begins here has no {trailer} "
                              f"(the file ends at segment {total})")
    if prev < total:
        raise FormatError(f"{stray(prev + 1, prev_end + 1)}: after the interchange's IEA (segment {prev})")


def _el(e: list[str], i: int) -> str:
    return e[i] if i < len(e) else ""


def _count(e: list[str], i: int, has: int, words: str) -> None:
    said = _el(e, i).strip()
    number = said.isdigit() and len(said) < 19
    if not number or int(said) != has:
        raise FormatError(words.format(int(said) if number else repr(said)))


def _same(e: list[str], i: int, head: list[str], j: int, words: str, numeric: bool = False) -> None:
    a, b = _el(e, i).strip(), _el(head, j).strip()
    if a == b or (numeric and a.isdigit() and b.isdigit() and a.lstrip("0") == b.lstrip("0")):
        return
    raise FormatError(words.format(repr(a), repr(b)))


def _same_isa(seg: str, first: str, where: str) -> None:
    """A later interchange in the same file must be the fixed layout with the first one's separators
    (the file was split with those)."""
    if len(seg) != ISA_LENGTH or any(seg[p] != first[p] for p in (*_ISA_SEPARATORS, 82, 104)):
        raise FormatError(f"{where}a later ISA must be the fixed 106-character layout with the separators of "
                          f"the first one (segment 1)")


def _number(v: str):
    """An X12 numeric value (SV104 is type R): an int when it is a whole number (`2`, `2.0`, `-1`), a
    float for a fraction (`1.5`, which the claim reader then reports), else the text as written."""
    body = v[1:] if v[:1] in "+-" else v
    whole, _, frac = body.partition(".")
    if (whole or frac) and len(body) < 40 and body.isascii() and (not whole or whole.isdigit()) and (not frac or frac.isdigit()):
        if frac.strip("0"):
            return float(v)
        x = int(whole or "0")
        return -x if v[:1] == "-" else x
    return v


def _d8(v: str) -> str:
    """CCYYMMDD as CCYY-MM-DD; anything else as written, for the claim reader to report."""
    return f"{v[:4]}-{v[4:6]}-{v[6:]}" if len(v) == 8 and v.isdigit() else v


def _lx_line(seg: str, sep: str) -> dict:
    """A new service line from its LX segment: LX01 is its number (REF*6R may replace it later)."""
    v = seg[3:]
    if sep in v:
        v = v.partition(sep)[0]
    return {"line": int(v) if v.isdigit() and len(v) < 19 else (v or None)}


def _note(text: str, ln: dict) -> None:
    """Read the NTE*ADD note of a service line into it: `muscles=a,b;substances=x,y;site=neck`, any of
    the three keys, in any order, each value as written (the claim reader trims names and drops blank
    ones). A key given twice adds to the list; a key is read in any case and with spaces around it, as
    a person typing the note may write it. Other parts (free text, other keys) are not read."""
    for part in text.split(";"):
        key, eq, value = part.partition("=")
        if not eq:
            continue
        if key != "muscles" and key != "substances" and key != "site":
            key = key.strip().lower()
        if key == "muscles" or key == "substances":
            ln[key] = ln[key] + value.split(",") if key in ln else value.split(",")
        elif key == "site":
            ln["site"] = value


def _map(segs: list[str], sep: str, comp: str, ascii_only: bool) -> Iterator[Mapped]:
    """The mapping loop (contract section 6). One pass over the segments, dispatching on the first
    three characters (`NM1`, `HL*`); the service line segments that are almost always the same shape
    (`DTP*472*D8*`, `REF*6R*`, `NTE*ADD*`, `LX*`) are read by their prefix without splitting them, the
    others are split on the element separator once, and segments the mapping does not read are not
    split at all. The claim objects are plain dicts and lists.

    A loop is known by the segment that opens it: HL (level code 20, 22 or 23), CLM (2300), SBR inside
    a claim (2320 and its 2330 loops: another payer's, whose NM1 and REF segments are not the claim's)
    and LX (2400). The envelope was checked already, so every claim ends at an HL, a CLM or an SE."""
    provider = subscriber = payer = None  # 2010AA NM109, 2010BA NM109, 2010BB NM103
    patient: list | None = None  # under 2000C: [NM103, NM104, DMG02] of 2010CA
    level = ""  # the level code of the last HL
    # Only when the file is not all ASCII: the first segment of each level's loop with a byte beyond it.
    bad_provider = bad_subscriber = bad_patient = 0
    odd = 0  # the number of the last HL or CLM segment with such a byte
    claim: dict = {}  # the claim being read (when clm_n)
    clm_n = 0  # its CLM's segment number; 0 outside a claim
    lines: list = []
    ln: dict = {}  # the service line being read
    dx: list = []  # the claim's ABK/ABF codes (HI), in order
    pointer: dict[str, str] = {}  # SV107 pointer as written ("1") -> its code, for the common case
    where = 0  # 0 outside a claim; 1 in 2300 (and its 2310 loops); 2 in 2320/2330; 3 in 2400
    claim_bad: str | None = None  # why the claim cannot be mapped
    dates: dict[str, str] = {}  # CCYYMMDD -> CCYY-MM-DD for this read: dates repeat
    # What repeats is parsed once per read: an SV1 segment -> _sv1 of it, an HI segment -> _hi of it.
    sv1_seen: dict[str, tuple] = {}
    hi_seen: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {}
    # The prefixes of the hot segments, with this file's separator.
    dtp_d8 = sep.join(("DTP", "472", "D8", ""))
    ref_6r = sep.join(("REF", "6R", ""))
    nte_add = sep.join(("NTE", "ADD", ""))
    n_dtp, n_ref, n_nte = len(dtp_d8), len(ref_6r), len(nte_add)
    lx_, hl_, hi_, se_, st_ = "LX" + sep, "HL" + sep, "HI" + sep, "SE" + sep, "ST" + sep

    def finish() -> Mapped:
        cid = claim.get("claim_id")
        bad = claim_bad
        if bad is None and not ascii_only:
            first = (bad_patient if patient is not None else 0) or bad_subscriber or bad_provider
            if first:
                bad = _not_ascii(segs, first, sep)
        if bad is not None:
            return Unmapped(clm_n, cid if cid is None or cid.isascii() else None, bad)
        claim["lines"] = lines
        if dx:
            claim["diagnoses"] = dx
        return clm_n, claim

    for n, seg in enumerate(segs, 1):
        sid = seg[:3]
        if not ascii_only and not seg.isascii():
            if sid == hl_ or sid == "CLM":
                odd = n  # belongs to the level or claim it opens: marked below
            elif clm_n:
                claim_bad = claim_bad or _not_ascii(segs, n, sep)
                continue  # not read: the claim is an error record
            elif level == "20":
                bad_provider = bad_provider or n
            elif level == "22":
                bad_subscriber = bad_subscriber or n
            elif level == "23":
                bad_patient = bad_patient or n
        if where == 3:  # most segments of a claim are in its service lines
            if sid == "DTP":
                v = seg[n_dtp:]
                if seg.startswith(dtp_d8) and sep not in v:
                    d = dates.get(v)
                    if d is None:
                        d = _d8(v)
                        if len(dates) < 100_000:
                            dates[v] = d
                    ln["date"] = d
                else:
                    e = seg.split(sep)
                    if len(e) > 3 and e[1] == "472":  # RD8, a range: its first day
                        v = e[3]
                        ln["date"] = _d8(v[:8] if e[2] == "RD8" and len(v) == 17 and v[8] == "-" else v)
                continue
            if sid == "REF":
                if seg.startswith(ref_6r):
                    v = seg[n_ref:]
                    if sep in v:
                        v = v.partition(sep)[0]
                    if v.isdigit() and len(v) < 19:
                        ln["line"] = int(v)
                continue
            if sid == lx_:
                ln = _lx_line(seg, sep)
                lines.append(ln)
                continue
            if sid == "NTE":
                if seg.startswith(nte_add):
                    v = seg[n_nte:]
                    _note(v.partition(sep)[0] if sep in v else v, ln)
                continue
        if sid == "SV1":
            if not clm_n or claim_bad is not None:
                continue
            if where != 3 or "code" in ln:
                claim_bad = (f"segment {n} (SV1): a second SV1 in one service line" if where == 3
                             else f"segment {n} (SV1): a service line with no LX before it")
                continue
            got = sv1_seen.get(seg)
            if got is None:
                got = _sv1(seg, sep, comp)
                if len(sv1_seen) < 10_000:
                    sv1_seen[seg] = got
            code, mods, units, ptrs = got
            if code is not None:
                ln["code"] = code
            if mods is not None:
                ln["modifiers"] = list(mods)
            if units is not None:
                ln["units"] = units
            if ptrs is not None:
                p = pointer.get(ptrs[0]) if len(ptrs) == 1 else None
                if p is not None:
                    ln["diagnoses"] = [p]
                else:
                    picked = _pointed(ptrs, dx)
                    if isinstance(picked, str):
                        claim_bad = f"segment {n} (SV1): {picked}"
                    else:
                        ln["diagnoses"] = picked
            continue
        if sid == lx_:
            if clm_n:
                where = 3
                ln = _lx_line(seg, sep)
                lines.append(ln)
            continue
        if sid == "CLM":
            if clm_n:
                yield finish()
            clm_n, where, claim_bad, lines, ln, dx, pointer = n, 1, None, [], {}, [], {}
            cid = seg[4:]
            if sep in cid:
                cid = cid.partition(sep)[0]
            claim = {"claim_id": cid or None}
            if odd == n:
                claim_bad = _not_ascii(segs, n, sep)
            pid: str | None = subscriber
            if patient is not None and pid is not None:
                name = f"{patient[1] or ''} {patient[0] or ''}".strip()
                pid = f"{pid}/{name}/{patient[2] or ''}"
            if pid:
                claim["patient_id"] = pid
            if payer:
                claim["payer"] = payer
            if provider:
                claim["provider_id"] = provider
            continue
        if sid == "NM1":
            if not clm_n:
                e = seg.split(sep)
                q = e[1] if len(e) > 1 else ""
                if q == "IL":
                    subscriber = e[9] if len(e) > 9 and e[9] else None
                elif q == "PR":
                    payer = e[3] if len(e) > 3 and e[3] else None
                elif q == "85":
                    provider = e[9] if len(e) > 9 and e[9] else None
                elif q == "QC" and patient is not None:
                    patient[0], patient[1] = _el(e, 3), _el(e, 4)
            continue
        if sid == hl_:
            if clm_n:
                yield finish()
                clm_n, where = 0, 0
            e = seg.split(sep)
            level = e[3] if len(e) > 3 else ""
            bad = n if odd == n else 0
            if level == "20":
                provider = subscriber = payer = patient = None
                bad_provider, bad_subscriber, bad_patient = bad, 0, 0
            elif level == "22":
                subscriber = payer = patient = None
                bad_subscriber, bad_patient = bad, 0
            elif level == "23":
                patient = [None, None, None]
                bad_patient = bad
            continue
        if sid == "REF":
            if where == 1:
                e = seg.split(sep)
                if len(e) > 2 and e[1] == "G1" and e[2]:
                    claim["prior_auth"] = e[2]
            continue
        if sid == hi_:
            if where == 1:
                got_hi = hi_seen.get(seg)
                if got_hi is None:
                    got_hi = _hi(seg, sep, comp)
                    if len(hi_seen) < 10_000:
                        hi_seen[seg] = got_hi
                if not dx:
                    dx, pointer = list(got_hi[0]), got_hi[1]  # the pointer table is shared, never changed
                else:  # a second HI segment
                    dx = dx + list(got_hi[0])
                    pointer = {str(i): c for i, c in enumerate(dx, 1)}
            continue
        if sid == "SBR":
            if clm_n:
                where = 2  # 2320: another payer's subscriber, and its 2330 loops
            continue
        if sid == "DMG":
            if not clm_n and patient is not None:
                patient[2] = _el(seg.split(sep), 2)
            continue
        if sid == se_ or sid == st_:
            if clm_n:
                yield finish()
            clm_n, where, level = 0, 0, ""
            provider = subscriber = payer = patient = None
            bad_provider = bad_subscriber = bad_patient = 0
            continue
        # DTP, REF and NTE outside a service line, and every other segment: nothing the mapping reads.


def _hi(seg: str, sep: str, comp: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """The ICD-10-CM codes of an HI segment (those qualified ABK and ABF, in order) and its pointer
    table (`"1"` -> the first code, ...)."""
    codes = []
    for c in seg.split(sep)[1:]:
        q, _, rest = c.partition(comp)
        if q == "ABK" or q == "ABF":
            codes.append(rest.partition(comp)[0])
    return tuple(codes), {str(i): c for i, c in enumerate(codes, 1)}


def _sv1(seg: str, sep: str, comp: str) -> tuple:
    """(code, modifiers, units, pointers) of an SV1 segment, each None when it does not say: SV101 is
    `HC:code:mod1:mod2:mod3:mod4` (empty modifiers at the end dropped), units are SV104 when SV103 is
    UN, pointers the components of SV107 as written."""
    e = seg.split(sep)
    parts = e[1].split(comp) if len(e) > 1 else []
    code = parts[1] if len(parts) > 1 and parts[1] else None
    mods: tuple | None = tuple(parts[2:6])
    while mods and not mods[-1]:
        mods = mods[:-1]
    units = None
    if len(e) > 4 and e[3] == "UN" and e[4]:
        u = e[4]
        units = int(u) if u.isdigit() and len(u) < 19 else _number(u)
    ptrs = tuple(e[7].split(comp)) if len(e) > 7 and e[7] else None
    return code, mods or None, units, ptrs


def _pointed(ptrs: Iterable[str], dx: list[str]) -> list[str] | str:
    """The codes SV107's pointers name (1-based, into the claim's HI codes), or what is wrong."""
    out = []
    for p in ptrs:
        if not p.isdigit() or len(p) > 2 or not 0 < int(p) <= len(dx):
            return f"SV107 pointer {p!r} names no diagnosis (the claim's HI has {len(dx)})"
        out.append(dx[int(p) - 1])
    return out


def _not_ascii(segs: list[str], n: int, sep: str) -> str:
    seg = segs[n - 1]
    col = next(i for i, ch in enumerate(seg) if ord(ch) > 127)
    return (f"segment {n} ({seg.split(sep, 1)[0]}): byte 0x{ord(seg[col]):02X} at character {col + 1} is not "
            f"ASCII (X12 text is ASCII)")


# ---- writing ----------------------------------------------------------------------------------

# Separators tried in turn: the first of each list that no value of the claims uses (the usual ones,
# `*` `:` `^` `~`, unless a value holds one).
_ELEMENT_SEPARATORS = "*|!`"
_COMPONENT_SEPARATORS = ":><\\"
_REPETITION_SEPARATORS = "^{}"
_TERMINATORS = "~'\x1c"
_NOTE_KEYS = ("muscles", "substances", "site")


def unsayable(claim) -> str | None:
    """Why `write_x12` cannot write a claim object so that reading it back gives the same claim (contract
    section 6, "what the formats cannot say"), or None when it can. Bad values that X12 can carry (a date
    2025-13-01, units 0, a code of four characters) are said; the reader reports them."""
    if not isinstance(claim, dict):
        return "a claim must be an object"
    for key in ("claim_id", "patient_id", "payer", "provider_id", "prior_auth"):
        v = claim.get(key)
        if v is not None and not isinstance(v, str):
            return f"{key} must be a string"
    lines = claim.get("lines")
    if not isinstance(lines, list) or not lines:
        return "lines must be a list of at least one line"
    if len(lines) > MAX_LINES:
        return f"{len(lines)} lines: an 837P claim has at most {MAX_LINES}"
    cdx = claim.get("diagnoses")
    if cdx is not None and not _strings(cdx):
        return "diagnoses must be a list of strings"
    for i, ln in enumerate(lines):
        at = f"lines[{i}]"
        if not isinstance(ln, dict):
            return f"{at} must be an object"
        no = ln.get("line")
        if isinstance(no, bool) or not isinstance(no, int) or no < 0:
            return f"{at}.line must be a whole number of at least 0 (REF*6R)"
        d = ln.get("date")
        if d is not None and not (isinstance(d, str) and len(d) == 10 and d[4] == "-" and d[7] == "-"
                                  and (d[:4] + d[5:7] + d[8:]).isdigit()):
            return f"{at}.date must be shaped YYYY-MM-DD to be written as CCYYMMDD"
        code = ln.get("code")
        if code is not None and (not isinstance(code, str) or not code):
            return f"{at}.code must be a non-empty string"
        units = ln.get("units")
        if units is not None and (isinstance(units, bool) or not isinstance(units, int)):
            return f"{at}.units must be a whole number"
        mods = ln.get("modifiers")
        if mods is not None:
            if not _strings(mods):
                return f"{at}.modifiers must be a list of strings"
            if len(mods) > MAX_MODIFIERS:
                return f"{at}: {len(mods)} modifiers; SV101 holds at most {MAX_MODIFIERS}"
            if any(not m.strip() for m in mods):
                return f"{at}.modifiers: a blank modifier"
        for key in ("muscles", "substances"):
            v = ln.get(key)
            if v is not None and not _strings(v):
                return f"{at}.{key} must be a list of strings"
            if v and any("," in x or ";" in x for x in v):
                return f"{at}.{key}: a name with ',' or ';' cannot stand in the NTE note"
        site = ln.get("site")
        if site is not None and (not isinstance(site, str) or ";" in site):
            return f"{at}.site must be a string without ';'"
        ldx = ln.get("diagnoses")
        if ldx is not None and not _strings(ldx):
            return f"{at}.diagnoses must be a list of strings"
    try:
        _diagnosis_plan(claim)
    except ValueError as exc:
        return str(exc)
    for v in _texts(claim):
        if not v.isascii() or not v.isprintable():
            return f"{v!r} is not printable ASCII"
    return None


def _strings(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _texts(claim: dict) -> Iterator[str]:
    """Every text of a claim that write_x12 writes."""
    for key in ("claim_id", "patient_id", "payer", "provider_id", "prior_auth"):
        v = claim.get(key)
        if isinstance(v, str):
            yield v
    yield from claim.get("diagnoses") or ()
    for ln in claim["lines"]:
        for key in ("code", "date", "site"):
            v = ln.get(key)
            if isinstance(v, str):
                yield v
        for key in ("modifiers", "diagnoses", "muscles", "substances"):
            yield from ln.get(key) or ()


def _diagnosis_plan(claim: dict) -> tuple[list[str], list[list[int] | None]]:
    """The HI codes of a claim (its own, then the codes only its lines name) and each line's SV107
    pointers (None: no SV107, the line reads the claim's codes). Raises ValueError for what SV107 cannot
    say: a line's own empty list, more than four codes on a line, more than twelve on the claim."""
    hi = [c.strip() for c in claim.get("diagnoses") or ()]
    own = [ln.get("diagnoses") for ln in claim["lines"]]
    for ldx in own:
        for c in ldx or ():
            if c.strip() not in hi:
                hi.append(c.strip())
    if len(hi) > MAX_DIAGNOSES:
        raise ValueError(f"{len(hi)} diagnosis codes: the HI segment holds at most {MAX_DIAGNOSES}")
    claim_dx = hi[:len(claim.get("diagnoses") or ())]
    plan: list[list[int] | None] = []
    for i, ldx in enumerate(own):
        codes = claim_dx if ldx is None else [c.strip() for c in ldx]
        if not codes:
            if hi:
                raise ValueError(f"lines[{i}]: a line with no diagnoses on a claim with some (X12 always points)")
            plan.append(None)
        elif len(codes) <= MAX_POINTERS:
            plan.append([hi.index(c) + 1 for c in codes])
        elif codes == hi:
            plan.append(None)  # more than SV107 can point to, but exactly the claim's HI: no pointers
        else:
            raise ValueError(f"lines[{i}]: {len(codes)} diagnoses; SV107 points to at most {MAX_POINTERS}")
    return hi, plan


def _pick(pool: str, used: set[str], taken: Iterable[str], what: str) -> str:
    for ch in pool:
        if ch not in used and ch not in taken:
            return ch
    raise ValueError(f"no {what} is free: the claims use every one of {pool!r}")


def write_x12(claims: list[dict], sender: str = "PAYRULE", receiver: str = "PAYER") -> bytes:
    """An X12 837P (005010X222A1) interchange holding `claims` (contract section 1 claim objects), from
    which `read_x12` reads the same claims back, in the same order. One ISA/GS; an ST..SE per 5000 claims;
    a billing provider loop (2000A) whenever the provider changes from the claim before, and a subscriber
    loop (2000B, the subscriber is the patient) whenever the patient, payer or provider does.

    What section 1 has and the guide does not is filled in with fixed values: charges 0, place of service
    11 (office), the names PATIENT and BILLING PROVIDER, a made-up address and tax id. The dates in the
    envelope are the latest date of service of the claims, so the same claims give the same bytes. A
    line's `line` goes in REF*6R (LX01 counts 1, 2, ... as the guide wants); its muscles, substances and
    site in an NTE*ADD note. Fields beyond the contract's are not written. Raises ValueError for a claim
    `unsayable` refuses, naming it."""
    for i, c in enumerate(claims):
        why = unsayable(c)
        if why is not None:
            cid = c.get("claim_id") if isinstance(c, dict) else None
            raise ValueError(f"claim {i + 1} ({cid!r}) cannot be written as X12: {why}")
    used = {ch for c in claims for v in _texts(c) for ch in v} | set(sender) | set(receiver)
    sep = _pick(_ELEMENT_SEPARATORS, used, (), "element separator")
    comp = _pick(_COMPONENT_SEPARATORS, used, (sep,), "component separator")
    rep = _pick(_REPETITION_SEPARATORS, used, (sep, comp), "repetition separator")
    term = _pick(_TERMINATORS, used, (sep, comp, rep), "segment terminator")
    days = [ln["date"] for c in claims for ln in c["lines"] if isinstance(ln.get("date"), str)]
    stamp = _stamp(days)
    out: list[str] = []
    add = out.append
    add(sep.join(("ISA", "00", " " * 10, "00", " " * 10, "ZZ", f"{sender[:15]:<15}", "ZZ", f"{receiver[:15]:<15}",
                  stamp[2:8], "0000", rep, "00501", "000000001", "0", "P", comp)))
    add(sep.join(("GS", "HC", sender, receiver, stamp, "0000", "1", "X", GUIDE)))
    chunks = [claims[i:i + CLAIMS_PER_TRANSACTION] for i in range(0, len(claims), CLAIMS_PER_TRANSACTION)] or [[]]
    for k, chunk in enumerate(chunks, 1):
        start = len(out)
        control = f"{k:04d}"
        add(sep.join(("ST", "837", control, GUIDE)))
        add(sep.join(("BHT", "0019", "00", control, stamp, "0000", "CH")))
        add(sep.join(("NM1", "41", "2", sender, "", "", "", "", "46", sender)))  # 1000A submitter
        add(sep.join(("PER", "IC", sender, "TE", "8005550100")))
        add(sep.join(("NM1", "40", "2", receiver, "", "", "", "", "46", receiver)))  # 1000B receiver
        _transaction(chunk, out, sep, comp)
        add(sep.join(("SE", str(len(out) - start + 1), control)))
    add(sep.join(("GE", str(len(chunks)), "1")))
    add(sep.join(("IEA", "1", "000000001")))
    return (term + "\n").join(out).encode("ascii") + term.encode("ascii") + b"\n"


def _stamp(days: list[str]) -> str:
    """CCYYMMDD for the envelope: the latest real date of service, else 2000-01-01."""
    best = "20000101"
    for d in days:
        s = d[:4] + d[5:7] + d[8:]
        if s > best:
            try:
                date(int(s[:4]), int(s[4:6]), int(s[6:]))
            except ValueError:
                continue
            best = s
    return best


def _transaction(claims: list[dict], out: list[str], sep: str, comp: str) -> None:
    """The hierarchical loops and claims of one transaction set."""
    add = out.append
    hl = 0
    provider_hl = 0
    last_provider: object = ()  # nothing yet
    last_subscriber: object = ()
    for c in claims:
        provider = c.get("provider_id") or ""
        if provider != last_provider:
            hl += 1
            provider_hl = hl
            add(sep.join(("HL", str(hl), "", "20", "1")))  # 2000A billing provider
            add(sep.join(("NM1", "85", "2", "BILLING PROVIDER", "", "", "", "", "XX", provider) if provider
                         else ("NM1", "85", "2", "BILLING PROVIDER")))
            add(sep.join(("N3", "1 MAIN ST")))
            add(sep.join(("N4", "ANYTOWN", "NY", "100010001")))
            add(sep.join(("REF", "EI", "000000000")))
            last_provider, last_subscriber = provider, ()
        patient, payer = c.get("patient_id") or "", c.get("payer") or ""
        if (patient, payer) != last_subscriber:
            hl += 1
            add(sep.join(("HL", str(hl), str(provider_hl), "22", "0")))  # 2000B subscriber = patient
            add(sep.join(("SBR", "P", "18", "", "", "", "", "", "", "CI")))
            add(sep.join(("NM1", "IL", "1", "PATIENT", "", "", "", "", "MI", patient) if patient
                         else ("NM1", "IL", "1", "PATIENT")))
            payer_id = "".join(ch for ch in payer.upper() if ch.isalnum())[:80] or "PAYER"
            add(sep.join(("NM1", "PR", "2", payer, "", "", "", "", "PI", payer_id)))
            last_subscriber = (patient, payer)
        _claim(c, out, sep, comp)


def _claim(c: dict, out: list[str], sep: str, comp: str) -> None:
    add = out.append
    add(sep.join(("CLM", c.get("claim_id") or "", "0", "", "", comp.join(("11", "B", "1")), "Y", "A", "Y", "Y")))
    pa = c.get("prior_auth")
    if pa and pa.strip():
        add(sep.join(("REF", "G1", pa)))
    hi, plan = _diagnosis_plan(c)
    if hi:
        add(sep.join(("HI", *(comp.join(("ABK" if i == 0 else "ABF", code)) for i, code in enumerate(hi)))))
    for i, (ln, ptrs) in enumerate(zip(c["lines"], plan), 1):
        add(sep.join(("LX", str(i))))
        proc = comp.join(("HC", ln.get("code") or "", *(ln.get("modifiers") or ())))
        units = ln.get("units")
        sv1 = ["SV1", proc, "0", "UN", "1" if units is None else str(units)]
        if ptrs is not None:
            sv1 += ["", "", comp.join(str(p) for p in ptrs)]
        add(sep.join(sv1))
        d = ln.get("date")
        if d is not None:
            add(sep.join(("DTP", "472", "D8", d[:4] + d[5:7] + d[8:])))
        add(sep.join(("REF", "6R", str(ln["line"]))))
        note = []
        for key in _NOTE_KEYS:
            v = ln.get(key)
            if v is not None:
                note.append(f"{key}={v if isinstance(v, str) else ','.join(x.strip() for x in v)}")
        if note:
            add(sep.join(("NTE", "ADD", ";".join(note))))
