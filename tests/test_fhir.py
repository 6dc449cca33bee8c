"""FHIR R4 in and out (contract section 6): the Claim mapping row by row, NDJSON and Bundles, bad lines
and entries as error records, write_fhir -> read_fhir round trips on generated claims that decide as
their JSON Lines twins do, ClaimResponses that fhir.resources accepts, and `payrule check` on a Bundle.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payrule.claims.fhir import (
    CARC,
    DECISION,
    ICD10CM,
    REASON,
    RULE,
    _map_any,
    _Shape,
    claim_response,
    read_fhir,
    render_claim_responses,
    write_fhir,
)
from payrule.claims.formats import FormatError, Unmapped, detect
from payrule.claims.readers import ClaimError, read_claims
from payrule.run.engine import decide, decision_json

from conftest import claim_dicts, generated_claims

ROOT = Path(__file__).resolve().parents[1]
_HAVE_FHIR_RESOURCES = importlib.util.find_spec("fhir.resources") is not None
EXAMPLE = ROOT / "docs" / "examples" / "fhir" / "bundle.json"


# ---- helpers -------------------------------------------------------------------------------------


def resource(**over) -> dict:
    """A Claim resource with every mapped element; keyword arguments replace top-level elements (None
    removes one)."""
    r = {
        "resourceType": "Claim", "id": "res-1",
        "identifier": [{"system": "urn:example:claims", "value": "C-1"}],
        "status": "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]},
        "use": "claim",
        "patient": {"reference": "Patient/P-1", "identifier": {"value": "P-1"}},
        "created": "2025-03-02",
        "insurer": {"display": "medicare", "identifier": {"value": "MCR"}},
        "provider": {"identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}},
        "priority": {"coding": [{"code": "normal"}]},
        "diagnosis": [{"sequence": 1, "diagnosisCodeableConcept": {"coding": [{"system": ICD10CM, "code": "M79.18"}]}}],
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "medicare"}}],
        "item": [item()],
    }
    for k, v in over.items():
        if v is None:
            r.pop(k, None)
        else:
            r[k] = v
    return r


def item(**over) -> dict:
    it = {"sequence": 1, "productOrService": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "20553"}]},
          "servicedDate": "2025-03-01", "quantity": {"value": 1},
          "subSite": [{"text": "right upper trapezius"}, {"text": "right posterior deltoid"}, {"text": "right supraspinatus"}],
          "detail": [{"sequence": 1, "productOrService": {"text": "lidocaine"}}]}
    for k, v in over.items():
        if v is None:
            it.pop(k, None)
        else:
            it[k] = v
    return it


def ndjson(*resources) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in resources)


def bundle(*resources, pretty: bool = True) -> bytes:
    doc = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    return json.dumps(doc, indent=2 if pretty else None).encode()


def mapped(r: dict):
    """What read_fhir gives for one resource (the fast path when it applies), checked against the
    mapping's definition (`_map_any`) read directly."""
    got = list(read_fhir(ndjson(r)))
    assert len(got) == 1
    try:
        want = (1, _map_any(copy.deepcopy(r)))
    except _Shape as exc:
        assert isinstance(got[0], Unmapped) and got[0].message == str(exc)
        return got[0]
    assert got[0] == want
    return got[0][1]


def canon(records) -> list:
    """Runtime claims as comparable tuples (the reading order number left out: error records do not
    count in it for mapped formats)."""
    out = []
    for r in records:
        if isinstance(r, ClaimError):
            out.append(("error", r.claim_id, r.error, r.input_line))
            continue
        out.append((r.claim_id, r.patient_id, r.payer, r.payer_key, r.prior_auth, r.input_line, [
            (ln.no, ln.date, ln.code, ln.code_raw, ln.units, ln.modifiers, ln.diagnoses, ln.muscles, ln.substances,
             ln.raw_modifiers, ln.raw_diagnoses, ln.raw_muscles, ln.raw_substances, ln.site) for ln in r.lines]))
    return out


def sayable(claims: list[dict]) -> list[dict]:
    out = []
    for c in claims:
        try:
            write_fhir([c])
        except ValueError:
            continue
        out.append(c)
    return out


def jsonl(claims: list[dict]) -> bytes:
    return b"".join(json.dumps(c).encode() + b"\n" for c in claims)


# ---- the mapping, row by row ---------------------------------------------------------------------


ROWS = [
    # (row, resource, field path in the claim object, value); a value of Unmapped's message is a str after "!"
    ("claim_id from identifier[0].value", resource(), "claim_id", "C-1"),
    ("claim_id else id", resource(identifier=None), "claim_id", "res-1"),
    ("claim_id else id (identifier without value)", resource(identifier=[{"system": "x"}]), "claim_id", "res-1"),
    ("patient_id from patient.identifier.value", resource(patient={"identifier": {"value": "W123"}, "reference": "Patient/9"}),
     "patient_id", "W123"),
    ("patient_id else after the last Patient/", resource(patient={"reference": "https://ex.org/fhir/Patient/P-9"}),
     "patient_id", "P-9"),
    ("patient.reference without Patient/", resource(patient={"reference": "urn:uuid:1234"}), "patient_id",
     '!patient.reference "urn:uuid:1234" names no Patient/ id, and patient.identifier.value is not given'),
    ("payer from insurer.display", resource(), "payer", "medicare"),
    ("payer else insurer.identifier.value", resource(insurer={"identifier": {"value": "aetna"}}), "payer", "aetna"),
    ("provider_id from provider.identifier.value", resource(), "provider_id", "1234567893"),
    ("no provider", resource(provider={"display": "Dr. X"}), "provider_id", None),
    ("diagnoses by sequence, ICD-10-CM only", resource(diagnosis=[
        {"sequence": 3, "diagnosisCodeableConcept": {"coding": [{"system": ICD10CM, "code": "M54.2"}]}},
        {"sequence": 1, "diagnosisCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "95417003"},
                                                                {"system": ICD10CM, "code": "M79.18"}]}},
        {"sequence": 2, "diagnosisCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "M79.1"}]}},
    ]), "diagnoses", ["M79.18", "M54.2"]),
    ("diagnosis sequence repeated", resource(diagnosis=[{"sequence": 1}, {"sequence": 1}]), "diagnoses",
     "!diagnosis[1].sequence 1 is repeated"),
    ("diagnosis without a sequence", resource(diagnosis=[{"diagnosisCodeableConcept": {}}]), "diagnoses",
     "!diagnosis[0].sequence must be a whole number"),
    ("prior_auth from the focal insurance", resource(insurance=[
        {"sequence": 1, "focal": False, "preAuthRef": ["PA-1"]}, {"sequence": 2, "focal": True, "preAuthRef": ["PA-2", "PA-3"]}]),
     "prior_auth", "PA-2"),
    ("prior_auth else the first insurance", resource(insurance=[
        {"sequence": 1, "preAuthRef": ["PA-1"]}, {"sequence": 2, "preAuthRef": ["PA-2"]}]), "prior_auth", "PA-1"),
    ("no preAuthRef", resource(), "prior_auth", None),
    ("line from item[].sequence", resource(item=[item(sequence=7)]), "lines.0.line", 7),
    ("date from item[].servicedDate", resource(), "lines.0.date", "2025-03-01"),
    ("code from productOrService.coding[0].code (HCPCS)", resource(item=[item(productOrService={"coding": [
        {"system": "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "code": "J3301"}, {"code": "X"}]})]),
     "lines.0.code", "J3301"),
    ("modifiers from modifier[].coding[0].code", resource(item=[item(modifier=[{"coding": [{"code": "RT"}]}, {"coding": [{"code": "59"}]}])]),
     "lines.0.modifiers", ["RT", "59"]),
    ("a modifier without a code", resource(item=[item(modifier=[{"text": "right"}])]), "lines.0.modifiers",
     "!item[0].modifier[0] has no coding[0].code"),
    ("units from quantity.value", resource(item=[item(quantity={"value": 3})]), "lines.0.units", 3),
    ("units 2.0 is 2", resource(item=[item(quantity={"value": 2.0})]), "lines.0.units", 2),
    ("units 1.5 passed on (an error)", resource(item=[item(quantity={"value": 1.5})]), "lines.0.units", 1.5),
    ("no quantity: no units", resource(item=[item(quantity=None)]), "lines.0.units", None),
    ("a line's diagnoses from diagnosisSequence", resource(
        diagnosis=[{"sequence": 1, "diagnosisCodeableConcept": {"coding": [{"system": ICD10CM, "code": "M79.18"}]}},
                   {"sequence": 2, "diagnosisCodeableConcept": {"coding": [{"system": ICD10CM, "code": "M54.2"}]}}],
        item=[item(diagnosisSequence=[2])]), "lines.0.diagnoses", ["M54.2"]),
    ("no diagnosisSequence: the claim's", resource(), "lines.0.diagnoses", None),
    ("diagnosisSequence naming no diagnosis", resource(item=[item(diagnosisSequence=[4])]), "lines.0.diagnoses",
     "!item[0].diagnosisSequence 4 names no diagnosis of the claim"),
    ("site from bodySite.text", resource(item=[item(bodySite={"text": "neck", "coding": [{"display": "Neck structure"}]})]),
     "lines.0.site", "neck"),
    ("site else bodySite.coding[0].display", resource(item=[item(bodySite={"coding": [{"code": "45048000", "display": "Neck"}]})]),
     "lines.0.site", "Neck"),
    ("muscles from subSite text, else coding[0].display", resource(item=[item(subSite=[
        {"text": "left soleus"}, {"coding": [{"system": "http://snomed.info/sct", "code": "1", "display": "left piriformis"}]}])]),
     "lines.0.muscles", ["left soleus", "left piriformis"]),
    ("a subSite without a name", resource(item=[item(subSite=[{"coding": [{"code": "1"}]}])]), "lines.0.muscles",
     "!item[0].subSite[0] has neither text nor coding[0].display"),
    ("substances from detail[].productOrService", resource(item=[item(detail=[
        {"sequence": 1, "productOrService": {"text": "bupivacaine"}},
        {"sequence": 2, "productOrService": {"coding": [{"display": "triamcinolone"}]}}])]),
     "lines.0.substances", ["bupivacaine", "triamcinolone"]),
    ("a detail without a name", resource(item=[item(detail=[{"sequence": 1}])]), "lines.0.substances",
     "!item[0].detail[0].productOrService has neither text nor coding[0].display"),
    ("an R5-style bodySite list", resource(item=[item(bodySite=[{"site": []}])]), "lines.0.site",
     "!item[0].bodySite must be an object, not a list"),
]


def _get(obj, path: str):
    for part in path.split("."):
        if obj is None:
            return None
        obj = obj[int(part)] if part.isdigit() else obj.get(part)
    return obj


@pytest.mark.parametrize("row, r, path, want", ROWS, ids=[r[0] for r in ROWS])
def test_mapping_row(row, r, path, want):
    got = mapped(r)
    if isinstance(want, str) and want.startswith("!"):
        assert isinstance(got, Unmapped), got
        assert got.message == want[1:]
        assert got.claim_id == "C-1"  # the error record still names the claim
        return
    assert not isinstance(got, Unmapped), got
    assert _get(got, path) == want
    if want is None:  # optional fields are left out, not set to null
        head, _, last = path.rpartition(".")
        assert last not in (_get(got, head) if head else got)


def test_whole_claim_object():
    r = resource(insurance=[{"sequence": 1, "focal": True, "preAuthRef": ["PA-9"]}],
                 item=[item(modifier=[{"coding": [{"code": "RT"}]}], bodySite={"text": "right shoulder"}, diagnosisSequence=[1]),
                       item(sequence=2, productOrService={"coding": [{"code": "J3301"}]}, quantity={"value": 4.0},
                            subSite=None, detail=None)])
    assert mapped(r) == {
        "claim_id": "C-1", "patient_id": "P-1", "payer": "medicare", "provider_id": "1234567893",
        "diagnoses": ["M79.18"], "prior_auth": "PA-9",
        "lines": [{"line": 1, "date": "2025-03-01", "code": "20553", "units": 1, "modifiers": ["RT"], "diagnoses": ["M79.18"],
                   "muscles": ["right upper trapezius", "right posterior deltoid", "right supraspinatus"],
                   "substances": ["lidocaine"], "site": "right shoulder"},
                  {"line": 2, "date": "2025-03-01", "code": "J3301", "units": 4}]}


@pytest.mark.parametrize("r, error", [
    (resource(item=[item(quantity={"value": 1.5})]), "lines[0].units must be a whole number, not 1.5"),
    (resource(item=[item(servicedDate="2025-02-30")]), 'lines[0].date "2025-02-30" is not a real date (YYYY-MM-DD)'),
    (resource(item=[item(servicedDate=None)]), "lines[0].date is missing"),
    (resource(identifier=None, id=None), "claim_id is missing"),
    (resource(patient={"display": "Jane"}), "patient_id is missing"),
    (resource(insurer={"display": ""}), "payer is empty"),
    (resource(item=None), "lines is missing"),
    (resource(item=[item(), item()]), "lines[1].line 1 is repeated within the claim"),
])
def test_bad_values_are_reported_by_the_claim_reader(r, error):
    recs = read_claims(ndjson(r), "x.ndjson", fmt="fhir")
    assert [(type(x), x.error) for x in recs] == [(ClaimError, error)]


# ---- files: NDJSON, Bundles, other resources, bad entries ------------------------------------------


def three() -> list[dict]:
    return [resource(), resource(identifier=[{"value": "C-2"}], patient={"reference": "Patient/P-2"}),
            resource(identifier=[{"value": "C-3"}], insurer={"display": "aetna"})]


def test_ndjson_and_bundle_give_the_same_claims():
    rs = three()
    from_nd = list(read_fhir(ndjson(*rs)))
    assert [n for n, _ in from_nd] == [1, 2, 3]
    assert list(read_fhir(bundle(*rs))) == from_nd
    assert list(read_fhir(bundle(*rs, pretty=False))) == from_nd  # a Bundle on one line
    assert list(read_fhir(b"\xef\xbb\xbf" + bundle(*rs).replace(b"\n", b"\r\n"))) == from_nd


def test_a_pretty_printed_claim_is_one_resource():
    text = json.dumps(resource(), indent=2).encode()
    assert list(read_fhir(b"\n\n" + text)) == [(3, mapped(resource()))]


def test_other_resource_types_are_skipped():
    patient = {"resourceType": "Patient", "id": "P-1", "identifier": [{"value": "P-1"}]}
    encounter = {"resourceType": "Encounter", "diagnosis": [{"condition": {"reference": "Condition/1"}}]}
    rs = three()
    nd = list(read_fhir(ndjson(patient, rs[0], encounter, rs[1], rs[2])))
    assert [(n, c["claim_id"]) for n, c in nd] == [(2, "C-1"), (4, "C-2"), (5, "C-3")]
    b = list(read_fhir(bundle(patient, rs[0], encounter, rs[1], rs[2])))
    assert b == nd  # entries are numbered like the lines


def test_bad_lines_are_error_records_and_the_rest_are_decided(shipped):
    rs = three()
    data = b"\n".join([
        json.dumps(rs[0]).encode(),
        b'{"resourceType": "Claim", "identifier": [{"value": "C-9"}',  # cut short
        b"",
        b"[1, 2]",
        b'{"identifier": [{"value": "C-8"}]}',
        json.dumps(rs[1]).encode().replace(b"P-2", b"P-\xff"),
        b'{"resourceType": "Claim", "id": "C-7", "text": "\\ud800"}',
        json.dumps(resource(identifier=[{"value": "C-6"}], item=[item(subSite=[{}])])).encode(),
        json.dumps(rs[2]).encode(),
    ]) + b"\n"
    recs = read_claims(data, "x.ndjson", fmt="fhir")
    got = [(r.input_line, r.claim_id, r.error if isinstance(r, ClaimError) else None) for r in recs]
    assert got == [
        (1, "C-1", None),
        (2, None, "not JSON: Expecting ',' delimiter at column 58"),
        (4, None, "a FHIR resource must be a JSON object, not a list"),
        (5, None, "not a FHIR resource: resourceType is missing"),
        (6, None, "not UTF-8 (byte 258 of the line)"),
        (7, None, "not JSON text: a string holds an unpaired surrogate escape"),
        (8, "C-6", "item[0].subSite[0] has neither text nor coding[0].display"),
        (9, "C-3", None),
    ]
    out = [decision_json(d) for d in decide(shipped.checkers, recs)]
    assert [o.get("decision", "error") for o in out] == ["approve"] + ["error"] * 6 + ["approve"]


def test_bad_bundle_entries_are_error_records():
    rs = three()
    doc = {"resourceType": "Bundle", "type": "collection",
           "entry": [{"resource": rs[0]}, 7, {"fullUrl": "urn:x"}, {"resource": "Claim"}, {"resource": rs[1]}]}
    got = list(read_fhir(json.dumps(doc, indent=1).encode()))
    assert got[0][0] == 1 and got[-1][0] == 5
    assert got[1:3] == [Unmapped(2, None, "the entry must be an object, not a number"),
                        Unmapped(4, None, "the entry's resource must be an object, not a string")]


def test_invalid_utf8_in_an_unmapped_element_is_an_error():
    """msgspec skips unmapped elements unread; the contract makes a line that is not UTF-8 an error."""
    raw = json.dumps(resource(status="x")).encode().replace(b'"status": "x"', b'"status": "\xff"')
    assert list(read_fhir(raw)) == [Unmapped(1, None, "not UTF-8 (byte 119 of the line)")]
    doc = b'{"resourceType": "Bundle", "entry": [{"resource": ' + raw + b"}]}"
    assert list(read_fhir(doc)) == [Unmapped(1, None, "not UTF-8 (byte 132 of the entry)")]


@pytest.mark.parametrize("data, message", [
    (b'{"resourceType": "Bundle",\n  "entry": [\n    {"resource": {"resourceType": "Claim"}\n  ]\n}\n',
     "not JSON: Expecting ',' delimiter at line 4, column 3"),
    (b'{"resourceType": "Bundle",\n "entry": {"resource": {}}\n}\n', "Bundle.entry must be a list, not an object"),
    (b'{"resourceType": "Bundle", "entry": 3}', "Bundle.entry must be a list, not a number"),
    (b'[{"resourceType": "Claim"},\n {"resourceType": "Claim"}]\n', "not a FHIR Bundle or NDJSON of resources: the file holds a list"),
])
def test_a_broken_bundle_is_a_format_error(data, message):
    with pytest.raises(FormatError) as exc:
        list(read_fhir(data))
    assert str(exc.value) == message


def test_ndjson_with_a_broken_first_line_is_still_ndjson():
    rs = three()
    data = b'{"resourceType": "Claim",\n' + ndjson(*rs)
    got = list(read_fhir(data))
    assert isinstance(got[0], Unmapped) and got[0].input_line == 1
    assert [n for n, _ in got[1:]] == [2, 3, 4]


def test_detection():
    claims = [{"claim_id": "C-1", "patient_id": "P", "payer": "medicare",
               "lines": [{"line": 1, "date": "2025-03-01", "code": "20553"}]}]
    assert detect("x.json", write_fhir(claims, bundle=True)) == "fhir"
    assert detect("x.ndjson", write_fhir(claims)) == "fhir"


# ---- fast path and definition agree ----------------------------------------------------------------

_ODD = st.sampled_from([None, 0, 1, -1, 1.5, 2.0, True, "", " ", "x", "Patient/", [], [None], [{}], {}, {"text": "t"},
                        {"coding": []}, {"coding": [{}]}, {"value": None}]).map(copy.deepcopy)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fast_path_agrees_with_the_definition(data):
    """Any element on a mapped path replaced by an odd value: read_fhir (fast path or not) gives what
    the mapping's definition gives, or the same error record."""
    r = resource(insurance=[{"sequence": 1, "focal": True, "preAuthRef": ["PA"]}],
                 item=[item(modifier=[{"coding": [{"code": "RT"}]}], bodySite={"text": "neck"}, diagnosisSequence=[1])])
    paths = []

    def walk(v, path):
        paths.append(path)
        if isinstance(v, dict):
            for k, x in v.items():
                if k != "resourceType":
                    walk(x, path + (k,))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                walk(x, path + (i,))

    walk(r, ())
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths[1:]))
        target = r
        try:
            for p in path[:-1]:
                target = target[p]
            target[path[-1]] = data.draw(_ODD)
        except (KeyError, IndexError, TypeError):
            continue
    mapped(r)


# ---- round trips -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated() -> list[dict]:
    return sayable(generated_claims(3000, 11))


def test_what_fhir_cannot_say_is_refused():
    c = {"claim_id": "C-1", "patient_id": "P", "payer": "medicare", "diagnoses": ["M79.18"],
         "lines": [{"line": 1, "date": "2025-03-01", "code": "20553", "diagnoses": []}]}
    with pytest.raises(ValueError, match="no diagnoses on a claim with diagnoses"):
        write_fhir([c])
    with pytest.raises(ValueError, match="not a list"):
        write_fhir([dict(c, lines=[{"line": 1, "muscles": "left soleus"}])])


def test_round_trip_generated_claims(generated, shipped):
    assert len(generated) > 2900
    assert sum(1 for c in generated if any("diagnoses" in ln for ln in c["lines"] if isinstance(ln, dict))) > 50
    from_jsonl = read_claims(jsonl(generated), "x.jsonl")
    assert sum(isinstance(r, ClaimError) for r in from_jsonl) > 10  # ill-valued claims stay ill-valued
    want = canon(from_jsonl)
    nd = read_claims(write_fhir(generated), "x.ndjson", fmt="fhir")
    assert canon(nd) == want
    assert canon(read_claims(write_fhir(generated, bundle=True), "x.json", fmt="fhir")) == want
    decided = [decision_json(d) for d in decide(shipped.checkers, from_jsonl)]
    assert [decision_json(d) for d in decide(shipped.checkers, nd)] == decided
    assert {d.get("decision") for d in decided} >= {"approve", "deny", "review", None}


def test_writing_is_deterministic_and_read_back_writes_the_same(generated):
    nd = write_fhir(generated[:200])
    assert nd == write_fhir(copy.deepcopy(generated[:200]))
    back = [obj for _, obj in read_fhir(nd)]
    assert write_fhir(back) == nd


_name = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12)
_claim = claim_dicts(_name)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_claim, min_size=1, max_size=5, unique_by=lambda c: c["claim_id"]), st.booleans())
def test_round_trip_any_claims(claims, as_bundle):
    claims = sayable(claims)
    from_jsonl = read_claims(jsonl(claims), "x.jsonl")
    want = canon(from_jsonl)
    written = write_fhir(claims, bundle=as_bundle)
    assert canon(read_claims(written, "x.json", fmt="fhir")) == want
    if _HAVE_FHIR_RESOURCES:  # a claim that reads is written as valid FHIR
        from payrule.claims.fhir_validate import validate_fhir

        good = [c for c, r in zip(claims, from_jsonl) if not isinstance(r, ClaimError)]
        assert [f.render() for f in validate_fhir(write_fhir(good, bundle=as_bundle))] == []


# ---- ClaimResponse ---------------------------------------------------------------------------------


def test_every_claim_response_validates(generated, shipped):
    pytest.importorskip("fhir.resources")
    from fhir.resources.R4B.claimresponse import ClaimResponse

    recs = read_claims(jsonl(generated[:1500]), "x.jsonl")
    by_id = {c["claim_id"]: c for c in generated[:1500] if isinstance(c.get("claim_id"), str)}
    decided = [decision_json(d) for d in decide(shipped.checkers, recs)]
    decided.append({"claim_id": None, "error": "not JSON: Expecting value at column 1", "input_line": 7})
    with_carc = 0
    for d in decided:
        for claim in (by_id.get(d.get("claim_id")), None):
            cr = claim_response(d, claim)
            ClaimResponse.model_validate(cr)
            assert cr["outcome"] == ("error" if "error" in d else "complete")
            with_carc += json.dumps(cr).count(CARC)
    assert with_carc > 100


def test_claim_response_shape():
    claim = {"claim_id": "C-1", "patient_id": "P-1", "payer": "medicare",
             "lines": [{"line": 1, "date": "2025-03-01", "code": "20552"}, {"line": 2, "date": "2025-03-04", "code": "J3301"}]}
    reason = {"policy": "common-tpi", "rule": "muscles-for-20552", "outcome": "deny", "message": "bill 20553",
              "source": "policies/common/trigger_points.policy:28", "carc": "16", "rarc": "M51"}
    d = {"claim_id": "C-1", "decision": "deny",
         "lines": [{"line": 1, "code": "20552", "decision": "deny", "reasons": [reason]},
                   {"line": 2, "code": "J3301", "decision": "approve", "reasons": []}]}
    cr = claim_response(d, claim)
    assert cr["request"] == {"type": "Claim", "identifier": {"value": "C-1"}}
    assert cr["patient"] == {"identifier": {"value": "P-1"}} and cr["insurer"] == {"display": "medicare"}
    assert cr["created"] == "2025-03-04" and cr["status"] == "active" and cr["use"] == "claim"
    assert cr["adjudication"][0]["category"]["coding"][0] == {"system": DECISION, "code": "deny", "display": "denied"}
    first, second = cr["item"]
    assert first["itemSequence"] == 1 and first["noteNumber"] == [1]
    assert [a["category"]["coding"][0]["system"] for a in first["adjudication"]] == [DECISION, REASON]
    assert first["adjudication"][1]["reason"] == {
        "coding": [{"system": RULE, "code": "common-tpi/muscles-for-20552"}, {"system": CARC, "code": "16"},
                   {"system": "https://x12.org/codes/remittance-advice-remark-codes", "code": "M51"}],
        "text": "bill 20553"}
    assert second == {"itemSequence": 2, "adjudication": [{"category": {"coding": [
        {"system": DECISION, "code": "approve", "display": "approved"}]}}]}
    assert cr["processNote"] == [{"number": 1, "type": "display", "text": "line 1 20552: deny by common-tpi/muscles-for-20552: "
                                  "bill 20553 (policies/common/trigger_points.policy:28)"}]
    assert claim_response(d, claim, created="2025-04-01")["created"] == "2025-04-01"
    unknown = claim_response(d)
    assert "created" not in unknown and unknown["_created"]["extension"][0]["valueCode"] == "unknown"
    err = claim_response({"claim_id": "C-2", "error": "lines[0].date is missing", "input_line": 4})
    assert err["outcome"] == "error" and "item" not in err
    assert err["error"][0]["code"]["text"] == "lines[0].date is missing"
    assert err["processNote"][0]["text"] == "input line 4: lines[0].date is missing"


def test_render_claim_responses():
    ds = [{"claim_id": "C-1", "decision": "approve", "lines": [{"line": 1, "code": "20553", "decision": "approve", "reasons": []}]},
          {"claim_id": None, "error": "not JSON", "input_line": 2}]
    claim = {"claim_id": "C-1", "patient_id": "P", "payer": "aetna", "lines": [{"line": 1, "date": "2025-01-02"}]}
    lines = list(render_claim_responses(ds))
    assert all(x.endswith(b"\n") and x.count(b"\n") == 1 for x in lines)
    assert [json.loads(x)["outcome"] for x in lines] == ["complete", "error"]
    parallel = list(render_claim_responses(ds, [claim, None]))
    assert parallel == list(render_claim_responses(ds, {"C-1": claim}))
    assert json.loads(parallel[0])["insurer"] == {"display": "aetna"}
    with pytest.raises(ValueError):
        list(render_claim_responses(ds, [claim]))


# ---- validation ------------------------------------------------------------------------------------


def test_validate_written_claims_and_responses(generated):
    pytest.importorskip("fhir.resources")
    from payrule.claims.fhir_validate import validate_fhir

    good = [c for c in read_claims(jsonl(generated[:300]), "x.jsonl") if not isinstance(c, ClaimError)]
    ok = [c for c in generated[:300] if c.get("claim_id") in {g.claim_id for g in good}]
    assert validate_fhir(write_fhir(ok)) == []
    assert validate_fhir(write_fhir(ok, bundle=True)) == []
    assert validate_fhir(EXAMPLE.read_bytes()) == []


def test_validate_findings():
    pytest.importorskip("fhir.resources")
    from payrule.claims.fhir_validate import validate_fhir

    bad = resource(status="bogus", item=[item(sequence=0, servicedDate="2025-02-30")])
    response = claim_response({"claim_id": "C-1", "error": "x", "input_line": 1})
    response["outcome"] = "done"
    data = ndjson(bad, response) + b"not json\n"
    got = [f.render() for f in validate_fhir(data)]
    assert got == [
        "line 1: Claim res-1: item[0].sequence: Input should be greater than or equal to 1",
        "line 1: Claim res-1: item[0].servicedDate: Input should be a valid date or datetime, day value is outside expected range",
        "line 1: Claim res-1: status: `bogus` is not one of active, cancelled, draft, entered-in-error",
        "line 2: ClaimResponse: outcome: `done` is not one of queued, complete, error, partial",
        "line 3: not JSON: Expecting value at column 1",
    ]
    # a required primitive that is missing is said even when the models stop at other findings first
    missing = [f.render() for f in validate_fhir(ndjson(resource(created=None, patient=None)))]
    assert missing == ["line 1: Claim res-1: created: Field required", "line 1: Claim res-1: patient: Field required"]
    assert [f.render() for f in validate_fhir(b'{"resourceType": "Bundle",\n"entry": [}')] == [
        "file: not JSON: Expecting value at line 2, column 11"]
    b = validate_fhir(b'{"resourceType": "Bundle", "type": "pile", "entry": [{"resource": {"resourceType": "Patient"}}]}')
    assert [f.render() for f in b] == ["bundle: Bundle: type: `pile` is not one of document, message, transaction, "
                                       "transaction-response, batch, batch-response, history, searchset, collection"]


# ---- the command line and the docs example -----------------------------------------------------------


def _payrule() -> list[str]:
    exe = Path(sys.executable).with_name("payrule")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "payrule"]


def test_payrule_check_reads_a_bundle(tmp_path, generated):
    claims = generated[:400]
    (tmp_path / "claims.jsonl").write_bytes(jsonl(claims))
    (tmp_path / "claims.json").write_bytes(write_fhir(claims, bundle=True))
    (tmp_path / "claims.ndjson").write_bytes(write_fhir(claims))
    runs = {name: subprocess.run([*_payrule(), "check", name], cwd=tmp_path, capture_output=True, timeout=300)
            for name in ("claims.jsonl", "claims.json", "claims.ndjson")}
    want = runs["claims.jsonl"]
    assert want.returncode == 1 and want.stdout.count(b"\n") == len(claims)  # some generated claims are errors
    for name in ("claims.json", "claims.ndjson"):
        assert (runs[name].returncode, runs[name].stdout) == (want.returncode, want.stdout), runs[name].stderr


def test_check_never_imports_fhir_resources():
    code = ("import sys\nfrom payrule.cli import main\nimport payrule.claims.fhir_validate\n"
            f"main(['check', {str(EXAMPLE)!r}])\n"
            "assert not [m for m in sys.modules if m.startswith('fhir.resources')], 'fhir.resources was imported'\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr.decode()


def test_docs_example_is_what_write_fhir_writes():
    data = EXAMPLE.read_bytes()
    claims = [obj for _, obj in read_fhir(data)]
    assert len(claims) == 3
    assert write_fhir(claims, bundle=True) == data
