"""The parser: every construct to its AST (spans ignored), positions, and a property test that any
AST printed as text parses back to itself."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payrule.lang import nodes
from payrule.lang.diagnostics import DiagnosticError
from payrule.lang.grammar import grammar_path, parser
from payrule.lang.parser import decode_string, parse_text

I, N = nodes.Ident, nodes.Number


def V(text, quoted=False):
    return nodes.Value(text, quoted)


def rule_cond(text: str) -> nodes.Cond:
    pol = parse_text(f'policy p "t"\n rule r: deny line when {text}\n')
    return pol.rules[0].cond


CONDITIONS = [
    ("code in TPI", nodes.CodeIn(I("TPI"))),
    ("code not in TPI", nodes.CodeIn(I("TPI"), True)),
    ("code is 20552", nodes.CodeIs(V("20552"))),
    ("code is j3301", nodes.CodeIs(V("j3301"))),
    ("has muscles", nodes.Has(I("muscles"))),
    ("lacks substances", nodes.Has(I("substances"), True)),
    ("has modifier 25", nodes.Has(I("modifier"), False, V("25"))),
    ("lacks modifier LT", nodes.Has(I("modifier"), True, V("LT"))),
    ('has muscle "left soleus"', nodes.Has(I("muscle"), False, V("left soleus", True))),
    ("has diagnosis in COVERED", nodes.Has(I("diagnosis"), False, None, I("COVERED"))),
    ("lacks diagnosis in COVERED", nodes.Has(I("diagnosis"), True, None, I("COVERED"))),
    ("units > 1", nodes.Compare(I("units"), ">", N(1))),
    ("units != 1", nodes.Compare(I("units"), "!=", N(1))),
    ("distinct muscles >= 3", nodes.Compare(I("muscles"), ">=", N(3), True)),
    ("same day as TPI", nodes.SameDay(I("TPI"))),
    ("same day as earlier TPI", nodes.SameDay(I("TPI"), True)),
    ("same day as TPI sharing a muscle", nodes.SameDay(I("TPI"), False, I("muscle"))),
    ("same day as TPI lacking muscles", nodes.SameDay(I("TPI"), False, None, I("muscles"))),
    ("more than 3 TPI sessions within 12 months", nodes.SessionLimit(N(3), I("TPI"), nodes.Window("months", N(12)))),
    ("more than 1 TPI sessions within 1 month", nodes.SessionLimit(N(1), I("TPI"), nodes.Window("months", N(1)))),
    ("more than 2 X sessions within 90 days", nodes.SessionLimit(N(2), I("X"), nodes.Window("days", N(90)))),
    ("more than 4 TPI sessions per calendar year", nodes.SessionLimit(N(4), I("TPI"), nodes.Window("calendar year", None))),
    ("less than 7 days after the last TPI session", nodes.Spacing(N(7), I("TPI"))),
    ("not has muscles", nodes.Not(nodes.Has(I("muscles")))),
    ("code in A and code in B", nodes.And((nodes.CodeIn(I("A")), nodes.CodeIn(I("B"))))),
    ("code in A or code in B and has muscles",
     nodes.Or((nodes.CodeIn(I("A")), nodes.And((nodes.CodeIn(I("B")), nodes.Has(I("muscles"))))))),
    ("(code in A or code in B) and has muscles",
     nodes.And((nodes.Or((nodes.CodeIn(I("A")), nodes.CodeIn(I("B")))), nodes.Has(I("muscles"))))),
    ("not not has muscles", nodes.Not(nodes.Not(nodes.Has(I("muscles"))))),
]


@pytest.mark.parametrize("text,expected", CONDITIONS, ids=[c[0] for c in CONDITIONS])
def test_condition(text, expected):
    assert rule_cond(text) == expected


def test_statements_and_policy_header():
    pol = parse_text(
        'policy medicare-tpi "Medicare: TPI"\n'
        "  payer medicare\n"
        "  include common-tpi\n"
        '  source NORIDIAN "Noridian (2024)"\n'
        "  codes ANESTHESIA = 00100..01999, 20552\n"
        "  diagnoses DX = M79.1, G44.2\n"
        '  stems BAD = "platelet", PRP\n'
        '  names M = "left soleus"\n'
        '  rule frequency: review claim when has muscles message "hi {code}" per NORIDIAN\n'
    )
    assert pol.id == I("medicare-tpi") and pol.title.value == "Medicare: TPI"
    assert pol.statements == (
        nodes.Payer(I("medicare")),
        nodes.Include(I("common-tpi")),
        nodes.Source(I("NORIDIAN"), nodes.Text("Noridian (2024)", "Noridian (2024)")),
        nodes.SetDecl("codes", I("ANESTHESIA"), (nodes.Range(V("00100"), V("01999")), V("20552"))),
        nodes.SetDecl("diagnoses", I("DX"), (V("M79.1"), V("G44.2"))),
        nodes.SetDecl("stems", I("BAD"), (V("platelet", True), V("PRP"))),
        nodes.SetDecl("names", I("M"), (V("left soleus", True),)),
        nodes.Rule(I("frequency"), "review", "claim", nodes.Has(I("muscles")),
                 nodes.Text("hi {code}", "hi {code}"), I("NORIDIAN")),
    )
    assert pol.payer == nodes.Payer(I("medicare"))


def test_quoted_payer_and_layout_freedom():
    a = parse_text('policy p "t" payer "Blue Cross" rule r: deny line when units > 1')
    b = parse_text('policy p\n"t"\n\n  payer   "Blue Cross"   # comment\n rule\n r\n :\n deny line\n when units\n >\n 1\n')
    assert a == b
    assert a.payer.name.value == "Blue Cross"
    assert [c.text for c in b.comments] == ["# comment"]


def test_spans_point_at_the_source():
    pol = parse_text('policy p "t"\n  rule freq: deny line when code in TPI\n', "x.policy")
    rule = pol.rules[0]
    assert (rule.span.path, rule.span.line, rule.span.col) == ("x.policy", 2, 3)
    assert (rule.id.span.line, rule.id.span.col, rule.id.span.end_col) == (2, 8, 12)
    assert (rule.cond.set.span.line, rule.cond.set.span.col) == (2, 37)


def test_comment_inside_string_is_not_a_comment():
    pol = parse_text('policy p "a # b" # real\n')
    assert pol.title.value == "a # b"
    assert [c.text for c in pol.comments] == ["# real"]


@pytest.mark.parametrize("raw,value", [
    (r"plain", "plain"), (r"a\"b", 'a"b'), (r"back\\slash", "back\\slash"), (r"n\nl", "n\nl"),
    (r"t\tt", "t\tt"), (r"\u00e9", "é"), (r"{{x}}", "{{x}}"),
])
def test_string_escapes(raw, value):
    assert decode_string(raw) == value
    assert parse_text(f'policy p "{raw}"').title.value == value


@pytest.mark.parametrize("text,line,col,message", [
    ('policy p "t"\n rul a: deny line when units > 1', 2, 2, "unexpected `rul`"),
    ('policy p "t"\n rule a deny line when units > 1', 2, 9, "unexpected `deny`"),
    ('policy p "t"\n rule a: deny line when\n', 2, 24, "unexpected end of file"),
    ('policy p "t"\n rule a: deny line when units > 1 message "open\n', 2, 43, "unclosed string"),
    ("policy p 't'", 1, 10, "strings use double quotes"),
    ('policy p "t"\n rule a: deny line when units > 1 message "\\q"', 2, 44, "unknown escape `\\q` in a string"),
    ('policy p "t"\n rule a: deny line when units >> 1', 2, 32, "unexpected `>`"),
    ('policy p "t"\n rule a: deny line when more than 3 TPI sessions within 12 weeks', 2, 60, "unexpected `weeks`"),
])
def test_syntax_errors_are_located(text, line, col, message):
    with pytest.raises(DiagnosticError) as info:
        parse_text(text, "bad.policy")
    (d,) = info.value.diagnostics
    assert (d.span.path, d.span.line, d.span.col, d.message) == ("bad.policy", line, col, message)
    assert d.help


def test_grammar_file_is_the_one_loaded_and_has_no_anonymous_terminals():
    assert grammar_path().name == "policy.lark"
    names = {t.name for t in parser().terminals}
    assert not [n for n in names if n.startswith("__ANON")], names


# ---- property: print any AST, parse it back --------------------------------------------------

names = st.from_regex(r"[A-Z][A-Z0-9_]{0,6}", fullmatch=True)
rule_ids = st.from_regex(r"[a-z][a-z0-9]{0,5}(-[a-z0-9]{1,4}){0,2}", fullmatch=True)
KEYWORDS = set("""policy payer include source codes diagnoses stems names rule deny review line claim when message
per and or not in is code has lacks distinct same day as earlier sharing a lacking more less than sessions
session days after the last within months month calendar year""".split())
fields = st.sampled_from(["muscles", "muscle", "substances", "modifier", "diagnoses"])
nums = st.integers(0, 400).map(nodes.Number)
codes = st.from_regex(r"[0-9]{5}|[A-Z][0-9]{4}", fullmatch=True)
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=20)


def leaf():
    return st.one_of(
        st.builds(nodes.CodeIn, names.map(nodes.Ident), st.booleans()),
        st.builds(nodes.CodeIs, codes.map(lambda c: nodes.Value(c, False))),
        st.builds(nodes.Has, fields.map(nodes.Ident), st.booleans()),
        st.builds(lambda f, neg, v: nodes.Has(nodes.Ident(f), neg, nodes.Value(v, False)), st.just("modifier"), st.booleans(),
                  st.from_regex(r"[0-9A-Z]{2}", fullmatch=True).filter(lambda v: v.lower() not in KEYWORDS)),
        st.builds(lambda f, neg, s: nodes.Has(nodes.Ident(f), neg, None, nodes.Ident(s)), fields, st.booleans(), names),
        st.builds(nodes.Compare, st.just(nodes.Ident("units")), st.sampled_from([">", ">=", "<", "<=", "=", "!="]), nums),
        st.builds(nodes.Compare, fields.map(nodes.Ident), st.sampled_from([">", "<"]), nums, st.just(True)),
        st.builds(lambda s, e, q: nodes.SameDay(nodes.Ident(s), e, *q), names, st.booleans(),
                  st.one_of(st.just((None, None)), fields.map(lambda f: (nodes.Ident(f), None)), fields.map(lambda f: (None, nodes.Ident(f))))),
        st.builds(nodes.SessionLimit, nums, names.map(nodes.Ident),
                  st.one_of(st.builds(nodes.Window, st.sampled_from(["days", "months"]), nums), st.just(nodes.Window("calendar year", None)))),
        st.builds(nodes.Spacing, nums, names.map(nodes.Ident)),
    )


conds = st.recursive(leaf(), lambda inner: st.one_of(
    st.builds(nodes.Not, inner),
    st.lists(inner, min_size=2, max_size=3).map(lambda xs: nodes.And(tuple(xs))),
    st.lists(inner, min_size=2, max_size=3).map(lambda xs: nodes.Or(tuple(xs))),
), max_leaves=6)


def show(c: nodes.Cond) -> str:
    """A plain printer, parenthesising every compound (independent of payrule's formatter)."""
    match c:
        case nodes.And(items=xs):
            return " and ".join(f"({show(x)})" for x in xs)
        case nodes.Or(items=xs):
            return " or ".join(f"({show(x)})" for x in xs)
        case nodes.Not(item=x):
            return f"not ({show(x)})"
        case nodes.CodeIn(set=s, negated=n):
            return f"code {'not in' if n else 'in'} {s.value}"
        case nodes.CodeIs(code=v):
            return f"code is {v.text}"
        case nodes.Has(field=f, negated=n, value=v, set=s):
            tail = f" {v.text}" if v else (f" in {s.value}" if s else "")
            return f"{'lacks' if n else 'has'} {f.value}{tail}"
        case nodes.Compare(field=f, op=op, value=v, distinct=d):
            return f"{'distinct ' if d else ''}{f.value} {op} {v.value}"
        case nodes.SameDay(set=s, earlier=e, sharing=sh, lacking=la):
            q = f" sharing a {sh.value}" if sh else (f" lacking {la.value}" if la else "")
            return f"same day as {'earlier ' if e else ''}{s.value}{q}"
        case nodes.SessionLimit(count=n, set=s, window=w):
            win = "per calendar year" if w.size is None else f"within {w.size.value} {w.unit}"
            return f"more than {n.value} {s.value} sessions {win}"
        case nodes.Spacing(days=n, set=s):
            return f"less than {n.value} days after the last {s.value} session"
    raise AssertionError(c)


def escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(cond=conds, rid=rule_ids.filter(lambda r: r not in KEYWORDS), title=texts, message=st.one_of(st.none(), texts),
       action=st.sampled_from(["deny", "review"]), scope=st.sampled_from(["line", "claim"]))
def test_printed_ast_parses_back(cond, rid, title, message, action, scope):
    if any(isinstance(x, nodes.Ident) and x.value.lower() in KEYWORDS for x in _idents(cond)):
        return
    msg = f' message "{escape(message)}"' if message is not None else ""
    text = f'policy p "{escape(title)}"\n  rule {rid}: {action} {scope} when {show(cond)}{msg}\n'
    pol = parse_text(text)
    assert pol.title.value == title
    (rule,) = pol.rules
    assert (rule.id.value, rule.action, rule.scope) == (rid, action, scope)
    assert _flat(rule.cond) == _flat(cond)
    assert (rule.message.value if rule.message else None) == message


def _idents(c):
    import dataclasses

    for f in dataclasses.fields(c):
        v = getattr(c, f.name)
        if isinstance(v, nodes.Ident):
            yield v
        elif isinstance(v, tuple):
            for x in v:
                if dataclasses.is_dataclass(x):
                    yield from _idents(x)
        elif dataclasses.is_dataclass(v) and not isinstance(v, nodes.Number):
            yield from _idents(v)


def _flat(c):
    """Nested and/or of the same kind mean the same: compare them flattened."""
    match c:
        case nodes.And(items=xs):
            out = []
            for x in map(_flat, xs):
                out += list(x.items) if isinstance(x, nodes.And) else [x]
            return nodes.And(tuple(out))
        case nodes.Or(items=xs):
            out = []
            for x in map(_flat, xs):
                out += list(x.items) if isinstance(x, nodes.Or) else [x]
            return nodes.Or(tuple(out))
        case nodes.Not(item=x):
            return nodes.Not(_flat(x))
    return c
