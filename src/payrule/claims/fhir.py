"""FHIR R4 in and out: Claim resources read into the claim objects of contract section 1 (section 6 is
the mapping, field by field), Claim resources written from them, and ClaimResponse resources made from
the decisions of section 2.

Reading is built for a million resources. A Claim carries far more than the mapping reads (status,
careTeam, supportingInfo, ...), so each resource is first decoded by msgspec into small typed Structs
that hold only the mapped elements and skip the rest unread; a resource that decodes that way and has
the plain shape (`_map_fast`) is mapped without a check. Anything else - a wrong type anywhere on a
mapped path, a subSite without a name, a diagnosisSequence that names no diagnosis, a line that is not
JSON - is decoded again as plain JSON and mapped by `_map_any`, which is the definition of the
mapping and says what is wrong. Both give the same claim object for any resource the fast one accepts
(tests/test_fhir.py holds them to it).

The mapping passes values on as they are written and leaves judging them to the claim reader (a bad
date, `units` 1.5, a code of 4 characters are reported by `payrule.claims.readers` in the words it
uses for JSON Lines). Only what the mapping itself cannot carry over - an element of the wrong shape
on the path to a field, a reference it cannot resolve - becomes an `Unmapped` error record.
"""
from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import date

import msgspec

from payrule.claims.formats import FormatError, Mapped, Unmapped
from payrule.runtime import Claim

__all__ = ["read_fhir", "write_fhir", "claim_response", "render_claim_responses", "resources",
           "ICD10CM", "CPT", "HCPCS", "CARC", "RARC", "DECISION", "REASON", "RULE", "ERROR", "DATA_ABSENT"]

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
CARC = "https://x12.org/codes/claim-adjustment-reason-codes"
RARC = "https://x12.org/codes/remittance-advice-remark-codes"
NPI = "http://hl7.org/fhir/sid/us-npi"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
PRIORITY = "http://terminology.hl7.org/CodeSystem/processpriority"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
# payrule's own code systems, named by URN so that they claim no web domain (docs/fhir.md lists the codes).
DECISION = "urn:payrule:decision"  # approve | review | deny: a line's (or the claim's) decision
REASON = "urn:payrule:reason"  # deny | review: the outcome of one rule that fired
RULE = "urn:payrule:rule"  # policy/rule: which rule fired
ERROR = "urn:payrule:error"  # claim-error: a claim that was not decided

_WORDS = {"approve": "approved", "deny": "denied", "review": "held for review"}
_LONE_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}\Z")
_ID_NAMESPACE = uuid.UUID("6f1c3a52-4c1e-4d55-9a36-2a0c8f3e7b10")  # fixes write_fhir's resource ids


def _absent() -> dict:
    """An element FHIR requires whose value is not known: the data-absent-reason extension (a new
    object each time, so that no two resources share one)."""
    return {"extension": [{"url": DATA_ABSENT, "valueCode": "unknown"}]}


# ---- the fast path: typed decoding of the mapped elements only ----------------------------------
# gc=False: a decoded tree never holds a cycle, so the garbage collector need not track its nodes
# (a fifth less time to decode).


class _Coding(msgspec.Struct, gc=False):
    system: str | None = None
    code: str | None = None
    display: str | None = None


class _Concept(msgspec.Struct, gc=False):
    coding: list[_Coding] | None = None
    text: str | None = None


class _Identifier(msgspec.Struct, gc=False):
    value: str | None = None


class _Reference(msgspec.Struct, gc=False):
    reference: str | None = None
    identifier: _Identifier | None = None
    display: str | None = None


class _Diagnosis(msgspec.Struct, gc=False):
    sequence: int
    diagnosisCodeableConcept: _Concept | None = None


class _Insurance(msgspec.Struct, gc=False):
    focal: bool | None = None
    preAuthRef: list[str] | None = None


class _Quantity(msgspec.Struct, gc=False):
    value: int | float | None = None


class _Detail(msgspec.Struct, gc=False):
    productOrService: _Concept | None = None


class _Item(msgspec.Struct, gc=False):
    sequence: int | None = None
    servicedDate: str | None = None
    productOrService: _Concept | None = None
    modifier: list[_Concept] | None = None
    quantity: _Quantity | None = None
    diagnosisSequence: list[int] | None = None
    bodySite: _Concept | None = None
    subSite: list[_Concept] | None = None
    detail: list[_Detail] | None = None


class _Claim(msgspec.Struct, gc=False):
    resourceType: str
    id: str | None = None
    identifier: list[_Identifier] | None = None
    patient: _Reference | None = None
    insurer: _Reference | None = None
    provider: _Reference | None = None
    diagnosis: list[_Diagnosis] | None = None
    insurance: list[_Insurance] | None = None
    item: list[_Item] | None = None


class _Entry(msgspec.Struct, gc=False):
    resource: _Claim | None = None


class _Bundle(msgspec.Struct, gc=False):
    """The envelope of a Bundle, its entries left undecoded so that one bad entry spoils only itself."""

    resourceType: str
    entry: list[msgspec.Raw] | None = None


_DECODE_CLAIM = msgspec.json.Decoder(_Claim).decode
_DECODE_ENTRY = msgspec.json.Decoder(_Entry).decode
_DECODE_BUNDLE = msgspec.json.Decoder(_Bundle).decode
_DECODE_ANY = msgspec.json.Decoder().decode
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)


def _name(c: _Concept) -> str | None:
    if c.text is not None:
        return c.text
    return c.coding[0].display if c.coding else None


def _map_fast(r: _Claim) -> dict | None:
    """The claim object of a well-typed Claim, or None to leave it to `_map_any` (which says what is
    wrong): this handles only the shapes that need no message, exactly as `_map_any` maps them."""
    obj: dict = {}
    cid = r.identifier[0].value if r.identifier else None
    if cid is None:
        cid = r.id
    if cid is not None:
        obj["claim_id"] = cid
    p = r.patient
    if p is not None:
        pid = p.identifier.value if p.identifier is not None else None
        if pid is None and p.reference is not None:
            at = p.reference.rfind("Patient/")
            if at < 0:
                return None
            pid = p.reference[at + 8:]
        if pid is not None:
            obj["patient_id"] = pid
    ins = r.insurer
    if ins is not None:
        payer = ins.display if ins.display is not None else ins.identifier.value if ins.identifier is not None else None
        if payer is not None:
            obj["payer"] = payer
    pr = r.provider
    if pr is not None and pr.identifier is not None and pr.identifier.value is not None:
        obj["provider_id"] = pr.identifier.value
    by_seq: dict[int, str | None] = {}
    if r.diagnosis is not None:
        for d in r.diagnosis:
            if d.sequence in by_seq:
                return None
            code = None
            cc = d.diagnosisCodeableConcept
            if cc is not None and cc.coding:
                for coding in cc.coding:
                    if coding.system == ICD10CM:
                        code = coding.code
                        break
            by_seq[d.sequence] = code
        obj["diagnoses"] = [c for _, c in sorted(by_seq.items()) if c is not None]
    if r.insurance:
        chosen = r.insurance[0]
        for i in r.insurance:
            if i.focal is True:
                chosen = i
                break
        if chosen.preAuthRef:
            obj["prior_auth"] = chosen.preAuthRef[0]
    if r.item is not None:
        lines = []
        for it in r.item:
            ln: dict = {}
            if it.sequence is not None:
                ln["line"] = it.sequence
            if it.servicedDate is not None:
                ln["date"] = it.servicedDate
            ps = it.productOrService
            if ps is not None and ps.coding and ps.coding[0].code is not None:
                ln["code"] = ps.coding[0].code
            q = it.quantity
            if q is not None and q.value is not None:
                v = q.value
                ln["units"] = int(v) if type(v) is float and v.is_integer() else v
            if it.modifier is not None:
                mods = []
                for m in it.modifier:
                    if not m.coding or m.coding[0].code is None:
                        return None
                    mods.append(m.coding[0].code)
                ln["modifiers"] = mods
            if it.diagnosisSequence:
                dx = []
                for s in it.diagnosisSequence:
                    if s not in by_seq:
                        return None
                    c = by_seq[s]
                    if c is not None:
                        dx.append(c)
                ln["diagnoses"] = dx
            if it.subSite is not None:
                names = [_name(s) for s in it.subSite]
                if None in names:
                    return None
                ln["muscles"] = names
            if it.detail is not None:
                subs = []
                for d2 in it.detail:
                    n = _name(d2.productOrService) if d2.productOrService is not None else None
                    if n is None:
                        return None
                    subs.append(n)
                ln["substances"] = subs
            if it.bodySite is not None:
                site = _name(it.bodySite)
                if site is not None:
                    ln["site"] = site
            lines.append(ln)
        obj["lines"] = lines
    return obj


# ---- the definition: any decoded resource, every shape checked ----------------------------------


class _Shape(Exception):
    """An element on the path to a mapped field has a shape the mapping cannot read."""


def _kind(v) -> str:
    if isinstance(v, bool):
        return "true/false"
    return {dict: "an object", list: "a list", int: "a number", float: "a number", str: "a string"}.get(type(v), "null")


def _obj(v, path: str) -> dict | None:
    if v is None or isinstance(v, dict):
        return v
    raise _Shape(f"{path} must be an object, not {_kind(v)}")


def _list(v, path: str) -> list | None:
    if v is None or isinstance(v, list):
        return v
    raise _Shape(f"{path} must be a list, not {_kind(v)}")


def _at(obj: dict | None, key: str, path: str) -> dict | None:
    return _obj(obj.get(key), f"{path}.{key}" if path else key) if obj is not None else None


def _first_coding(cc: dict | None, path: str) -> dict | None:
    codings = _list(cc.get("coding"), f"{path}.coding") if cc is not None else None
    return _obj(codings[0], f"{path}.coding[0]") if codings else None


def _concept_name(cc: dict | None, path: str):
    """`text`, else `coding[0].display` (None when neither is given)."""
    if cc is None:
        return None
    if cc.get("text") is not None:
        return cc["text"]
    c = _first_coding(cc, path)
    return c.get("display") if c is not None else None


def _whole(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _map_any(r: dict) -> dict:
    """The claim object of a Claim resource (contract section 6); raises _Shape for what cannot be
    mapped. Fields are only set when the resource gives them."""
    obj: dict = {}
    ids = _list(r.get("identifier"), "identifier")
    first = _obj(ids[0], "identifier[0]") if ids else None
    cid = first.get("value") if first is not None else None
    if cid is None:
        cid = r.get("id")
    if cid is not None:
        obj["claim_id"] = cid
    patient = _at(r, "patient", "")
    pident = _at(patient, "identifier", "patient")
    pid = pident.get("value") if pident is not None else None
    if pid is None and patient is not None and patient.get("reference") is not None:
        ref = patient["reference"]
        if not isinstance(ref, str):
            raise _Shape(f"patient.reference must be a string, not {_kind(ref)}")
        at = ref.rfind("Patient/")
        if at < 0:
            raise _Shape(f"patient.reference {json.dumps(ref)} names no Patient/ id, and patient.identifier.value is not given")
        pid = ref[at + 8:]
    if pid is not None:
        obj["patient_id"] = pid
    insurer = _at(r, "insurer", "")
    payer = insurer.get("display") if insurer is not None else None
    if payer is None:
        iident = _at(insurer, "identifier", "insurer")
        payer = iident.get("value") if iident is not None else None
    if payer is not None:
        obj["payer"] = payer
    prov = _at(_at(r, "provider", ""), "identifier", "provider")
    if prov is not None and prov.get("value") is not None:
        obj["provider_id"] = prov["value"]
    by_seq: dict[int, object] = {}
    dxs = _list(r.get("diagnosis"), "diagnosis")
    if dxs is not None:
        for i, d in enumerate(dxs):
            where = f"diagnosis[{i}]"
            d = _obj(d, where)
            seq = d.get("sequence") if d is not None else None
            if not isinstance(seq, int) or isinstance(seq, bool):
                raise _Shape(f"{where}.sequence must be a whole number" + ("" if seq is None else f", not {json.dumps(seq)}"))
            if seq in by_seq:
                raise _Shape(f"{where}.sequence {seq} is repeated")
            cc = _at(d, "diagnosisCodeableConcept", where)
            codings = _list(cc.get("coding"), f"{where}.diagnosisCodeableConcept.coding") if cc is not None else None
            code = None
            for j, c in enumerate(codings or ()):
                coding = _obj(c, f"{where}.diagnosisCodeableConcept.coding[{j}]")
                if coding is not None and coding.get("system") == ICD10CM:
                    code = coding.get("code")
                    break
            by_seq[seq] = code
        obj["diagnoses"] = [c for _, c in sorted(by_seq.items()) if c is not None]
    insurance = _list(r.get("insurance"), "insurance")
    if insurance:
        cover = [_obj(c, f"insurance[{i}]") for i, c in enumerate(insurance)]
        k = next((i for i, c in enumerate(cover) if c is not None and c.get("focal") is True), 0)
        focal = cover[k]
        refs = _list(focal.get("preAuthRef"), f"insurance[{k}].preAuthRef") if focal is not None else None
        if refs and refs[0] is not None:
            obj["prior_auth"] = refs[0]
    items = _list(r.get("item"), "item")
    if items is not None:
        obj["lines"] = [_map_item(it, f"item[{i}]", by_seq) for i, it in enumerate(items)]
    return obj


def _map_item(it, where: str, by_seq: dict) -> dict:
    it = _obj(it, where)
    if it is None:
        raise _Shape(f"{where} must be an object, not null")
    ln: dict = {}
    if it.get("sequence") is not None:
        ln["line"] = it["sequence"]
    if it.get("servicedDate") is not None:
        ln["date"] = it["servicedDate"]
    c = _first_coding(_at(it, "productOrService", where), f"{where}.productOrService")
    if c is not None and c.get("code") is not None:
        ln["code"] = c["code"]
    q = _at(it, "quantity", where)
    v = q.get("value") if q is not None else None
    if v is not None:
        ln["units"] = int(v) if type(v) is float and v.is_integer() else v
    mods = _list(it.get("modifier"), f"{where}.modifier")
    if mods is not None:
        ln["modifiers"] = []
        for j, m in enumerate(mods):
            mc = _first_coding(_obj(m, f"{where}.modifier[{j}]"), f"{where}.modifier[{j}]")
            if mc is None or mc.get("code") is None:
                raise _Shape(f"{where}.modifier[{j}] has no coding[0].code")
            ln["modifiers"].append(mc["code"])
    seqs = _list(it.get("diagnosisSequence"), f"{where}.diagnosisSequence")
    if seqs:  # FHIR has no empty arrays: [] is taken as not given
        dx = []
        for s in seqs:
            if not _whole(s):
                raise _Shape(f"{where}.diagnosisSequence must be a list of whole numbers, not {json.dumps(s)}")
            if s not in by_seq:
                raise _Shape(f"{where}.diagnosisSequence {s} names no diagnosis of the claim")
            if by_seq[s] is not None:
                dx.append(by_seq[s])
        ln["diagnoses"] = dx
    subs = _list(it.get("subSite"), f"{where}.subSite")
    if subs is not None:
        ln["muscles"] = []
        for j, s in enumerate(subs):
            name = _concept_name(_obj(s, f"{where}.subSite[{j}]"), f"{where}.subSite[{j}]")
            if name is None:
                raise _Shape(f"{where}.subSite[{j}] has neither text nor coding[0].display")
            ln["muscles"].append(name)
    details = _list(it.get("detail"), f"{where}.detail")
    if details is not None:
        ln["substances"] = []
        for j, d in enumerate(details):
            dw = f"{where}.detail[{j}]"
            name = _concept_name(_at(_obj(d, dw), "productOrService", dw), f"{dw}.productOrService")
            if name is None:
                raise _Shape(f"{dw}.productOrService has neither text nor coding[0].display")
            ln["substances"].append(name)
    site = _concept_name(_at(it, "bodySite", where), f"{where}.bodySite")
    if site is not None:
        ln["site"] = site
    return ln


def _peek_id(r: dict) -> str | None:
    """The claim id of a resource that cannot be mapped, when it can be read: for its error record."""
    try:
        cid = _map_any({"identifier": r.get("identifier"), "id": r.get("id")}).get("claim_id")
    except _Shape:
        cid = r.get("id")
    return cid if isinstance(cid, str) and cid.strip() else None


# ---- splitting a file into resources ------------------------------------------------------------


def _not_json(raw: bytes, fallback: str, whole: bool = False, unit: str = "line") -> str:
    """Why a line (or, `whole`, a Bundle) does not decode, in the words the JSON Lines reader uses;
    `fallback` is msgspec's reason, for the rare text the standard library reads but msgspec does not."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if whole:
            at, nl = exc.start, b"\n"
            return f"not UTF-8 at line {raw.count(nl, 0, at) + 1}, byte {at - raw.rfind(nl, 0, at)}"
        return f"not UTF-8 (byte {exc.start + 1} of the {unit})"
    try:
        json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        return "not JSON: nested too deeply to read"
    except ValueError as exc:
        msg = getattr(exc, "msg", str(exc))
        row: int | None = getattr(exc, "lineno", None)
        col: int | None = getattr(exc, "colno", None)
        where = (f" at line {row}, column {col}" if whole else f" at column {col}") if col else ""
        return f"not JSON: {msg}{where}"
    if _LONE_SURROGATE_ESCAPE.search(raw):
        return "not JSON text: a string holds an unpaired surrogate escape"
    return f"not JSON: {fallback}"


def _no_constant(word: str):
    raise ValueError(f"{word} is not a JSON value")


def _decodes(raw: bytes) -> bool:
    try:
        _DECODE_ANY(raw)
    except _DECODE_ERRORS:
        return False
    return True


def _rows(body: bytes) -> Iterator[tuple[int, bytes]]:
    """The lines of a file with their numbers, found one at a time: deciding what a file is looks at
    its first lines only, and splitting a pretty-printed Bundle into lines would be wasted work."""
    start, n = 0, 1
    while True:
        end = body.find(b"\n", start)
        if end < 0:
            yield n, body[start:]
            return
        yield n, body[start:end]
        start, n = end + 1, n + 1


_LOOK = 64  # lines looked at to tell NDJSON with a broken first line from a pretty-printed Bundle


def _units(data: bytes) -> Iterator[tuple[int, bytes | msgspec.Raw, bool]]:
    """(input_line, JSON text, is_entry) for each NDJSON line, or each entry of a Bundle (whose text is
    the entry, not yet its resource). Raises FormatError for a Bundle that is not JSON.

    A file is NDJSON when its first non-blank line is JSON by itself, or when one of the next lines is
    a resource by itself (the first line is then one broken claim); otherwise it is one JSON document
    over several lines - a Bundle, or a single resource. A file of one line is a Bundle when it is
    one, else NDJSON of one resource (so a broken one is an error record, not a broken file)."""
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    head: list[tuple[int, bytes]] = []
    for n, row in _rows(body):
        if row.strip():
            head.append((n, row))
            if len(head) > _LOOK:
                break
    if not head:
        return
    if len(head) > 1:
        if _decodes(head[0][1]) or any(_is_resource_line(row) for _, row in head[1:]):
            yield from ((n, row, False) for n, row in enumerate(body.split(b"\n"), 1) if row.strip())
        else:
            yield from _whole_file(body, head[0][0])
        return
    n, row = head[0]
    try:
        bundle = _DECODE_BUNDLE(row)
    except msgspec.ValidationError:  # JSON, but not shaped like a Bundle (a subclass of DecodeError)
        bundle = None
        top = _DECODE_ANY(row)
        if isinstance(top, dict) and top.get("resourceType") == "Bundle":
            raise FormatError(f"Bundle.entry must be a list, not {_kind(top.get('entry'))}") from None
    except msgspec.DecodeError:
        bundle = None  # not JSON: an error record, as any NDJSON line would be
    if bundle is not None and bundle.resourceType == "Bundle":
        yield from _entries(bundle)
    else:
        yield n, row, False


def _is_resource_line(row: bytes) -> bool:
    row = row.strip()
    if not (row[:1] == b"{" and row[-1:] == b"}" and b'"resourceType"' in row):
        return False
    try:
        v = _DECODE_ANY(row)
    except _DECODE_ERRORS:
        return False
    return isinstance(v, dict) and "resourceType" in v


def _whole_file(body: bytes, start: int) -> Iterator[tuple[int, bytes | msgspec.Raw, bool]]:
    """A JSON document over several lines: a Bundle, or one resource (input_line: its first line)."""
    try:
        head = _DECODE_BUNDLE(body)
    except msgspec.ValidationError:  # JSON, but not shaped like a Bundle (a subclass of DecodeError)
        try:
            top = _DECODE_ANY(body)
        except _DECODE_ERRORS as exc:
            raise FormatError(_not_json(body, str(exc), whole=True)) from None
        if not isinstance(top, dict):
            raise FormatError(f"not a FHIR Bundle or NDJSON of resources: the file holds {_kind(top)}") from None
        if top.get("resourceType") == "Bundle":
            raise FormatError(f"Bundle.entry must be a list, not {_kind(top.get('entry'))}") from None
        yield start, body, False  # one resource whose resourceType is not text: reported as a record
        return
    except msgspec.DecodeError as exc:
        raise FormatError(_not_json(body, str(exc), whole=True)) from None
    if head.resourceType == "Bundle":
        yield from _entries(head)
    else:
        yield start, body, False


def _entries(head: _Bundle) -> Iterator[tuple[int, bytes | msgspec.Raw, bool]]:
    for n, raw in enumerate(head.entry or (), 1):
        yield n, raw, True


def resources(data: bytes) -> Iterator[tuple[int, bool, object]]:
    """Every NDJSON line or Bundle entry as decoded JSON: (input_line, is_entry, resource), where the
    resource is a dict, or a str saying why there is none (not JSON, not an object). Entries without a
    resource are left out. Raises FormatError as read_fhir does. For `fhir_validate`."""
    for n, raw, is_entry in _units(data):
        got = _decoded(raw, is_entry)
        if got is not None:
            yield n, is_entry, got


def _decoded(raw: bytes | msgspec.Raw, is_entry: bool) -> object:
    try:
        v = _DECODE_ANY(raw)
    except _DECODE_ERRORS as exc:
        return _not_json(bytes(raw), str(exc), unit="entry" if is_entry else "line")
    if is_entry:
        if not isinstance(v, dict):
            return f"the entry must be an object, not {_kind(v)}"
        v = v.get("resource")
        if v is None:
            return None
        if not isinstance(v, dict):
            return f"the entry's resource must be an object, not {_kind(v)}"
        return v
    if not isinstance(v, dict):
        return f"a FHIR resource must be a JSON object, not {_kind(v)}"
    return v


# ---- reading ------------------------------------------------------------------------------------


def _is_utf8(raw: bytes | msgspec.Raw) -> bool:
    try:
        bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def read_fhir(data: bytes) -> Iterator[Mapped]:
    """The claim objects of a FHIR file: NDJSON of resources (input_line: the line) or a JSON Bundle
    (input_line: the 1-based index of the entry), Claims only, in input order. A line or entry that is
    not JSON, not an object, not a resource, or a Claim that cannot be mapped is an `Unmapped` in its
    place; raises FormatError for a file that is neither NDJSON nor a Bundle (a Bundle that is not
    JSON: the message says where)."""
    utf8 = data.isascii() or _is_utf8(data)  # most files are: then no resource needs its own look
    for n, raw, is_entry in _units(data):
        # msgspec skips unmapped elements unread, invalid UTF-8 in them too: such a line is not JSON
        # text (contract section 5), so it goes the slow way, which says so
        if utf8 or _is_utf8(raw):
            try:
                r = _DECODE_ENTRY(raw).resource if is_entry else _DECODE_CLAIM(raw)
            except _DECODE_ERRORS:
                pass
            else:
                if r is None or r.resourceType != "Claim":
                    continue
                obj = _map_fast(r)
                if obj is not None:
                    yield n, obj
                    continue
        got = _decoded(raw, is_entry)
        if got is None:
            continue
        if isinstance(got, str):
            yield Unmapped(n, None, got)
            continue
        assert isinstance(got, dict)
        rtype = got.get("resourceType")
        if rtype is None or not isinstance(rtype, str):
            yield Unmapped(n, None, "not a FHIR resource: resourceType is " + ("missing" if rtype is None else "not a string"))
            continue
        if rtype != "Claim":
            continue
        try:
            yield n, _map_any(got)
        except _Shape as exc:
            yield Unmapped(n, _peek_id(got), str(exc))


# ---- writing ------------------------------------------------------------------------------------


def _coding(system: str, code) -> dict:
    return {"system": system, "code": code}


def _code_system(code) -> str:
    """CPT for Level I codes (digits, or four digits and F/T/U), HCPCS Level II for a letter first."""
    return HCPCS if isinstance(code, str) and code[:1].isalpha() else CPT


def _texts(values: list) -> list:
    """List values as FHIR strings: trimmed, blank ones left out (they are ignored when read)."""
    return [v.strip() if isinstance(v, str) else v for v in values if not (isinstance(v, str) and not v.strip())]


def _given(v) -> bool:
    return v is not None and not (isinstance(v, str) and not v.strip())


_FHIR_STRING = re.compile(r"[ \S]*")  # R4 `string`: no white space but the plain space


def _unsayable_text(value) -> str | None:
    """The first string in a claim object that a FHIR string cannot hold, else None."""
    if isinstance(value, str):
        return None if _FHIR_STRING.fullmatch(value) else value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for v in items:
        bad = _unsayable_text(v)
        if bad is not None:
            return bad
    return None


def _resource(claim: dict, n: int, rid: str) -> dict:
    """One section-1 claim as an R4 Claim with the id `rid`; raises ValueError for what FHIR cannot say."""
    if not isinstance(claim, dict):
        raise ValueError(f"claim {n}: not a claim object")
    cid = claim.get("claim_id")
    lines = claim.get("lines")
    if lines is not None and not (isinstance(lines, list) and all(isinstance(ln, dict) for ln in lines)):
        raise ValueError(f"claim {cid!r}: FHIR cannot say lines that are not a list of objects")
    lines = lines or []
    if claim.get("diagnoses") is not None and not isinstance(claim["diagnoses"], list):
        raise ValueError(f"claim {cid!r}: FHIR cannot say diagnoses that are not a list")
    for ln in lines:
        for key in ("modifiers", "diagnoses", "muscles", "substances"):
            if ln.get(key) is not None and not isinstance(ln[key], list):
                raise ValueError(f"claim {cid!r}: FHIR cannot say a line's {key} that is not a list")
    bad = _unsayable_text(claim)
    if bad is not None:
        raise ValueError(f"claim {cid!r}: FHIR cannot say the text {bad!r}: a FHIR string holds no white space "
                         "but the plain space (no tab, line break or no-break space)")
    diagnoses, pointers = _diagnoses(claim, lines)
    dates = [ln["date"] for ln in lines if isinstance(ln.get("date"), str) and _is_date(ln["date"])]
    r: dict = {"resourceType": "Claim", "id": rid}
    if cid is not None:
        r["identifier"] = [{"value": cid}]
    r["status"] = "active"
    r["type"] = {"coding": [_coding(CLAIM_TYPE, "professional")]}
    r["use"] = "claim"
    r["patient"] = {"identifier": {"value": claim["patient_id"]}} if claim.get("patient_id") is not None else _absent()
    if dates:
        r["created"] = max(dates)
    else:
        r["_created"] = _absent()
    payer = claim.get("payer")
    r["insurer"] = {"display": payer} if payer is not None else _absent()
    prov = claim.get("provider_id")
    if prov is not None:
        ident: dict = {"value": prov}
        if isinstance(prov, str) and len(prov) == 10 and prov.isdigit():
            ident = {"system": NPI, "value": prov}
        r["provider"] = {"identifier": ident}
    else:
        r["provider"] = _absent()
    r["priority"] = {"coding": [_coding(PRIORITY, "normal")]}
    insurance: dict = {"sequence": 1, "focal": True,
                       "coverage": {"display": payer if isinstance(payer, str) and payer.strip() else "unknown"}}
    if _given(claim.get("prior_auth")):
        pa = claim["prior_auth"]
        insurance["preAuthRef"] = [pa.strip() if isinstance(pa, str) else pa]
    r["insurance"] = [insurance]
    if diagnoses:
        r["diagnosis"] = [{"sequence": i, "diagnosisCodeableConcept": {"coding": [_coding(ICD10CM, code)]}}
                          for i, code in enumerate(diagnoses, 1)]
    if "lines" in claim and claim["lines"] is not None:
        r["item"] = [_item(ln, pointers[i]) for i, ln in enumerate(lines)]
    return r


def _is_date(s: str) -> bool:
    try:
        date.fromisoformat(s)
    except ValueError:
        return False
    return len(s) == 10


def _diagnoses(claim: dict, lines: list) -> tuple[list, list[list[int] | None]]:
    """The claim's diagnosis[] and each line's diagnosisSequence (None: the line reads the claim's).
    When no line has its own list, diagnosis[] is the claim's list. Otherwise a line's own codes are
    added to diagnosis[] and every line points at its codes, the lines without an own list at the
    claim's; FHIR has no empty arrays, so a line whose list is empty while diagnosis[] is not cannot be
    said (ValueError)."""
    claim_dx = _texts(claim.get("diagnoses") or [])
    own = [ln.get("diagnoses") for ln in lines]
    if all(o is None for o in own):
        return claim_dx, [None] * len(lines)
    entries = list(claim_dx)
    pointers: list[list[int] | None] = []
    for o in own:
        if o is None:
            pointers.append(list(range(1, len(claim_dx) + 1)))
            continue
        seqs = []
        for code in _texts(o):
            if code in entries:
                seqs.append(entries.index(code) + 1)
            else:
                entries.append(code)
                seqs.append(len(entries))
        pointers.append(seqs)
    if entries and any(not p for p in pointers):
        raise ValueError(f"claim {claim.get('claim_id')!r}: FHIR cannot say a line with no diagnoses on a claim with diagnoses")
    return entries, [p or None for p in pointers]


def _item(ln: dict, pointers: list[int] | None) -> dict:
    it: dict = {}
    if ln.get("line") is not None:
        it["sequence"] = ln["line"]
    if ln.get("code") is not None:
        it["productOrService"] = {"coding": [_coding(_code_system(ln["code"]), ln["code"])]}
    mods = ln.get("modifiers")
    if mods:  # trimmed, as the reader compares them; a blank one is kept, to stay the error it is
        mods = [m.strip() if isinstance(m, str) else m for m in mods]
        it["modifier"] = [{"coding": [_coding(CPT if isinstance(m, str) and m.isdigit() else HCPCS, m)]} for m in mods]
    if ln.get("date") is not None:
        it["servicedDate"] = ln["date"]
    if ln.get("units") is not None:
        it["quantity"] = {"value": ln["units"]}
    if pointers:
        it["diagnosisSequence"] = pointers
    site = ln.get("site")
    if _given(site):
        it["bodySite"] = {"text": site.strip() if isinstance(site, str) else site}
    muscles = _texts(ln.get("muscles") or [])
    if muscles:
        it["subSite"] = [{"text": m} for m in muscles]
    substances = _texts(ln.get("substances") or [])
    if substances:
        it["detail"] = [{"sequence": j, "productOrService": {"text": s}} for j, s in enumerate(substances, 1)]
    return it


def _unique_ids(ids: list) -> set:
    """The claim ids that can be their resource's id: a FHIR id (64 letters, digits, `-`, `.`), used once."""
    seen: dict = {}
    for i in ids:
        if isinstance(i, str) and _FHIR_ID.match(i):
            seen[i] = seen.get(i, 0) + 1
    return {i for i, k in seen.items() if k == 1}


def write_fhir(claims: list[dict], bundle: bool = False) -> bytes:
    """FHIR R4 Claim resources for section-1 claim objects, one NDJSON line each, or one Bundle of type
    `collection` (pretty-printed, for people to read). Reading the result with read_fhir gives the
    same claims (values trimmed and blank list values dropped, as the claim reader does anyway), and
    an ill-valued claim stays ill-valued, reported the same way; fields beyond the contract's are not
    written. A resource's id is its claim_id when that is a FHIR id used once, else a UUID made from the
    claim's position and id (a Bundle entry's fullUrl is that UUID as a URN), so the bytes depend only
    on the input.
    Raises ValueError for a claim FHIR cannot say (see `_diagnoses`)."""
    ids = [c.get("claim_id") if isinstance(c, dict) else None for c in claims]
    once = _unique_ids(ids)
    uuids = [str(uuid.uuid5(_ID_NAMESPACE, f"{n}\x00{cid}")) for n, cid in enumerate(ids, 1)]
    res = [_resource(c, n, cid if isinstance(cid, str) and cid in once else u)
           for n, (c, cid, u) in enumerate(zip(claims, ids, uuids), 1)]
    if not bundle:
        return b"".join(json.dumps(r, ensure_ascii=False).encode("utf-8") + b"\n" for r in res)
    doc = {"resourceType": "Bundle", "type": "collection",
           "entry": [{"fullUrl": f"urn:uuid:{u}", "resource": r} for r, u in zip(res, uuids)]}
    text = json.dumps(doc, ensure_ascii=False, indent=2)
    # resourceType on the first line, where format detection (`formats.detect`) looks for it
    text = text.replace('{\n  "resourceType": "Bundle",', '{"resourceType": "Bundle",', 1)
    return text.encode("utf-8") + b"\n"


# ---- ClaimResponse ------------------------------------------------------------------------------


def _facts(claim: dict | Claim | None) -> tuple[object, object, str | None]:
    """(patient_id, payer, latest date of service) of a section-1 claim or a runtime Claim."""
    if claim is None:
        return None, None, None
    if isinstance(claim, Claim):
        days = [ln.date for ln in claim.lines if isinstance(ln.date, int)]
        return claim.patient_id, claim.payer, date.fromordinal(max(days)).isoformat() if days else None
    lines = claim.get("lines")
    dates = [ln["date"] for ln in (lines if isinstance(lines, list) else ()) if isinstance(ln, dict) and isinstance(ln.get("date"), str) and _is_date(ln["date"])]
    return claim.get("patient_id"), claim.get("payer"), max(dates) if dates else None


def _reason_concept(reason: dict) -> dict:
    codings = [{"system": RULE, "code": f"{reason.get('policy')}/{reason.get('rule')}"}]
    if reason.get("carc") is not None:
        codings.append({"system": CARC, "code": reason["carc"]})
    if reason.get("rarc") is not None:
        codings.append({"system": RARC, "code": reason["rarc"]})
    return {"coding": codings, "text": reason.get("message", "")}


def _category(system: str, code: str) -> dict:
    return {"coding": [{"system": system, "code": code, "display": _WORDS.get(code, code)}]}


def claim_response(decision: dict, claim: dict | Claim | None = None, created: str | None = None) -> dict:
    """The FHIR R4 ClaimResponse of one decision object (contract section 2), or of an error record
    `{"claim_id", "error", "input_line"}` (outcome `error`, the message in `error[]`).

    A decision names neither the patient, the payer nor a date, which a ClaimResponse must have:
    `claim` (the section-1 claim object, or the runtime Claim) gives them - patient and insurer by
    identifier and name, `created` the latest date of service (a response is made after the service,
    and no clock is read, so the bytes stay the same run after run). Without it they are marked
    unknown with the data-absent-reason extension. `created` given here wins.

    Each line is an `item` (itemSequence: the line number) whose first adjudication's category is the
    line's decision (urn:payrule:decision#approve|review|deny), followed by one adjudication per rule
    that fired: category urn:payrule:reason#deny|review (the rule's outcome), reason coded with the rule
    (urn:payrule:rule#policy/rule), its X12 CARC and RARC when the rule names them, and the message as
    text. Every reason is also a processNote (the item's noteNumber points at it), with its source. A
    line numbered below 1, which FHIR cannot number, is told in a processNote only."""
    patient, payer, last = _facts(claim)
    out: dict = {"resourceType": "ClaimResponse", "status": "active",
                 "type": {"coding": [_coding(CLAIM_TYPE, "professional")]}, "use": "claim"}
    out["patient"] = {"identifier": {"value": patient}} if isinstance(patient, str) and patient.strip() else _absent()
    when = created if created is not None else last
    if when is not None:
        out["created"] = when
    else:
        out["_created"] = _absent()
    out["insurer"] = {"display": payer} if isinstance(payer, str) and payer.strip() else _absent()
    cid = decision.get("claim_id")
    if isinstance(cid, str) and cid:
        out["request"] = {"type": "Claim", "identifier": {"value": cid}}
    notes: list[dict] = []
    if "error" in decision:
        out["outcome"] = "error"
        out["disposition"] = f"claim not decided: {decision['error']}"
        out["error"] = [{"code": {"coding": [_coding(ERROR, "claim-error")], "text": decision["error"]}}]
        if decision.get("input_line") is not None:
            notes.append({"number": 1, "type": "display", "text": f"input line {decision['input_line']}: {decision['error']}"})
    else:
        out["outcome"] = "complete"
        verdict = decision.get("decision", "review")
        out["disposition"] = f"claim {_WORDS.get(verdict, verdict)}"
        items = []
        for ln in decision.get("lines", ()):
            no, reasons = ln.get("line"), ln.get("reasons", ())
            numbers = []
            for reason in reasons:
                numbers.append(len(notes) + 1)
                notes.append({"number": len(notes) + 1, "type": "display",
                              "text": f"line {no} {ln.get('code')}: {reason.get('outcome')} by {reason.get('policy')}/"
                                      f"{reason.get('rule')}: {reason.get('message')} ({reason.get('source')})"})
            if not (_whole(no) and 1 <= no <= 2**31 - 1):
                notes.append({"number": len(notes) + 1, "type": "display",
                              "text": f"line {no} {ln.get('code')}: {ln.get('decision')} (FHIR cannot number this line)"})
                continue
            item: dict = {"itemSequence": no}
            if numbers:
                item["noteNumber"] = numbers
            item["adjudication"] = [{"category": _category(DECISION, ln.get("decision", "review"))}] + [
                {"category": _category(REASON, r.get("outcome", "review")), "reason": _reason_concept(r)} for r in reasons]
            items.append(item)
        if items:
            out["item"] = items
        out["adjudication"] = [{"category": _category(DECISION, verdict)}]
    if notes:
        out["processNote"] = notes
    return out


def render_claim_responses(decisions: Iterable[dict],
                           claims: Iterable[dict | Claim | None] | Mapping[str, dict | Claim] | None = None,
                           created: str | None = None) -> Iterator[bytes]:
    """One NDJSON line (with its newline) per decision: its ClaimResponse (`--output-format fhir`).
    `claims`, when given, supplies each response's patient, payer and date: either one claim per
    decision, in the same order (None where there is none), or a mapping from claim_id to claim."""
    if claims is None:
        pairs: Iterable = ((d, None) for d in decisions)
    elif isinstance(claims, Mapping):
        by_id = claims
        pairs = ((d, by_id.get(cid) if isinstance(cid := d.get("claim_id"), str) else None) for d in decisions)
    else:
        pairs = zip(decisions, claims, strict=True)
    for d, c in pairs:
        yield json.dumps(claim_response(d, c, created), ensure_ascii=False).encode("utf-8") + b"\n"
