"""Differential tests: the compiled checkers against payrule's reference interpreter.

`payrule.run.interpreter` decides claims by walking the checked model's conditions directly; it shares
nothing with the generated code (emit, compiler, runtime, engine, loader) but the claims reader. Here
hypothesis generates claim sets (dates clustered on window edges and leap days, muscle names that differ
only in case and spacing, mixed payers, several patients, same-day ties, history) and policies built
from every construct of the language, and both must give the same output objects: line decisions,
reasons (policy, rule, outcome, source) and messages, line by line.

The bounded run is part of the suite (well under a minute). A longer run:

    PAYRULE_DIFF_EXAMPLES=5000 .venv/bin/pytest tests/test_differential.py

(the variable sets max_examples for each property test here).
"""
from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from payrule import PolicySet
from payrule.api import PolicyError
from payrule.claims.readers import ReadSession, read_claims, read_history
from payrule.lang import ir
from payrule.run.interpreter import (
    in_window,
    interpret,
    models_by_payer,
    months_before,
    ordinal_words,
    window_first_day,
)

from conftest import CONFORMANCE, POLICIES, claim, tpi

EXAMPLES = int(os.environ.get("PAYRULE_DIFF_EXAMPLES", "0")) or None


def bounded(n: int):
    """Hypothesis settings: deterministic, no deadline, `n` examples (PAYRULE_DIFF_EXAMPLES overrides)."""
    return settings(
        max_examples=EXAMPLES or n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# ---- running both ------------------------------------------------------------------------------


def to_jsonl(objs) -> bytes:
    return b"".join((o if isinstance(o, bytes) else json.dumps(o).encode()) + b"\n" for o in objs)


def compiled_and_interpreted(policies: PolicySet, claims: bytes, history: bytes = b"") -> tuple[list, list]:
    """The engine's output objects and the interpreter's, each from its own reading of the input."""
    compiled = policies.check(claims, history)
    keep = ReadSession(keep_extra=True)  # the interpreter reads every field; the engine only when a policy needs them
    interpreted = interpret(models_by_payer(policies.policies), read_claims(claims, session=keep),
                            read_history(history, "history.jsonl", keep))
    return compiled, interpreted


def assert_agree(compiled: list, interpreted: list) -> None:
    assert len(compiled) == len(interpreted)
    for c, i in zip(compiled, interpreted):
        if c == i:
            continue
        note("compiled:    " + json.dumps(c, indent=1))
        note("interpreted: " + json.dumps(i, indent=1))
        assert c.get("claim_id") == i.get("claim_id")
        for lc, li in zip(c.get("lines", []), i.get("lines", [])):
            assert lc == li, f"claim {c['claim_id']} line {lc['line']}: compiled {lc} != interpreted {li}"
        assert c == i


# ---- generating: every choice is one small integer (cheap to draw, shrinks to the first choice) ----

CHOICE = st.integers(min_value=0, max_value=255)


def pick(draw, options):
    return options[draw(CHOICE) % len(options)]


def count(draw, lo: int, hi: int) -> int:
    return lo + draw(CHOICE) % (hi - lo + 1)


# ---- dates clustered on window edges -----------------------------------------------------------

ANCHORS = [date(2024, 2, 29), date(2024, 2, 28), date(2024, 3, 1), date(2023, 2, 28), date(2023, 3, 1),
           date(2024, 12, 31), date(2025, 1, 1), date(2023, 12, 31), date(2025, 3, 15), date(2024, 1, 31),
           date(2024, 3, 31)]
# steps between the days of one example: days, or ("m", n[, extra days]) calendar months
STEPS = [0, 1, 2, 6, 7, 8, 13, 29, 30, 31, 89, 90, 91, 364, 365, 366,
         ("m", 1), ("m", 3), ("m", 12), ("m", -12), ("m", 12, 1), ("m", 12, -1), ("m", 24)]


def add_months(d: date, n: int) -> date:
    y, m = divmod(d.year * 12 + d.month - 1 + n, 12)
    day = d.day
    while True:
        try:
            return date(y, m + 1, day)
        except ValueError:
            day -= 1


def shift(d: date, step) -> date:
    if isinstance(step, int):
        return d + timedelta(days=step)
    out = add_months(d, step[1])
    return out + timedelta(days=step[2]) if len(step) > 2 else out


def day_pool(draw) -> list[str]:
    """A few days, each a window-edge step from an earlier one: exactly 7 / 90 / 365 days or 12 months
    apart, one day either side, around leap days and new year."""
    pool = [pick(draw, ANCHORS)]
    for _ in range(count(draw, 1, 6)):
        pool.append(shift(pick(draw, pool), pick(draw, STEPS)))
    return [d.isoformat() for d in pool]


# ---- claims ------------------------------------------------------------------------------------

MUSCLES = ["left soleus", "Left  Soleus", " left soleus ", "LEFT SOLEUS", "left\tsoleus", "left\u00a0soleus",
           "right upper trapezius", "Right Upper  Trapezius", "left gastrocnemius", "levator scapulae", "", "   "]
SUBSTANCES = ["lidocaine", "Lidocaine ", "PRP", "platelet-rich plasma", "Platelet Rich Plasma", "prp_injection",
              "xPRP", "vitamin B12", "Cyanocobalamin", "amniotic membrane", "bupivacaine", "triamcinolone",
              "non-platelet saline", ""]
MODIFIERS = ["25", "59", "lt", "LT", "RT", "50", " 25"]
DIAGNOSES = ["M79.18", "m7918", " M79.1 ", "M79 .18", "G44.209", "M54.5", "Z00.00", "M60", "M62.830", "g44", "."]
SUBSTANCES += ["0.9% sodium chloride", "Sodium  Chloride", "sterile water", "sodium bicarbonate", "saline"]
SITES = ["neck", "Neck", " left  shoulder", "left shoulder", "lower back", "", "   ", None]
PRIOR_AUTHS = ["PA-1", "pa-1", "", "  ", None]
PLACES = ["11", 11, "22", ["11", "22"], " 11 ", None, True, {"x": 1}]  # a field the schema does not know
ABSENT = object()


def maybe_list(draw, pool, max_size=4):
    """Absent, JSON null, or a list from `pool` (possibly empty, duplicates allowed)."""
    kind = count(draw, 0, 5)
    if kind == 0:
        return ABSENT
    if kind == 1:
        return None
    return [pick(draw, pool) for _ in range(count(draw, 0, max_size))]


def lines(draw, days, codes) -> list[dict]:
    numbers = []
    for _ in range(count(draw, 1, 3)):
        no = pick(draw, [1, 2, 3, 4, 7])
        if no not in numbers:
            numbers.append(no)  # listed in any order
    out = []
    for no in numbers:
        ln = {"line": no, "date": pick(draw, days), "code": pick(draw, codes)}
        units = pick(draw, [None, None, None, 1, 2, 3])
        if units is not None:
            ln["units"] = units
        for key, pool in (("modifiers", MODIFIERS), ("diagnoses", DIAGNOSES), ("muscles", MUSCLES),
                          ("substances", SUBSTANCES)):
            value = maybe_list(draw, pool)
            if value is not ABSENT:
                ln[key] = value
        site = pick(draw, SITES + ["neck", "neck", ABSENT])
        if site is not ABSENT:
            ln["site"] = site
        place = pick(draw, PLACES + [ABSENT, ABSENT])
        if place is not ABSENT:
            ln["place_of_service"] = place
        out.append(ln)
    return out


@st.composite
def claim_sets(draw, payers, codes, most=8):
    """(claims JSONL, history JSONL): up to 8 claims and 3 history claims of one to three patients (`p1` is
    not `P1`) and one or more payers, their days from one clustered pool, so same-day ties are common."""
    days = day_pool(draw)
    patients = pick(draw, [["P1"], ["P1"], ["P1", "P2"], ["P1", "P2", "p1"]])
    payers = payers[: count(draw, 1, len(payers))]  # often one payer: more history per patient

    def one(claim_id):
        c = {"claim_id": claim_id, "patient_id": pick(draw, patients), "payer": pick(draw, payers)}
        dx = maybe_list(draw, DIAGNOSES, 3)
        if dx is not ABSENT:
            c["diagnoses"] = dx
        auth = pick(draw, PRIOR_AUTHS + [ABSENT, ABSENT])
        if auth is not ABSENT:
            c["prior_auth"] = auth
        c["lines"] = lines(draw, days, codes)  # listed in any order, history too
        return c

    claims: list = [one(f"C{i}") for i in range(1, count(draw, 1, most) + 1)]
    if count(draw, 0, 9) == 0:  # an unreadable claim among the good ones
        claims.insert(count(draw, 0, len(claims)), b'{"claim_id": "BAD", "patient_id": "P1"')
    history = [one(f"H{i}") for i in range(1, count(draw, 0, 3) + 1)]
    return to_jsonl(claims), to_jsonl(history)


# ---- policies built from every construct of the language -----------------------------------------

COMMON_SETS = """\
  codes TPI = 20552, 20553
  codes ANES = 00100..01999
  codes DN = 20560, 20561
  codes EM = 99202..99215, 99242
  codes JX = J3301, j0100..J0199
  codes WIDE = A0000..Z0000, 0232T
  diagnoses DX = M79.1, g44.2, M60.8, M54.5
  diagnoses DX2 = Z00.00, m62
  stems ST = "platelet", "PRP", "vitamin", "amniotic"
  stems ST2 = "left", "Lido", "25"
  names NM = "left soleus", "Right  Upper Trapezius", "lidocaine"
  names SUBS = "lidocaine", "PRP", "bupivacaine"
  stems ST3 = "sodium chloride", "water", "saline", "lido"
  names SITES = "neck", "Left Shoulder"
"""
LOCAL_SETS = {"alpha": "  codes LOCAL = 20552, 99213, J3301\n", "beta": "  codes LOCAL = 20553..20561\n"}
CODE_SETS = ["TPI", "ANES", "DN", "EM", "JX", "WIDE", "LOCAL"]  # LOCAL: only in payer policies
GEN_CODES = ["20552", "20553", "20552", "20553", "20552", "00100", "01999", "02000", "00099", "20560", "20561", "99202", "99213", "99215",
             "99216", "99242", "J3301", "j3301", "J0150", "J1000", "B1234", "Z0001", "76942", "0232T", "0232t"]
# sets a condition names, weighted toward the set most claim lines hit
LIKELY_SETS = ["TPI", "TPI", "TPI", "LOCAL", "LOCAL", "EM", "ANES", "DN", "WIDE", "JX"]
FIELDS = {"modifiers": ("modifier", "modifiers"), "diagnoses": ("diagnosis", "diagnoses"),
          "muscles": ("muscle", "muscles"), "substances": ("substance", "substances")}
FIELD_NAMES = sorted(FIELDS)
SETS_FOR = {"modifiers": CODE_SETS + ["ST", "ST2"], "diagnoses": ["DX", "DX2", "ST", "ST2"],
            "muscles": ["NM", "SUBS", "ST", "ST2"], "substances": ["NM", "SUBS", "ST", "ST2", "ST3", "ST3"]}
# unions `(A or B)` of sets that may match the field together
UNIONS_FOR = {"modifiers": ["(ST or ST2)", "(TPI or ST2)"], "diagnoses": ["(DX or DX2)", "(DX2 or ST2)"],
              "muscles": ["(NM or ST2)", "(SUBS or NM or ST)"], "substances": ["(SUBS or ST3)", "(ST or ST3)", "(NM or SUBS)"]}
VALUES_FOR = {"modifiers": ["25", '"lt"', "50", "RT"], "diagnoses": ["M79.1", '"g44.2"', "M79", "Z00.00"],
              "muscles": ['"left soleus"', '"LEFT   Soleus"', '"levator scapulae"'],
              "substances": ['"lidocaine"', '"PRP"', '"platelet-rich plasma"']}
WINDOWS = ["within 12 months", "within 1 month", "within 3 months", "within 24 months", "within 7 days",
           "within 90 days", "within 1 day", "within 365 days", "per calendar year", "per calendar year"]
BASE = ("claim_id", "code", "date", "line", "patient_id", "payer", "policy", "rule", "site", "units")
SAME_DAY = ("other_claim", "other_code", "other_date", "other_line")
LIMIT = ("limit", "n", "next_date", "nth", "sessions", "window", "year")
SPACING = ("days", "last_date", "min_days", "next_date")
ATOM_KINDS = ["code_in", "code_in", "code_is", "has", "has_value", "has_in", "has_in", "units", "distinct",
              "same_day", "same_day", "limit", "spacing", "outside", "every", "site", "claim_field", "extra"]


@dataclass(frozen=True)
class Atom:
    text: str
    provides: tuple[str, ...] = ()
    dynamic: bool = False


@dataclass(frozen=True)
class Junction:
    op: str  # "and" | "or"
    items: tuple


@dataclass(frozen=True)
class Negation:
    item: object


def render(node) -> str:
    if isinstance(node, Atom):
        return node.text
    if isinstance(node, Negation):
        inner = render(node.item)
        return f"not ({inner})" if isinstance(node.item, Junction) else f"not {inner}"
    return f" {node.op} ".join(f"({render(i)})" if isinstance(i, Junction) else render(i) for i in node.items)


def dynamic(node) -> bool:
    if isinstance(node, Atom):
        return node.dynamic
    if isinstance(node, Negation):
        return dynamic(node.item)
    return any(dynamic(i) for i in node.items)


def top_provides(node) -> list[str]:
    """The placeholders a message may quote: the base ones, and those of the top-level `and` items."""
    items = node.items if isinstance(node, Junction) and node.op == "and" else (node,)
    out = list(BASE)
    for i in items:
        if isinstance(i, Atom):
            out += [p for p in i.provides if p not in out]
    return out


def atom(draw, kinds=ATOM_KINDS) -> Atom:
    kind = pick(draw, kinds)
    fname = pick(draw, FIELD_NAMES)
    word = pick(draw, FIELDS[fname])
    neg = pick(draw, (False, True))
    if kind == "code_in":
        return Atom(f"code {'not in' if neg else 'in'} {pick(draw, LIKELY_SETS)}")
    if kind == "code_is":
        return Atom(f"code is {pick(draw, ['20552', '20553', 'j3301', '99213', '0232t', '00100'])}")
    if kind == "has":
        return Atom(f"{'lacks' if neg else 'has'} {word}")
    if kind == "has_value":
        return Atom(f"{'lacks' if neg else 'has'} {word} {pick(draw, VALUES_FOR[fname])}")
    if kind == "has_in":
        return Atom(f"{'lacks' if neg else 'has'} {word} in {pick(draw, SETS_FOR[fname])}", () if neg else ("matched",))
    if kind == "units":
        op, n = pick(draw, [(">", 1), (">", 2), (">=", 2), ("<", 2), ("<", 3), ("<=", 1), ("=", 1), ("!=", 1), ("=", 2)])
        return Atom(f"units {op} {n}")
    if kind == "distinct":
        op = pick(draw, [">", ">=", "<", "<=", "=", "!="])
        n = count(draw, 1 if op == "<" else 0, 3)
        return Atom(f"distinct {word} {op} {n}", (f"distinct_{fname}",))
    if kind == "same_day":
        earlier = pick(draw, (False, True))
        qual = pick(draw, ["", "", "sharing", "lacking"])
        text = f"same day as {'earlier ' if earlier else ''}{pick(draw, LIKELY_SETS)}"
        provides = SAME_DAY
        if qual == "sharing":
            text += f" sharing a {word}"
            provides += ("shared",)
        elif qual == "lacking":
            text += f" lacking {word}"
        return Atom(text, provides, earlier)
    if kind in ("outside", "every"):
        fname = pick(draw, ["substances", "substances", "muscles", "diagnoses", "modifiers"])
        word = pick(draw, FIELDS[fname])
        sets = pick(draw, SETS_FOR[fname] + UNIONS_FOR[fname])
        if kind == "every":
            return Atom(f"every {word} in {sets}", ("matched",))
        return Atom(f"{'lacks' if neg else 'has'} {word} not in {sets}", () if neg else ("matched",))
    if kind == "site":
        return Atom(pick(draw, [f"{'lacks' if neg else 'has'} site", 'has site "neck"', 'lacks site " Left  Shoulder"',
                                f"{'lacks' if neg else 'has'} site in {pick(draw, ['SITES', 'ST2', '(SITES or ST2)'])}"]))
    if kind == "claim_field":
        return Atom(pick(draw, ["claim has prior_auth", "claim lacks prior_auth", "has prior_auth", 'claim has prior_auth "PA-1"',
                                'claim has payer "alpha plan"', "claim lacks patient_id"]))
    if kind == "extra":
        return Atom(pick(draw, ["has place_of_service", "lacks place_of_service", "has place_of_service 11",
                                'lacks place_of_service "22"', "has place_of_service in SITES"]))
    grouping = pick(draw, ["", "", "", " at the same site", " at the same place_of_service"])
    if kind == "limit":
        n = pick(draw, [1, 1, 2, 3])
        return Atom(f"more than {n} {pick(draw, LIKELY_SETS)} sessions {pick(draw, WINDOWS)}{grouping}",
                    LIMIT, True)
    gap = pick(draw, ["2 days", "7 days", "8 days", "30 days", "90 days", "1 month", "2 months", "12 months"])
    return Atom(f"less than {gap} after the last {pick(draw, LIKELY_SETS)} session{grouping}", SPACING, True)


def condition(draw, depth: int = 0):
    """An atom, or `and` / `or` of two or three conditions, or `not` one, at most three levels deep."""
    kind = count(draw, 0, 5) if depth < 3 else 0
    if kind <= 2:
        return atom(draw)
    if kind == 5:
        return Negation(condition(draw, depth + 1))
    return Junction("and" if kind == 3 else "or", tuple(condition(draw, depth + 1) for _ in range(count(draw, 2, 3))))


def rule(draw, rid: str, common: bool = False) -> str:
    """One rule; a rule of the common policy cannot name the payer policies' LOCAL set. Most rules are
    written as real ones are, `code in SET and ...` with atoms at the top (they give the message
    placeholders); the rest are any condition."""
    if count(draw, 0, 3) == 0:
        cond = condition(draw)
    else:
        items = tuple(atom(draw) if count(draw, 0, 2) else condition(draw, 2) for _ in range(pick(draw, [1, 1, 2, 3])))
        if count(draw, 0, 2):  # the engine's guarded path
            items = (Atom(f"code in {pick(draw, LIKELY_SETS)}"),) + items
        cond = items[0] if len(items) == 1 else Junction("and", items)
    unless = atom(draw) if count(draw, 0, 3) == 0 else None
    scope = "line" if dynamic(cond) or (unless is not None and unless.dynamic) else pick(draw, ["line", "line", "claim"])
    text = f"  rule {rid}: {pick(draw, ['deny', 'review'])} {scope} when {render(cond)}"
    if unless is not None:
        text += f" unless {unless.text}"
    start = end = None
    if count(draw, 0, 3) == 0:  # dated: the pools' days cluster around these
        start, end = pick(draw, [("2024-02-29", None), (None, "2024-12-31"), ("2023-03-01", "2025-01-01"),
                                 ("2024-01-01", "2024-01-01"), (None, "2023-12-31")])
        text += (f" from {start}" if start else "") + (f" until {end}" if end else "")
    if count(draw, 0, 2) == 0:
        text += pick(draw, [" carc 119", " carc 16 rarc N130", " rarc M80", " carc B7"])
    if count(draw, 0, 3):
        allowed = top_provides(cond) + [p for p, d in (("start_date", start), ("end_date", end)) if d]
        special = [p for p in allowed if p not in BASE] or allowed
        parts = []
        for _ in range(count(draw, 1, 6)):
            kind = count(draw, 0, 3)
            if kind == 0:
                parts.append(pick(draw, ["x", "{{", "}}", "on", "-"]))
            else:
                parts.append("{" + pick(draw, special if kind < 3 else allowed) + "}")
        text += f' message "{" ".join(parts)}"'
    if pick(draw, (False, True)):
        text += " per SRC"
    text += "\n"
    return text.replace("LOCAL", "TPI") if common else text


@st.composite
def policy_texts(draw) -> dict[str, str]:
    """A common policy (the sets, 0-3 rules) included by two payer policies (1-4 rules each)."""
    common = 'policy gen-common "Generated common rules"\n  source SRC "generated for the differential test"\n'
    common += COMMON_SETS
    for i in range(count(draw, 0, 3)):
        common += rule(draw, f"c{i}", common=True)
    texts = {"gen/common.policy": common}
    for payer, spelled in (("alpha", "alpha"), ("beta", "BETA")):
        text = f'policy gen-{payer} "Generated {payer} rules"\n  payer {spelled}\n  include gen-common\n'
        if payer == "alpha":
            text += '  alias "Alpha  Plan", alpha-2\n'
        text += LOCAL_SETS[payer]
        for i in range(count(draw, 1, 4)):
            text += rule(draw, f"{payer[0]}{i}")
        texts[f"gen/{payer}.policy"] = text
    return texts


@st.composite
def limit_policy_texts(draw) -> dict[str, str]:
    """A payer policy of line rules `code in SET and` a limit, a spacing rule or `same day as earlier`,
    each quoting every placeholder it provides: the date arithmetic and the facts behind messages."""
    text = 'policy gen-limits "Generated limits"\n  payer alpha\n' + COMMON_SETS + LOCAL_SETS["alpha"]
    for i in range(count(draw, 1, 3)):
        items = [atom(draw, ["limit", "limit", "spacing", "same_day"]) for _ in range(pick(draw, [1, 1, 2]))]
        cond = Junction("and", (Atom(f"code in {pick(draw, ['TPI', 'TPI', 'LOCAL'])}"), *items))
        quoted = " ".join("{" + p + "}" for p in top_provides(cond) if p not in BASE)
        text += f"  rule l{i}: {pick(draw, ['deny', 'review'])} line when {render(cond)} message \"{quoted} ({{code}} on {{date}})\"\n"
    return {"gen/limits.policy": text}


def load(texts: dict[str, str]) -> PolicySet:
    try:
        return PolicySet.from_texts(texts)
    except PolicyError as exc:  # a generated policy the checker refuses: not this test's business
        note(exc.rendered)
        assume(False)
        raise  # pragma: no cover


# ---- the properties ------------------------------------------------------------------------------

GEN_PAYERS = ["alpha", "beta", "ALPHA", " Alpha", "Beta", "gamma", "alpha plan", "ALPHA-2", "alpha  PLAN"]


@bounded(120)
@given(texts=policy_texts(), data=st.data())
def test_generated_policies_compiled_and_interpreted_agree(texts, data):
    policies = load(texts)
    for name, text in sorted(texts.items()):
        note(f"--- {name}\n{text}")
    for _ in range(3):  # several claim sets per compiled policy: compiling is the slow part
        claims, history = data.draw(claim_sets(GEN_PAYERS, GEN_CODES))
        note("claims:\n" + claims.decode() + "history:\n" + history.decode())
        assert_agree(*compiled_and_interpreted(policies, claims, history))


@bounded(80)
@given(texts=limit_policy_texts(), data=st.data())
def test_limits_and_their_messages_agree(texts, data):
    """Many sessions of one patient on window-edge days, under limit, spacing and same-day rules."""
    policies = load(texts)
    note(texts["gen/limits.policy"])
    for _ in range(3):
        claims, history = data.draw(claim_sets(["alpha"], ["20552", "20553", "20552", "99213", "20560"], most=10))
        note("claims:\n" + claims.decode() + "history:\n" + history.decode())
        assert_agree(*compiled_and_interpreted(policies, claims, history))


SHIPPED_CODES = ["20552", "20553", "20552", "20553", "20552", "00100", "01999", "20560", "20561", "99213", "99215", "99201",
                 "76942", "J3301"]
SHIPPED_PAYERS = ["medicare", "aetna", "Medicare", "AETNA", "cigna", "bcbs", "emblemhealth", "Medicare Part B",
                  "Emblem  Health", "bcbsa", "humana"]


@pytest.fixture(scope="module")
def shipped_policies() -> PolicySet:
    return PolicySet.load([POLICIES])


@bounded(200)
@given(data=st.data())
def test_shipped_policies_compiled_and_interpreted_agree(shipped_policies, data):
    claims, history = data.draw(claim_sets(SHIPPED_PAYERS, SHIPPED_CODES))
    note("claims:\n" + claims.decode() + "history:\n" + history.decode())
    assert_agree(*compiled_and_interpreted(shipped_policies, claims, history))


PIECES = ("and ", " or ", "not ", "code in ", "code not in ", "code is ", " has ", " lacks ", "units ", "distinct ",
          "same day as ", "same day as earlier", "sharing a ", " lacking ", "more than ", "per calendar year", "within ",
          "less than ", "claim when", "line when", "message ", "per SRC", "{{", "{matched}", "{shared}", "{next_date}",
          " not in (", "every ", " unless ", " from 20", " until 20", " carc ", " rarc ", "at the same site",
          " month after", "claim has prior_auth", "has place_of_service", "has site", "{site}")


def test_generator_covers_the_language():
    """Every condition kind, combinator, scope and message form turns up in the generated policies, and
    most of them check (a policy the checker refuses is skipped by the differential test)."""
    seen = set()
    checked = []

    @bounded(300)
    @given(texts=policy_texts())
    def collect(texts):
        text = "\n".join(texts.values())
        seen.update(piece for piece in PIECES if piece in text)
        try:
            PolicySet.from_texts(texts)
            checked.append(True)
        except PolicyError:
            checked.append(False)

    collect()
    assert sorted(set(PIECES) - seen) == []
    assert sum(checked) >= 0.9 * len(checked)


# ---- the interpreter against the contract --------------------------------------------------------


def _runner():
    path = CONFORMANCE / "run.py"
    if not path.exists():  # pragma: no cover - the shared folder is absent outside this workspace
        pytest.skip("no conformance runner")
    spec = importlib.util.spec_from_file_location("conformance_run", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


SCENARIOS = sorted(p.name[: -len(".expected.json")] for p in (CONFORMANCE / "scenarios").glob("*.expected.json"))


@pytest.mark.parametrize("name", SCENARIOS)
def test_interpreter_passes_the_conformance_scenarios(name, shipped_policies):
    run = _runner()
    expected = json.loads((CONFORMANCE / "scenarios" / f"{name}.expected.json").read_text())
    claims_path, history_path = run.scenario_files(str(CONFORMANCE / "scenarios"), name)
    data = Path(claims_path).read_bytes()
    history = Path(history_path).read_bytes() if history_path else b""
    objs = interpret(models_by_payer(shipped_policies.policies), read_claims(data, claims_path),
                     read_history(history, "history.jsonl"))
    rc = 1 if any("error" in o for o in objs) else 0
    assert run.compare_scenario(expected, objs, rc, claims_path) is None
    assert shipped_policies.check(data, history) == objs


def test_months_before_follows_the_contract():
    assert months_before(date(2025, 3, 15), 12) == date(2024, 3, 15)
    assert months_before(date(2024, 2, 29), 12) == date(2023, 2, 28)
    assert months_before(date(2024, 3, 31), 1) == date(2024, 2, 29)
    assert months_before(date(2025, 1, 31), 2) == date(2024, 11, 30)
    assert months_before(date(2025, 1, 15), 13) == date(2023, 12, 15)


def _window(unit, size=None):
    return ir.Window(unit, size)


def test_windows_follow_the_contract():
    twelve = _window("months", 12)
    # p lies within 12 months of d when p > d minus 12 months, and p < d (same day is not "earlier")
    assert not in_window(date(2024, 3, 15), date(2025, 3, 15), twelve)
    assert in_window(date(2024, 3, 16), date(2025, 3, 15), twelve)
    assert not in_window(date(2023, 2, 28), date(2024, 2, 29), twelve)
    assert in_window(date(2023, 3, 1), date(2024, 2, 29), twelve)
    assert not in_window(date(2025, 3, 15), date(2025, 3, 15), twelve)
    assert window_first_day(date(2024, 2, 29), twelve) == date(2023, 3, 1)
    seven = _window("days", 7)
    assert in_window(date(2025, 3, 2), date(2025, 3, 8), seven)
    assert not in_window(date(2025, 3, 1), date(2025, 3, 8), seven)
    year = _window("calendar year")
    assert not in_window(date(2024, 12, 31), date(2025, 1, 1), year)
    assert in_window(date(2025, 1, 1), date(2025, 12, 31), year)
    assert [ordinal_words(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111, 112)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th", "112th"]


def _med(cid, day, **kw):
    return claim(cid, tpi(date=day), **kw)


def test_medicare_window_edges_on_leap_day(shipped_policies):
    """Three sessions from 2023-03-01 on: a fourth on 2024-02-29 still sees all three (the window starts
    after 2023-02-28); one on 2024-03-01 sees two (2023-03-01 is exactly 12 months back)."""
    hist = [_med("H1", "2023-03-01"), _med("H2", "2023-06-01"), _med("H3", "2023-09-01")]
    for day, decision in (("2024-02-29", "deny"), ("2024-03-01", "approve")):
        compiled, interpreted = compiled_and_interpreted(shipped_policies, to_jsonl([_med("C1", day)]), to_jsonl(hist))
        assert compiled == interpreted
        assert interpreted[0]["decision"] == decision
    _, interpreted = compiled_and_interpreted(shipped_policies, to_jsonl([_med("C1", "2024-02-29")]), to_jsonl(hist))
    msg = interpreted[0]["lines"][0]["reasons"][0]["message"]
    # next eligible: the day the 2023-03-01 session leaves the window
    assert "sessions on 2023-03-01, 2023-06-01, 2023-09-01; next eligible 2024-03-01" in msg


def test_aetna_spacing_and_calendar_year(shipped_policies):
    day = lambda cid, d: claim(cid, tpi(date=d), payer="aetna")  # noqa: E731
    claims = [day("C1", "2024-03-01"), day("C2", "2024-05-01"), day("C3", "2024-07-01"), day("C4", "2024-09-01"),
              day("C5", "2024-12-25"), day("C6", "2025-01-01"), day("C7", "2025-01-08")]
    compiled, interpreted = compiled_and_interpreted(shipped_policies, to_jsonl(claims))
    assert compiled == interpreted
    got = {o["claim_id"]: [r["rule"] for r in o["lines"][0]["reasons"]] for o in interpreted}
    # C5 is the 5th session of 2024; C6 is 7 days after C4? no: the last session counted for C6 is
    # C4 (C5 was denied), so only the new year's count applies; C7 is exactly 7 days after C6.
    assert got == {"C1": [], "C2": [], "C3": [], "C4": [], "C5": ["frequency"], "C6": [], "C7": []}


# ---- disagreements found, fixed: regression tests ----------------------------------------------

SAME_DAY_POLICY = (
    'policy p "P"\n  payer alpha\n  codes TPI = 20552, 20553\n  stems BAD = "prp"\n'
    '  rule r: deny line when code in TPI and same day as earlier TPI message "{other_claim} line {other_line}"\n'
    '  rule c: deny claim when has substance in BAD message "{matched} on line {line}"\n')


def test_history_lines_are_taken_in_service_order():
    """Found by this file: the engine took a history claim's lines in the order listed, so the line
    `{other_line}` named depended on the file's layout. Section 3's order (date of service, input
    order, line number) now holds for history lines as for input lines."""
    policies = PolicySet.from_texts({"p.policy": SAME_DAY_POLICY})
    history = [{"claim_id": "H1", "patient_id": "P1", "payer": "alpha", "lines": [
        {"line": 2, "date": "2025-03-01", "code": "20552"}, {"line": 1, "date": "2025-03-01", "code": "20553"}]}]
    claims = [{"claim_id": "C1", "patient_id": "P1", "payer": "alpha", "lines": [
        {"line": 1, "date": "2025-03-01", "code": "20552"}]}]
    compiled, interpreted = compiled_and_interpreted(policies, to_jsonl(claims), to_jsonl(history))
    assert interpreted[0]["lines"][0]["reasons"][0]["message"] == "H1 line 1"
    assert compiled == interpreted


def test_a_claim_rule_quotes_its_first_line_in_service_order():
    """Found by this file: which line's facts a claim rule's message quotes when several lines meet it.
    Both take the first in service order (date of service, then line number), not the order listed."""
    policies = PolicySet.from_texts({"p.policy": SAME_DAY_POLICY})
    claims = [{"claim_id": "C1", "patient_id": "P1", "payer": "alpha", "lines": [
        {"line": 3, "date": "2025-03-02", "code": "99213", "substances": ["PRP"]},
        {"line": 2, "date": "2025-03-01", "code": "99213", "substances": ["prp-gel"]},
        {"line": 1, "date": "2025-03-02", "code": "99213", "substances": ["Prp"]}]}]
    compiled, interpreted = compiled_and_interpreted(policies, to_jsonl(claims))
    assert {r["message"] for ln in interpreted[0]["lines"] for r in ln["reasons"]} == {"prp-gel on line 2"}
    assert compiled == interpreted
