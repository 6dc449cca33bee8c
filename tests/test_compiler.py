"""The compiler: golden files of generated code, what generated modules import, and the self-check.

Regenerate the golden files with `pytest tests/test_compiler.py --update-golden` and review the diff as code.
"""
from __future__ import annotations

import ast as pyast
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payrule.claims.readers import read_claims
from payrule.codegen.compiler import compile_model
from payrule.loader import Checker, load_module, load_workspace
from payrule.run.engine import decide, decision_json

from conftest import CONFORMANCE, POLICIES, ROOT, claim, tpi

GOLDEN = Path(__file__).parent / "golden"


def _golden_models():
    ws = load_workspace(dirs=[POLICIES, GOLDEN])
    assert not ws.errors, ws.errors
    return ws


CASES = {
    "common_tpi": "common-tpi",
    "medicare_tpi": "medicare-tpi",
    "aetna_tpi": "aetna-tpi",
    "constructs": "golden-constructs",
}


@pytest.mark.parametrize("stem", sorted(CASES))
def test_golden(stem, request):
    ws = _golden_models()
    text = compile_model(ws.models[CASES[stem]])
    path = GOLDEN / f"{stem}.py"
    if request.config.getoption("--update-golden"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}: run pytest --update-golden"
    assert text == path.read_text(encoding="utf-8"), f"generated code for {stem} changed: review, then --update-golden"


@pytest.mark.parametrize("stem", sorted(CASES))
def test_generated_modules_import_only_the_runtime(stem):
    tree = pyast.parse((GOLDEN / f"{stem}.py").read_text(encoding="utf-8"))
    imports = []
    for node in pyast.walk(tree):
        if isinstance(node, pyast.Import):
            imports += [a.name for a in node.names]
        elif isinstance(node, pyast.ImportFrom):
            imports.append(f"{node.module}:{','.join(a.name for a in node.names)}")
    assert imports == ["payrule:runtime"]
    calls = {n.func.id for n in pyast.walk(tree) if isinstance(n, pyast.Call) and isinstance(n.func, pyast.Name)}
    assert calls <= {"str", "len", "bool", "frozenset"}, calls  # no eval/exec/getattr/__import__
    assert "JoinedStr" not in {type(n).__name__ for n in pyast.walk(tree)}  # no f-strings around policy text


def test_one_function_per_rule_with_its_source_in_the_docstring():
    ws = _golden_models()
    model = ws.models["medicare-tpi"]
    tree = pyast.parse(compile_model(model))
    funcs = [n for n in tree.body if isinstance(n, pyast.FunctionDef) and n.name.startswith("rule_")]
    assert len(funcs) == len(model.rules)
    for fn, rule in zip(funcs, model.rules):
        doc = pyast.get_docstring(fn)
        assert rule.source in doc and f"rule {rule.id}:" in doc


def test_golden_module_runs_its_cases():
    """The committed golden module decides claims the same as a freshly compiled one."""
    module = load_module((GOLDEN / "constructs.py").read_text(encoding="utf-8"), "golden-constructs")
    checkers = {"golden": Checker(module)}
    claims = [
        claim("A", tpi(1, "2025-01-01", "20552", muscles=("a", "b")), payer="golden", diagnoses=("G44.2",)),
        claim("A2", tpi(1, "2025-01-20", "20552", muscles=("a", "b", "c")), payer="golden", patient="P2"),
        claim("B", tpi(1, "2025-01-03", "20553", muscles=("left  soleus",)), payer="golden", diagnoses=("Z00",)),
        claim("C", tpi(1, "2025-01-03", "20560", muscles=("LEFT SOLEUS",)), payer="golden"),
        claim("D", tpi(1, "2025-02-01", "20553", substances=("prp",)), payer="golden"),
        claim("E", tpi(1, "2024-06-03", "20552", substances=("Saline", "ketorolac"), site="Neck"), payer="golden",
              patient="P3"),
        claim("F", tpi(1, "2024-06-03", "20552", substances=("0.9% Sodium Chloride",)), payer="golden", patient="P4"),
    ]
    import json

    data = "\n".join(json.dumps(c) for c in claims).encode()
    got = [decision_json(d) for d in decide(checkers, read_claims(data))]
    rules = {(o["claim_id"], ln["line"]): [r["rule"] for r in ln["reasons"]] for o in got for ln in o["lines"]}
    assert rules[("A", 1)] == []  # 2 muscles, not in MUSCLES, first session
    assert rules[("A2", 1)] == ["code-is"]
    assert rules[("B", 1)] == ["has-in", "spacing"]  # 2 days after A, which was allowed
    # no 59 modifier; shares "left soleus" with B; no earlier PROC line lacking muscles that day
    assert rules[("C", 1)] == ["code-not-in", "same-day", "same-day-lacking"]
    assert rules[("D", 1)] == ["claim-wide", "outside-union"]  # prp is neither an agent nor a diluent
    assert rules[("E", 1)] == ["outside-union"] and rules[("F", 1)] == ["every-in"]
    reason = {o["claim_id"]: o["lines"][0]["reasons"][0] for o in got if o["claim_id"] in ("E", "F")}
    assert (reason["E"]["message"], reason["E"]["carc"], reason["E"]["rarc"]) == ("ketorolac on neck", "96", "N130")
    assert reason["F"]["message"] == "0.9% Sodium Chloride alone, 2024-04-01 to 2025-03-31" and "rarc" not in reason["F"]
    msgs = {ln["line"]: ln["reasons"] for o in got if o["claim_id"] == "C" for ln in o["lines"]}
    assert msgs[1][1]["message"] == "left soleus also on line 1 of B (20553, 2025-01-03)"
    d = next(o for o in got if o["claim_id"] == "D")["lines"][0]["reasons"][0]["message"]
    assert d == "prp in claim D of P1 (golden), golden-constructs/claim-wide, line 1, units 1"


def test_generated_module_runs_without_payrule_compiler_modules(tmp_path):
    """A generated module needs the runtime only: run it in a fresh interpreter that forbids the rest."""
    ws = _golden_models()
    (tmp_path / "medicare_tpi.py").write_text(compile_model(ws.models["medicare-tpi"]), encoding="utf-8")
    script = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        inside = name == 'payrule.runtime' or name.startswith('payrule.runtime.')\n"
        "        if name.startswith(('payrule.', 'lark', 'jinja2', 'msgspec')) and not inside:\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import payrule.runtime\n"
        "import medicare_tpi\n"
        "print(len(medicare_tpi.RULES))\n"
    )
    import subprocess

    env = {"PYTHONPATH": f"{tmp_path}:{ROOT / 'src'}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(len(ws.models["medicare-tpi"].rules))


def test_fast_renderer_matches_json_dumps(shipped):
    """`payrule check` writes JSON by hand for speed; it must equal json.dumps of the contract objects."""
    import json

    from payrule.claims.readers import read_claims
    from payrule.run.engine import decide, decision_json, render_jsonl

    lines = [l for l in (ROOT / "examples" / "claims.jsonl").read_bytes().split(b"\n") if l.strip()] * 4
    for path in sorted((CONFORMANCE / "scenarios").glob("*.jsonl")):  # with the contract's examples, where present
        lines += [l for l in path.read_bytes().split(b"\n") if l.strip() and b"history" not in path.name.encode()]
    lines.append(json.dumps(claim("Q\"\\\u2028é", tpi(substances=["PRP \"x\" \\ \u2028"]), payer="aetna")).encode())
    decided = decide(shipped.checkers, read_claims(b"\n".join(lines), "all.jsonl"))
    fast = list(render_jsonl(decided))
    slow = [json.dumps(decision_json(d), ensure_ascii=False) + "\n" for d in decided]
    assert len(fast) > 50
    assert fast == slow


def test_a_docstring_literal_holds_exactly_its_text_whatever_the_text():
    """py_doc writes rule text (policy text: messages, sources) into generated modules as docstrings:
    for any text, the literal is one string whose value is that text (no quote ends it early, no escape
    changes it), and text with nothing to escape is written as it is."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from payrule.codegen.pycode import py_doc

    @settings(max_examples=3000, deadline=None)
    @given(st.text(alphabet=st.sampled_from('ab "\\\n\r\t\x00\x7f\xa0\u2028\u00e9\U0001f600') | st.characters(), max_size=40))
    def round_trip(text):
        lit = str(py_doc(text))
        tree = pyast.parse(lit, mode="eval")
        assert isinstance(tree.body, pyast.Constant) and tree.body.value == text
        if "\\" not in text and '"' not in text and text.replace("\n", "").isprintable():
            assert lit == f'"""{text}"""'

    round_trip()


def _one_by_one(checkers: dict) -> dict:
    """The same checkers with their modules' fused plans left out: every line decided rule by rule."""
    out = {}
    for name, ch in checkers.items():
        if isinstance(ch, Checker):
            plain = Checker(ch.module)
            plain._fused = {}
            out[name] = plain
        else:
            out[name] = ch
    return out


def test_fused_plans_decide_as_the_rules_one_by_one(shipped):
    """A module's PLANS fuse the line rules of a code into one function; deciding with them gives the
    same output, reason for reason, as calling each rule's own function in turn."""
    import json

    from payrule.run.engine import render_jsonl

    from conftest import generated_claims

    ws = _golden_models()
    golden = Checker(load_module(compile_model(ws.models["golden-constructs"]), "golden-constructs"))
    assert shipped.checkers["medicare"].module.PLANS and golden.module.PLANS
    objs = generated_claims(3000, 11)
    for o in objs[::3]:  # the golden policy's payer too, so its constructs see the same claims
        o["payer"] = "golden"
    data = "\n".join(json.dumps(o) for o in objs).encode()
    fused = {**shipped.checkers, "golden": golden}
    plain = _one_by_one(fused)
    got = list(render_jsonl(decide(fused, read_claims(data, "c.jsonl"))))
    want = list(render_jsonl(decide(plain, read_claims(data, "c.jsonl"))))
    assert got == want
    fired = sum('"reasons": []' not in line for line in got)
    assert fired > len(got) // 4, "the claims exercise the rules"
    used = {ch.plan(code)[0].__name__ for ch in fused.values() if isinstance(ch, Checker)
            for code in ("20552", "20553", "20560")}
    assert any(name.startswith("plan_") for name in used)


def test_plans_stop_at_their_bound_and_the_rules_still_decide(monkeypatch, shipped):
    """Plans repeat a rule in every plan whose codes it admits; past MAX_PLAN_BLOCKS rule blocks in all
    (a policy of thousands of rules) a module has none, and decides rule by rule, the same."""
    import json

    from payrule.codegen import compiler
    from payrule.codegen.emit import plan_signatures
    from payrule.lang.lower import lower_policy

    ws = _golden_models()
    model = ws.models["golden-constructs"]
    rules = list(lower_policy(model).rules)
    sigs = plan_signatures(rules)
    assert sigs == sorted(set(sigs)) and all(len(s) > 1 for s in sigs)
    assert all(rules[i].scope == "line" for s in sigs for i in s)
    blocks = sum(map(len, sigs))
    with_plans = Checker(load_module(compile_model(model), "golden-constructs"))
    monkeypatch.setattr(compiler, "MAX_PLAN_BLOCKS", blocks - 1)
    without = Checker(load_module(compile_model(model), "golden-constructs"))
    assert len(with_plans.module.PLANS) == len(sigs) and without.module.PLANS == {}
    data = "\n".join(json.dumps(claim(f"C{n}", tpi(1, f"2025-01-{n + 1:02d}", code, muscles=("a", "b", "c")),
                                       payer="golden", patient=f"P{n % 3}"))
                     for n, code in enumerate(("20552", "20553", "20560", "20552", "20553") * 4)).encode()
    a = [decision_json(d) for d in decide({"golden": with_plans}, read_claims(data))]
    b = [decision_json(d) for d in decide({"golden": without}, read_claims(data))]
    assert a == b and any(ln["reasons"] for o in a for ln in o["lines"])


def _brute_signatures(rules, limit):
    """plan_signatures the slow way: every code against every rule's guard, as the runtime asks."""
    from payrule.runtime.schema import in_code_range

    def admits(guard, code):
        if guard is None:
            return True
        if isinstance(guard, str):
            return code == guard
        return code in guard.values or any(in_code_range(code, lo, hi) for lo, hi in guard.ranges)

    codes = {"\x00"}
    for r in rules:
        g = r.guard
        if isinstance(g, str):
            codes.add(g)
        elif g is not None:
            codes.update(g.values)
            codes.update(c for lo_hi in g.ranges for c in lo_hi)
    sigs = {tuple(i for i, r in enumerate(rules) if r.scope == "line" and admits(r.guard, c)) for c in codes}
    sigs = sorted(s for s in sigs if len(s) > 1)
    return sigs if sum(map(len, sigs)) <= limit else []


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(spec=st.lists(st.tuples(st.sampled_from(["line", "claim"]),
                               st.one_of(st.none(), st.sampled_from(["20552", "20553", "99213", "J3301"]),
                                         st.tuples(st.lists(st.sampled_from(["20552", "20553", "20560", "99213"]),
                                                            max_size=3, unique=True),
                                                   st.lists(st.sampled_from([("99202", "99215"), ("20550", "20553"),
                                                                             ("J0000", "J9999")]),
                                                            max_size=2, unique=True)))),
                     max_size=12),
       limit=st.sampled_from([3, 20, 2000]))
def test_plan_signatures_are_what_every_code_against_every_guard_gives(spec, limit):
    from types import SimpleNamespace

    from payrule.codegen.emit import plan_signatures

    rules = []
    for scope, g in spec:
        if isinstance(g, tuple):
            g = SimpleNamespace(values=tuple(sorted(g[0])), ranges=tuple(g[1]))
        rules.append(SimpleNamespace(scope=scope, guard=g))
    assert plan_signatures(rules, limit) == _brute_signatures(rules, limit)


def test_plan_signatures_do_not_try_every_code_against_every_rule(monkeypatch):
    """3,000 rules each on a code of its own: each code finds its rule by index (no 9 million tests)."""
    from types import SimpleNamespace

    from payrule.codegen import emit

    calls = []
    real = emit.in_code_range
    monkeypatch.setattr(emit, "in_code_range", lambda *a: calls.append(a) or real(*a))
    rules = [SimpleNamespace(scope="line", guard=f"{10000 + i}") for i in range(3000)]
    rules.append(SimpleNamespace(scope="line", guard=None))
    rules.append(SimpleNamespace(scope="line", guard=SimpleNamespace(values=(), ranges=(("10000", "10009"),))))
    sigs = emit.plan_signatures(rules, 10**6)
    assert len(sigs) == 3000 and (0, 3000, 3001) in sigs and (2999, 3000) in sigs
    assert len(calls) <= 3003  # one range rule tried against each code, and nothing else
    assert emit.plan_signatures(rules, 2000) == []
