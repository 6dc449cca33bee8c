"""The claim schema (payrule.runtime.schema) is the one description of the claim fields: it matches the
contract's field table (section 1) and the docs' table, the runtime keeps every line field, the msgspec
structs are built from it, and the two reader paths (msgspec, stdlib) read the v2 fields `site` and
`prior_auth` alike, from JSON Lines and from CSV."""
from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec
import pytest

from payrule.claims import readers
from payrule.claims.readers import ClaimError, ReadSession, read_claim_objects, read_claims
from payrule.runtime import Claim, Line, schema
from payrule.runtime.schema import CLAIM_FIELDS, FIELDS, LINE_FIELDS, LIST_FIELDS, NUMBER_FIELDS

from conftest import ROOT, claim, tpi

CONTRACT = ROOT.parent / "shared" / "contract.md"
DOCS = ROOT / "docs" / "claims-and-decisions.md"


def _table(text: str, after: str) -> dict[str, tuple[frozenset, bool]]:
    """The first `| field | where | required | meaning |` table after the heading `after`:
    {field: (where, required)}."""
    body = text[text.index(after):]
    rows: dict[str, tuple[frozenset, bool]] = {}
    in_table = False
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if cells is None:
            if in_table:
                break
            continue
        if cells[:3] == ["field", "where", "required"]:
            in_table = True
            continue
        if not in_table or set(cells[0]) <= {"-"}:
            continue
        name = cells[0].strip("`")
        rows[name] = (frozenset(w.strip() for w in cells[1].split(" or ")), {"yes": True, "no": False}[cells[2]])
    assert rows, f"no field table after {after!r}"
    return rows


def _schema_table() -> dict[str, tuple[frozenset, bool]]:
    out: dict[str, tuple[set, bool]] = {}
    for f in FIELDS:
        where, required = out.get(f.name, (set(), f.required))
        assert required == f.required, f"{f.name}: its claim and line entries disagree on required"
        out[f.name] = (where | {f.where}, required)
    return {k: (frozenset(w), r) for k, (w, r) in out.items()}


def test_schema_matches_the_contract_field_table():
    if not CONTRACT.exists():
        pytest.skip(f"the contract is not here ({CONTRACT})")
    contract = _table(CONTRACT.read_text(encoding="utf-8"), "## 1. Claims in")
    assert _schema_table() == contract
    assert list(dict.fromkeys(f.name for f in FIELDS)) == list(contract)  # in the contract's order


def test_docs_field_table_lists_exactly_the_schema_fields():
    docs = _table(DOCS.read_text(encoding="utf-8"), "## Claims in")
    assert docs == _schema_table()
    assert list(docs) == list(dict.fromkeys(f.name for f in FIELDS))


def test_schema_tables():
    assert LIST_FIELDS == ("modifiers", "diagnoses", "muscles", "substances")
    assert NUMBER_FIELDS == ("units",)
    assert set(CLAIM_FIELDS) | set(LINE_FIELDS) == {f.name for f in FIELDS}
    assert {f.name for f in FIELDS if f.where == "claim"} & {f.name for f in FIELDS if f.where == "line"} == {"diagnoses"}
    for f in FIELDS:
        assert f.csv == f.name and f.doc and f.x12 and f.fhir
        assert (f.form is None) == (f.kind in ("int", "date") or f.name in ("claim_id", "patient_id", "provider_id", "lines"))
        assert (f.item_pattern is None) == (f.item_words is None)
    assert LINE_FIELDS["site"].kind == "text" and LINE_FIELDS["site"].form == "name" and not LINE_FIELDS["site"].required
    assert CLAIM_FIELDS["prior_auth"].kind == "text" and not CLAIM_FIELDS["prior_auth"].required
    assert LINE_FIELDS["units"].minimum == 1


def test_words_patterns_and_ranges():
    for word, name in [("muscle", "muscles"), ("muscles", "muscles"), ("modifier", "modifiers"),
                       ("diagnosis", "diagnoses"), ("substance", "substances"), ("site", "site"),
                       ("prior_auth", "prior_auth"), ("units", "units")]:
        assert schema.field_for_word(word).name == name
    assert schema.field_for_word("diagnoses").where == "line"  # a line's field before the claim's
    assert schema.field_for_word("musclez") is None
    assert schema.normal("code", " rt ") == "RT"
    assert schema.normal("diagnosis", " m79.18 ") == "M7918"
    assert schema.normal("name", "  Left   Upper\tTrapezius ") == "left upper trapezius"
    assert schema.normal("text", "  PA-1 ") == "PA-1"
    assert schema.CODE_PATTERN.match("0232T") and not schema.CODE_PATTERN.match("0232") and not schema.CODE_PATTERN.match("0232TT")
    assert schema.MODIFIER_PATTERN.match("LT") and not schema.MODIFIER_PATTERN.match("L")
    assert schema.ICD10_PATTERN.match("M7918") and not schema.ICD10_PATTERN.match("M79.18")
    assert schema.DATE_PATTERN.match("2025-03-01") and not schema.DATE_PATTERN.match("2025-3-1")
    assert schema.code_shape("J3301") == "A9999"
    assert schema.in_code_range("J3301", "J0000", "J9999")
    assert not schema.in_code_range("0232T", "00100", "99999")  # not the bounds' shape
    assert not schema.in_code_range("J3301", "00100", "01999")


def test_every_line_field_has_a_line_slot():
    slots = set(Line.__slots__)
    for name in LIST_FIELDS:
        assert name in slots and f"raw_{name}" in slots
    for f in LINE_FIELDS.values():
        assert {"line": "no"}.get(f.name, f.name) in slots
    assert "prior_auth" in Claim.__slots__


def test_msgspec_structs_are_the_schema():
    for struct, fields in ((readers._FastClaim, CLAIM_FIELDS), (readers._FastLine, LINE_FIELDS)):
        got = {fi.name: fi for fi in msgspec.structs.fields(struct)}
        assert list(got) == list(fields)
        for name, f in fields.items():
            assert (got[name].default is msgspec.NODEFAULT) == f.required, name


def test_old_reader_names_follow_the_schema():
    assert readers.LIST_FIELDS == {"modifiers": "code", "diagnoses": "diagnosis", "muscles": "name", "substances": "name"}
    assert readers.FIELD_ALIASES == {"modifier": "modifiers", "diagnosis": "diagnoses", "muscle": "muscles", "substance": "substances"}
    assert readers.NUMBER_FIELDS == ("units",)
    assert readers.normal is schema.normal


# ---- site and prior_auth: the msgspec path, the stdlib path and CSV agree ---------------------------

def _read_both(obj: dict):
    """The claim read by the msgspec path (JSON Lines) and by the stdlib path (a decoded object)."""
    fast = read_claims(json.dumps(obj).encode() + b"\n", "x.jsonl")[0]
    slow = read_claim_objects([obj])[0]
    return fast, slow


def _view(rec):
    if isinstance(rec, ClaimError):
        return ("error", rec.claim_id, rec.error)
    return ("claim", rec.claim_id, rec.prior_auth, [(ln.no, ln.site, ln.muscles) for ln in rec.lines])


CASES = [
    ({"site": "  Left   Shoulder "}, {"prior_auth": " PA-77 "}, "left shoulder", "PA-77"),
    ({"site": "neck"}, {}, "neck", None),
    ({"site": ""}, {"prior_auth": ""}, None, None),
    ({"site": "   "}, {"prior_auth": "  "}, None, None),
    ({"site": None}, {"prior_auth": None}, None, None),
    ({}, {}, None, None),
]


@pytest.mark.parametrize("line_extra,claim_extra,site,prior_auth", CASES)
def test_site_and_prior_auth_read_alike(line_extra, claim_extra, site, prior_auth):
    obj = claim("C1", tpi(1, **line_extra), tpi(2, date="2025-03-02"), **claim_extra, note="kept")
    fast, slow = _read_both(obj)
    assert _view(fast) == _view(slow)
    assert fast.prior_auth == prior_auth
    assert fast.lines[0].site == site and fast.lines[1].site is None
    assert not fast.extra and slow.extra == {"note": "kept"}  # the msgspec path keeps no unknown field: it was taken
    assert "site" not in slow.lines[0].extra


@pytest.mark.parametrize("value,kind", [(5, "a number"), (1.5, "a number"), (True, "true/false"), (["neck"], "a list"),
                                        ({"a": 1}, "an object")])
def test_site_and_prior_auth_of_another_type_are_errors(value, kind):
    fast, slow = _read_both(claim("C1", tpi(1, site=value)))
    assert _view(fast) == _view(slow) == ("error", "C1", f"lines[0].site must be a string, not {kind}")
    fast, slow = _read_both(claim("C1", tpi(1), prior_auth=value))
    assert _view(fast) == _view(slow) == ("error", "C1", f"prior_auth must be a string, not {kind}")


def test_site_and_prior_auth_from_csv():
    text = ("claim_id,patient_id,payer,prior_auth,line,date,code,muscles,substances,diagnoses,site\n"
            "C1,P1,medicare, PA-1 ,1,2025-03-01,20552,a;b,lidocaine,M79.18,  Lower  Back\n"
            "C1,P1,medicare, PA-1 ,2,2025-03-01,J3301,,,M79.18,\n"
            "C2,P1,medicare,,1,2025-03-02,20552,a;b,lidocaine,M79.18,   \n")
    recs = read_claims(text.encode(), "x.csv")
    same = read_claim_objects([
        claim("C1", tpi(1, muscles=("a", "b"), site="lower back"), tpi(2, code="J3301", muscles=None, substances=None),
              patient="P1", prior_auth="PA-1"),
        claim("C2", tpi(1, date="2025-03-02", muscles=("a", "b")), patient="P1"),
    ])
    assert [_view(r) for r in recs] == [_view(r) for r in same]
    assert recs[0].prior_auth == "PA-1" and recs[0].lines[0].site == "lower back" and recs[0].lines[1].site is None
    assert recs[1].prior_auth is None and recs[1].lines[0].site is None


def test_site_and_prior_auth_change_no_decision(shipped):
    base = [claim("C1", tpi(1)), claim("C2", tpi(1, date="2025-03-09", code="20553", muscles=("a", "b", "c")))]
    marked = [dict(c, prior_auth="PA-9", lines=[dict(ln, site="neck") for ln in c["lines"]]) for c in base]
    assert shipped.check(marked) == shipped.check(base)


def test_a_session_is_bounded_by_its_limits():
    session = ReadSession(readers.Limits(normalized=3, shared=0, dates=2, codes=1))
    rows = [json.dumps(claim(f"C{i}", tpi(1, date=f"2025-03-{i + 1:02d}", muscles=(f"m{i}",)))).encode() for i in range(20)]
    recs = read_claims(b"\n".join(rows), "x.jsonl", session=session)
    assert all(isinstance(r, Claim) for r in recs)
    assert len(session._norm) <= 3 and not session._strings and len(session._ordinals) <= 2 and len(session._upper) <= 1
    assert [r.lines[0].muscles for r in recs] == [(f"m{i}",) for i in range(20)]


def test_no_module_level_memo_tables():
    """Nothing the readers or the runtime keep at module level is a dict or list that runs fill in."""
    import payrule.run.engine as engine
    import payrule.run.stream as stream
    import payrule.runtime as runtime

    for mod in (readers, runtime, engine, stream, schema):
        for name, value in vars(mod).items():
            if isinstance(value, (dict, list, set)) and not name.startswith("__"):
                assert name in _CONSTANT_TABLES, f"{mod.__name__}.{name} is a mutable module-level table"
    assert not re.search(r"^LIMITS\b", Path(readers.__file__).read_text(), re.M)


# Tables built at import and never written afterwards.
_CONSTANT_TABLES = {"LIST_FIELDS", "FIELD_ALIASES", "CLAIM_FIELDS", "LINE_FIELDS", "_BY_WORD", "RANK", "_BY_RANK",
                    "_CSV_LINE", "__all__", "_FIELD_OF_SLOT"}
