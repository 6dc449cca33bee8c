"""X12 837P in and out (contract section 6): the mapping row by row, separators and line breaks, the
envelope's errors with their segment numbers, bad claims as error records among decided ones, non-ASCII
text, write_x12 -> read_x12 round trips on generated claims that read and decide as their JSON Lines
twins do, `payrule check FILE.x12`, and pyx12's findings through validate_x12.
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payrule.claims import x12 as x12_module
from payrule.claims.formats import FormatError, Unmapped, detect
from payrule.claims.readers import ClaimError, read_claims
from payrule.claims.x12 import read_x12, unsayable, write_x12
from payrule.run.engine import decide, decision_json

from conftest import claim_dicts, generated_claims

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "x12" / "claims.x12"


# ---- building interchanges by hand -------------------------------------------------------------


def isa(sep="*", comp=":", rep="^", control="000000001") -> str:
    return sep.join(("ISA", "00", " " * 10, "00", " " * 10, "ZZ", f"{'SENDER':<15}", "ZZ", f"{'RECEIVER':<15}",
                     "250301", "1200", rep, "00501", control, "0", "P", comp))


def interchange(*segments: str, sep="*", comp=":", rep="^", term="~", newline="\n") -> bytes:
    """An interchange of one transaction set holding `segments` (written with `*`, `:` and `^`, put in
    the separators asked for), with the header, trailers, counts and control numbers right."""
    body = ["ST*837*0001*005010X222A1", "BHT*0019*00*0001*20250301*1200*CH",
            "NM1*41*2*SENDER*****46*SENDER", "PER*IC*SENDER*TE*8005550100", "NM1*40*2*RECEIVER*****46*RECEIVER",
            *segments]
    body.append(f"SE*{len(body) + 1}*0001")
    segs = ["GS*HC*SENDER*RECEIVER*20250301*1200*1*X*005010X222A1", *body, "GE*1*1", "IEA*1*000000001"]
    table = str.maketrans({"*": sep, ":": comp, "^": rep})
    text = (term + newline).join([isa(sep, comp, rep), *(s.translate(table) for s in segs)]) + term + newline
    return text.encode("latin-1")


FIRST = 8  # after ISA, GS, ST, BHT, NM1*41, PER, NM1*40: the number of the first segment given to interchange()


def provider(npi="1234567893") -> list[str]:
    return ["HL*1**20*1", f"NM1*85*2*CLINIC*****XX*{npi}", "N3*1 MAIN ST", "N4*TOWN*NY*100010001", "REF*EI*123456789"]


def subscriber(pid="P-1", payer="medicare", hl=2, parent=1) -> list[str]:
    return [f"HL*{hl}*{parent}*22*0", "SBR*P*18*******MB", f"NM1*IL*1*DOE*JOHN****MI*{pid}",
            f"NM1*PR*2*{payer}*****PI*00431"]


def service(lx=1, sv1="SV1*HC:20553:RT*0*UN*1***1", date="DTP*472*D8*20250301", ref="REF*6R*1",
            note="NTE*ADD*muscles=left upper trapezius,left levator scapulae,left rhomboid major;substances=lidocaine"):
    return [s for s in (f"LX*{lx}", sv1, date, ref, note) if s]


def claim_segments(cid="C-1", hi="HI*ABK:M7918*ABF:M542", *more: str, lines=None) -> list[str]:
    out = [f"CLM*{cid}*0***11:B:1*Y*A*Y*Y", *more]
    if hi:
        out.append(hi)
    for ln in lines if lines is not None else [service()]:
        out += ln
    return out


def one_claim(*claim: str, prov=None, sub=None) -> bytes:
    return interchange(*(prov if prov is not None else provider()), *(sub if sub is not None else subscriber()), *claim)


def mapped(data: bytes) -> list:
    return list(read_x12(data))


def only(data: bytes) -> dict:
    (rec,) = mapped(data)
    assert not isinstance(rec, Unmapped), rec
    return rec[1]


def dig(obj, path):
    for p in path:
        obj = obj[p]
    return obj


# ---- the mapping, row by row -------------------------------------------------------------------

_NOTE = "NTE*ADD*muscles=left upper trapezius,left levator scapulae,left rhomboid major;substances=lidocaine"
_LONG = ("NTE*ADD*site=right shoulder;substances=lidocaine 1%,triamcinolone 40 mg;muscles=right upper trapezius,"
         "right levator scapulae,right infraspinatus,right supraspinatus,right teres minor")

ROWS = [
    # (row, claim segments, provider loop, subscriber loop, path in the claim object, value)
    ("claim_id: CLM01", claim_segments("C-77"), None, None, ("claim_id",), "C-77"),
    ("patient_id: 2010BA NM109", claim_segments(), None, subscriber(pid="W123"), ("patient_id",), "W123"),
    ("patient_id under 2000C: the subscriber id / NM104 NM103 / DMG02", claim_segments(), None,
     [*subscriber(pid="W123"), "HL*3*2*23*0", "PAT*19", "NM1*QC*1*DOE*JANE", "N3*1 MAIN ST", "N4*TOWN*NY*10001",
      "DMG*D8*19800101*F"], ("patient_id",), "W123/JANE DOE/19800101"),
    ("payer: 2010BB NM103, the payer name", claim_segments(), None, subscriber(payer="Blue Cross Blue Shield"),
     ("payer",), "Blue Cross Blue Shield"),
    ("provider_id: 2010AA NM109", claim_segments(), provider("1999999984"), None, ("provider_id",), "1999999984"),
    ("diagnoses: ABK and ABF codes of HI, in order", claim_segments(hi="HI*ABK:M7918*ABF:M542*ABF:G44209"),
     None, None, ("diagnoses",), ["M7918", "M542", "G44209"]),
    ("diagnoses as written, dots and all", claim_segments(hi="HI*ABK:M79.18*ABF:m54.2"), None, None,
     ("diagnoses",), ["M79.18", "m54.2"]),
    ("other HI qualifiers are not diagnoses", claim_segments(hi="HI*ABK:M7918*BG:01*ABJ:R52"), None, None,
     ("diagnoses",), ["M7918"]),
    ("prior_auth: REF*G1 of 2300", claim_segments("C-1", "HI*ABK:M7918", "REF*G1*PA-1234"), None, None,
     ("prior_auth",), "PA-1234"),
    ("line: REF*6R when an integer", claim_segments(lines=[service(lx=1, ref="REF*6R*7")]), None, None,
     ("lines", 0, "line"), 7),
    ("line: else LX01", claim_segments(lines=[service(lx=3, ref="REF*6R*A-7")]), None, None, ("lines", 0, "line"), 3),
    ("line: LX01 without REF*6R", claim_segments(lines=[service(lx=2, ref="")]), None, None, ("lines", 0, "line"), 2),
    ("code: SV101-2", claim_segments(lines=[service(sv1="SV1*HC:J3301*0*UN*4***1")]), None, None,
     ("lines", 0, "code"), "J3301"),
    ("modifiers: SV101-3..6", claim_segments(lines=[service(sv1="SV1*HC:20553:RT:59:XS:GA*0*UN*1***1")]), None, None,
     ("lines", 0, "modifiers"), ["RT", "59", "XS", "GA"]),
    ("units: SV104 when SV103 is UN", claim_segments(lines=[service(sv1="SV1*HC:J3301*0*UN*4***1")]), None, None,
     ("lines", 0, "units"), 4),
    ("units: 2.0 is 2", claim_segments(lines=[service(sv1="SV1*HC:J3301*0*UN*2.0***1")]), None, None,
     ("lines", 0, "units"), 2),
    ("date: DTP*472*D8", claim_segments(lines=[service(date="DTP*472*D8*20241231")]), None, None,
     ("lines", 0, "date"), "2024-12-31"),
    ("date: DTP*472*RD8, the first day", claim_segments(lines=[service(date="DTP*472*RD8*20250301-20250302")]),
     None, None, ("lines", 0, "date"), "2025-03-01"),
    ("a line's diagnoses: the codes SV107 points to", claim_segments(
        hi="HI*ABK:M7918*ABF:M542*ABF:G44209", lines=[service(sv1="SV1*HC:20553*0*UN*1***3:1")]), None, None,
     ("lines", 0, "diagnoses"), ["G44209", "M7918"]),
    ("muscles: the NTE*ADD note", claim_segments(), None, None, ("lines", 0, "muscles"),
     ["left upper trapezius", "left levator scapulae", "left rhomboid major"]),
    ("substances: the NTE*ADD note", claim_segments(), None, None, ("lines", 0, "substances"), ["lidocaine"]),
    ("site, substances and muscles in any order; a note over 80 characters",
     claim_segments(lines=[service(note=_LONG)]), None, None, ("lines", 0),
     {"line": 1, "date": "2025-03-01", "code": "20553", "modifiers": ["RT"], "units": 1, "diagnoses": ["M7918"],
      "site": "right shoulder", "substances": ["lidocaine 1%", "triamcinolone 40 mg"],
      "muscles": ["right upper trapezius", "right levator scapulae", "right infraspinatus", "right supraspinatus",
                  "right teres minor"]}),
    ("a note key in another case, with spaces", claim_segments(lines=[service(note="NTE*ADD* Site = neck")]),
     None, None, ("lines", 0, "site"), " neck"),
]


@pytest.mark.parametrize("row, segs, prov, sub, path, want", ROWS, ids=[r[0] for r in ROWS])
def test_mapping_row(row, segs, prov, sub, path, want):
    assert dig(only(one_claim(*segs, prov=prov, sub=sub)), path) == want


def test_whole_claim_object_and_what_is_left_out():
    got = only(one_claim(*claim_segments("C-1", "HI*ABK:M7918*ABF:M542", "REF*G1*PA-1", lines=[
        service(), service(lx=2, sv1="SV1*HC:J3301*0*UN*4", ref="REF*6R*2", note="")])))
    assert got == {
        "claim_id": "C-1", "patient_id": "P-1", "payer": "medicare", "provider_id": "1234567893", "prior_auth": "PA-1",
        "diagnoses": ["M7918", "M542"],
        "lines": [{"line": 1, "date": "2025-03-01", "code": "20553", "modifiers": ["RT"], "units": 1,
                   "diagnoses": ["M7918"], "muscles": ["left upper trapezius", "left levator scapulae",
                                                     "left rhomboid major"], "substances": ["lidocaine"]},
                  {"line": 2, "date": "2025-03-01", "code": "J3301", "units": 4}]}  # no SV107: the claim's codes


@pytest.mark.parametrize("sv1, units", [("SV1*HC:00300*0*MJ*45***1", None), ("SV1*HC:J3301*0*UN****1", None)])
def test_units_only_from_un(sv1, units):
    assert only(one_claim(*claim_segments(lines=[service(sv1=sv1)])))["lines"][0].get("units") == units


def test_other_payers_loops_are_not_the_claims():
    """2320/2330: another payer's subscriber, name and prior authorization number (REF*G1 of 2330B)."""
    got = only(one_claim(*claim_segments("C-1", "HI*ABK:M7918", "REF*G1*MINE", lines=[]),
                         "SBR*S*18*******CI", "NM1*IL*1*ROE*RICHARD****MI*OTHER", "NM1*PR*2*OTHER PAYER*****PI*99",
                         "REF*G1*THEIRS", *service()))
    assert (got["patient_id"], got["payer"], got["prior_auth"]) == ("P-1", "medicare", "MINE")
    assert got["lines"][0]["code"] == "20553"


def test_line_level_loops_and_other_segments_are_skipped():
    line = ["LX*1", "SV1*HC:20553*0*UN*1***1", "DTP*472*D8*20250301", "DTP*471*D8*20250101", "REF*6R*1",
            "AMT*T*0", _NOTE, "NM1*82*1*SMITH*ANN****XX*1497758544", "PRV*PE*PXC*207RX0202X"]
    got = only(one_claim(*claim_segments(lines=[line])))
    assert got["lines"][0]["date"] == "2025-03-01" and got["lines"][0]["muscles"][0] == "left upper trapezius"
    assert got["provider_id"] == "1234567893"  # 2420A's NM1*82 is not the billing provider


def test_claims_follow_their_levels():
    data = interchange(*provider("1111111111"), *subscriber("P-1", "medicare"), *claim_segments("C-1"),
                       *claim_segments("C-2"), *subscriber("P-2", "aetna", hl=3), *claim_segments("C-3"),
                       *provider("2222222222")[:1], "NM1*85*2*OTHER*****XX*2222222222",
                       *subscriber("P-3", "cigna", hl=5, parent=4)[:1], *subscriber("P-3", "cigna")[1:],
                       *claim_segments("C-4"))
    got = [(c["claim_id"], c["patient_id"], c["payer"], c["provider_id"]) for _, c in mapped(data)]
    assert got == [("C-1", "P-1", "medicare", "1111111111"), ("C-2", "P-1", "medicare", "1111111111"),
                   ("C-3", "P-2", "aetna", "1111111111"), ("C-4", "P-3", "cigna", "2222222222")]


def test_input_line_is_the_clm_segment_number():
    data = one_claim(*claim_segments("C-1"), *claim_segments("C-2"))
    segs = data.decode().replace("\n", "").split("~")
    got = [n for n, _ in mapped(data)]
    assert [segs[n - 1][:8] for n in got] == ["CLM*C-1*", "CLM*C-2*"]
    assert got[0] == FIRST + len(provider()) + len(subscriber())


@pytest.mark.parametrize("seps", [dict(sep="|", comp=">", rep="{", term="'"), dict(sep="!", comp="\\", rep="^", term="\n"),
                                  dict(term="~", newline="\r\n"), dict(term="~", newline=""), dict(term="~", newline="\n\n")])
def test_separators_come_from_the_isa_and_line_breaks_are_ignored(seps):
    newline = seps.pop("newline", "\n" if seps.get("term") != "\n" else "")
    plain = mapped(one_claim(*claim_segments("C-1")))
    data = interchange(*provider(), *subscriber(), *claim_segments("C-1"), newline=newline, **seps)
    assert mapped(data) == plain


def test_a_file_wrapped_at_80_columns_reads_the_same():
    data = one_claim(*claim_segments("C-1"))
    flat = data.replace(b"\n", b"")
    wrapped = b"\r\n".join(flat[i:i + 80] for i in range(0, len(flat), 80))
    assert mapped(wrapped) == mapped(data)


def test_a_byte_order_mark_and_white_space_before_the_isa():
    data = one_claim(*claim_segments("C-1"))
    assert mapped(b"\xef\xbb\xbf \r\n" + data) == mapped(data)
    assert detect("claims.txt", b"\xef\xbb\xbf\nISA*00") == "x12"


# ---- bad claims are error records --------------------------------------------------------------


def test_bad_values_are_reported_by_the_claim_reader():
    data = one_claim(*claim_segments("C-1"),
                     *claim_segments("C-2", lines=[service(date="DTP*472*D8*20251301")]),
                     *claim_segments("C-3", lines=[service(sv1="SV1*HC:2055*0*UN*1***1")]),
                     *claim_segments("C-4", lines=[service(sv1="SV1*HC:20552*0*UN*0***1")]),
                     *claim_segments("C-5", lines=[service(date="")]),
                     *claim_segments("C-6", lines=[service(sv1="SV1*HC:20552*0*UN*1.5***1")]),
                     *claim_segments("C-7", lines=[]),
                     *claim_segments("C-8", lines=[service(sv1="SV1*HC:20552:RTX*0*UN*1***1")]),
                     *claim_segments("C-1"))
    recs = read_claims(data, "claims.x12")
    errors = {r.claim_id: r.error for r in recs[:-1] if isinstance(r, ClaimError)}
    assert errors == {
        "C-2": 'lines[0].date "2025-13-01" is not a real date (YYYY-MM-DD)',
        "C-3": 'lines[0].code "2055" is not a procedure code (5 letters or digits)',
        "C-4": "lines[0].units must be at least 1, not 0",
        "C-5": "lines[0].date is missing",
        "C-6": "lines[0].units must be a whole number, not 1.5",
        "C-7": "lines is empty: a claim needs at least one line",
        "C-8": 'lines[0].modifiers: "RTX" is not two letters or digits',
    }
    assert [r.claim_id for r in recs] == ["C-1", "C-2", "C-3", "C-4", "C-5", "C-6", "C-7", "C-8", "C-1"]
    assert isinstance(recs[-1], ClaimError) and "already used" in recs[-1].error  # the second C-1
    assert not isinstance(recs[0], ClaimError)


def test_missing_fields_are_reported_by_the_claim_reader():
    recs = read_claims(interchange(*provider(), "HL*2*1*22*0", "SBR*P*18", "NM1*IL*1*DOE", "NM1*PR*2",
                                   *claim_segments("")), "claims.x12")
    assert [(r.claim_id, r.error) for r in recs] == [(None, "claim_id is missing")]
    recs = read_claims(interchange(*provider(), "HL*2*1*22*0", "NM1*IL*1*DOE", *claim_segments("C-1")), "x.x12")
    assert [(r.claim_id, r.error) for r in recs] == [("C-1", "patient_id is missing")]


@pytest.mark.parametrize("segs, offset, message", [
    (claim_segments("C-2", lines=[service(sv1="SV1*HC:20553*0*UN*1***3")]), 3,
     "SV107 pointer '3' names no diagnosis (the claim's HI has 2)"),
    (claim_segments("C-2", lines=[service(sv1="SV1*HC:20553*0*UN*1***1:X")]), 3,
     "SV107 pointer 'X' names no diagnosis (the claim's HI has 2)"),
    (claim_segments("C-2", "HI*ABK:M7918", "SV1*HC:20553*0*UN*1", lines=[]), 1,
     "a service line with no LX before it"),
    (claim_segments("C-2", lines=[["LX*1", "SV1*HC:20553*0*UN*1***1", "SV1*HC:20552*0*UN*1***1",
                                   "DTP*472*D8*20250301"]]), 4,
     "a second SV1 in one service line"),
], ids=["pointer past HI", "pointer not a number", "SV1 without LX", "two SV1"])
def test_what_the_mapping_cannot_carry_is_an_unmapped_record(segs, offset, message, shipped):
    data = one_claim(*claim_segments("C-1"), *segs, *claim_segments("C-3"))
    recs = mapped(data)
    assert [type(r).__name__ for r in recs] == ["tuple", "Unmapped", "tuple"]
    bad = recs[1]
    assert (bad.claim_id, bad.message) == ("C-2", f"segment {bad.input_line + offset} (SV1): {message}")
    decided = [decision_json(d) for d in decide(shipped.checkers, read_claims(data, "x.x12"))]
    assert decided[1] == {"claim_id": "C-2", "error": bad.message, "input_line": bad.input_line}
    assert "decision" in decided[0] and "decision" in decided[2]


# ---- text beyond ASCII --------------------------------------------------------------------------


def test_non_ascii_in_a_claim_makes_that_claim_an_error():
    note = "NTE*ADD*muscles=sternocleidomastoïde gauche;substances=lidocaine"
    data = one_claim(*claim_segments("C-1"), *claim_segments("C-2", lines=[service(note=note)]),
                     *claim_segments("C-3")).replace("ï".encode("latin-1"), "ï".encode())
    recs = mapped(data)
    assert [type(r).__name__ for r in recs] == ["tuple", "Unmapped", "tuple"]
    n = recs[1].input_line + 6  # CLM, HI, LX, SV1, DTP, REF, NTE
    assert recs[1] == Unmapped(recs[1].input_line, "C-2",
                               f"segment {n} (NTE): byte 0xC3 at character 34 is not ASCII (X12 text is ASCII)")
    assert [r[1] for r in (recs[0], recs[2])] == [only(one_claim(*claim_segments("C-1"))),
                                                  {**only(one_claim(*claim_segments("C-1"))), "claim_id": "C-3"}]


def test_non_ascii_in_a_level_makes_every_claim_under_it_an_error():
    data = interchange(*provider(), *subscriber("P-1", "Médicare".encode().decode("latin-1")),
                       *claim_segments("C-1"), *claim_segments("C-2"),
                       *subscriber("P-2", "aetna", hl=3), *claim_segments("C-3"))
    recs = mapped(data)
    assert [(type(r).__name__, r.claim_id if isinstance(r, Unmapped) else r[1]["claim_id"]) for r in recs] == [
        ("Unmapped", "C-1"), ("Unmapped", "C-2"), ("tuple", "C-3")]
    assert recs[0].message.startswith(f"segment {FIRST + len(provider()) + 3} (NM1): byte 0xC3 at character 11")
    claim_id = mapped(one_claim(*claim_segments("C-é".encode().decode("latin-1"))))
    assert isinstance(claim_id[0], Unmapped) and claim_id[0].claim_id is None


def test_non_ascii_in_the_header_is_not_judged_but_in_a_control_segment_it_is_unreadable():
    data = one_claim(*claim_segments("C-1"))
    assert mapped(data.replace(b"NM1*41*2*SENDER", "NM1*41*2*SÉNDER".encode())) == mapped(data)
    with pytest.raises(FormatError, match=r"segment 2 \(GS\): holds a byte that is not ASCII"):
        mapped(data.replace(b"GS*HC*SENDER", "GS*HC*SÉNDER".encode()))
    with pytest.raises(FormatError, match=r"segment 1 \(ISA\): holds a byte that is not ASCII"):
        mapped(data.replace(b"SENDER         ", "SÉNDER         ".encode("latin-1")))


# ---- the envelope ------------------------------------------------------------------------------


def _edit(data: bytes, old: str, new: str) -> bytes:
    assert old.encode() in data, old
    return data.replace(old.encode(), new.encode(), 1)


def envelope_cases():
    good = one_claim(*claim_segments("C-1"))
    segs = good.decode().replace("\n", "").rstrip("~").split("~")
    se = len(segs) - 2
    yield "no ISA", b"GS*HC~", "segment 1: an X12 interchange starts with an ISA segment, not 'GS*'"
    yield "empty", b"", "segment 1: an X12 interchange starts with an ISA segment; the file is empty"
    yield "short ISA", _edit(good, "SENDER         ", "SENDER"), \
        "segment 1 (ISA): not the fixed 106-character layout: ISA06 should end at character 50"
    yield "ISA too short", good[:90], "segment 1 (ISA): the ISA segment is 106 characters of fixed layout; the file has only 90"
    yield "version 00401", _edit(good, "*00501*", "*00401*"), "segment 1 (ISA): ISA12 is '00401'"
    yield "same separators", _edit(good, "*^*00501", "*:*00501"), "segment 1 (ISA): the separators must differ"
    yield "SE01", _edit(good, f"SE*{se - 2}*0001", f"SE*{se - 3}*0001"), \
        f"segment {se} (SE): SE01 says {se - 3} segments, the transaction set has {se - 2}"
    yield "SE01 not a number", _edit(good, f"SE*{se - 2}*0001", "SE*X*0001"), \
        f"segment {se} (SE): SE01 says 'X' segments, the transaction set has {se - 2}"
    yield "SE02", _edit(good, f"SE*{se - 2}*0001", f"SE*{se - 2}*0002"), \
        f"segment {se} (SE): SE02 '0002' does not match ST02 '0001' of segment 3"
    yield "GE01", _edit(good, "GE*1*1", "GE*2*1"), f"segment {se + 1} (GE): GE01 says 2 transaction sets, the functional group has 1"
    yield "GE02", _edit(good, "GE*1*1", "GE*1*7"), f"segment {se + 1} (GE): GE02 '7' does not match GS06 '1' of segment 2"
    yield "GE02 numerically equal", _edit(good, "GE*1*1", "GE*1*0001"), None
    yield "IEA01", _edit(good, "IEA*1*", "IEA*2*"), f"segment {se + 2} (IEA): IEA01 says 2 functional groups, the interchange has 1"
    yield "IEA02", _edit(good, "IEA*1*000000001", "IEA*1*000000002"), \
        f"segment {se + 2} (IEA): IEA02 '000000002' does not match ISA13 '000000001' of segment 1"
    yield "no SE", _edit(good, f"SE*{se - 2}*0001~\n", ""), \
        f"segment {se} (GE): GE before the transaction set that began at segment 3 ended (no SE)"
    yield "no IEA", _edit(good, "IEA*1*000000001~\n", ""), \
        f"segment 1 (ISA): the interchange that begins here has no IEA (the file ends at segment {se + 1})"
    yield "not an 837", _edit(good, "ST*837*", "ST*835*"), "segment 3 (ST): ST01 is '835': payrule reads 837 claims"
    yield "837I", _edit(good, "ST*837*0001*005010X222A1", "ST*837*0001*005010X223A2"), \
        "segment 3 (ST): the transaction set follows '005010X223A2'; payrule reads the 837P guide 005010X222A1"
    yield "a segment between SE and GE", _edit(good, "GE*1*1", "NTE*ADD*X~GE*1*1"), \
        f"segment {se + 1} (NTE): outside a transaction set (no ST..SE around it)"
    yield "after the IEA", good + b"NM1*IL~", f"segment {se + 3} (NM1): after the interchange's IEA (segment {se + 2})"
    yield "ST outside a group", _edit(good, "GS*HC*SENDER*RECEIVER*20250301*1200*1*X*005010X222A1~\n", ""), \
        "segment 2 (ST): a transaction set outside a functional group (no GS before it)"


ENVELOPE = list(envelope_cases())


@pytest.mark.parametrize("case, data, message", ENVELOPE, ids=[c[0] for c in ENVELOPE])
def test_envelope_errors_name_the_segment(case, data, message):
    if message is None:
        assert len(mapped(data)) == 1
        return
    with pytest.raises(FormatError) as exc:
        read_x12(data)  # raised at once, before any claim
    assert str(exc.value).startswith(message), str(exc.value)


def test_two_interchanges_and_several_transaction_sets(monkeypatch):
    monkeypatch.setattr(x12_module, "CLAIMS_PER_TRANSACTION", 2)
    claims = [{"claim_id": f"C-{i}", "patient_id": f"P-{i // 2}", "payer": "medicare", "diagnoses": ["M79.18"],
               "lines": [{"line": 1, "date": "2025-03-01", "code": "99213"}]} for i in range(5)]
    data = write_x12(claims)
    assert data.count(b"\nST*837*") == 3 and b"GE*3*1~" in data
    got = [c for _, c in read_x12(data)]
    assert [c["claim_id"] for c in got] == [c["claim_id"] for c in claims]
    assert [c["patient_id"] for c in got] == [c["patient_id"] for c in claims]
    two = data + data.replace(b"000000001", b"000000002")
    assert [c["claim_id"] for _, c in read_x12(two)] == [c["claim_id"] for c in claims] * 2
    with pytest.raises(FormatError, match="a later ISA must be the fixed 106-character layout"):
        read_x12(data + data.replace(b"*^*00501", b"*{*00501"))


# ---- round trips on generated claims ------------------------------------------------------------


def jsonl(claims: list[dict]) -> bytes:
    return b"".join(json.dumps(c).encode() + b"\n" for c in claims)


def canon(records) -> list:
    """Runtime claims as comparable tuples, the input line left out (X12 counts segments, JSON Lines
    lines). X12 has no empty element: a payer written empty is read as a missing one."""
    out = []
    for r in records:
        if isinstance(r, ClaimError):
            out.append(("error", r.claim_id, r.error.replace("payer is empty", "payer is missing")))
            continue
        out.append((r.claim_id, r.patient_id, r.payer, r.payer_key, r.prior_auth, r.order, [
            (ln.no, ln.date, ln.code, ln.code_raw, ln.units, ln.modifiers, ln.diagnoses, ln.muscles, ln.substances,
             ln.raw_modifiers, ln.raw_diagnoses, ln.raw_muscles, ln.raw_substances, ln.site) for ln in r.lines]))
    return out


def decided(shipped, records) -> list[dict]:
    return [{k: v for k, v in decision_json(d).items() if k != "input_line"} for d in decide(shipped.checkers, records)]


@pytest.fixture(scope="module")
def generated() -> list[dict]:
    return [c for c in generated_claims(3000, 13) if unsayable(c) is None]


def test_round_trip_generated_claims(generated, shipped):
    assert len(generated) > 2800
    from_jsonl = read_claims(jsonl(generated), "x.jsonl")
    assert sum(isinstance(r, ClaimError) for r in from_jsonl) > 10  # ill-valued claims stay ill-valued
    from_x12 = read_claims(write_x12(generated), "x.x12")
    assert canon(from_x12) == canon(from_jsonl)
    want = decided(shipped, from_jsonl)
    assert [canon([c])[0] if "error" in d else d for c, d in zip(from_x12, decided(shipped, from_x12))] == \
           [canon([c])[0] if "error" in d else d for c, d in zip(from_jsonl, want)]
    assert {d.get("decision") for d in want} >= {"approve", "deny", "review", None}


def test_writing_is_deterministic_and_read_back_writes_the_same(generated):
    data = write_x12(generated[:300])
    assert data == write_x12(copy.deepcopy(generated[:300]))
    assert write_x12([c for _, c in read_x12(data)]) == data


def test_what_x12_cannot_say_is_refused():
    c = {"claim_id": "C-1", "patient_id": "P-1", "payer": "medicare", "diagnoses": ["M79.18"],
         "lines": [{"line": 1, "date": "2025-03-01", "code": "20553"}]}
    line = c["lines"][0]
    cases = {
        "a line with no diagnoses on a claim with some": dict(c, lines=[dict(line, diagnoses=[])]),
        "51 lines": dict(c, lines=[dict(line, line=i) for i in range(51)]),
        "13 diagnosis codes": dict(c, diagnoses=[f"M79.{i:02d}" for i in range(13)]),
        "5 modifiers": dict(c, lines=[dict(line, modifiers=["RT", "59", "XS", "GA", "25"])]),
        "5 diagnoses; SV107 points to at most 4": dict(c, diagnoses=["R52"], lines=[
            dict(line, diagnoses=["M79.10", "M79.11", "M79.12", "M79.18", "M79.7"]), dict(line, line=2)]),
        "is not printable ASCII": dict(c, lines=[dict(line, muscles=["sternocleidomastoïde"])]),
        "cannot stand in the NTE note": dict(c, lines=[dict(line, substances=["lidocaine, 1%"])]),
        "shaped YYYY-MM-DD": dict(c, lines=[dict(line, date="20250301")]),
        "lines must be a list": dict(c, lines=[]),
    }
    for words, bad in cases.items():
        assert words in (unsayable(bad) or ""), (words, unsayable(bad))
        with pytest.raises(ValueError, match="cannot be written as X12"):
            write_x12([c, bad])
    assert unsayable(c) is None
    # a line's own list that is the claim's whole HI of more than four codes needs no pointers
    five = dict(c, diagnoses=["M79.10", "M79.11", "M79.12", "M79.18", "M79.7"])
    assert unsayable(five) is None
    assert only(write_x12([five]))["lines"][0].get("diagnoses") is None


def test_values_holding_the_usual_separators_get_other_ones():
    c = {"claim_id": "C*1", "patient_id": "P:1~", "payer": "medicare^", "diagnoses": ["M79.18"],
         "lines": [{"line": 1, "date": "2025-03-01", "code": "20553", "muscles": ["a*b"], "site": "x|y"}]}
    data = write_x12([c])
    assert data[3:4] == b"!" and data[104:106] == b">'"
    got = only(data)
    assert (got["claim_id"], got["patient_id"], got["payer"], got["lines"][0]["muscles"]) == ("C*1", "P:1~", "medicare^", ["a*b"])


_name = st.text(st.sampled_from("abcXYZ019 -./%()&#*:^~|"), min_size=1, max_size=12)  # some usual separators too
_claim = claim_dicts(_name, first_line=0, dates=("2024-02-29", "2025-03-01", "2025-12-31", "2025-02-30"),
                     codes=("20552", "20553", "J3301", "99213", "0232T", "76942", "2055"), min_units=0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_claim, min_size=1, max_size=5))
def test_round_trip_any_claims(claims):
    claims = [c for c in claims if unsayable(c) is None]
    assert canon(read_claims(write_x12(claims), "x.x12")) == canon(read_claims(jsonl(claims), "x.jsonl"))


def test_the_fast_loop_agrees_on_lines_of_other_shapes():
    """REF*6R before DTP, a note before REF, no REF: the same claim as the usual order."""
    usual = only(one_claim(*claim_segments(lines=[service(lx=1, ref="REF*6R*4")])))
    for line in (["LX*1", "SV1*HC:20553:RT*0*UN*1***1", "REF*6R*4", "DTP*472*D8*20250301", _NOTE],
                 ["LX*1", "SV1*HC:20553:RT*0*UN*1***1", _NOTE, "DTP*472*D8*20250301", "REF*6R*4"],
                 ["LX*4", "DTP*472*D8*20250301", "SV1*HC:20553:RT*0*UN*1***1", _NOTE]):
        assert only(one_claim(*claim_segments(lines=[line]))) == usual


# ---- the command line ----------------------------------------------------------------------------


def _payrule() -> list[str]:
    exe = Path(sys.executable).with_name("payrule")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "payrule"]


def test_payrule_check_reads_x12(tmp_path, generated):
    bad = copy.deepcopy(generated[0])
    bad["claim_id"] += "-bad"
    bad["lines"][0]["date"] = "2025-13-01"
    claims = [*generated[:400], bad]
    (tmp_path / "claims.jsonl").write_bytes(jsonl(claims))
    (tmp_path / "claims.x12").write_bytes(write_x12(claims))
    (tmp_path / "claims.txt").write_bytes(write_x12(claims))  # found from its first bytes
    runs = {name: subprocess.run([*_payrule(), "check", name], cwd=tmp_path, capture_output=True, timeout=300)
            for name in ("claims.jsonl", "claims.x12", "claims.txt")}
    want = runs["claims.jsonl"]
    assert want.returncode == 1 and want.stdout.count(b"\n") == len(claims)  # some generated claims are errors

    def strip(out: bytes) -> list[dict]:
        objs = [json.loads(line) for line in out.splitlines()]
        return [{k: v for k, v in o.items() if k not in ("input_line", "error")} for o in objs]

    for name in ("claims.x12", "claims.txt"):
        run = runs[name]
        assert run.returncode == want.returncode, run.stderr
        assert strip(run.stdout) == strip(want.stdout)
        assert [json.loads(x) for x in run.stdout.splitlines() if b'"decision"' in x] == \
               [json.loads(x) for x in want.stdout.splitlines() if b'"decision"' in x]


def test_payrule_check_says_where_the_envelope_breaks(cli, tmp_path):
    path = tmp_path / "bad.x12"
    good = one_claim(*claim_segments("C-1"))
    path.write_bytes(_edit(good, "GE*1*1", "GE*2*1"))
    res = cli("check", path)
    assert res.code == 2 and res.out == ""
    assert "GE01 says 2 transaction sets, the functional group has 1" in res.err and "segment" in res.err


def test_check_never_imports_pyx12():
    code = ("import sys\nfrom payrule.cli import main\nimport payrule.claims.x12_validate\n"
            f"main(['check', {str(EXAMPLE)!r}])\n"
            "assert not [m for m in sys.modules if m.startswith('pyx12')], 'pyx12 was imported'\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr.decode()


def test_docs_example_is_what_write_x12_writes():
    data = EXAMPLE.read_bytes()
    claims = [obj for _, obj in read_x12(data)]
    assert 2 <= len(claims) <= 3
    assert write_x12(claims) == data


# ---- validate_x12 (pyx12) ------------------------------------------------------------------------


def _validate(data: bytes):
    pytest.importorskip("pyx12")
    from payrule.claims.x12_validate import validate_x12

    return validate_x12(data)


def test_written_claims_validate_clean(generated):
    # claims that read, with a diagnosis (HI is required) and no value with spaces around it (the
    # guide trims them: `aetna ` as a payer name is an error there, and written as it is)
    good_claims = [c for c, r in zip(generated[:400], read_claims(jsonl(generated[:400]), "x.jsonl"))
                   if not isinstance(r, ClaimError) and c.get("diagnoses")
                   and all(v == v.strip() for v in x12_module._texts(c))]
    assert len(good_claims) > 300
    findings = _validate(write_x12(good_claims))
    assert [f.render() for f in findings if f.severity == "error"] == []
    assert {(f.segment_id, f.element) for f in findings} <= {("NTE", "NTE02")}  # long notes: warnings
    assert _validate(EXAMPLE.read_bytes()) == []


def test_validate_reports_guide_errors_with_segment_numbers():
    data = one_claim(*claim_segments("C-1"), *claim_segments("C-2"))
    assert [f.render() for f in _validate(data) if f.severity == "error"] == []
    segs = data.decode().replace("\n", "").rstrip("~").split("~")
    bad = _edit(data, "NM1*PR*2*medicare*****PI*00431~\n", "")  # the payer's loop (2010BB) is required
    bad = _edit(bad, "NM1*IL*1*DOE", "NM1*XX*1*DOE")  # not a qualifier the guide knows there
    bad = _edit(bad, "DTP*472*D8*20250301", "DTP*472*D8*20251301")  # not a date
    se = len(segs) - 2  # SE's number before the NM1 went
    bad = _edit(bad, f"SE*{se - 2}*0001", f"SE*{se - 1}*0001")  # and the count is wrong too
    nm1 = FIRST + len(provider()) + 2
    dtp = segs.index("DTP*472*D8*20250301")  # its number, one segment fewer before it
    errors = [f for f in _validate(bad) if f.severity == "error"]
    assert [(f.segment, f.segment_id, f.element, f.code) for f in errors] == [
        (nm1, "NM1", None, "1"), (nm1 + 1, "CLM", None, "3"), (nm1 + 1, "CLM", None, "3"),
        (dtp, "DTP", "DTP03", "8"), (se - 1, "SE", None, "4")]
    said = [f.render() for f in errors]
    assert said[0].startswith(f"segment {nm1} (NM1): Segment NM1*XX not found")
    assert said[1:3] == [f'segment {nm1 + 1} (CLM): Mandatory loop "Subscriber Name" (2010BA) missing',
                         f'segment {nm1 + 1} (CLM): Mandatory loop "Payer Name" (2010BB) missing']
    assert said[3] == f'segment {dtp} (DTP): element DTP03: Data element "Service Date" (DTP03) contains an invalid date (20251301)'
    assert said[4].startswith(f"segment {se - 1} (SE): SE count of {se - 1} for SE02=0001 is wrong")
    long_note = next(f for f in _validate(bad) if f.severity == "warning")
    assert long_note.render().startswith(f"segment {FIRST + len(provider()) + len(subscriber()) + 5} (NTE): element NTE02: "
                                         "warning: Data element \"Line Note Text\" (NTE02) is too long")


def test_validate_something_that_is_not_x12():
    (f,) = _validate(b"claim_id,patient_id\n")
    assert f.segment == 1 and "not an X12 interchange" in f.message
