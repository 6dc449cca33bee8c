"""Checking FHIR Claim and ClaimResponse resources against the FHIR schema, for `payrule validate`.

payrule's own reader (`payrule.claims.fhir`) reads only the elements the mapping needs, and reads them
fast; it does not say whether a file is valid FHIR. This module does, with the models of
fhir.resources: version 8 has no R4 (4.0.1) package - its default models are R5 - but it has R4B
(4.3.0), whose Claim and ClaimResponse are R4's with no element added, removed or retyped, so
`fhir.resources.R4B` is what the resources are checked against. On top of the models it checks the
required code bindings that the models leave open (Claim.status and use, ClaimResponse.status, use and
outcome, Bundle.type). FHIRPath invariants are not checked.

fhir.resources takes a good part of a second to import, so it is imported inside `validate_fhir`:
importing this module costs nothing, and `payrule check` never imports it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from payrule.claims.fhir import resources
from payrule.claims.formats import FormatError

__all__ = ["Finding", "validate_fhir", "FHIR_VERSION"]

FHIR_VERSION = "4.3.0 (R4B)"  # what fhir.resources.R4B models; R4 is 4.0.1

# Required bindings (FHIR R4), which the models do not enforce.
_BINDINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "Claim": {"status": ("active", "cancelled", "draft", "entered-in-error"),
              "use": ("claim", "preauthorization", "predetermination")},
    "ClaimResponse": {"status": ("active", "cancelled", "draft", "entered-in-error"),
                      "use": ("claim", "preauthorization", "predetermination"),
                      "outcome": ("queued", "complete", "error", "partial")},
}
_REQUIRED_PRIMITIVES = {"Claim": ("status", "use", "created"), "ClaimResponse": ("status", "use", "created", "outcome"),
                        "Bundle": ("type",)}
_BUNDLE_TYPES = ("document", "message", "transaction", "transaction-response", "batch", "batch-response",
                 "history", "searchset", "collection")


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong with a file: where (`line N` of NDJSON, `entry N` of a Bundle, `bundle` or
    `file`), the resource (type and id, when known), the element's path (`item[0].sequence`, empty
    for the resource as a whole) and what is wrong."""

    where: str
    resource_type: str | None
    resource_id: str | None
    path: str
    message: str

    def render(self) -> str:
        """One line: `line 3: Claim c-1: item[0].sequence: Input should be greater than or equal to 1`."""
        parts = [self.where]
        if self.resource_type is not None:
            parts.append(self.resource_type + (f" {self.resource_id}" if self.resource_id else ""))
        if self.path:
            parts.append(self.path)
        return ": ".join(parts) + ": " + " ".join(self.message.split())


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _path_order(f: Finding) -> list:
    """Findings in element order, item[2] before item[10]."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", f.path)]


def _models() -> dict:
    try:
        from fhir.resources.R4B.bundle import Bundle
        from fhir.resources.R4B.claim import Claim
        from fhir.resources.R4B.claimresponse import ClaimResponse
    except ImportError as exc:  # an optional dependency: say how to get it
        raise ImportError("validating FHIR needs fhir.resources 8 or later: pip install 'payrule[fhir]'") from exc
    return {"Claim": Claim, "ClaimResponse": ClaimResponse, "Bundle": Bundle}


def _check(model, resource: dict, where: str, rtype: str, rid: str | None) -> list[Finding]:
    from pydantic import ValidationError

    out = []
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        for err in exc.errors():
            out.append(Finding(where, rtype, rid, _path(tuple(err.get("loc", ()))), str(err.get("msg", ""))))
    except (ValueError, TypeError) as exc:  # the models raise these too, for some malformed input
        out.append(Finding(where, rtype, rid, "", str(exc)))
    for key, codes in _BINDINGS.get(rtype, {}).items():
        v = resource.get(key)
        if isinstance(v, str) and v not in codes:
            out.append(Finding(where, rtype, rid, key, f"`{v}` is not one of {', '.join(codes)}"))
    # The models look for a missing required primitive only once everything else is valid: say it now.
    said = {f.path for f in out}
    for key in _REQUIRED_PRIMITIVES.get(rtype, ()):
        if resource.get(key) is None and resource.get("_" + key) is None and key not in said:
            out.append(Finding(where, rtype, rid, key, "Field required"))
    return sorted(out, key=_path_order)


def validate_fhir(data: bytes) -> list[Finding]:
    """Every problem of the Claim and ClaimResponse resources of a FHIR file (NDJSON or a Bundle), in
    file order; an empty list when there is none. Lines and entries that are not JSON or not a
    resource are findings too; other resource types are not checked. A file that is not FHIR JSON at
    all is one finding (`file`). Raises ImportError when fhir.resources is not installed."""
    models = _models()
    out: list[Finding] = []
    bundle = False
    try:
        for n, is_entry, got in resources(data):
            bundle = bundle or is_entry
            where = f"entry {n}" if is_entry else f"line {n}"
            if isinstance(got, str):
                out.append(Finding(where, None, None, "", got))
                continue
            assert isinstance(got, dict)
            rtype = got.get("resourceType")
            rid = got.get("id") if isinstance(got.get("id"), str) else None
            if not isinstance(rtype, str):
                out.append(Finding(where, None, rid, "resourceType", "a resource needs a resourceType"))
                continue
            if rtype in ("Claim", "ClaimResponse"):
                out.extend(_check(models[rtype], got, where, rtype, rid))
    except FormatError as exc:
        return out + [Finding("file", None, None, "", str(exc))]
    if bundle:
        out[:0] = _check_bundle(models["Bundle"], data)
    return out


def _check_bundle(model, data: bytes) -> list[Finding]:
    """The Bundle's own elements, its entries' included, but not their resources (checked one by one)."""
    import json

    try:  # the file was read as a Bundle already; bytes that are not UTF-8 are its entries' findings
        doc = json.loads(data.decode("utf-8-sig", "replace"))
    except ValueError:
        return []
    if not isinstance(doc, dict):
        return []
    shell = dict(doc)
    if isinstance(doc.get("entry"), list):
        shell["entry"] = [{k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else e for e in doc["entry"]]
    rid = shell.get("id") if isinstance(shell.get("id"), str) else None
    out = _check(model, shell, "bundle", "Bundle", rid)
    t = shell.get("type")
    if isinstance(t, str) and t not in _BUNDLE_TYPES:
        out.append(Finding("bundle", "Bundle", rid, "type", f"`{t}` is not one of {', '.join(_BUNDLE_TYPES)}"))
    return out
