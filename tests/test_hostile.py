"""Hostile policy text: nothing written in a policy can run, and what is written comes back verbatim.

Every hostile string below carries a payload that, if it ever escaped the literal, docstring or
comment it is written into, would set `builtins.PAYRULE_PWNED`. Each is put in every place text can
go in a policy (title, source text, set members, condition values, messages, payer, comments, the
file's name) and, within what the grammar allows, in ids. For each: the checker accepts it (or, where
the text cannot be valid, reports a located diagnostic), the generated module passes `ast.parse` and
names no dangerous builtin, loading it and deciding claims runs nothing, and the text comes back
verbatim in TITLE / SOURCES / the decision's message / the decision's source. And the shipped policies
laid out with CRLF, tabs, form feeds or extra blank lines between tokens decide exactly as written.
"""
from __future__ import annotations

import ast as pyast
import builtins
import json
from pathlib import Path

import pytest

from payrule import PolicySet
from payrule.claims.readers import normal
from payrule.codegen.compiler import compile_model
from payrule.lang.diagnostics import render
from payrule.lang.source import SourceFile
from payrule.loader import Workspace, load_module, load_workspace
from payrule.runtime import API_VERSION

from conftest import POLICIES, ROOT

ROOT_EXAMPLES = ROOT / "examples" / "claims.jsonl"
POLICY = POLICIES / "aetna" / "trigger_points.policy"

SENTINEL = "PAYRULE_PWNED"
PAYLOAD = f"__import__('builtins').setattr(__import__('builtins'), '{SENTINEL}', 1)"
P = PAYLOAD


def _long() -> str:
    unit = P + "\"\\'{}%s\n\u2028"
    return (unit * (10_000 // len(unit) + 1))[:10_000]


HOSTILE: dict[str, str] = {
    "double-quote": f'"); {P}; ("',
    "escaped-quote": f'\\"); {P} #',
    "triple-double-quote": f'"""{P}"""',
    "triple-single-quote": f"'''{P}'''",
    "single-quote": f"'); {P}; ('",
    "trailing-backslash": f"{P}\\",
    "backslash-quote-end": f'{P}\\"',
    "backslash-n-as-text": f"\\n{P}\\t",
    "newline": f"\n{P}\n",
    "carriage-return": f"\r{P}\r",
    "crlf": f"x\r\n{P}",
    "form-feed-vtab": f"\f{P}\v",
    "jinja-expression": f"{{{{ {P} }}}}",
    "jinja-statement": f"{{% set x = {P} %}}{{# c #}}",
    "percent-format": f"%s %d %(x)s %% {P}",
    "str-format": f"{{0}} {{x}} {{0.__class__}} {P}",
    "fstring-braces": f"{{{P}}}",
    "plain-python": P,
    "line-separators": f"\u2028{P}\u2029",
    "next-line": f"\x85{P}\x1c\x1d\x1e",
    "nul": f"\x00{P}\x00",
    "right-to-left": f"\u200f\u202e{P}\u202c\u200e",
    "bom-zero-width": f"\ufeff\u200b{P}",
    "non-bmp": f"\U0001F600{P}\U0001D11E",
    "control-chars": f"\x1b[31m\x07\x08{P}\x7f",
    "long-10000": _long(),
}
CASES = [pytest.param(v, id=k) for k, v in HOSTILE.items()]


def lit(text: str, escape_all: bool = False) -> str:
    """`text` as a policy-language string literal. Raw where the grammar allows (a string may hold any
    character but `"`, `\\`, newline and carriage return); with `escape_all`, every character that is
    not printable ASCII in the Basic Multilingual Plane is written as `\\uXXXX`."""
    out = []
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r" or (escape_all and not (" " <= ch <= "~") and ord(ch) < 0x10000):
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def braces(text: str) -> str:
    """Message text whose braces are literal."""
    return text.replace("{", "{{").replace("}", "}}")


# ---- helpers -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_sentinel():
    assert not hasattr(builtins, SENTINEL)
    yield
    pwned = hasattr(builtins, SENTINEL)
    if pwned:
        delattr(builtins, SENTINEL)
    assert not pwned, "policy text was executed"


def workspace(text: str, name: str = "policies/hostile.policy") -> Workspace:
    ws = load_workspace(texts=[SourceFile(name, text)])
    assert not ws.errors, "\n".join(render(d, ws.sources.get(d.span.path)) for d in ws.errors)
    return ws


DANGEROUS = {"__import__", "setattr", "getattr", "exec", "eval", "compile", "open", "system", "__builtins__", "globals"}


def compiled(ws: Workspace, policy_id: str):
    """Compile and load one policy; the source must parse and name nothing dangerous."""
    src = compile_model(ws.models[policy_id])
    tree = pyast.parse(src)
    names = {n.id for n in pyast.walk(tree) if isinstance(n, pyast.Name)}
    names |= {n.attr for n in pyast.walk(tree) if isinstance(n, pyast.Attribute)}
    assert not names & DANGEROUS, names & DANGEROUS
    imports = [n for n in pyast.walk(tree) if isinstance(n, (pyast.Import, pyast.ImportFrom))]
    assert [(type(n).__name__, getattr(n, "module", None), [a.name for a in n.names]) for n in imports] == [
        ("ImportFrom", "payrule", ["runtime"])]
    assert compile_model(ws.models[policy_id]) == src  # and the same text again
    module = load_module(src, policy_id)
    assert not hasattr(builtins, SENTINEL)
    return src, module


def tpi_claim(payer="x", **line) -> dict:
    ln = {"line": 1, "date": "2025-03-01", "code": "20552", "muscles": ["left soleus"], "substances": ["lidocaine"]}
    ln.update(line)
    return {"claim_id": "C1", "patient_id": "P1", "payer": payer, "lines": [ln]}


def reasons(ws: Workspace, claim: dict) -> list[dict]:
    out = PolicySet(ws).check([claim])
    assert not hasattr(builtins, SENTINEL)
    assert "lines" in out[0], out
    return out[0]["lines"][0]["reasons"]


# ---- text in string literals ---------------------------------------------------------------------


@pytest.mark.parametrize("escape_all", [False, True], ids=["raw", "escaped"])
@pytest.mark.parametrize("h", CASES)
def test_title(h, escape_all):
    ws = workspace(f"policy hostile {lit(h, escape_all)}\n  payer x\n")
    _, mod = compiled(ws, "hostile")
    assert mod.TITLE == h
    assert mod.__doc__.startswith(h)


@pytest.mark.parametrize("h", CASES)
def test_source_text(h):
    ws = workspace(f"""policy hostile "t"
  payer x
  source SRC {lit(h)}
  codes TPI = 20552
  rule r1: deny line when code in TPI message "cited" per SRC
""")
    _, mod = compiled(ws, "hostile")
    assert dict(mod.SOURCES) == {"SRC": h}  # the source's text, once per module
    assert "(per SRC)" in mod.RULES[0].fn.__doc__
    assert [r["message"] for r in reasons(ws, tpi_claim())] == ["cited"]


@pytest.mark.parametrize("escape_all", [False, True], ids=["raw", "escaped"])
@pytest.mark.parametrize("h", CASES)
def test_message(h, escape_all):
    """Hostile text around placeholders and literal braces: `H{{{code}}}H {claim_id}` -> `H{20552}H C1`."""
    ws = workspace(f"""policy hostile "t"
  payer x
  codes TPI = 20552
  rule r1: deny line when code in TPI
    message {lit(braces(h) + "{{{code}}}" + braces(h) + " {claim_id}", escape_all)}
""")
    compiled(ws, "hostile")
    assert [r["message"] for r in reasons(ws, tpi_claim())] == [h + "{20552}" + h + " C1"]


@pytest.mark.parametrize("h", CASES)
def test_message_through_the_command_line(h, tmp_path, cli):
    """The decision printed by `payrule check` (JSON Lines) carries the message verbatim."""
    pol = tmp_path / "pol"
    pol.mkdir()
    (pol / "hostile.policy").write_text(f"policy hostile \"t\"\n  payer x\n  codes TPI = 20552\n"
                                        f"  rule r1: deny line when code in TPI message {lit(braces(h))}\n", encoding="utf-8")
    claims = tmp_path / "claims.jsonl"
    claims.write_text(json.dumps(tpi_claim()) + "\n", encoding="utf-8")
    res = cli("check", claims, "--policies", pol)
    assert res.code == 0, res.err
    # JSON Lines are split at "\n" only: U+2028 and U+0085 may stand raw inside a JSON string
    [obj] = [json.loads(line) for line in res.out.split("\n") if line]
    assert obj["lines"][0]["reasons"][0]["message"] == h
    assert not hasattr(builtins, SENTINEL)


@pytest.mark.parametrize("h", CASES)
def test_names_member(h):
    """A `names` member is kept in the contract's normal form (trimmed, case-folded, spaces collapsed)
    and matches a claim's muscle written the same way; `{matched}` quotes it."""
    ws = workspace(f"""policy hostile "t"
  payer x
  codes TPI = 20552
  names ODD = {lit(h)}, "left soleus"
  rule r1: deny line when code in TPI and has muscle in ODD
    message "{{{{{{matched}}}}}}"
""")
    _, mod = compiled(ws, "hostile")
    assert frozenset({normal("name", h), "left soleus"}) in [v for v in vars(mod).values() if isinstance(v, frozenset)]
    assert [r["message"] for r in reasons(ws, tpi_claim(muscles=[h]))] == ["{" + normal("name", h) + "}"]
    assert [r["message"] for r in reasons(ws, tpi_claim(muscles=["  Left   SOLEUS "]))] == ["{left soleus}"]


@pytest.mark.parametrize("h", CASES)
def test_condition_value(h):
    """`has substance "..."` / `lacks muscle "..."` with hostile values."""
    ws = workspace(f"""policy hostile "t"
  payer x
  codes TPI = 20552
  rule r1: deny line when code in TPI and has substance {lit(h)} message "has"
  rule r2: review line when code in TPI and lacks muscle {lit(h)} message "lacks"
""")
    compiled(ws, "hostile")
    assert [r["message"] for r in reasons(ws, tpi_claim(substances=[h], muscles=[h]))] == ["has"]
    assert [r["message"] for r in reasons(ws, tpi_claim())] == ["lacks"]


@pytest.mark.parametrize("h", CASES)
def test_payer(h):
    """`payer "..."`: a claim billed to that payer (case-insensitive) is decided by this policy, and
    `{payer}` quotes the claim's payer as written."""
    ws = workspace(f"""policy hostile "t"
  payer {lit(h)}
  codes TPI = 20552
  rule r1: deny line when code in TPI message "{{payer}}"
""")
    _, mod = compiled(ws, "hostile")
    assert PolicySet(ws).payers == [mod.PAYER]
    assert [r["message"] for r in reasons(ws, tpi_claim(payer=h))] == [h]
    if h.isascii():
        assert [r["message"] for r in reasons(ws, tpi_claim(payer=h.upper()))] == [h.upper()]


@pytest.mark.parametrize("h", CASES)
def test_comment_inside_a_rule(h):
    """A comment is kept in the rule's docstring (the rule as written) and nowhere else."""
    comment = h.replace("\n", " ")  # a comment ends at a newline
    ws = workspace(f"""policy hostile "t"
  payer x
  codes TPI = 20552
  rule r1: # {comment}
    deny line when code in TPI # {comment}
    message "m"
""")
    _, mod = compiled(ws, "hostile")
    doc = " ".join(mod.RULES[0].fn.__doc__.split())  # long lines are wrapped to stay under 100 columns
    assert doc.count(" ".join(("# " + comment).split())) == 2
    assert [r["message"] for r in reasons(ws, tpi_claim())] == ["m"]


@pytest.mark.parametrize("h", CASES)
def test_file_name(h):
    """The name a policy is reported under comes back verbatim in the decision's `source`."""
    ws = workspace('policy hostile "t"\n  payer x\n  codes TPI = 20552\n  rule r1: deny line when code in TPI\n', name=h)
    src, mod = compiled(ws, "hostile")
    assert mod.RULES[0].source == f"{h}:4"
    assert src.startswith("# ") and pyast.get_docstring(pyast.parse(src), clean=False).startswith("t\n")
    [reason] = reasons(ws, tpi_claim())
    assert reason["source"] == f"{h}:4"
    assert reason["message"] == f"rule r1 ({h}:4)"


@pytest.mark.parametrize("h", CASES)
def test_file_name_in_diagnostics(h):
    """A policy error in a file with a hostile name is located under that name."""
    src = SourceFile(h, 'policy hostile "t"\n  payer x\n  rule r1: deny line when code in NOPE\n')
    ws = load_workspace(texts=[src])
    [d] = ws.errors
    assert (d.span.line, d.span.col) == (3, 35)
    assert render(d, src).startswith(f"{h}:3:35: error[PR201]: unknown code set `NOPE`")


@pytest.mark.parametrize("sep", ["\r\n", "\n\t\f ", "\n\n\n"], ids=["crlf", "tab-formfeed", "blank-lines"])
def test_layout_characters_between_tokens(sep, shipped):
    """Real newlines, carriage returns, tabs and form feeds wherever the grammar allows white space: the
    shipped policies laid out so decide the example claims exactly as the shipped files do."""
    root = Path(__file__).resolve().parents[1]
    texts = {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8").replace("\n", sep)
             for p in sorted((root / "policies").rglob("*.policy"))}
    relaid = PolicySet.from_texts(texts)
    claims = (root / "examples" / "claims.jsonl").read_bytes()
    history = (root / "examples" / "history.jsonl").read_bytes()

    def seen(results, with_source):
        return [(r["claim_id"], [(ln["line"], ln["decision"], [(x["rule"], x["message"]) + ((x["source"],) if with_source else ())
                                                               for x in ln["reasons"]]) for ln in r["lines"]]) for r in results]

    same_lines = sep.count("\n") == 1
    got, want = relaid.check(claims, history), shipped.check(claims, history)
    assert seen(got, same_lines) == seen(want, same_lines)
    assert any(ln["reasons"] for r in want for ln in r["lines"])


# ---- text where it cannot be valid: a located diagnostic, never a crash ----------------------------

BAD_PLACES = {
    "codes-member": 'codes BAD = {h}',
    "diagnoses-member": 'diagnoses BAD = {h}',
    "stems-member": 'stems BAD = {h}',
    "modifier-value": 'codes TPI = 20552 rule r: deny line when code in TPI and has modifier {h}',
    "diagnosis-value": 'codes TPI = 20552 rule r: deny line when code in TPI and lacks diagnosis {h}',
}


def _bad_params():
    for place in BAD_PLACES:
        for k, v in HOSTILE.items():
            yield pytest.param(place, v, id=f"{place}-{k}")


@pytest.mark.parametrize("place,h", list(_bad_params()))
def test_invalid_text_gets_a_located_one_line_diagnostic(place, h):
    text = f'policy hostile "t"\n  payer x\n  {BAD_PLACES[place].format(h=lit(h))}\n'
    src = SourceFile("policies/hostile.policy", text)
    ws = load_workspace(texts=[src])
    assert ws.errors and not ws.models
    for d in ws.errors:
        assert d.span.line == 3
        assert 1 <= d.span.col <= len(src.line_text(3))
        shown = render(d, src)
        assert shown.startswith(f"policies/hostile.policy:3:{d.span.col}: error[PR")
        assert "\n" not in d.message and "\r" not in d.message, d.message


@pytest.mark.parametrize("h", CASES)
def test_jinja_and_format_syntax_is_not_a_placeholder(h):
    """Single braces in a message are placeholders: hostile text with unbalanced or unknown ones is a
    located error (never a crash, never evaluated)."""
    src = SourceFile("policies/hostile.policy", f'policy hostile "t"\n  payer x\n  codes TPI = 20552\n'
                     f'  rule r1: deny line when code in TPI message {lit(h + "{")}\n')
    ws = load_workspace(texts=[src])
    assert ws.errors
    assert all(d.span.line == 4 for d in ws.errors)


# ---- stems: one word of letters or digits, in any script ------------------------------------------


@pytest.mark.parametrize("stem,substance", [
    pytest.param("x" * 10_000, "X" * 10_000 + "-plasma", id="long-10000"),
    pytest.param("שלום", "תמיסת שלום", id="hebrew"),
    pytest.param("ωμέγα", "ΩΜΈΓΑ-3", id="greek-case-folded"),
    pytest.param("straße", "STRASSE oil", id="casefold-sharp-s"),
])
def test_stems_in_any_script(stem, substance):
    ws = workspace(f"""policy hostile "t"
  payer x
  codes TPI = 20552
  stems ODD = {lit(stem)}
  rule r1: deny claim when code in TPI and has substance in ODD message "{{matched}}"
""")
    compiled(ws, "hostile")
    assert [r["message"] for r in reasons(ws, tpi_claim(substances=["lidocaine", substance]))] == [substance]


# ---- ids: whatever the grammar allows as a name ---------------------------------------------------

IDS = ["__import__", "__builtins__", "exec", "eval", "None", "True", "class", "def", "lambda", "import", "return",
       "_rt", "_", "__", "ln", "g", "f1", "RULES", "SOURCES", "POLICY_ID", "TITLE", "PAYER", "RUNTIME_API",
       "SAME_DAY_SETS", "S_TPI", "rule_r1", "os", "sys", "a-b", "a_b-c_d", "x" * 10_000]


@pytest.mark.parametrize("ident", [pytest.param(i, id=i if len(i) < 20 else "long-10000") for i in IDS])
def test_ids(ident):
    """One name used as the policy id, a source id, a set name and a rule id."""
    ws = workspace(f"""policy {ident} "t"
  payer x
  source {ident} "s"
  codes {ident} = 20552
  codes TPI = 20553
  rule {ident}: deny line when code in {ident} message "{{policy}}/{{rule}}" per {ident}
  rule other: deny line when code in TPI message "{{policy}}/{{rule}}"
""")
    _, mod = compiled(ws, ident)
    assert mod.POLICY_ID == ident
    assert [r.id for r in mod.RULES] == [ident, "other"]
    assert dict(mod.SOURCES) == {ident: "s"}
    assert mod.RUNTIME_API == API_VERSION and mod.TITLE == "t" and mod.PAYER == "x"
    [reason] = reasons(ws, tpi_claim())
    assert (reason["policy"], reason["rule"], reason["message"]) == (ident, ident, f"{ident}/{ident}")
    [reason] = reasons(ws, tpi_claim(code="20553", muscles=["a", "b", "c"]))
    assert (reason["rule"], reason["message"]) == ("other", f"{ident}/other")


def test_ids_that_mangle_to_the_same_python_name_stay_apart():
    ws = workspace("""policy p "t"
  payer x
  codes a-b = 20552
  codes a_b = 20553
  codes a_b_2 = 20560
  rule a-b: deny line when code in a-b message "1"
  rule a_b: deny line when code in a_b message "2"
  rule a_b_2: deny line when code in a_b_2 message "3"
""")
    _, mod = compiled(ws, "p")
    assert [r.id for r in mod.RULES] == ["a-b", "a_b", "a_b_2"]
    assert len({r.fn for r in mod.RULES}) == 3
    got = [reasons(ws, tpi_claim(code=c, muscles=["a", "b", "c"]))[0]["message"] for c in ("20552", "20553", "20560")]
    assert got == ["1", "2", "3"]


# ---- lone surrogates --------------------------------------------------------------------------------


def test_lone_surrogate_escape_is_refused_or_printed(tmp_path, cli):
    pol = tmp_path / "pol"
    pol.mkdir()
    (pol / "p.policy").write_text('policy p "t"\n  payer x\n  codes TPI = 20552\n'
                                  '  rule r1: deny line when code in TPI message "m\\uD800"\n', encoding="utf-8")
    claims = tmp_path / "claims.jsonl"
    claims.write_text(json.dumps(tpi_claim()) + "\n", encoding="utf-8")
    try:
        res = cli("check", claims, "--policies", pol)
    except UnicodeEncodeError:
        pytest.fail("payrule check crashed printing the decision")
    if res.code == 2:  # refused as a policy error, located at the escape
        assert "p.policy:4:" in res.err
    else:
        assert res.code == 0 and len(res.objects) == 1


@pytest.mark.parametrize("where", ["missing", "file"])
@pytest.mark.parametrize("command", ["check", "test", "lint", "explain", "compile", "why"])
def test_a_policies_folder_that_is_not_one_is_a_usage_error(cli, tmp_path, where, command):
    bad = tmp_path / "nowhere" if where == "missing" else tmp_path / "a.txt"
    if where == "file":
        bad.write_text("not a folder")
    args = {"check": [str(ROOT_EXAMPLES)], "test": [], "lint": [str(POLICY)], "explain": [str(POLICY)],
            "compile": [str(POLICY), "-o", str(tmp_path / "out")], "why": [str(ROOT_EXAMPLES), "--claim", "EX-01"]}[command]
    res = cli(command, *args, "--policies", str(bad))
    assert res.code == 2, (res.out, res.err)
    assert "Traceback" not in res.err
    assert ("does not exist" if where == "missing" else "is not a folder") in res.err


def test_two_policies_that_would_compile_to_one_module_file_are_refused(cli, tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a.policy").write_text('policy evil-tpi "A"\n  payer a\n')
    (tmp_path / "p" / "b.policy").write_text('policy evil_tpi "B"\n  payer b\n')
    res = cli("compile", tmp_path / "p" / "a.policy", tmp_path / "p" / "b.policy", "-o", tmp_path / "out",
              "--policies", tmp_path / "p")
    assert res.code == 2 and "evil-tpi" in res.err and "evil_tpi" in res.err and "evil_tpi.py" in res.err
    assert not (tmp_path / "out").exists()  # nothing written, nothing overwritten


def test_the_contract_refuses_what_it_refuses(cli, tmp_path):
    """Invalid UTF-8 anywhere on a line (an unknown field too) and a claim_id repeated in a second input file
    are errors; a padded date or code is not trimmed into a valid one (issue 16)."""
    good = '{"claim_id": "%s", "patient_id": "P", "payer": "aetna", %s"lines": [{"line": 1, "date": "%s", "code": "%s"}]}'
    a = tmp_path / "a.jsonl"
    a.write_bytes(b"\n".join([
        (good % ("U", '"note": "XX", ', "2025-03-01", "20552")).encode().replace(b"XX", b"\xff\xfe"),
        (good % ("D", "", " 2025-03-01", "20552")).encode(),
        (good % ("K", "", "2025-03-01", "20552 ")).encode(),
        (good % ("OK", "", "2025-03-01", "20552")).encode(),
    ]) + b"\n")
    b = tmp_path / "b.jsonl"
    b.write_text(good % ("OK", "", "2025-03-02", "20553") + "\n")
    res = cli("check", a, b)
    errors = [o.get("error", "") for o in res.objects]
    assert res.code == 1
    assert errors[0].startswith(f"{a}: not UTF-8") and "not a real date" in errors[1] and "not a procedure code" in errors[2]
    assert errors[3] == "" and errors[4] == f'{b}: claim_id "OK" was already used by an earlier claim'


HUGE = {
    "5000-digit number": ("units > " + "9" * 5000, "PR008"),
    "5000 parentheses": ("(" * 5000 + "units > 1" + ")" * 5000, "PR009"),
    "5000 nots": ("not " * 5000 + "units > 1", "PR009"),
}


@pytest.mark.parametrize("command", ["check", "explain", "compile", "lint", "fmt"])
@pytest.mark.parametrize("name", sorted(HUGE))
def test_huge_policies_get_a_diagnostic_on_every_command(cli, tmp_path, command, name):
    cond, code = HUGE[name]
    folder = tmp_path / "p"
    folder.mkdir()
    policy = folder / "huge.policy"
    policy.write_text(f'policy huge "Huge"\n  payer huge\n  codes T = 20552\n  rule r: deny line when code in T and {cond}\n')
    args = {"check": [str(ROOT_EXAMPLES), "--policies", str(folder)], "explain": [str(policy), "--policies", str(folder)],
            "compile": [str(policy), "-o", str(tmp_path / "out"), "--policies", str(folder)],
            "lint": [str(policy)], "fmt": ["--check", str(policy)]}[command]
    res = cli(command, *args)
    assert res.code == 2 if command != "lint" else res.code in (1, 2), res.err
    assert f"[{code}]" in res.err + res.out and "Traceback" not in res.err


def test_a_claim_line_with_two_hundred_thousand_muscles_is_decided(tmp_path):
    import signal

    def hang(signum, frame):  # pragma: no cover
        raise TimeoutError("a 5 MB claim line is read in linear time")

    muscles = [f"muscle number {i:06d}" for i in range(200_000)]
    line = {"claim_id": "C1", "patient_id": "P", "payer": "medicare", "diagnoses": ["M79.18"],
            "lines": [{"line": 1, "date": "2025-03-03", "code": "20553", "muscles": muscles + muscles[:10],
                       "substances": ["lidocaine"]}]}
    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(60)  # a guard against a hang, not a speed test (bench/edges.py measures)
    try:
        (out,) = PolicySet.load([POLICIES]).check([line])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert out["decision"] == "approve"


def test_a_diagnostic_on_a_very_long_line_shows_the_part_around_the_caret():
    from payrule.lang.diagnostics import SHOWN, DiagnosticError
    from payrule.lang.parser import parse

    text = 'policy x "X"\n  payer a\n  codes T = 20552\n  rule r: deny line when ' + "(" * 3000 + "code in T" + ")" * 3000 + "\n"
    src = SourceFile("x.policy", text)
    with pytest.raises(DiagnosticError) as exc:
        parse(src)
    shown = render(exc.value.diagnostics[0], src).splitlines()
    assert len(shown[1]) < SHOWN + 20 and shown[1].endswith("...")
    col = exc.value.diagnostics[0].span.col
    assert shown[1][shown[2].index("^")] == src.line_text(4)[col - 1]  # the caret is under the same character
