"""Determinism and order (issue 6, item 5).

- A policy compiles to the same bytes whatever the hash seed (`payrule compile` in subprocesses with
  PYTHONHASHSEED=0, 1, 12345), and to the same text twice in one process.
- Shuffling the input claims and the history (or interleaving the rows of a CSV) changes no decision
  (contract section 2), apart from the same-day tie of section 3: several claims (or several history
  claims) with a TPI line for one patient, payer and day are taken in input order, so every line of such
  a day is left out of the comparison.

Longer run: PAYRULE_ORDER_EXAMPLES=2000 .venv/bin/pytest tests/test_determinism.py
"""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payrule.codegen.compiler import compile_model
from payrule.loader import load_workspace

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "policies").rglob("*.policy"))
TPI_CODES = {"20552", "20553"}

# A policy with many members of every kind and every indexed construct: set order must not leak.
BIG = """policy zz-determinism "Determinism: many members"
  payer zz-determinism
  include common-tpi
  source S "s"
  codes MANY = {codes}, 10000..10999, A0000..A9999, 0000T..9999T
  codes OTHER = 30000, 30001
  diagnoses DX = {dx}
  stems ST = {stems}
  names NM = {names}
  rule r-a: deny line when code in MANY and same day as OTHER sharing a muscle per S
  rule b: review line when code in MANY and same day as earlier OTHER lacking muscles
  rule c: deny line when code in OTHER and more than 2 MANY sessions within 30 days
  rule d: deny line when code in OTHER and less than 5 days after the last TPI session
  rule e: deny line when code in MANY and (has muscle in NM or has substance in ST or lacks diagnosis in DX)
  rule f: deny line when code in OTHER and more than 1 OTHER sessions per calendar year
""".format(
    codes=", ".join(f"{n:05d}" for n in range(20000, 20400, 7)),
    dx=", ".join(f"{c}{n:02d}.{m}" for c in "MGSZ" for n in range(0, 99, 13) for m in range(3)),
    stems=", ".join(f'"stem{n}"' for n in range(60)),
    names=", ".join(f'"muscle number {n}"' for n in range(60)),
)


def _compile_with_seed(seed: str, out: Path, extra: Path) -> dict[str, bytes]:
    env = dict(os.environ, PYTHONHASHSEED=seed)
    res = subprocess.run([sys.executable, "-m", "payrule", "compile", *SHIPPED, str(extra), "-o", str(out)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_same_bytes_under_any_hash_seed(tmp_path):
    extra = tmp_path / "big.policy"
    extra.write_text(BIG, encoding="utf-8")
    runs = {seed: _compile_with_seed(seed, tmp_path / f"out-{seed}", extra) for seed in ("0", "1", "12345")}
    first = runs["0"]
    assert len(first) == len(SHIPPED) + 1 and "zz_determinism.py" in first
    for seed, files in runs.items():
        for name in first:
            assert files[name] == first[name], f"{name} differs between PYTHONHASHSEED=0 and {seed}"


def _compile_all(texts: dict[str, str]) -> dict[str, str]:
    from payrule.lang.source import SourceFile

    ws = load_workspace(texts=[SourceFile(n, t) for n, t in texts.items()])
    assert not ws.errors
    return {pid: compile_model(m) for pid, m in ws.models.items()}


def test_same_text_twice_in_one_process():
    texts = {name: (ROOT / name).read_text(encoding="utf-8") for name in SHIPPED}
    texts["policies/big.policy"] = BIG
    first = _compile_all(texts)
    assert len(first) == len(SHIPPED) + 1 and "zz-determinism" in first
    # again from fresh parses, in the reverse file order
    again = _compile_all(dict(reversed(list(texts.items()))))
    assert again == first
    # and the same model compiled twice
    ws = load_workspace(dirs=[ROOT / "policies"])
    for pid, model in ws.models.items():
        assert compile_model(model) == compile_model(model)


# ---- order of the input claims -------------------------------------------------------------------

# Dates clustered on the edges the rules care about: 7-day spacing, 12-month windows, calendar years,
# leap days.
DATES = ["2023-02-28", "2023-03-01", "2023-12-31", "2024-01-01", "2024-01-07", "2024-01-08", "2024-02-28",
         "2024-02-29", "2024-03-01", "2024-03-07", "2024-03-08", "2024-12-31", "2025-01-01", "2025-02-28",
         "2025-03-01", "2025-03-02"]
CODES = ["20552", "20553", "20552", "20553", "20560", "20561", "99213", "99215", "00100", "01999", "76942", "J3301"]
MUSCLES = ["left soleus", "Left  Soleus", "right upper trapezius", "left levator scapulae", "right deltoid", "gluteus medius"]
SUBSTANCES = ["lidocaine", "triamcinolone", "PRP", "vitamin B12", "bupivacaine"]
DIAGNOSES = ["M79.18", "M7918", "M54.50", "G44.209", "Z00.00", "m62.830"]
MODIFIERS = ["25", "50", "59", "RT"]


@st.composite
def lines(draw, n: int):
    """Mostly well-documented lines (so that sessions accumulate and limits fire), some of every flaw."""
    out = []
    claim_date = draw(st.sampled_from(DATES))
    for no in range(1, n + 1):
        ln = {"line": no, "date": draw(st.sampled_from([claim_date] * 3 + DATES)), "code": draw(st.sampled_from(CODES))}
        if draw(st.integers(0, 9)) == 0:
            ln["units"] = 2
        mods = draw(st.sampled_from([[]] * 6 + [[m] for m in MODIFIERS] + [["25", "59"]]))
        if mods:
            ln["modifiers"] = mods
        fits = {"20552": st.lists(st.sampled_from(MUSCLES[2:]), min_size=1, max_size=2, unique=True),
                "20553": st.lists(st.sampled_from(MUSCLES[2:]), min_size=3, max_size=4, unique=True)}
        muscles = draw(fits.get(ln["code"], st.nothing()) | st.lists(st.sampled_from(MUSCLES), min_size=1, max_size=4)
                       | st.just(None))
        if muscles is not None:
            ln["muscles"] = muscles
        subs = draw(st.sampled_from([["lidocaine"]] * 6 + [None, ["lidocaine", "triamcinolone"], ["PRP"], ["vitamin B12"]]))
        if subs is not None:
            ln["substances"] = subs
        out.append(ln)
    return out


@st.composite
def claim_sets(draw):
    n = draw(st.integers(1, 14))
    claims = []
    for i in range(1, n + 1):
        claim = {
            "claim_id": f"C{i}",
            "patient_id": draw(st.sampled_from(["P1", "P1", "P1", "P2", "P3"])),
            "payer": draw(st.sampled_from(["medicare", "aetna", "medicare", "aetna", "Medicare", " AETNA ", "humana", "Medicare  Part B", "bcbsa", "Emblem Health", "cigna"])),
            "diagnoses": draw(st.sampled_from([["M79.18"]] * 3 + [[d] for d in DIAGNOSES] + [DIAGNOSES[3:5]])),
            "lines": draw(lines(draw(st.integers(1, 3)))),
        }
        claims.append(claim)
    return claims


@st.composite
def history_sets(draw):
    """Earlier TPI sessions, already paid, so that frequency and spacing limits come into play."""
    out = []
    for i in range(draw(st.integers(0, 5))):
        out.append({"claim_id": f"H{i}", "patient_id": draw(st.sampled_from(["P1", "P1", "P2"])),
                    "payer": draw(st.sampled_from(["medicare", "aetna"])),
                    "lines": [{"line": 1, "date": draw(st.sampled_from(DATES)), "code": "20552"}]})
    return out


_ROUTE = {"medicare part b": "medicare", "blue cross blue shield": "bcbs", "bcbsa": "bcbs", "emblem health": "emblemhealth"}


def _policy_key(payer: str) -> str:
    """The payer a claim's payer name routes to: contract v2's normal form, then the shipped aliases."""
    key = " ".join(payer.split()).casefold()
    return _ROUTE.get(key, key)


def tie_days(claims: list[dict], history: list[dict] = ()) -> set[tuple[str, str, str]]:
    """(payer, patient, date) with TPI lines on more than one claim, or on more than one history claim:
    decided in input order (contract section 3), so which one a message names depends on that order."""
    ties: set[tuple[str, str, str]] = set()
    for group in (claims, history):
        seen: dict[tuple[str, str, str], set[str]] = {}
        for c in group:
            for ln in c["lines"]:
                if ln["code"] in TPI_CODES:
                    seen.setdefault((_policy_key(c["payer"]), c["patient_id"], ln["date"]), set()).add(c["claim_id"])
        ties |= {k for k, ids in seen.items() if len(ids) > 1}
    return ties


def comparable(claims: list[dict], results: list[dict], history: list[dict] = ()) -> dict:
    """{claim_id: decision-or-error, (claim_id, line): (decision, reasons)} leaving out same-day ties."""
    ties = tie_days(claims, history)
    by_id = {c["claim_id"]: c for c in claims}
    out: dict = {}
    for r in results:
        cid = r["claim_id"]
        if "error" in r:
            out[cid] = ("error", r["error"])
            continue
        c = by_id[cid]
        tied = False
        for ln in r["lines"]:
            src = next(x for x in c["lines"] if x["line"] == ln["line"])
            if (_policy_key(c["payer"]), c["patient_id"], src["date"]) in ties:
                tied = True
                continue
            reasons = sorted((x["policy"], x["rule"], x["outcome"], x["message"], x["source"]) for x in ln["reasons"])
            out[(cid, ln["line"])] = (ln["code"], ln["decision"], reasons)
        if not tied:
            out[cid] = r["decision"]
    return out


_N = int(os.environ.get("PAYRULE_ORDER_EXAMPLES", "0")) or None
ORDER = settings(max_examples=_N or 120, derandomize=True, database=None, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@ORDER
@given(claims=claim_sets(), history=history_sets(), data=st.data())
def test_shuffled_claims_get_the_same_decisions(shipped, claims, history, data):
    shuffled = data.draw(st.permutations(claims), label="shuffled")
    first = shipped.check(claims, history)
    again = shipped.check(shuffled, list(reversed(history)))
    assert len(first) == len(claims) and len(again) == len(claims)
    assert [r["claim_id"] for r in again] == [c["claim_id"] for c in shuffled]  # output follows input order
    assert comparable(claims, again, history) == comparable(claims, first, history)


def test_the_tie_is_real(shipped):
    """The exemption above is the contract's: two claims, one TPI each, same patient and day — the
    first in input order is paid, whichever it is."""
    a = {"claim_id": "A", "patient_id": "P1", "payer": "aetna", "lines": [
        {"line": 1, "date": "2025-03-01", "code": "20552", "muscles": ["left soleus"], "substances": ["lidocaine"]}]}
    b = dict(a, claim_id="B")
    assert [r["decision"] for r in shipped.check([a, b])] == ["approve", "deny"]
    assert [r["decision"] for r in shipped.check([b, a])] == ["approve", "deny"]


CSV_FIELDS = ["claim_id", "patient_id", "payer", "line", "date", "code", "units", "modifiers", "diagnoses", "muscles", "substances"]


def csv_rows(claims: list[dict]) -> list[list[str]]:
    """One row per line; claim fields repeated; the claim's diagnoses become each row's own list."""
    rows = []
    for c in claims:
        for ln in c["lines"]:
            row = {**{k: c[k] for k in ("claim_id", "patient_id", "payer")}, **ln}
            row.setdefault("diagnoses", c.get("diagnoses", []))
            rows.append([_cell(row.get(k)) for k in CSV_FIELDS])
    return rows


def _cell(v) -> str:
    if v is None:
        return ""
    return ";".join(v) if isinstance(v, list) else str(v)


def to_csv(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    w.writerows(rows)
    return buf.getvalue()


def interleave(rows: list[list[str]], keys: list[int]) -> list[list[str]]:
    """The rows in the order of `keys`, except that each claim's own rows keep their order."""
    order = sorted(range(len(rows)), key=lambda i: keys[i])
    own: dict[str, list[list[str]]] = {}
    for r in rows:
        own.setdefault(r[0], []).append(r)
    taken: dict[str, int] = {}
    out = []
    for i in order:
        cid = rows[i][0]
        out.append(own[cid][taken.get(cid, 0)])
        taken[cid] = taken.get(cid, 0) + 1
    return out


@ORDER
@given(claims=claim_sets(), history=history_sets(), data=st.data())
def test_shuffled_csv_rows_get_the_same_decisions(shipped, claims, history, data):
    """CSV rows of one claim need not be adjacent: claims in any order, their rows interleaved any way,
    decide the same (ties aside), and the same as the claims given as JSON. (Each claim's own rows keep
    their order here: see test_row_order_within_a_csv_claim below.)"""
    rows = csv_rows(claims)
    keys = data.draw(st.lists(st.integers(0, 4 * len(rows)), min_size=len(rows), max_size=len(rows)), label="keys")
    shuffled = interleave(rows, keys)
    as_json = shipped.check(claims, history)
    in_order = shipped.check(to_csv(rows), history)
    reordered = shipped.check(to_csv(shuffled), history)
    first_seen = list(dict.fromkeys(r[0] for r in shuffled))
    assert [r["claim_id"] for r in reordered] == first_seen  # a claim is printed where its first row is
    expected = comparable(claims, as_json, history)
    assert comparable(claims, in_order, history) == expected
    assert comparable(claims, reordered, history) == expected


def test_row_order_within_a_csv_claim(shipped):
    head = "claim_id,patient_id,payer,line,date,code,diagnoses,muscles,substances\n"
    r1 = "C1,P1,aetna,1,2025-03-01,20552,M79.1,left soleus,PRP\n"
    r2 = "C1,P1,aetna,2,2025-03-01,20552,M79.1,left soleus,vitamin B12\n"
    first = shipped.check(head + r1 + r2)
    again = shipped.check(head + r2 + r1)

    def messages(out):
        return {ln["line"]: [r["message"] for r in ln["reasons"]] for ln in out[0]["lines"]}

    assert messages(again) == messages(first)
