"""The lowered IR, the one printer and the one writer of generated code.

- lowering resolves every name once: a condition holds the set it tests and the schema field it reads;
- `printer.quote` is the inverse of the parser's string decoding, for every string;
- the printer, the formatter, `payrule why` and `payrule explain` print a condition the same way;
- generated modules stay under 100 columns and write no `bool(...)`, `''.join` or f-string.
"""
from __future__ import annotations

import ast as pyast
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payrule import PolicySet
from payrule.codegen.pycode import WIDTH
from payrule.lang import ir
from payrule.lang.lower import lower_cond
from payrule.lang.parser import decode_string, parse_text
from payrule.lang.printer import print_cond, quote
from payrule.loader import load_workspace
from payrule.tools.formatter import format_text

from conftest import POLICIES, claim


@pytest.fixture(scope="module")
def ws():
    w = load_workspace(dirs=[POLICIES])
    assert not w.errors
    return w


def test_every_set_reference_is_the_policys_set(ws):
    for policy in ws.policies.values():
        for rule in policy.rules:
            for c in ir.walk(rule.cond):
                s = getattr(c, "set", None)
                if s is not None:
                    assert s is policy.set(s.name), (policy.id, rule.id)


def test_fields_are_resolved_to_schema_names(ws):
    seen = set()
    for policy in ws.policies.values():
        for rule in policy.rules:
            for c in ir.rule_walk(rule):
                for attr in ("field", "sharing", "lacking", "by"):
                    f = getattr(c, attr, None)
                    if f is not None:
                        seen.add((f.word, f.name))
                        assert not f.extra, f  # the shipped policies read only schema fields
    assert ("muscle", "muscles") in seen and ("modifier", "modifiers") in seen
    assert ("prior_auth", "prior_auth") in seen and ("site", "site") in seen
    assert all(name in ("modifiers", "diagnoses", "muscles", "substances", "units", "site", "prior_auth")
               for _, name in seen)


def test_guards_and_indexes_are_computed_once(ws):
    medicare = ws.policies["medicare-tpi"]
    rules = {r.id: r for r in medicare.rules}
    assert rules["frequency"].guard is medicare.set("TPI")
    assert rules["muscles-for-20552"].guard == "20552"
    assert rules["frequency"].dynamic and not rules["units"].dynamic
    assert [s.name for s in medicare.session_sets] == ["TPI"]
    assert [s.name for s in medicare.earlier_sets] == ["TPI"]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_quote_is_the_inverse_of_the_parsers_decoding(text):
    quoted = quote(text)
    assert quoted.startswith('"') and quoted.endswith('"')
    assert "\n" not in quoted and "\r" not in quoted
    assert decode_string(quoted[1:-1]) == text


def test_printer_and_formatter_agree_on_every_shipped_condition(ws):
    for name, source in ws.sources.items():
        formatted = format_text(source.text, name)
        policy = parse_text(source.text, name)
        for rule in policy.rules:
            printed = print_cond(lower_cond(rule.cond, source=source))
            # the formatter may break a long condition over lines; joined, it is the printer's text
            assert printed in " ".join(formatted.split()), (name, rule.id.value)


HOSTILE = 'policy odd "Odd"\n  payer odd\n  codes TPI = 20552\n' \
          '  rule r: deny line when code in TPI and has substance "a\\nb\\t\\"c\\"" message "m"\n'


def test_why_prints_a_string_escaped_as_the_formatter_does(cli, tmp_path):
    (tmp_path / "odd.policy").write_text(HOSTILE)
    claims = tmp_path / "c.jsonl"
    claims.write_text(json.dumps(claim("C1", {"line": 1, "date": "2025-01-02", "code": "20552"}, payer="odd")) + "\n")
    res = cli("why", str(claims), "--claim", "C1", "--policies", str(tmp_path))
    assert res.code == 0, res.err
    assert 'has substance "a\\nb\\t\\"c\\""' in res.out
    assert 'has substance "a\\nb\\t\\"c\\""' in format_text(HOSTILE)
    assert not any(line.rstrip().endswith('"a') for line in res.out.splitlines())


def test_explain_quotes_strings_with_the_printer(cli, tmp_path):
    (tmp_path / "odd.policy").write_text(HOSTILE)
    res = cli("explain", str(tmp_path / "odd.policy"), "--policies", str(tmp_path))
    assert res.code == 0, res.err
    assert '"a\\nb\\t\\"c\\""' in res.out


def _generated():
    shipped = PolicySet.load([POLICIES])
    return {pid: shipped.source(pid) for pid in shipped.policies}


@pytest.mark.parametrize("pid", ["common-tpi", "medicare-tpi", "aetna-tpi"])
def test_generated_code_is_plain_python(pid):
    text = _generated()[pid]
    long = [ln for ln in text.splitlines() if len(ln) > WIDTH]
    assert not long, long[:3]
    tree = pyast.parse(text)
    for node in pyast.walk(tree):
        assert not isinstance(node, pyast.JoinedStr), "no f-strings in generated code"
        if isinstance(node, pyast.Call) and isinstance(node.func, pyast.Name):
            assert node.func.id != "bool", "no bool(...) in generated code"
        if isinstance(node, pyast.Call) and isinstance(node.func, pyast.Attribute):
            assert node.func.attr != "join" or not isinstance(node.func.value, pyast.Constant)
    rules = [n for n in tree.body if isinstance(n, pyast.Assign) and n.targets[0].id == "RULES"]
    for call in rules[0].value.elts:
        keys = {k.arg for k in call.keywords}
        assert not call.args and {"policy", "id", "outcome", "scope", "source", "fn", "guard", "carc"} <= keys <= {
            "policy", "id", "outcome", "scope", "source", "fn", "guard", "carc", "rarc"}


def test_each_source_text_is_written_once_per_module():
    text = _generated()["medicare-tpi"]
    shipped = PolicySet.load([POLICIES])
    for sid, source_text, _ in shipped.policies["medicare-tpi"].sources:
        first_words = source_text.split(":")[0][:40]
        assert text.count(first_words) == 1, sid
