"""Which format a claims file is in, and reading any of them into runtime Claims (contract sections 1
and 6). JSON Lines and CSV are read by `payrule.claims.readers`; X12 837P (`payrule.claims.x12`) and
FHIR R4 (`payrule.claims.fhir`) are first mapped to the claim objects of section 1 (plain dicts), which
are then read exactly as a JSON Lines claim is, so a claim decides the same whatever it came in.

A format reader yields, in input order, either `(input_line, claim_object)` or an `Unmapped` for a claim
the mapping cannot complete; a file that is not that format at all (a broken X12 envelope, a FHIR file
that is not JSON) raises `FormatError`, which the commands report as a usage error (exit 2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Union

FORMATS = ("jsonl", "csv", "x12", "fhir")


class FormatError(Exception):
    """The whole file cannot be read as its format (exit 2); the message says where (segment, line)."""


@dataclass(frozen=True, slots=True)
class Unmapped:
    """A claim the format's mapping cannot complete: an error record in its place (contract section 2)."""

    input_line: int
    claim_id: str | None
    message: str


Mapped = Union[tuple[int, dict], Unmapped]


def detect(name: str, head: bytes) -> str:
    """The format of a file from its name and first bytes: `.x12`/`.837`/`.edi` or a file starting with
    `ISA` is X12; a JSON Bundle or NDJSON of FHIR resources (`"resourceType"`) is FHIR; `.csv` or a
    header naming claim_id is CSV; anything else JSON Lines."""
    from payrule.claims.readers import is_csv

    lower = name.lower()
    body = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if lower.endswith((".x12", ".837", ".edi")) or body[:3] == b"ISA":
        return "x12"
    if lower.endswith(".csv"):
        return "csv"
    if body[:1] == b"{":
        first = body.split(b"\n", 1)[0]
        if b'"resourceType"' in first:
            return "fhir"
        if b'"resourceType"' in body[:4096] and not _is_json_object(first):  # a pretty-printed Bundle
            return "fhir"
    if is_csv(name, head):
        return "csv"
    return "jsonl"


def _is_json_object(line: bytes) -> bool:
    import json

    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def mapper(fmt: str) -> Callable[[bytes], Iterator[Mapped]]:
    """The mapping reader of a format that is not read directly (x12, fhir)."""
    if fmt == "x12":
        from payrule.claims.x12 import read_x12

        return read_x12
    if fmt == "fhir":
        from payrule.claims.fhir import read_fhir

        return read_fhir
    raise ValueError(f"no mapping reader for {fmt!r}")


def build_mapped(records: Iterable[Mapped], history: bool, first_order: int, session) -> Iterator:
    """Claims (or ClaimErrors) from mapped claim objects, read as JSON Lines claims are: the typed fast
    path first (msgspec converts the object to the reader's struct), the full reader for anything it
    refuses, which says what is wrong in the reader's own words."""
    from payrule.claims.readers import ClaimError, claim_from_object, typed_object_reader

    seen: set = set()
    order = first_order
    fast = typed_object_reader(session)
    for rec in records:
        if isinstance(rec, Unmapped):
            yield ClaimError(rec.claim_id, rec.message, rec.input_line)
            continue
        n, obj = rec
        out = fast(obj, n, order, seen, history) if fast is not None else None
        if out is None:
            out = claim_from_object(obj, n, order, seen, history, session)
        order += 1  # as the JSON Lines reader counts: every claim object, readable or not
        yield out
