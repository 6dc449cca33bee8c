"""`payrule lint`: one test per code (it fires, and the fixed policy is clean of it), the reasoning behind
PR303 and PR306, and the command. The catalog, its examples and docs/lint-codes.md: tests/test_codes.py."""
from __future__ import annotations

import textwrap

import pytest

from payrule.lang.codes import CODES
from payrule.lang.diagnostics import Diagnostic, Severity, error, render_all, warning
from payrule.lang.source import SourceFile, Span
from payrule.loader import load_workspace
from payrule.tools.linter import lint

from conftest import POLICIES


def run_lint(*texts: str, **named: str) -> list[Diagnostic]:
    """Lint policies given as text: positional ones are `example.policy`, `example2.policy`..."""
    files = {("example.policy" if i == 0 else f"example{i + 1}.policy"): t for i, t in enumerate(texts)}
    files.update({k.replace("__", "/") + ".policy": v for k, v in named.items()})
    return lint([SourceFile(name, textwrap.dedent(t)) for name, t in files.items()])


def codes(diags) -> list[str]:
    return [d.code for d in diags]


def policy(body: str, head: str = 'policy example "T"\n  payer acme\n  source CPT "c"\n  codes TPI = 20552, 20553\n') -> str:
    return head + body


def rule(cond: str, extra: str = "", message: str = "m", action: str = "deny line") -> str:
    return policy(f'{extra}\n  rule r:\n    {action} when {cond}\n    message "{message}"\n    per CPT\n')


CLEAN = rule("code in TPI and units > 1")

# code -> (policies where it fires, the same policies fixed); a tuple of texts, or a dict of named files
CASES: dict[str, tuple] = {
    "PR001": ((rule("code in TPI and units > 1").replace("when", "whn"),), (CLEAN,)),
    "PR002": ((rule("code in TPI", message="m").replace('"m"', '"m'),), (CLEAN,)),
    "PR003": ((rule("code in TPI and has muscle 'soleus'"),), (rule('code in TPI and has muscle "soleus"'),)),
    "PR004": ((rule("code in TPI", message="a \\q"),), (rule("code in TPI", message="a \\\\q"),)),
    "PR006": ((rule("code in TPI", message="a \\uD83D"),), (rule("code in TPI", message="a \\uD83D\\uDEAB"),)),
    "PR101": ((policy("  include nowhere\n" + CLEAN.split("codes TPI = 20552, 20553\n")[1]),), (CLEAN,)),
    "PR102": ({"a": 'policy pa "A"\n  include b\n', "b": 'policy b "B"\n  include pa\n'},
              {"a": 'policy pa "A"\n  include b\n', "b": 'policy b "B"\n'}),
    "PR103": ({"a": 'policy same "A"\n', "b": 'policy same "B"\n'}, {"a": 'policy pa "A"\n', "b": 'policy b "B"\n'}),
    "PR104": (('policy x "T"\n  payer a\n  payer b\n',), ('policy x "T"\n  payer a\n',)),
    "PR105": ({"a": 'policy pa "A"\n  payer acme\n', "b": 'policy b "B"\n  payer ACME\n'},
              {"a": 'policy pa "A"\n  payer acme\n', "b": 'policy b "B"\n  payer aetna\n'}),
    "PR201": ((rule("code in TPl"),), (rule("code in TPI"),)),
    "PR202": ((rule("code in TPI and lacks diagnosis in TPI"),),
              (rule("code in TPI and lacks diagnosis in D", extra="  diagnoses D = M79.1\n"),)),
    "PR203": ((rule("code in TPI and code is 2055"),), (rule("code in TPI and code is 20552"),)),
    "PR204": ((rule("code in TPI and lacks diagnosis in D", extra="  diagnoses D = 79.1\n"),),
              (rule("code in TPI and lacks diagnosis in D", extra="  diagnoses D = M79.1\n"),)),
    "PR205": ((rule("code in TPI and has modifier 250"),), (rule("code in TPI and has modifier 25"),)),
    "PR206": ((rule("code in TPI and has substance in S", extra='  stems S = "platelet-rich"\n'),),
              (rule("code in TPI and has substance in S", extra='  stems S = "platelet"\n'),)),
    "PR207": ((rule("code in TPI and code in C", extra="  codes C = 0001T..99999\n"),),
              (rule("code in TPI and code in C", extra="  codes C = 0001T..0999T\n"),)),
    "PR208": ((rule("code in EM", extra="  codes EM = 99215..99202\n"),), (rule("code in EM", extra="  codes EM = 99202..99215\n"),)),
    "PR209": ((rule("code in TPI", extra="  codes TPI = 20552\n"),), (CLEAN,)),
    "PR210": ((rule("code in TPI", extra="  codes EM = 99202..99215\n"),), (rule("code in TPI or code in EM", extra="  codes EM = 99202..99215\n"),)),
    "PR211": ((rule("code in EM", extra="  codes EM = 99202..99215, 99213\n"),), (rule("code in EM", extra="  codes EM = 99202..99215\n"),)),
    "PR301": ((CLEAN + CLEAN.split("codes TPI = 20552, 20553\n")[1],), (CLEAN,)),
    "PR302": ((rule("code in TPI and has units 2"),), (rule("code in TPI and units = 2"),)),
    "PR310": ((rule("code in TPI and lacks musles"),), (rule("code in TPI and lacks muscles"),)),
    "PR007": ((rule("code in TPI").replace("    per CPT\n", "    per CPT\n    until 2025-02-29\n"),),
              (rule("code in TPI").replace("    per CPT\n", "    per CPT\n    until 2025-02-28\n"),)),
    "PR008": ((rule("code in TPI and units > 1234567"),), (rule("code in TPI and units > 123456"),)),
    "PR009": ((rule("code in TPI and " + "not " * 150 + "units > 1"),), (rule("code in TPI and not units > 1"),)),
    "PR110": ((rule("code in TPI").replace("rule r:", "rule deny:"),), (rule("code in TPI").replace("rule r:", "rule deny-all:"),)),
    "PR106": ((CLEAN.replace("  payer acme\n", "  payer acme\n  alias \" ACME \"\n"),),
              (CLEAN.replace("  payer acme\n", "  payer acme\n  alias \"acme health\"\n"),)),
    "PR107": ((CLEAN.replace("  payer acme\n", "  payer acme\n  version from 2025-01-01\n  version until 2025-12-31\n"),),
              (CLEAN.replace("  payer acme\n", "  payer acme\n  version from 2025-01-01 until 2025-12-31\n"),)),
    "PR307": ((rule("code in TPI").replace("    per CPT\n", "    per CPT\n    per CPT\n"),), (rule("code in TPI"),)),
    "PR308": ((rule("code in TPI").replace("    per CPT\n", "    per CPT\n    from 2025-01-02 until 2025-01-01\n"),),
              (rule("code in TPI").replace("    per CPT\n", "    per CPT\n    from 2025-01-01 until 2025-01-01\n"),)),
    "PR309": ((rule("code in TPI and more than 3 TPI sessions within 90 days at the same modifier"),),
              (rule("code in TPI and more than 3 TPI sessions within 90 days at the same site"),)),
    "PR408": ((rule("code in TPI").replace("    per CPT\n", "    per CPT\n    rarc X1\n"),),
              (rule("code in TPI").replace("    per CPT\n", "    per CPT\n    rarc N130\n"),)),
    "PR303": ((rule("code is 20552 and code is 20553"),), (rule("code is 20552 or code is 20553"),)),
    "PR304": ((rule("code in TPI and more than 0 TPI sessions within 12 months"),),
              (rule("code in TPI and more than 3 TPI sessions within 12 months"),)),
    "PR305": ((rule("code in TPI and same day as earlier TPI", action="deny claim"),),
              (rule("code in TPI and same day as TPI", action="deny claim"),)),
    "PR306": ((CLEAN + rule("has modifier 25 and units > 1 and code in TPI").split("codes TPI = 20552, 20553\n")[1].replace("rule r:", "rule r2:"),),
              (CLEAN + rule("has modifier 25 and code in TPI").split("codes TPI = 20552, 20553\n")[1].replace("rule r:", "rule r2:"),)),
    "PR401": ((rule("code in TPI", message="{nth} time"),), (rule("code in TPI", message="{code} time"),)),
    "PR402": ((rule("code in TPI", message="{code"),), (rule("code in TPI", message="{{code"),)),
    "PR403": ((CLEAN.replace("per CPT", "per CTP"),), (CLEAN,)),
    "PR404": ((rule("code in TPI", extra='  source CPT "again"\n'),), (CLEAN,)),
    "PR405": ((rule("code in TPI", extra='  source NCCI "n"\n'),), (CLEAN,)),
    "PR406": ((CLEAN.replace("    per CPT\n", ""),), (CLEAN,)),
    "PR407": ((CLEAN.replace('    message "m"\n', ""),), (CLEAN,)),
    "PR108": ((CLEAN.replace("  payer acme\n", ""),), (CLEAN,)),
    "PR311": ((CLEAN + rule("code in TPI and units > 1", action="review line").split("codes TPI = 20552, 20553\n")[1].replace("rule r:", "rule r2:"),),
              (CLEAN + rule("code in TPI and units > 2", action="review line").split("codes TPI = 20552, 20553\n")[1].replace("rule r:", "rule r2:"),)),
}


def lint_case(spec) -> list[Diagnostic]:
    return run_lint(**spec) if isinstance(spec, dict) else run_lint(*spec)


@pytest.mark.parametrize("code", sorted(CASES))
def test_code_fires_and_the_fix_is_clean(code):
    bad, good = CASES[code]
    found = lint_case(bad)
    assert code in codes(found), render_all(found, {})
    hit = next(d for d in found if d.code == code)
    assert hit.severity is CODES[code].severity
    assert hit.help, "every finding says how to fix it"
    fixed = lint_case(good)
    assert code not in codes(fixed), render_all(fixed, {})


def test_the_clean_policy_is_clean():
    assert run_lint(CLEAN) == []


def test_every_code_is_tested_or_has_its_own_test():
    assert set(CASES) | {"PR005"} == set(CODES)


def test_a_diagnostic_is_made_from_a_catalog_code_which_gives_its_severity():
    sp = Span("x", 1, 1, 1, 2)
    assert error("PR201", "unknown code set `X`", sp).severity is Severity.ERROR
    assert warning("PR210", "set `X` is never used", sp).severity is Severity.WARNING
    with pytest.raises(ValueError, match="unknown diagnostic code"):
        error("PR999", "something new went wrong", sp)
    with pytest.raises(ValueError, match="PR000"):
        error("PR000", "something new went wrong", sp)  # retired
    with pytest.raises(ValueError, match="severity warning"):
        error("PR210", "set `X` is never used", sp)
    with pytest.raises(ValueError, match="severity error"):
        warning("PR201", "unknown code set `X`", sp)


def test_pr005_a_file_that_cannot_be_read(tmp_path):
    bad = tmp_path / "bad.policy"
    bad.write_bytes(b'policy x "\xff"\n')
    good = tmp_path / "good.policy"
    good.write_text('policy y "T"\n  payer acme\n')
    found = lint(load_workspace(files=[(bad, "bad.policy"), (good, "good.policy")]))
    assert [(d.code, d.span.path) for d in found] == [("PR005", "bad.policy")]
    assert lint(load_workspace(files=[(good, "good.policy")])) == []


def test_findings_are_sorted_and_all_reported():
    found = run_lint(rule("code in TPl and lacks musles and code is 2055", message="{nth}"))
    assert codes(found) == ["PR210", "PR201", "PR310", "PR203", "PR401"]  # TPI is unused: the rule says TPl
    assert [(d.span.line, d.span.col) for d in found] == sorted((d.span.line, d.span.col) for d in found)


def test_a_policy_including_one_with_a_syntax_error_is_not_checked_further():
    found = run_lint(
        common='policy common "C"\n  codes TPI = 20552 20553\n',
        payer='policy acme-payer "P"\n  payer acme\n  include common\n  source CPT "c"\n'
              '  rule r:\n    deny line when code in TPI\n',  # no message, no per: not reported yet
        other='policy other "O"\n  payer b\n  codes X = 2055\n',
    )
    # other.policy is checked; its set X is unused, but that waits until every file parses
    assert [(d.code, d.span.path) for d in found] == [("PR001", "common.policy"), ("PR203", "other.policy")]


def test_only_reports_the_named_files_and_errors_in_what_they_include():
    files = [
        SourceFile("common.policy", 'policy common "C"\n  codes TPI = 2055\n  codes UNUSED = 20552\n'),
        SourceFile("payer.policy", 'policy acme-payer "P"\n  payer acme\n  include common\n  rule r:\n    deny line when code in TPI\n'),
        SourceFile("other.policy", 'policy other "O"\n  payer b\n  codes X = 2055\n'),
    ]
    found = lint(files, only=["payer.policy"])
    assert [(d.code, d.span.path) for d in found] == [("PR203", "common.policy"), ("PR406", "payer.policy"), ("PR407", "payer.policy")]


def test_shipped_policies_are_lint_clean():
    assert lint(load_workspace(dirs=[POLICIES])) == []


# ---- PR303: sound, and says which two items clash ------------------------------------------------

SETS = "  codes A = 20552, 20553\n  codes B = 99202..99215\n  codes C = 20550..20559\n  codes D = 20552\n"


@pytest.mark.parametrize(
    "cond, first, second",
    [
        ("code is 20552 and code is 20553", "code is 20552", "code is 20553"),
        ("code in A and code not in A", "code in A", "code not in A"),
        ("code in A and not code in A", "code in A", "not code in A"),
        ("code is 99213 and code in A", "code is 99213", "code in A"),
        ("code in A and code is 99213", "code in A", "code is 99213"),
        ("code is 20552 and code not in C", "code is 20552", "code not in C"),
        ("code in A and code in B", "code in A", "code in B"),
        ("code in D and not code is 20552", "code in D", "not code is 20552"),
        ("has muscles and lacks muscles", "has muscles", "lacks muscles"),
        ("lacks muscle and has muscle \"left soleus\"", "lacks muscle", 'has muscle "left soleus"'),
        ("has modifier 25 and lacks modifier 25", "has modifier 25", "lacks modifier 25"),
        ("has diagnosis m79.1 and lacks diagnosis M791", "has diagnosis m79.1", "lacks diagnosis M791"),
        ("has muscle in N and lacks muscle in N", "has muscle in N", "lacks muscle in N"),
        ("has muscles and distinct muscles < 1", "has muscles", "distinct muscles < 1"),
        ("units > 5 and units != 3 and units < 4", "units > 5", "units < 4"),
        ("units = 2 and units != 2", "units = 2", "units != 2"),
        ("units >= 2 and not units > 1", "units >= 2", "not units > 1"),
        ("code in A and (units < 4 and units > 4)", "units < 4", "units > 4"),
    ],
)
def test_never_fires_names_the_two_items_that_clash(cond, first, second):
    found = [d for d in run_lint(rule(cond, extra=SETS + '  names N = "left soleus"\n')) if d.code == "PR303"]
    assert len(found) == 1, found
    assert found[0].message == f"rule `r` can never fire: `{second}` contradicts `{first}`"
    assert found[0].severity is Severity.ERROR


@pytest.mark.parametrize("cond", ["units <= 0", "distinct muscles = 0 and units = 0"])
def test_never_fires_on_an_item_never_true_alone(cond):
    (d,) = [d for d in run_lint(rule(cond)) if d.code == "PR303"]
    assert d.message == "rule `r` can never fire: `units <= 0` is never true" or d.message.endswith("`units = 0` is never true")


def test_never_fires_when_no_alternative_can_be_true():
    (d,) = [d for d in run_lint(rule("(code is 20552 and code is 20553) or (has modifier 25 and lacks modifier 25)"))
            if d.code == "PR303"]
    assert d.message == "rule `r` can never fire: none of its alternatives can be true"


@pytest.mark.parametrize(
    "cond",
    [
        "code is 20552 or code is 20553",
        "code in A and code in C",  # 20552 is in both
        "code in B and code in B",
        "code is 20555 and code in C",  # inside the range
        "code is 2055A and code not in C",  # another shape: not in the range
        "has diagnosis M79 and lacks diagnosis M79.1",  # prefixes: M79.2 has the first, not the second
        "has muscle in N and lacks muscle \"x\"",
        "has muscles and lacks muscle in N",
        "units != 1 and units < 3",
        "distinct muscles > 2 and has muscles",
        "not (code is 20552 and code is 20553)",
        "units > 1 and not units > 5",
        "(code is 20552 and code is 20553) or units > 1",
        "same day as A and not same day as A sharing a muscle",
        "more than 3 A sessions within 12 months and more than 5 A sessions within 24 months",
    ],
)
def test_never_fires_stays_quiet_when_a_line_could_match(cond):
    found = run_lint(rule(cond, extra=SETS + '  names N = "left soleus"\n'))
    assert "PR303" not in codes(found), render_all(found, {})


def test_the_checkers_own_impossible_comparison_is_not_reported_twice():
    found = run_lint(rule("code in TPI and units < 1"))
    assert codes(found) == ["PR303"]
    assert found[0].message == "`units < 1` can never be true"


# ---- PR306 ---------------------------------------------------------------------------------------


def two_rules(first: str, second: str) -> str:
    return policy(
        f'  rule a:\n    {first}\n    message "m"\n    per CPT\n\n  rule b:\n    {second}\n    message "n"\n    per CPT\n'
    )


@pytest.mark.parametrize(
    "first, second, why",
    [
        ("deny line when code in TPI and units > 1", "deny line when units > 1 and code in TPI", "the two rules have the same condition"),
        ("deny line when code in TPI", "deny line when code in TPI and (units > 1 and has modifier 25)",
         "every condition of `a` is also in `b`"),
        ("review claim when code in TPI and has modifier 50", "review claim when code in TPI and has modifier 50 and units > 1",
         "every condition of `a` is also in `b`"),
    ],
)
def test_shadowed_rule(first, second, why):
    (d,) = [d for d in run_lint(two_rules(first, second)) if d.code == "PR306"]
    assert d.message == "rule `b` is shadowed by rule `a` (line 5), which has the same effect"
    assert d.help.startswith(why + ", so `a` already")
    assert d.span.line == 10


@pytest.mark.parametrize(
    "first, second",
    [
        ("deny line when code in TPI and units > 1", "review line when code in TPI and units > 1"),  # another action
        ("deny line when code in TPI and units > 1", "deny claim when code in TPI and units > 1"),  # another scope
        ("deny line when code in TPI and units > 1", "deny line when code in TPI"),  # the later is broader
        ("deny line when code in TPI and units > 1", "deny line when code in TPI and units > 2"),  # implies, but not as written
        ("deny line when code in TPI or units > 1", "deny line when code in TPI"),
    ],
)
def test_not_shadowed(first, second):
    assert "PR306" not in codes(run_lint(two_rules(first, second)))


def test_shadowed_by_a_rule_of_an_included_policy():
    found = run_lint(
        common='policy common "C"\n  source CPT "c"\n  codes TPI = 20552\n  rule units:\n    deny line when code in TPI and units > 1\n'
               '    message "m"\n    per CPT\n',
        payer='policy acme-payer "P"\n  payer acme\n  include common\n  rule more-units:\n'
              '    deny line when code in TPI and units > 1 and has modifier 59\n    message "m"\n    per CPT\n',
    )
    (d,) = found
    assert (d.code, d.span.path) == ("PR306", "payer.policy")
    assert d.message == "rule `more-units` is shadowed by rule `units` (common.policy:4), which has the same effect"


# ---- the command ---------------------------------------------------------------------------------


def test_lint_with_no_file_lints_the_shipped_policies(cli):
    res = cli("lint")
    assert (res.code, res.out, res.err) == (0, "0 errors, 0 warnings\n", "")


def test_lint_exit_status_errors_warnings_and_strict(cli, tmp_path):
    warn = tmp_path / "warn.policy"
    warn.write_text(CLEAN.replace('    message "m"\n', ""))
    bad = tmp_path / "bad.policy"
    bad.write_text(rule("code in TPl"))
    empty = tmp_path / "empty"
    empty.mkdir()
    res = cli("lint", "--policies", empty, warn)
    assert res.code == 0
    assert res.out.endswith("0 errors, 1 warning\n")
    assert f"{warn.as_posix()}:6:8: warning[PR407]: rule `r` has no message" in res.out
    assert cli("lint", "--policies", empty, "--strict", warn).code == 1
    res = cli("lint", "--policies", empty, bad)
    assert res.code == 1
    assert res.out.endswith("1 error, 1 warning\n")  # and TPI is never used


def test_lint_a_folder_reports_every_file_in_it_sorted(cli, tmp_path, monkeypatch):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "b.policy").write_text(rule("code in TPl").replace("example", "b").replace("payer acme", "payer other"))
    (folder / "a.policy").write_text(rule("code in TPI", extra="  codes X = 2055\n").replace("example", "pa"))
    monkeypatch.chdir(tmp_path)  # paths are reported relative to the working directory
    res = cli("lint", "--policies", folder)
    heads = [l.split(": ")[0] + ": " + l.split(": ")[1] for l in res.out.splitlines() if l.startswith("p/")]
    assert heads == [
        "p/a.policy:5:9: warning[PR210]",
        "p/a.policy:5:13: error[PR203]",
        "p/b.policy:4:9: warning[PR210]",
        "p/b.policy:7:28: error[PR201]",
    ]
    assert res.out.endswith("\n2 errors, 2 warnings\n")
    assert res.code == 1


def test_lint_a_file_uses_the_shipped_policies_for_includes(cli, tmp_path):
    f = tmp_path / "acme.policy"
    f.write_text(
        'policy acme-tpi "Acme"\n  payer acme\n  include common-tpi\n  source P "p"\n\n  rule bilateral:\n'
        '    deny line when code in TPI and has modifier 50\n    message "no 50 on {code}"\n    per P\n'
    )
    res = cli("lint", f)
    assert (res.code, res.out) == (0, "0 errors, 0 warnings\n")


def test_lint_missing_file_or_folder_is_a_usage_error(cli, tmp_path):
    assert cli("lint", tmp_path / "nope.policy").code == 2
    assert cli("lint", "--policies", tmp_path / "nope").code == 2


def test_a_policy_file_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "bom.policy"
    path.write_bytes(b"\xef\xbb\xbf" + CLEAN.encode())
    assert lint(load_workspace(files=[(path, "bom.policy")])) == []


# ---- PR311: rules that overlap or contradict -----------------------------------------------------


def pair(first: str, second: str, head: str = 'policy example "T"\n  payer acme\n  source CPT "c"\n  codes TPI = 20552, 20553\n') -> str:
    """A policy with rule `one` (FIRST: `deny line when ...`) and rule `two` (SECOND)."""
    return head + "".join(f'\n  rule {rid}:\n    {text}\n    message "m"\n    per CPT\n' for rid, text in (("one", first), ("two", second)))


@pytest.mark.parametrize("first, second, flagged, why", [
    pytest.param("deny line when code in TPI and more than 4 TPI sessions within 12 months",
                 "deny line when code in TPI and more than 6 TPI sessions within 12 months", "two",
                 "more than 6 TPI sessions within 12 months are always more than 4 within 12 months", id="limits of 4 and 6"),
    pytest.param("deny line when code in TPI and more than 6 TPI sessions within 12 months",
                 "deny line when code in TPI and more than 4 TPI sessions within 12 months", "one",
                 "more than 6 TPI sessions within 12 months are always more than 4 within 12 months", id="the looser limit first"),
    pytest.param("deny line when code in TPI and more than 3 TPI sessions within 12 months",
                 "deny line when code in TPI and more than 3 TPI sessions within 6 months", "two",
                 "more than 3 TPI sessions within 6 months are always more than 3 within 12 months", id="a window inside the other"),
    pytest.param("deny line when code in TPI and less than 7 days after the last TPI session",
                 "review line when code in TPI and less than 7 days after the last TPI session", "two",
                 "the same conditions", id="a deny and a review on the same spacing"),
    pytest.param("review line when code in TPI and less than 7 days after the last TPI session",
                 "deny line when code in TPI and less than 7 days after the last TPI session", "one",
                 "the same conditions", id="the review first"),
    pytest.param("deny line when code in TPI and less than 14 days after the last TPI session",
                 "review line when less than 7 days after the last TPI session and code in TPI", "two",
                 "less than 7 days after the last TPI session is always less than 14 days", id="a review inside a deny's spacing"),
    pytest.param("deny line when code in TPI and has modifier 25",
                 "review line when code in TPI and has modifier 25 and units > 1", "two",
                 "", id="a review with more conditions than a deny"),
])
def test_overlapping_rules(first, second, flagged, why):
    found = run_lint(pair(first, second))
    assert codes(found) == ["PR311"], render_all(found, {})
    (d,) = found
    assert d.severity is Severity.WARNING
    other = "one" if flagged == "two" else "two"
    assert d.message.startswith(f"rule `{flagged}` ") and f"rule `{other}` (line " in d.message
    assert f"whenever `{flagged}` fires, `{other}` fires too ({why or 'the same conditions'})" in d.help
    if "review" in second and "deny" in first or "review" in first and "deny" in second:
        assert d.message.endswith("the two contradict")


@pytest.mark.parametrize("first, second", [
    pytest.param("review line when code in TPI and more than 4 TPI sessions within 12 months",
                 "deny line when code in TPI and more than 6 TPI sessions within 12 months", id="review, then deny: an escalation"),
    pytest.param("deny line when code in TPI and less than 7 days after the last TPI session",
                 "review line when code in TPI and less than 14 days after the last TPI session", id="deny close, review further"),
    pytest.param("deny line when code in TPI and more than 4 TPI sessions within 12 months",
                 "deny line when code in TPI and more than 6 EM sessions within 12 months", id="other codes"),
    pytest.param("deny line when code in TPI and more than 4 TPI sessions within 12 months",
                 "deny line when code in TPI and more than 6 TPI sessions within 12 months at the same site", id="counted apart"),
    pytest.param("deny line when code in TPI and more than 4 TPI sessions within 12 months",
                 "deny line when code in TPI and more than 6 TPI sessions within 24 months", id="a wider window"),
    pytest.param("deny line when code in TPI and more than 4 TPI sessions within 12 months",
                 "deny line when code in TPI and more than 6 TPI sessions in the calendar year", id="rolling and calendar"),
    pytest.param("deny line when code in TPI and more than 4 TPI sessions within 12 months",
                 "deny line when code in TPI and has modifier 25 and more than 6 TPI sessions within 12 months\n    from 2024-01-01",
                 id="in force on other dates is still covered")
    if False else pytest.param("deny line when code in TPI and more than 4 TPI sessions within 12 months\n    from 2025-01-01",
                               "deny line when code in TPI and more than 6 TPI sessions within 12 months", id="the stricter one from a date"),
    pytest.param("deny line when code in TPI and more than 4 TPI sessions within 12 months\n    unless has modifier 59",
                 "deny line when code in TPI and more than 6 TPI sessions within 12 months", id="an exception of its own"),
])
def test_not_overlapping(first, second):
    text = pair(first, second).replace("  codes TPI", "  codes EM = 99213\n  codes TPI")
    found = [d for d in run_lint(text) if d.code != "PR210"]  # EM is used in one case only
    assert "PR311" not in codes(found), render_all(found, {})


def test_a_payer_tightening_an_included_limit_is_not_reported():
    common = ('policy common "C"\n  source CPT "c"\n  codes TPI = 20552, 20553\n\n  rule often:\n'
              '    deny line when code in TPI and more than 6 TPI sessions within 12 months\n    message "m"\n    per CPT\n')
    payer = ('policy acme-tpi "A"\n  payer acme\n  include common\n  source P "p"\n\n  rule stricter:\n'
             '    deny line when code in TPI and more than 3 TPI sessions within 12 months\n    message "m"\n    per P\n')
    assert run_lint(common=common, payer=payer) == []
    # the other way round, the payer's own rule never decides: reported, naming the included one
    looser = payer.replace("more than 3", "more than 8")
    (d,) = run_lint(common=common, payer=looser)
    assert d.code == "PR311" and d.span.path == "payer.policy"
    assert d.message == "rule `stricter` overlaps rule `often` (common.policy:5): `often` already denies every line `stricter` would"


def test_a_shadowed_rule_is_not_also_an_overlap():
    found = run_lint(pair("deny line when code in TPI and units > 1", "deny line when code in TPI and units > 1 and has modifier 25"))
    assert codes(found) == ["PR306"], render_all(found, {})


# ---- PR108: a policy that decides no claim -------------------------------------------------------


def test_a_policy_without_a_payer_that_nothing_includes():
    (d,) = run_lint(CLEAN.replace("  payer acme\n", ""))
    assert (d.code, d.span.line, d.span.col) == ("PR108", 1, 8)
    assert d.message == "policy `example` decides no claim: it has no `payer` and no policy includes it"
    assert "add `payer ID`" in d.help and "include example" in d.help


def test_an_included_policy_needs_no_payer():
    lib = 'policy lib "L"\n  source CPT "c"\n  codes TPI = 20552\n  rule r:\n    deny line when code in TPI and units > 1\n    message "m"\n    per CPT\n'
    assert run_lint(lib=lib, payer='policy acme-tpi "A"\n  payer acme\n  include lib\n') == []


def test_no_pr108_while_an_include_is_not_found():
    # `include commn` was meant to be `include common`: the unknown include is the error to fix
    lib = 'policy common "L"\n  source CPT "c"\n  codes TPI = 20552\n  rule r:\n    deny line when code in TPI and units > 1\n    message "m"\n    per CPT\n'
    found = run_lint(lib=lib, payer='policy acme-tpi "A"\n  payer acme\n  include commn\n')
    assert codes(found) == ["PR101"]


def test_lint_strict_fails_on_both_new_warnings(cli, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.policy").write_text(pair("deny line when code in TPI and more than 4 TPI sessions within 12 months",
                                                          "deny line when code in TPI and more than 6 TPI sessions within 12 months"))
    (tmp_path / "mine" / "b.policy").write_text(CLEAN.replace("  payer acme\n", "").replace("example", "forgot-payer"))
    res = cli("lint", "--policies", tmp_path / "mine")
    assert res.code == 0 and res.out.endswith("0 errors, 2 warnings\n"), res.out
    assert "warning[PR311]" in res.out and "warning[PR108]" in res.out
    assert cli("lint", "--strict", "--policies", tmp_path / "mine").code == 1


# ---- PR311's pair check, without comparing every pair (payrule.tools.implied) ---------------------


def _brute_first_overlapping(rules, items, targets):
    """The plain definition: for each target, the first other rule (in order) that passes every test."""
    from payrule.tools.implied import STRENGTH, covers, implied

    out = {}
    for j in targets:
        for i, r1 in enumerate(rules):
            r2 = rules[j]
            if i == j or r1.scope != r2.scope or STRENGTH[r1.action] < STRENGTH[r2.action] or not covers(r1, r2):
                continue
            why = implied(items[i], items[j])
            if why is None or (why == "" and r1.action == r2.action):
                continue
            out[j] = i
            break
    return out


def test_the_indexed_overlap_check_finds_what_comparing_every_pair_finds():
    """Random policies of limits, spacings, codes, actions, scopes, exceptions and dates: the sweep's first
    overlapping rule is the first that the plain pairwise definition gives, for every rule."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from payrule.lang.parser import parse
    from payrule.tools.implied import first_overlapping, unique
    from payrule.tools.linter import _flat_and

    limit = st.builds(lambda n, w, u, s: f"more than {n} {s} sessions " + (f"within {w} {u}" if w else "per calendar year"),
                      st.integers(1, 4), st.integers(0, 3), st.sampled_from(["days", "months"]), st.sampled_from(["TPI", "DN"]))
    spacing = st.builds(lambda d, s: f"less than {d} days after the last {s} session", st.integers(1, 4), st.sampled_from(["TPI", "DN"]))
    plain = st.sampled_from(["code in TPI", "code in DN", "units > 1", "has modifier 59"])
    rule = st.tuples(st.sampled_from(["deny", "review"]), st.sampled_from(["line", "claim"]),
                     st.lists(st.one_of(limit, spacing, plain), min_size=1, max_size=3),
                     st.sampled_from(["", "\n    unless claim has prior_auth", "\n    from 2024-01-01", "\n    until 2025-01-01"]))

    @settings(max_examples=300, deadline=None)
    @given(st.lists(rule, min_size=1, max_size=14))
    def same(rules):
        text = 'policy p "P"\n  payer p\n  codes TPI = 20552\n  codes DN = 20560\n' + "".join(
            f"  rule r{k}:\n    {action} {scope} when {' and '.join(conds)}{extra}\n"
            for k, (action, scope, conds, extra) in enumerate(rules))
        policy = parse(SourceFile("p.policy", text))
        rs = list(policy.rules)
        items = [unique(_flat_and(r.cond)) for r in rs]
        targets = range(len(rs))
        assert first_overlapping(rs, items, targets) == _brute_first_overlapping(rs, items, targets)

    same()


def test_lint_of_many_rules_compares_few_pairs(monkeypatch):
    """A policy of 3,000 rules (unit limits, session limits, spacings, of distinct sizes): the pair test runs
    a few times a rule, not for every pair (4.5 million times, 45 s, for 10,000 rules before). Of
    these, only spacings imply one another: less than 3 days after the last session is less than 6."""
    import payrule.tools.implied as implied_module

    rules = []
    for i in range(3000):
        cond = (f"units > {i + 2}", f"more than {i + 3} TPI sessions within {i + 1} days",
                f"less than {i + 1} days after the last TPI session")[i % 3]
        rules.append(f"  rule r{i}:\n    deny line when code in TPI and {cond}\n")
    text = 'policy many "Many"\n  payer many\n  source S "s"\n  codes TPI = 20552\n' + "".join(rules)
    calls = 0
    real = implied_module.implied

    def counted(*args):
        nonlocal calls
        calls += 1
        return real(*args)

    monkeypatch.setattr(implied_module, "implied", counted)
    found = lint([SourceFile("many.policy", text)])
    overlapping = {int(d.message.split("`")[1][1:]) for d in found if d.code == "PR311"}
    assert overlapping == set(range(2, 2997, 3))  # every spacing but the widest, the last
    assert not [d for d in found if d.code == "PR306"]
    assert calls < 3 * len(rules)
