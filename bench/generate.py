"""Generate realistic trigger point injection claims for benchmarks, deterministically.

    python bench/generate.py --claims 1000000 --out /tmp/claims.jsonl --history /tmp/history.jsonl
    python bench/generate.py --claims 10000 --out /tmp/claims.csv --csv

The mix follows the contract (shared/contract.md): payers `medicare` and `aetna` (spelled with varying
case now and then) and about 1% claims for a payer with no policy (`cigna`, `humana`); about N/6
patients, each with several trigger point injection (TPI) sessions over 2024-2025, some under 7 days
apart, some patients dense enough to pass Medicare's 3-in-12-months and Aetna's 4-a-year limits, a few
billing a second TPI the same day or a companion claim the same day; every code family (20552/20553
with 1-5 muscles, duplicates and case/spacing variants; E/M 99202-99215 with and without modifier 25;
anesthesia 00100-01999; dry needling 20560/20561 overlapping the TPI muscles or not; imaging 76942,
77002, 77021; drugs J3301 and others); modifiers 25, 50, 59, LT, RT; covered and uncovered diagnoses,
claim-level and line-level; substances, about 0.5% of TPI lines with an excluded injectate (PRP,
amniotic, placental, vitamins); missing muscles or substances; units 2; and about 1% malformed claims
(broken JSON, bad date, bad code, units 0, a missing or ill-typed field, a repeated line number or
claim id). About 1.9 service lines per claim.

`--history FILE` also writes earlier, valid claims (2023-2024) for about a third of the patients; the
claims file is the same with or without it. Output depends only on --claims and --seed: one seeded
`random.Random`, no set or hash order.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import random
import sys
from datetime import date

BASE = date(2024, 1, 1).toordinal()  # input claims: 2024-01-01 .. 2025-12-31
SPAN = date(2025, 12, 31).toordinal() - BASE + 1
HIST_BASE = date(2023, 3, 1).toordinal()  # history: 2023-03-01 .. about 2024-03
CHUNK = 50_000  # claims shuffled together before writing

MUSCLES = (
    "left upper trapezius", "right upper trapezius", "left levator scapulae", "right levator scapulae",
    "left rhomboid major", "right rhomboid major", "left infraspinatus", "right infraspinatus",
    "left supraspinatus", "right supraspinatus", "left posterior deltoid", "right posterior deltoid",
    "left splenius capitis", "right splenius capitis", "left quadratus lumborum", "right quadratus lumborum",
    "left gluteus medius", "right gluteus medius", "left piriformis", "right piriformis",
    "left gastrocnemius", "right gastrocnemius", "left soleus", "right soleus",
    "left sternocleidomastoid", "right sternocleidomastoid", "left erector spinae", "right erector spinae",
    "left teres minor", "right teres minor", "left scalenus medius", "right scalenus medius",
)
ODD_MUSCLES = ("sternocleidomastoïde gauche", "M. trapezius pars descendens", "left  upper  trapezius ")
SUBSTANCES = (
    ("lidocaine",), ("lidocaine",), ("lidocaine", "triamcinolone"), ("bupivacaine",),
    ("lidocaine", "dexamethasone"), ("ropivacaine",), ("sodium chloride 0.9%",), ("lidocaine 1%", "ketorolac"),
    ("Lidocaine",), ("prilocaine",), ("bupivacaine", "methylprednisolone"),
)
EXCLUDED = (
    "platelet-rich plasma", "PRP", "autologous PRP injection", "amniotic fluid allograft", "placental tissue matrix",
    "vitamin B12", "cyanocobalamin", "Biologic graft", "Placenta extract", "Vitamins",
)
COVERED = (
    "M79.18", "M79.1", "M791", "m79.12", "M79.7", "M60.81", "M62.830", "M62.83", "M54.2", "M54.50", "M54.59",
    "M54.6", "G44.209", "g44.2", " M79.11 ",
)
UNCOVERED = ("M25.511", "M54.16", "M79.6", "M79.604", "S39.012A", "R52", "M54.9", "G43.909")
EM_CODES = tuple(str(c) for c in range(99202, 99216))
ANESTHESIA = ("00100", "00300", "00400", "00600", "00630", "01992", "01999", "01470", "00810")
IMAGING = ("76942", "77002", "77021")
DRUGS = ("J3301", "J3301", "J3301", "j3301", "J1030", "J1100", "J2001")
OTHER = ("97140", "97110", "20610", "64450", "02000", "99216", "0232T")
UNKNOWN_PAYERS = ("cigna", "humana", "bcbs")
# --five-payers: every shipped payer, some by an alias, and one with no policy now and then
FIVE_PAYERS = ("medicare", "medicare", "aetna", "aetna", "bcbs", "Blue Cross Blue Shield", "cigna", "cigna",
               "emblemhealth", "Emblem Health", "humana")
SITES = ("neck", "lower back", "left shoulder", "right shoulder", "upper back", "Lower  Back")
PAYER_SPELLINGS = {"medicare": ("medicare", "Medicare", "MEDICARE", " medicare"), "aetna": ("aetna", "Aetna", "AETNA", "aetna ")}
BAD_DATES = ("2025-02-30", "2025-13-01", "03/01/2025", "2025-3-1", "2024-00-10", "", "20250301", "2023-02-29")
BAD_CODES = ("2055", "20-53", "205533", "", "2055 3", "J33.1")
BAD_UNITS = (0, 0, -1, "two", 1.5, True)
BAD_MODIFIERS = ("5", "RTX", "", "2 5")

_ISO: dict[int, str] = {}


def enc(d: dict) -> str:
    """JSON text of a claim, as json.dumps(d, ensure_ascii=False) writes it, about twice as fast.
    Every string this generator writes is plain text (no quote, backslash or control character)."""
    parts = []
    for k, v in d.items():
        t = type(v)
        if t is str:
            parts.append(f'"{k}": "{v}"')
        elif t is int:
            parts.append(f'"{k}": {v}')
        elif t is list:
            if v and type(v[0]) is dict:
                parts.append(f'"{k}": [' + ", ".join(map(enc, v)) + "]")
            elif v and all(type(x) is str for x in v):
                parts.append(f'"{k}": ["' + '", "'.join(v) + '"]')
            else:
                parts.append(f'"{k}": ' + json.dumps(v, ensure_ascii=False))
        else:
            parts.append(f'"{k}": ' + json.dumps(v, ensure_ascii=False))
    return "{" + ", ".join(parts) + "}"


def iso(o: int) -> str:
    s = _ISO.get(o)
    if s is None:
        s = _ISO[o] = date.fromordinal(o).isoformat()
    return s


class Gen:
    """One generator: patients -> claims (as dicts, in order) with one seeded random stream."""

    def __init__(self, seed: int, five: bool = False):
        self.r = random.Random(seed)
        self.rand = self.r.random
        self.hist_n = 0
        self.five = five  # all five shipped payers, with sites and prior authorizations (contract v2)

    # Faster than random.choice/randint/sample (which draw bits one call at a time); deterministic too.
    def pick(self, seq):
        return seq[int(self.rand() * len(seq))]

    def randint(self, a: int, b: int) -> int:
        return a + int(self.rand() * (b - a + 1))

    def randrange(self, a: int, b: int) -> int:
        return a + int(self.rand() * (b - a))

    def sample(self, seq, k: int) -> list:
        n = len(seq)
        idx: list[int] = []
        while len(idx) < k:
            i = int(self.rand() * n)
            if i not in idx:
                idx.append(i)
        return [seq[i] for i in idx]

    # ---- pieces of a line ----------------------------------------------------------------------

    def muscles(self, n: int) -> list[str]:
        rand = self.rand
        picked = self.sample(MUSCLES, n)
        x = rand()
        if x < 0.06 and picked:  # a duplicate, spelled differently: still n distinct
            m = self.pick(picked)
            picked.append(self.pick((m.upper(), m.title(), "  " + m.replace(" ", "  ") + " ", m)))
        elif x < 0.09:
            picked[0] = picked[0].title()
        elif x < 0.095:
            picked[0] = self.pick(ODD_MUSCLES)
        elif x < 0.10:
            picked.append("  ")  # a blank name is ignored
        return picked

    def tpi_line(self, no: int, d: int, dx_line: list | None) -> dict:
        rand = self.rand
        x = rand()
        code = "20552" if x < 0.55 else "20553"
        n = self.randint(1, 2) if code == "20552" else self.randint(3, 5)
        if rand() < 0.08:  # billed with the wrong code for the muscle count
            n = self.randint(3, 4) if code == "20552" else self.randint(1, 2)
        ln: dict = {"line": no, "date": iso(d), "code": code}
        x = rand()
        if x < 0.03:
            ln["units"] = 2
        elif x < 0.55:
            ln["units"] = 1
        elif x < 0.56:
            ln["units"] = None
        mods = []
        x = rand()
        if x < 0.35:
            mods.append(self.pick(("RT", "LT", "rt")))
        if rand() < 0.05:
            mods.append("59")
        if rand() < 0.02:
            mods.append("25")
        if rand() < 0.02:
            mods.append("50")
        if mods:
            ln["modifiers"] = mods
        x = rand()
        if x < 0.025:
            pass  # muscles not documented
        elif x < 0.03:
            ln["muscles"] = []
        elif x < 0.033:
            ln["muscles"] = None
        else:
            ln["muscles"] = self.muscles(n)
        x = rand()
        if x < 0.005:
            ln["substances"] = [self.pick(EXCLUDED)] if rand() < 0.5 else ["lidocaine", self.pick(EXCLUDED)]
        elif x < 0.03:
            pass  # substances not documented
        elif x < 0.035:
            ln["substances"] = []
        else:
            ln["substances"] = list(self.pick(SUBSTANCES))
        if dx_line is not None:
            ln["diagnoses"] = dx_line
        if rand() < 0.02:
            ln["ndc"] = "00409-4276-01"  # an unknown field: kept, never an error
        if self.five and rand() < 0.9:
            ln["site"] = self.pick(SITES)
        return ln

    def dx(self) -> list[str]:
        rand = self.rand
        x = rand()
        if x < 0.84:
            out = [self.pick(COVERED)]
            if rand() < 0.3:
                out.append(self.pick(UNCOVERED))
                if rand() < 0.5:
                    out.reverse()
            return out
        if x < 0.97:
            return [self.pick(UNCOVERED)]
        if x < 0.99:
            return [self.pick(UNCOVERED), self.pick(UNCOVERED)]
        return []

    def other_line(self, no: int, d: int, kind: str, tpi: dict | None) -> dict:
        rand = self.rand
        ln: dict = {"line": no, "date": iso(d)}
        if kind == "em":
            ln["code"] = self.pick(EM_CODES)
            if rand() < 0.6:
                ln["modifiers"] = ["25"] if rand() < 0.9 else ["25", "59"]
        elif kind == "anesthesia":
            ln["code"] = self.pick(ANESTHESIA)
            if rand() < 0.3:
                ln["units"] = self.randint(1, 6)
        elif kind == "dry":
            ln["code"] = self.pick(("20560", "20561"))
            x = rand()
            tm = (tpi or {}).get("muscles") or []
            if x < 0.15:
                pass  # no muscles
            elif x < 0.5 and tm:
                ln["muscles"] = [self.pick(tm).upper()] + self.sample(MUSCLES, self.randint(0, 2))  # overlaps
            else:
                ln["muscles"] = self.sample(MUSCLES, self.randint(1, 4))  # may or may not overlap
        elif kind == "imaging":
            ln["code"] = self.pick(IMAGING)
            if rand() < 0.3:
                ln["modifiers"] = ["26"]
        elif kind == "drug":
            ln["code"] = self.pick(DRUGS)
            ln["units"] = self.randint(1, 8)
        else:
            ln["code"] = self.pick(OTHER)
            if rand() < 0.2:
                ln["modifiers"] = [self.pick(("59", "GP", "LT", "RT"))]
        return ln

    # ---- claims --------------------------------------------------------------------------------

    def tpi_claim(self, d: int, second_tpi: bool = False) -> tuple[list, list | None]:
        """Lines of a claim with a TPI session on day d, and the claim's diagnoses."""
        rand = self.rand
        claim_dx = self.dx()
        line_dx = None
        x = rand()
        if x < 0.08:
            line_dx = self.dx()  # the line's own list replaces the claim's
        elif x < 0.09:
            line_dx = []
        lines = []
        no = 1
        if rand() < 0.40:
            lines.append(self.other_line(no, d, "em", None))
            no += 1
        t = self.tpi_line(no, d, line_dx)
        lines.append(t)
        no += 1
        if second_tpi:
            t2 = self.tpi_line(no, d, None)
            lines.append(t2)
            no += 1
        for kind, p in (("drug", 0.30), ("imaging", 0.15), ("anesthesia", 0.04), ("dry", 0.06), ("other", 0.03)):
            if rand() < p:
                lines.append(self.other_line(no, d, kind, t))
                no += 1
        if rand() < 0.01:  # a line dated the next day on the same claim
            lines.append(self.other_line(no, d + 1, "em", None))
        if rand() < 0.03 and len(lines) > 1:  # line numbers need not follow input order
            lines.reverse()
        return lines, claim_dx

    def plain_claim(self, d: int, tpi_day: bool) -> tuple[list, list | None]:
        """A claim without a TPI line: an office visit, a drug, dry needling... maybe on a TPI day."""
        rand = self.rand
        kinds = ("em", "em", "em", "drug", "dry", "anesthesia", "imaging", "other") if tpi_day else ("em", "em", "em", "drug", "dry", "other", "other")
        lines = [self.other_line(1, d, self.pick(kinds), None)]
        if rand() < 0.5:
            lines.append(self.other_line(2, d, self.pick(kinds), None))
        if rand() < 0.15:
            lines.append(self.other_line(3, d, "drug", None))
        return lines, self.dx()

    def session_days(self, k: int, start: int) -> list[int]:
        rand = self.rand
        days = []
        d = start
        for _ in range(k):
            days.append(d)
            x = rand()
            if x < 0.12:
                d += self.randint(1, 6)  # under Aetna's 7 days
            elif x < 0.16:
                d += 7
            elif x < 0.50:
                d += self.randint(8, 60)
            else:
                d += self.randint(61, 200)
        return days

    def patient(self, pid: str, n_claims: int, hist: list) -> list[tuple[int, dict]]:
        """(day, claim dict without claim_id) for one patient; history claims go to `hist`."""
        rand = self.rand
        x = rand()
        payer = "medicare" if x < 0.55 else "aetna" if x < 0.99 else self.pick(UNKNOWN_PAYERS)
        if self.five:  # its own draws, after the v1 ones: without --five-payers the file is unchanged
            payer = self.pick(FIVE_PAYERS)
        provider = f"{self.randint(1000000000, 1999999999)}"
        n_tpi = max(1, round(n_claims * 0.72))
        start = BASE + self.randrange(0, SPAN - 60)
        days = self.session_days(n_tpi, start)
        out: list[tuple[int, dict]] = []
        made = 0
        for d in days:
            if made >= n_claims:
                break
            if d >= BASE + SPAN:
                d = BASE + self.randrange(0, SPAN)
            lines, cdx = self.tpi_claim(d, second_tpi=rand() < 0.02)
            out.append((d, self._claim(pid, payer, provider, cdx, lines)))
            made += 1
            if made < n_claims and rand() < 0.04:  # a second TPI claim the same day
                lines, cdx = self.tpi_claim(d)
                out.append((d, self._claim(pid, payer, provider, cdx, lines)))
                made += 1
            if made < n_claims and rand() < 0.10:  # a companion claim the same day
                lines, cdx = self.plain_claim(d, True)
                out.append((d, self._claim(pid, payer, provider, cdx, lines)))
                made += 1
        while made < n_claims:
            d = BASE + self.randrange(0, SPAN)
            if rand() < 0.85:
                lines, cdx = self.plain_claim(d, False)
            else:
                lines, cdx = self.tpi_claim(d)
            pay = payer
            if payer in PAYER_SPELLINGS and rand() < 0.05:  # the same patient with the other payer
                pay = "aetna" if payer == "medicare" else "medicare"
            out.append((d, self._claim(pid, pay, provider, cdx, lines)))
            made += 1
        # history: earlier sessions for about a third of the patients
        if rand() < 0.33:
            hp = payer if rand() < 0.97 else self.pick(UNKNOWN_PAYERS)
            hstart = HIST_BASE + self.randrange(0, 300)
            hdays = self.session_days(self.randint(1, 4), hstart)
            if days and rand() < 0.05:
                hdays.append(days[0])  # a session already paid on an input claim's day
            for d in hdays:
                lines, cdx = self.tpi_claim(d)
                c = self._claim(pid, hp, provider, cdx, lines)
                self.hist_n += 1
                c = {"claim_id": f"H{self.hist_n:08d}", **c}
                hist.append(c)
        return out

    def _claim(self, pid, payer, provider, dx, lines) -> dict:
        rand = self.rand
        if payer in PAYER_SPELLINGS and rand() < 0.03:
            payer = self.pick(PAYER_SPELLINGS[payer])
        c: dict = {"patient_id": pid, "payer": payer}
        if rand() < 0.8:
            c["provider_id"] = provider
        if dx is not None:
            c["diagnoses"] = dx
        if self.five and rand() < 0.3:
            c["prior_auth"] = f"PA{self.randint(100000, 999999)}"
        c["lines"] = lines
        return c

    # ---- malformed claims ----------------------------------------------------------------------

    BROKEN = "broken"

    def corrupt(self, c: dict, prev_id: str | None) -> str | None:
        """Make `c` unreadable in one of the contract's ways; returns "broken" when the JSON text must
        be cut, or a claim id to reuse; else None."""
        kind = self.randrange(0, 14)
        ln = self.pick(c["lines"])
        if kind == 0:
            return self.BROKEN
        if kind == 1:
            ln["date"] = self.pick(BAD_DATES)
        elif kind == 2:
            ln["code"] = self.pick(BAD_CODES)
        elif kind == 3:
            ln["units"] = self.pick(BAD_UNITS)
        elif kind == 4:
            del c["patient_id"]
        elif kind == 5:
            c["payer"] = self.pick(("", None, 7))
        elif kind == 6:
            c["lines"] = self.pick(([], None, "20552"))
        elif kind == 7:
            ln.pop("date")
        elif kind == 8:
            ln["modifiers"] = [self.pick(BAD_MODIFIERS)]
        elif kind == 9:
            c["lines"].append(dict(c["lines"][0]))  # a repeated line number
        elif kind == 10:
            c["diagnoses"] = "M79.1"
        elif kind == 11:
            if prev_id is not None:
                return prev_id
            ln["line"] = "1"
        elif kind == 12:
            ln["muscles"] = "left soleus"
        else:
            ln["line"] = None
        return None


def generate(n_claims: int, seed: int, out, hist_out, as_csv: bool, five: bool = False) -> tuple[int, int, int]:
    """Write `n_claims` claims to the binary stream `out` (and history to `hist_out`, or drop it).
    `five`: all five shipped payers (contract v2), with sites and prior authorizations.
    Returns (claims, service lines, history claims)."""
    g = Gen(seed, five)
    r = g.r
    rand = g.rand
    made = 0
    n_lines = 0
    n_hist = 0
    pno = 0
    claim_no = 0
    prev_id = None
    header = True
    hheader = True
    while made < n_claims:
        chunk: list[tuple[int, dict]] = []
        hist: list[dict] = []
        while len(chunk) < CHUNK and made + len(chunk) < n_claims:
            pno += 1
            k = min(g.randint(1, 11), n_claims - made - len(chunk))
            chunk.extend(g.patient(f"P{pno:07d}", k, hist))
        r.shuffle(chunk)
        made += len(chunk)
        texts = []
        rows = []
        for _, c in chunk:
            claim_no += 1
            cid = f"C{claim_no:08d}"
            broken = False
            if rand() < 0.01:
                how = g.corrupt(c, prev_id)
                if how == Gen.BROKEN:
                    broken = True
                elif how is not None:
                    cid = how
            prev_id = cid
            c = {"claim_id": cid, **c}
            lines = c.get("lines")
            n_lines += len(lines) if isinstance(lines, list) else 0
            if as_csv:
                rows.extend(csv_rows(c))
            else:
                t = enc(c)
                if broken:
                    t = t[: g.randrange(1, len(t) - 1)]
                texts.append(t)
        if as_csv:
            out.write(csv_text(rows, header).encode("utf-8"))
            header = False
        else:
            texts.append("")
            out.write("\n".join(texts).encode("utf-8"))
        if hist_out is not None:
            if as_csv:
                hrows = [row for c in hist for row in csv_rows(c)]
                hist_out.write(csv_text(hrows, hheader).encode("utf-8"))
                hheader = False
            else:
                hist_out.write("".join(enc(c) + "\n" for c in hist).encode("utf-8"))
        n_hist += len(hist)
    return made, n_lines, n_hist


CSV_COLUMNS = ("claim_id", "patient_id", "payer", "provider_id", "diagnoses", "line", "date", "code", "units", "modifiers", "muscles", "substances")


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, list):
        return ";".join(str(x) for x in v)
    return str(v)


def csv_rows(c: dict) -> list[list[str]]:
    lines = c.get("lines")
    if not isinstance(lines, list) or not lines:
        lines = [{}]  # a claim without lines: one row with no line fields
    rows = []
    for ln in lines:
        dx = ln.get("diagnoses", c.get("diagnoses"))
        rows.append([
            _cell(c.get("claim_id")), _cell(c.get("patient_id")), _cell(c.get("payer")), _cell(c.get("provider_id")),
            _cell(dx), _cell(ln.get("line")), _cell(ln.get("date")), _cell(ln.get("code")), _cell(ln.get("units")),
            _cell(ln.get("modifiers")), _cell(ln.get("muscles")), _cell(ln.get("substances")),
        ])
    return rows


def csv_text(rows: list, header: bool) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(CSV_COLUMNS)
    w.writerows(rows)
    return buf.getvalue()


def claim_objects(n_claims: int, seed: int = 7) -> list[dict]:
    """The claims `generate` writes, as decoded objects (about 1% ill-valued), its broken-JSON lines left
    out: for tests and benches that feed the same claims to another format's writer."""
    buf = io.BytesIO()
    generate(n_claims, seed, buf, None, False)
    out = []
    for raw in buf.getvalue().split(b"\n"):
        try:
            out.append(json.loads(raw))
        except ValueError:
            continue
    return out


def best_time(fn, runs: int = 3) -> float:
    """The least wall time of `runs` calls of `fn`, the garbage collector off while timing as `payrule
    check` runs (otherwise each collection walks every object alive, and the side that makes more
    temporary objects pays for the other's too): how the format benches time both sides alike."""
    import gc
    import time

    times = []
    for _ in range(runs):
        gc.collect()
        gc.disable()
        try:
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        finally:
            gc.enable()
    return min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--claims", type=int, required=True, metavar="N", help="how many claims to write")
    ap.add_argument("--out", required=True, metavar="FILE", help="the claims file ('-' for standard output)")
    ap.add_argument("--history", metavar="FILE", help="also write earlier, valid claims here")
    ap.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    ap.add_argument("--csv", action="store_true", help="write CSV (one row per line) instead of JSON Lines")
    ap.add_argument("--five-payers", action="store_true",
                    help="claims for all five shipped payers (some by alias), with sites and prior authorizations")
    args = ap.parse_args(argv)
    out = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")
    hist = open(args.history, "wb") if args.history else None
    try:
        claims, lines, n_hist = generate(args.claims, args.seed, out, hist, args.csv, args.five_payers)
    finally:
        if out is not sys.stdout.buffer:
            out.close()
        if hist is not None:
            hist.close()
    sys.stderr.write(f"{claims} claims, {lines} service lines ({lines / max(claims, 1):.2f} a claim)"
                     + (f", {n_hist} history claims" if args.history else "") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
