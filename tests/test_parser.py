"""The parser: every construct to its AST (spans ignored), positions, and a property test that any
AST printed as text parses back to itself."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payrule import ast
from payrule.diagnostics import DiagnosticError
from payrule.grammar import grammar_path, parser
from payrule.parser import decode_string, parse_text

I, N = ast.Ident, ast.Number


def V(text, quoted=False):
    return ast.Value(text, quoted)


def rule_cond(text: str) -> ast.Cond:
    pol = parse_text(f'policy p "t"\n rule r: deny line when {text}\n')
    return pol.rules[0].cond


CONDITIONS = [
    ("code in TPI", ast.CodeIn(I("TPI"))),
    ("code not in TPI", ast.CodeIn(I("TPI"), True)),
    ("code is 20552", ast.CodeIs(V("20552"))),
    ("code is j3301", ast.CodeIs(V("j3301"))),
    ("has muscles", ast.Has(I("muscles"))),
    ("lacks substances", ast.Has(I("substances"), True)),
    ("has modifier 25", ast.Has(I("modifier"), False, V("25"))),
    ("lacks modifier LT", ast.Has(I("modifier"), True, V("LT"))),
    ('has muscle "left soleus"', ast.Has(I("muscle"), False, V("left soleus", True))),
    ("has diagnosis in COVERED", ast.Has(I("diagnosis"), False, None, I("COVERED"))),
    ("lacks diagnosis in COVERED", ast.Has(I("diagnosis"), True, None, I("COVERED"))),
    ("units > 1", ast.Compare(I("units"), ">", N(1))),
    ("units != 1", ast.Compare(I("units"), "!=", N(1))),
    ("distinct muscles >= 3", ast.Compare(I("muscles"), ">=", N(3), True)),
    ("same day as TPI", ast.SameDay(I("TPI"))),
    ("same day as earlier TPI", ast.SameDay(I("TPI"), True)),
    ("same day as TPI sharing a muscle", ast.SameDay(I("TPI"), False, I("muscle"))),
    ("same day as TPI lacking muscles", ast.SameDay(I("TPI"), False, None, I("muscles"))),
    ("more than 3 TPI sessions within 12 months", ast.SessionLimit(N(3), I("TPI"), ast.Window("months", N(12)))),
    ("more than 1 TPI sessions within 1 month", ast.SessionLimit(N(1), I("TPI"), ast.Window("months", N(1)))),
    ("more than 2 X sessions within 90 days", ast.SessionLimit(N(2), I("X"), ast.Window("days", N(90)))),
    ("more than 4 TPI sessions per calendar year", ast.SessionLimit(N(4), I("TPI"), ast.Window("calendar year", None))),
    ("less than 7 days after the last TPI session", ast.Spacing(N(7), I("TPI"))),
    ("not has muscles", ast.Not(ast.Has(I("muscles")))),
    ("code in A and code in B", ast.And((ast.CodeIn(I("A")), ast.CodeIn(I("B"))))),
    ("code in A or code in B and has muscles",
     ast.Or((ast.CodeIn(I("A")), ast.And((ast.CodeIn(I("B")), ast.Has(I("muscles"))))))),
    ("(code in A or code in B) and has muscles",
     ast.And((ast.Or((ast.CodeIn(I("A")), ast.CodeIn(I("B")))), ast.Has(I("muscles"))))),
    ("not not has muscles", ast.Not(ast.Not(ast.Has(I("muscles"))))),
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
        ast.Payer(I("medicare")),
        ast.Include(I("common-tpi")),
        ast.Source(I("NORIDIAN"), ast.Text("Noridian (2024)", "Noridian (2024)")),
        ast.SetDecl("codes", I("ANESTHESIA"), (ast.Range(V("00100"), V("01999")), V("20552"))),
        ast.SetDecl("diagnoses", I("DX"), (V("M79.1"), V("G44.2"))),
        ast.SetDecl("stems", I("BAD"), (V("platelet", True), V("PRP"))),
        ast.SetDecl("names", I("M"), (V("left soleus", True),)),
        ast.Rule(I("frequency"), "review", "claim", ast.Has(I("muscles")),
                 ast.Text("hi {code}", "hi {code}"), I("NORIDIAN")),
    )
    assert pol.payer == ast.Payer(I("medicare"))


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
nums = st.integers(0, 400).map(ast.Number)
codes = st.from_regex(r"[0-9]{5}|[A-Z][0-9]{4}", fullmatch=True)
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=20)


def leaf():
    return st.one_of(
        st.builds(ast.CodeIn, names.map(ast.Ident), st.booleans()),
        st.builds(ast.CodeIs, codes.map(lambda c: ast.Value(c, False))),
        st.builds(ast.Has, fields.map(ast.Ident), st.booleans()),
        st.builds(lambda f, neg, v: ast.Has(ast.Ident(f), neg, ast.Value(v, False)), st.just("modifier"), st.booleans(),
                  st.from_regex(r"[0-9A-Z]{2}", fullmatch=True).filter(lambda v: v.lower() not in KEYWORDS)),
        st.builds(lambda f, neg, s: ast.Has(ast.Ident(f), neg, None, ast.Ident(s)), fields, st.booleans(), names),
        st.builds(ast.Compare, st.just(ast.Ident("units")), st.sampled_from([">", ">=", "<", "<=", "=", "!="]), nums),
        st.builds(ast.Compare, fields.map(ast.Ident), st.sampled_from([">", "<"]), nums, st.just(True)),
        st.builds(lambda s, e, q: ast.SameDay(ast.Ident(s), e, *q), names, st.booleans(),
                  st.one_of(st.just((None, None)), fields.map(lambda f: (ast.Ident(f), None)), fields.map(lambda f: (None, ast.Ident(f))))),
        st.builds(ast.SessionLimit, nums, names.map(ast.Ident),
                  st.one_of(st.builds(ast.Window, st.sampled_from(["days", "months"]), nums), st.just(ast.Window("calendar year", None)))),
        st.builds(ast.Spacing, nums, names.map(ast.Ident)),
    )


conds = st.recursive(leaf(), lambda inner: st.one_of(
    st.builds(ast.Not, inner),
    st.lists(inner, min_size=2, max_size=3).map(lambda xs: ast.And(tuple(xs))),
    st.lists(inner, min_size=2, max_size=3).map(lambda xs: ast.Or(tuple(xs))),
), max_leaves=6)


def show(c: ast.Cond) -> str:
    """A plain printer, parenthesising every compound (independent of payrule's formatter)."""
    match c:
        case ast.And(items=xs):
            return " and ".join(f"({show(x)})" for x in xs)
        case ast.Or(items=xs):
            return " or ".join(f"({show(x)})" for x in xs)
        case ast.Not(item=x):
            return f"not ({show(x)})"
        case ast.CodeIn(set=s, negated=n):
            return f"code {'not in' if n else 'in'} {s.value}"
        case ast.CodeIs(code=v):
            return f"code is {v.text}"
        case ast.Has(field=f, negated=n, value=v, set=s):
            tail = f" {v.text}" if v else (f" in {s.value}" if s else "")
            return f"{'lacks' if n else 'has'} {f.value}{tail}"
        case ast.Compare(field=f, op=op, value=v, distinct=d):
            return f"{'distinct ' if d else ''}{f.value} {op} {v.value}"
        case ast.SameDay(set=s, earlier=e, sharing=sh, lacking=la):
            q = f" sharing a {sh.value}" if sh else (f" lacking {la.value}" if la else "")
            return f"same day as {'earlier ' if e else ''}{s.value}{q}"
        case ast.SessionLimit(count=n, set=s, window=w):
            win = "per calendar year" if w.size is None else f"within {w.size.value} {w.unit}"
            return f"more than {n.value} {s.value} sessions {win}"
        case ast.Spacing(days=n, set=s):
            return f"less than {n.value} days after the last {s.value} session"
    raise AssertionError(c)


def escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(cond=conds, rid=rule_ids.filter(lambda r: r not in KEYWORDS), title=texts, message=st.one_of(st.none(), texts),
       action=st.sampled_from(["deny", "review"]), scope=st.sampled_from(["line", "claim"]))
def test_printed_ast_parses_back(cond, rid, title, message, action, scope):
    if any(isinstance(x, ast.Ident) and x.value.lower() in KEYWORDS for x in _idents(cond)):
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
        if isinstance(v, ast.Ident):
            yield v
        elif isinstance(v, tuple):
            for x in v:
                if dataclasses.is_dataclass(x):
                    yield from _idents(x)
        elif dataclasses.is_dataclass(v) and not isinstance(v, ast.Number):
            yield from _idents(v)


def _flat(c):
    """Nested and/or of the same kind mean the same: compare them flattened."""
    match c:
        case ast.And(items=xs):
            out = []
            for x in map(_flat, xs):
                out += list(x.items) if isinstance(x, ast.And) else [x]
            return ast.And(tuple(out))
        case ast.Or(items=xs):
            out = []
            for x in map(_flat, xs):
                out += list(x.items) if isinstance(x, ast.Or) else [x]
            return ast.Or(tuple(out))
        case ast.Not(item=x):
            return ast.Not(_flat(x))
    return c
