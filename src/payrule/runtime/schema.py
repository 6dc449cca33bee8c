"""The claim format, once: every claim and line field as data (contract section 1), with the normal forms
values compare in (section 5), where X12 837P and FHIR R4 carry it (section 6), and the code, modifier,
diagnosis and date patterns. The readers, the runtime, the language checker and the docs take their field
knowledge from here; adding a field is one entry in FIELDS plus the code that uses it.

Standard library only, and nothing else of payrule: generated checkers import the runtime, which imports this.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, Mapping

__all__ = [
    "Field",
    "FIELDS",
    "CLAIM_FIELDS",
    "LINE_FIELDS",
    "LIST_FIELDS",
    "NUMBER_FIELDS",
    "field_for_word",
    "claim_field_for_word",
    "READABLE_CLAIM_FIELDS",
    "normal",
    "payer_key",
    "CARC_PATTERN",
    "RARC_PATTERN",
    "CODE_PATTERN",
    "MODIFIER_PATTERN",
    "ICD10_PATTERN",
    "DATE_PATTERN",
    "code_shape",
    "in_code_range",
]

# Each pattern must match the whole value (they end in \Z: `.match` is enough).
CODE_PATTERN = re.compile(r"[A-Za-z0-9]{5}\Z")  # CPT / HCPCS, as written (upper-cased in normal form)
MODIFIER_PATTERN = re.compile(r"[A-Za-z0-9]{2}\Z")
ICD10_PATTERN = re.compile(r"[A-Z][0-9][0-9A-Z]([0-9A-Z]{1,4})?\Z")  # an ICD-10-CM code in normal form
DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")  # the shape only: also check it is a real date
# X12 Claim Adjustment Reason Codes (`119`, `16`, `B7`, `P1`) and Remittance Advice Remark Codes (`N130`, `M80`, `MA130`).
CARC_PATTERN = re.compile(r"([0-9]{1,3}|[A-Z][0-9]{1,2})\Z")
RARC_PATTERN = re.compile(r"(M|MA|N)[0-9]{1,3}\Z")


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a claim or of a claim line."""

    name: str  # "muscles"
    where: Literal["claim", "line"]
    kind: Literal["text", "int", "date", "code", "list"]
    required: bool
    # The normal form values compare in (each item of a list, or the value); None when values are not
    # normalised (numbers, dates, ids compared as written, the list of lines).
    form: Literal["code", "diagnosis", "name", "text"] | None
    aliases: tuple[str, ...]  # other words a policy may use for it: muscles -> ("muscle",)
    csv: str  # the CSV column
    x12: str  # where X12 837P carries it (contract section 6)
    fhir: str  # where a FHIR R4 Claim carries it (contract section 6)
    doc: str  # what it means (contract section 1)
    item_pattern: re.Pattern[str] | None = None  # each item (or the value), trimmed, must match
    item_words: str | None = None  # the pattern in words, for error messages
    minimum: int | None = None  # the least allowed value of an int


def _f(name, where, kind, required, form, doc, x12, fhir, aliases=(), **more) -> Field:
    return Field(name, where, kind, required, form, tuple(aliases), name, x12, fhir, doc, **more)


# Contract section 1 order. `diagnoses` may stand on the claim and on a line: it has one entry for each,
# the line's where the runtime keeps its list (after modifiers), so that line fields read in slot order.
FIELDS: tuple[Field, ...] = (
    _f("claim_id", "claim", "text", True, None, "non-empty string, unique in one input",
       "CLM01", "identifier[0].value, else id"),
    _f("patient_id", "claim", "text", True, None, "non-empty string",
       "NM109 of loop 2010BA (NM1*IL); under a 2000C patient loop that id, /, 2010CA NM104 and NM103, /, DMG02",
       "patient.identifier.value, else what follows the last Patient/ in patient.reference"),
    _f("payer", "claim", "text", True, "name",
       "selects the policy whose payer id, or one of whose aliases, matches it",
       "NM103 of loop 2010BB (NM1*PR), the payer name", "insurer.display, else insurer.identifier.value"),
    _f("provider_id", "claim", "text", False, None, "string",
       "NM109 of loop 2010AA (NM1*85)", "provider.identifier.value"),
    _f("diagnoses", "claim", "list", False, "diagnosis",
       "ICD-10-CM codes, with or without the dot (M79.18 = M7918); a line's own list replaces the claim's",
       "the HI segment of loop 2300: codes qualified ABK and ABF, in order",
       "diagnosis[] by sequence: the diagnosisCodeableConcept.coding code whose system is "
       "http://hl7.org/fhir/sid/icd-10-cm", aliases=("diagnosis",)),
    _f("lines", "claim", "list", True, None, "at least one line",
       "each loop 2400 (LX)", "item[]"),
    _f("line", "line", "int", True, None, "integer, unique within the claim",
       "REF02 of REF*6R in loop 2400 when it is an integer, else LX01", "item[].sequence"),
    _f("date", "line", "date", True, None, "date of service, YYYY-MM-DD",
       "DTP*472*D8*CCYYMMDD in loop 2400", "item[].servicedDate",
       item_pattern=DATE_PATTERN, item_words="YYYY-MM-DD"),
    _f("code", "line", "code", True, "code", "CPT or HCPCS code (5 characters: 97140, J3301, 0232T)",
       "SV101: HC:code:mod1:mod2:mod3:mod4", "item[].productOrService.coding[0].code",
       item_pattern=CODE_PATTERN, item_words="5 letters or digits"),
    _f("units", "line", "int", False, None, "integer >= 1, default 1",
       "SV104 when SV103 is UN (an integer)", "item[].quantity.value (a whole number: 2.0 is 2, 1.5 an error)",
       minimum=1),
    _f("modifiers", "line", "list", False, "code", "two-character modifiers, e.g. 25, 59, LT",
       "SV101: HC:code:mod1:mod2:mod3:mod4", "item[].modifier[].coding[0].code", aliases=("modifier",),
       item_pattern=MODIFIER_PATTERN, item_words="two letters or digits"),
    _f("diagnoses", "line", "list", False, "diagnosis",
       "ICD-10-CM codes, with or without the dot (M79.18 = M7918); a line's own list replaces the claim's",
       "the HI codes that SV107's pointers (1-based) name; without SV107, the claim's codes",
       "the claim diagnoses whose sequence is in item[].diagnosisSequence, when given", aliases=("diagnosis",)),
    _f("muscles", "line", "list", False, "name", "muscles injected, from the procedure note",
       "the line's NTE*ADD note: muscles=a,b", "item[].subSite[]: each text, else coding[0].display",
       aliases=("muscle",)),
    _f("substances", "line", "list", False, "name", "agents injected, from the procedure note",
       "the line's NTE*ADD note: substances=x,y",
       "item[].detail[].productOrService: each text, else coding[0].display", aliases=("substance",)),
    _f("site", "line", "text", False, "name",
       "the anatomic site or body region treated, from the procedure note (neck, lower back, left shoulder)",
       "the line's NTE*ADD note: site=neck", "item[].bodySite.text, else its coding[0].display"),
    _f("prior_auth", "claim", "text", False, "text",
       "the payer's prior authorization number for this claim",
       "REF02 of REF*G1 in loop 2300", "insurance[] (the one with focal: true, else the first): preAuthRef[0]"),
)

CLAIM_FIELDS: dict[str, Field] = {f.name: f for f in FIELDS if f.where == "claim"}
LINE_FIELDS: dict[str, Field] = {f.name: f for f in FIELDS if f.where == "line"}
# A line's list fields, in the order the runtime keeps them (Line slots, the readers' value tuples).
LIST_FIELDS: tuple[str, ...] = tuple(f.name for f in LINE_FIELDS.values() if f.kind == "list")
NUMBER_FIELDS: tuple[str, ...] = tuple(f.name for f in LINE_FIELDS.values() if f.kind == "int" and f.name != "line")

_BY_WORD: dict[str, Field] = {}
for _field in (*LINE_FIELDS.values(), *CLAIM_FIELDS.values()):  # a line's field first: rules read lines
    for _word in (_field.name, *_field.aliases):
        _BY_WORD.setdefault(_word, _field)
del _field, _word


_CLAIM_BY_WORD: Mapping[str, Field] = MappingProxyType({w: f for f in CLAIM_FIELDS.values() for w in (f.name, *f.aliases)})
# The claim fields a rule may test with `claim has ...` (the runtime keeps these on each Claim).
READABLE_CLAIM_FIELDS: tuple[str, ...] = ("claim_id", "patient_id", "payer", "prior_auth")


def claim_field_for_word(word: str) -> Field | None:
    """The claim's field a word names (`claim has prior_auth`); None for any other word."""
    return _CLAIM_BY_WORD.get(word)


def payer_key(payer: str) -> str:
    """A payer id or alias in the form payer names compare in: trimmed, case-folded, runs of white space
    collapsed to one space (`Acme  Health` = `acme health`)."""
    return " ".join(payer.split()).casefold()


def field_for_word(word: str) -> Field | None:
    """The field a word names: its name or an alias ("muscle", "muscles" -> muscles); a line's field
    before the claim's (`diagnoses`). None for any other word."""
    return _BY_WORD.get(word)


def normal(form: str, value: str) -> str:
    """A value in a normal form ("" for a blank one).

    code: trimmed, upper-cased; diagnosis: surrounding spaces and dots removed, upper-cased;
    name: runs of white space collapsed to one space, trimmed, case-folded; text: trimmed."""
    if form == "code":
        return value.strip().upper()
    if form == "diagnosis":
        return value.strip().replace(".", "").upper()
    if form == "name":
        return " ".join(value.split()).casefold()
    if form == "text":
        return value.strip()
    raise ValueError(f"no normal form {form!r}")


def code_shape(code: str) -> str:
    """Digits as 9, anything else as A: "J3301" -> "A9999"."""
    return "".join("9" if c.isdigit() else "A" for c in code)


def in_code_range(code: str, lo: str, hi: str) -> bool:
    """Whether `code` lies in the range lo..hi: lo <= code <= hi, and it has the bounds' shape (digits
    where they have digits, letters where they have letters), so 0232T is not in 00100..99999."""
    return lo <= code <= hi and len(code) == len(lo) and code_shape(code) == code_shape(lo)


assert set(LIST_FIELDS) <= set(LINE_FIELDS)
assert all(f.form is not None for f in LINE_FIELDS.values() if f.kind == "list")
