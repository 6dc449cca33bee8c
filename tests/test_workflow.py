"""An analyst's first hour (issue 15, item 5), as scenarios: files in tmp_path, the command line run on them,
its output and exit status checked.

- A new payer's policy in a folder of one's own includes `common-tpi`, lints, tests and checks beside the
  shipped policies, without copying anything; `--no-shipped` leaves them out; a policy of one's own in the
  way of a shipped one is refused with an error that names `--replace` and `--no-shipped`.
- `payrule test` takes several roots, follows symlinked folders, and its summary and exit status say
  when cases could not be run.
- A policy file named on the command line that is also on the policy path is one file, also when the
  shipped policies are a copy inside site-packages (a non-editable install).
- Every command prints a diagnostic with its code.
- Paths are reported as the user gave them (relative to the working directory when under it); the
  shipped policies always as `policies/...`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from payrule import loader

from conftest import POLICIES, ROOT, claim, tpi

HUMANA = """\
policy humana-tpi "Humana: trigger point injections"
  payer humana
  include common-tpi
  source HUMANA "Humana test policy: no more than two trigger point injection sessions within 90 days"

  rule frequency:
    deny line when code in TPI and more than 2 TPI sessions within 90 days
    message "{nth} trigger point injection session in 90 days; Humana allows 2 (next eligible {next_date})"
    per HUMANA
"""
FREQUENCY_LINE = 6  # the `rule frequency:` line

# Medicare's rules, as an analyst's own revision: 4 sessions in 12 months instead of 3.
MY_MEDICARE = """\
policy my-medicare "My Medicare: trigger point injections"
  payer medicare
  include common-tpi
  source MINE "my reading of the LCD: four sessions in 12 months"

  rule frequency:
    deny line when code in TPI and more than 4 TPI sessions within 12 months
    message "{nth} session in 12 months"
    per MINE
"""


def hum(claim_id, *lines, **kw):
    kw.setdefault("payer", "humana")
    return claim(claim_id, *lines, **kw)


CASE = {
    "name": "Third session in 90 days",
    "description": "Two paid sessions in the 90 days before; Humana allows two, so the third is denied.",
    "history": [hum("H1", tpi(date="2025-01-01")), hum("H2", tpi(date="2025-02-15"))],
    "claims": [hum("C1", tpi(date="2025-03-31"))],
    "expect": [{"claim": "C1", "line": 1, "decision": "deny", "rules": ["frequency"]}],
}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(path: Path, objs) -> Path:
    return write(path, "".join(json.dumps(o) + "\n" for o in objs))


@pytest.fixture
def mine(tmp_path, monkeypatch) -> Path:
    """tmp_path/mine/humana: the new payer's policy and one case, nothing copied; tmp_path is the working
    directory, with claims.jsonl and history.jsonl."""
    write(tmp_path / "mine" / "humana" / "trigger_points.policy", HUMANA)
    write(tmp_path / "mine" / "humana" / "cases" / "third.json", json.dumps(CASE, indent=1))
    jsonl(tmp_path / "claims.jsonl", CASE["claims"] + [claim("M1", tpi(modifiers=["50"]), patient="P9")])
    jsonl(tmp_path / "history.jsonl", CASE["history"])
    monkeypatch.chdir(tmp_path)
    return tmp_path / "mine"


def reasons(res) -> dict[str, list[tuple[str, str]]]:
    return {o["claim_id"]: [(r["rule"], r["source"]) for ln in o["lines"] for r in ln["reasons"]] for o in res.objects}


# ---- own policies beside the shipped ones --------------------------------------------------------


def test_a_new_payer_beside_the_shipped_policies_checks(cli, mine):
    res = cli("check", "--policies", "mine", "claims.jsonl", "--history", "history.jsonl")
    assert res.code == 0, res.err
    got = reasons(res)
    assert got["C1"] == [("frequency", f"mine/humana/trigger_points.policy:{FREQUENCY_LINE}")]
    assert got["M1"] == [("bilateral", "policies/medicare/trigger_points.policy:36")]  # the shipped Medicare rules


def test_a_new_payer_lints_clean_and_strict(cli, mine):
    res = cli("lint", "--strict", "--policies", "mine")
    assert (res.code, res.out, res.err) == (0, "0 errors, 0 warnings\n", "")
    res = cli("lint", "--strict", "mine/humana/trigger_points.policy")
    assert (res.code, res.out) == (0, "0 errors, 0 warnings\n")


def test_a_new_payer_tests_with_its_cases(cli, mine):
    for args in (["mine"], ["--policies", "mine"], ["mine/humana"], ["mine/humana/cases/third.json"]):
        res = cli("test", *args)
        assert res.code == 0, (args, res.out, res.err)
        assert res.out.splitlines()[-1] == "1 passed, 0 failed", args
    res = cli("test", "mine", "--coverage")
    assert re.search(rf"^humana-tpi/frequency +mine/humana/trigger_points\.policy:{FREQUENCY_LINE} +yes \(1\)", res.out, re.M), res.out


def test_a_new_payer_explains_compiles_and_whys(cli, mine, tmp_path):
    res = cli("explain", "--own", "mine/humana/trigger_points.policy")
    assert res.code == 0, res.err
    assert res.out.startswith("humana-tpi: Humana: trigger point injections\n  file      mine/humana/trigger_points.policy\n")
    res = cli("compile", "mine/humana/trigger_points.policy", "-o", "out")
    assert (res.code, res.out) == (0, "mine/humana/trigger_points.policy -> out/humana_tpi.py\n"), res.err
    assert f"source='mine/humana/trigger_points.policy:{FREQUENCY_LINE}'" in (tmp_path / "out" / "humana_tpi.py").read_text()
    res = cli("why", "claims.jsonl", "--history", "history.jsonl", "--claim", "C1", "--policies", "mine")
    assert res.code == 0, res.err
    assert "decision: DENY" in res.out and f"humana-tpi/frequency (deny line, mine/humana/trigger_points.policy:{FREQUENCY_LINE})" in res.out


def test_no_shipped_leaves_the_shipped_policies_out(cli, mine):
    res = cli("check", "--no-shipped", "--policies", "mine", "claims.jsonl")
    assert res.code == 2 and res.out == ""
    assert "mine/humana/trigger_points.policy:3:11: error[PR101]: include of unknown policy `common-tpi`" in res.err
    res = cli("lint", "--no-shipped", "--policies", "mine")
    assert res.code == 1 and "error[PR101]" in res.out
    res = cli("check", "--no-shipped", "claims.jsonl")
    assert (res.code, res.err) == (2, "payrule: error: --no-shipped leaves no policies: give your own with --policies DIR\n")


def test_a_policy_of_ones_own_for_a_shipped_payer_is_refused_saying_how_to_go_on(cli, mine):
    write(mine / "medicare" / "tpi.policy", MY_MEDICARE)
    res = cli("check", "--policies", "mine", "claims.jsonl")
    assert res.code == 2 and res.out == ""
    assert res.err.splitlines()[0] == ("mine/medicare/tpi.policy:2:9: error[PR105]: payer `medicare` already has a shipped policy, "
                                       "`medicare-tpi` (policies/medicare/trigger_points.policy)")
    assert ("= help: a claim's payer selects one policy: to use yours in its place, pass `--replace medicare-tpi`; "
            "to read your own policies alone, `--no-shipped`") in res.err
    assert res.err.endswith("1 error, 0 warnings\n")
    for replace in ("medicare-tpi", "medicare", "Medicare Part B"):  # the policy id, its payer or an alias
        res = cli("check", "--policies", "mine", "--replace", replace, "claims.jsonl", "--history", "history.jsonl")
        assert res.code == 0, (replace, res.err)
        assert reasons(res)["M1"] == [], replace  # no bilateral rule in mine
    res = cli("lint", "--policies", "mine")
    assert res.code == 1 and "error[PR105]" in res.out and "--replace medicare-tpi" in res.out


def test_a_policy_of_ones_own_with_a_shipped_id_is_refused_then_replaces_it_everywhere(cli, mine):
    common = (POLICIES / "common" / "trigger_points.policy").read_text(encoding="utf-8")
    write(mine / "common" / "tpi.policy", common.replace("units > 1", "units > 2"))  # an edited copy
    res = cli("check", "--policies", "mine", "claims.jsonl")
    assert res.code == 2
    assert "mine/common/tpi.policy:4:8: error[PR103]: policy `common-tpi` is also a shipped policy (policies/common/trigger_points.policy)" in res.err
    assert "pass `--replace common-tpi`; to read your own policies alone, `--no-shipped`; or give yours another id" in res.err
    two_units = jsonl(Path("units.jsonl"), [claim("U1", tpi(units=2))])
    res = cli("check", "--policies", "mine", "--replace", "common-tpi", two_units)
    assert res.code == 0, res.err
    assert reasons(res)["U1"] == []  # medicare-tpi, shipped, includes the edited common rules
    assert cli("check", two_units).objects[0]["decision"] == "deny"


def test_an_exact_copy_of_a_shipped_file_is_that_file(cli, mine):
    shutil.copytree(POLICIES / "common", mine / "common")
    res = cli("check", "--policies", "mine", "claims.jsonl", "--history", "history.jsonl")
    assert res.code == 0, res.err
    assert ("units", "policies/common/trigger_points.policy:52") not in reasons(res)["C1"]


@pytest.mark.parametrize("replace, message", [
    ("medicare-tp", "--replace medicare-tp: no shipped policy has the id or payer `medicare-tp` (did you mean `medicare-tpi`?); "
                    "the shipped policies are aetna-tpi, bcbs-tpi, cigna-tpi, common-tpi, emblemhealth-tpi, medicare-tpi"),
    ("aetna", "--replace aetna: none of your policies takes the place of the shipped `aetna-tpi` "
              "(policies/aetna/trigger_points.policy): give yours the id `aetna-tpi` or `payer aetna`, or leave --replace out"),
])
def test_a_replace_that_cannot_be_done_is_a_usage_error(cli, mine, replace, message):
    res = cli("check", "--policies", "mine", "--replace", replace, "claims.jsonl")
    assert (res.code, res.out, res.err) == (2, "", f"payrule: error: {message}\n")
    res = cli("check", "--no-shipped", "--policies", "mine", "--replace", "aetna", "claims.jsonl")
    assert res.err == "payrule: error: --replace with --no-shipped: there is no shipped policy to replace\n"


COMMANDS = {
    "check": ["claims.jsonl"],
    "why": ["claims.jsonl", "--claim", "C1"],
    "test": [],
    "lint": [],
    "explain": ["mine/humana/trigger_points.policy"],
    "compile": ["mine/humana/trigger_points.policy", "-o", "out"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_reads_the_shipped_policies_and_yours(cli, mine, command):
    res = cli(command, *COMMANDS[command], "--policies", "mine")
    assert res.code == 0, (res.out, res.err)
    write(mine / "medicare" / "tpi.policy", MY_MEDICARE)
    res = cli(command, *COMMANDS[command], "--policies", "mine")
    assert res.code == 2 if command != "lint" else res.code == 1
    assert "mine/medicare/tpi.policy:2:9: error[PR105]" in res.out + res.err and "--replace medicare-tpi" in res.out + res.err
    res = cli(command, *COMMANDS[command], "--policies", "mine", "--replace", "medicare-tpi")
    assert res.code == 0, (res.out, res.err)


# ---- payrule test: several roots, symlinks, an honest summary ------------------------------------


def test_payrule_test_takes_several_roots(cli, mine, tmp_path):
    other = tmp_path / "other"
    write(other / "globex" / "t.policy", HUMANA.replace("humana", "globex").replace("Humana", "Globex"))
    case = json.loads(json.dumps(CASE).replace("humana", "globex"))
    write(other / "globex" / "cases" / "third.json", json.dumps(case))
    for args in (["mine", "other"], ["--policies", "mine", "--policies", "other"]):
        res = cli("test", *args)
        assert res.code == 0, (args, res.out, res.err)
        assert res.out.splitlines()[-1] == "2 passed, 0 failed", args
        assert "mine/humana/cases ." in res.out and "other/globex/cases ." in res.out


def test_payrule_test_follows_a_symlinked_folder(cli, tmp_path, monkeypatch):
    real = tmp_path / "elsewhere" / "humana"
    write(real / "trigger_points.policy", HUMANA)
    write(real / "cases" / "third.json", json.dumps(CASE))
    (tmp_path / "mine").mkdir()
    os.symlink(real, tmp_path / "mine" / "humana", target_is_directory=True)
    os.symlink(tmp_path / "mine", tmp_path / "mine" / "loop", target_is_directory=True)  # a link back up: no loop
    monkeypatch.chdir(tmp_path)
    res = cli("test", "mine")
    assert res.code == 0, (res.out, res.err)
    assert res.out.splitlines()[-1] == "1 passed, 0 failed"
    jsonl(tmp_path / "claims.jsonl", CASE["claims"])
    jsonl(tmp_path / "history.jsonl", CASE["history"])
    res = cli("check", "--policies", "mine", "claims.jsonl", "--history", "history.jsonl")
    assert reasons(res)["C1"] == [("frequency", f"mine/humana/trigger_points.policy:{FREQUENCY_LINE}")]


def test_payrule_test_says_when_cases_were_not_run(cli, mine):
    broken = (mine / "humana" / "trigger_points.policy")
    broken.write_text(HUMANA.replace("code in TPI and more", "code in TPl and more"), encoding="utf-8")
    res = cli("test", "mine")
    assert res.code == 2
    assert res.out.splitlines()[-1] == "0 passed, 0 failed, 1 not run: the policies have errors (on standard error)"
    assert "mine/humana/trigger_points.policy:7:28: error[PR201]: unknown code set `TPl`" in res.err


def test_payrule_test_counts_a_case_for_a_payer_without_a_policy_as_an_error(cli, mine):
    case = json.loads(json.dumps(CASE).replace('"humana"', '"nobody"'))
    write(mine / "humana" / "cases" / "nobody.json", json.dumps(case))
    res = cli("test", "mine")
    assert res.code == 2
    assert res.out.splitlines()[-1] == "1 passed, 0 failed, 1 error"
    assert "no policy for payer 'nobody'" in res.out


# ---- a file named on the command line that is also on the policy path is one file ---------------


@pytest.fixture
def installed(tmp_path, monkeypatch) -> Path:
    """The shipped policies as a non-editable install has them: a copy inside site-packages."""
    site = tmp_path / "site-packages" / "payrule" / "policies"
    shutil.copytree(POLICIES, site)
    monkeypatch.setattr(loader, "default_policy_dir", lambda: site)
    monkeypatch.chdir(ROOT)
    return site


def test_compile_a_shipped_policy_from_the_repository(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    res = cli("compile", "policies/medicare/trigger_points.policy", "-o", tmp_path / "out")
    assert res.code == 0, res.err
    assert res.out == f"policies/medicare/trigger_points.policy -> {(tmp_path / 'out' / 'medicare_tpi.py').as_posix()}\n"


def test_compile_a_shipped_policy_after_a_non_editable_install(cli, installed, tmp_path):
    res = cli("compile", "policies/medicare/trigger_points.policy", "-o", tmp_path / "out")
    assert res.code == 0, res.err
    module = (tmp_path / "out" / "medicare_tpi.py").read_text()
    assert module.startswith("# Generated by payrule") and "source='policies/medicare/trigger_points.policy:30'" in module
    for command in (["explain", "policies/medicare/trigger_points.policy"], ["lint", "policies/medicare/trigger_points.policy"],
                    ["lint", "policies"], ["test", "policies/medicare"], ["check", "--policies", "policies", "examples/claims.jsonl"]):
        res = cli(*command)
        assert res.code == 0, (command, res.out, res.err)
    from payrule.api import compile_policy

    assert "policies/medicare/trigger_points.policy:30" in compile_policy(ROOT / "policies" / "medicare" / "trigger_points.policy")


def test_an_edited_copy_named_on_the_command_line_is_compiled(cli, installed, tmp_path):
    text = (POLICIES / "medicare" / "trigger_points.policy").read_text().replace("more than 3 TPI", "more than 5 TPI")
    edited = write(tmp_path / "medicare.policy", text)
    res = cli("compile", edited, "-o", tmp_path / "out")
    assert res.code == 0, res.err
    assert "5" in (tmp_path / "out" / "medicare_tpi.py").read_text()


def test_one_file_by_two_paths_is_read_once(cli, mine, tmp_path):
    os.symlink(mine, tmp_path / "link", target_is_directory=True)
    for args in (["compile", "mine/humana/trigger_points.policy", "./mine/humana/trigger_points.policy", "-o", "out"],
                 ["compile", "link/humana/trigger_points.policy", "--policies", "mine", "-o", "out"],
                 ["explain", str(mine / "humana" / "trigger_points.policy"), "--policies", "link"],
                 ["lint", "mine", "--policies", "link"]):
        res = cli(*args)
        assert res.code == 0, (args, res.err, res.out)
        assert "defined twice" not in res.out + res.err


# ---- every command prints the code ---------------------------------------------------------------


@pytest.mark.parametrize("command, args", [
    ("check", ["claims.jsonl"]), ("why", ["claims.jsonl", "--claim", "C1"]), ("test", ["mine"]),
    ("explain", ["mine/humana/trigger_points.policy"]), ("compile", ["mine/humana/trigger_points.policy", "-o", "out"]),
    ("lint", []),
])
def test_every_command_prints_a_policy_error_with_its_code(cli, mine, command, args):
    (mine / "humana" / "trigger_points.policy").write_text(HUMANA.replace("include common-tpi", "include common-tp"))
    res = cli(command, *args, "--policies", "mine")
    assert res.code in (1, 2)
    assert ("mine/humana/trigger_points.policy:3:11: error[PR101]: include of unknown policy `common-tp`\n"
            " 3 |   include common-tp\n") in res.out + res.err
    assert "= help: did you mean `common-tpi`?" in res.out + res.err


@pytest.mark.parametrize("command, args", [
    ("check", ["claims.jsonl", "--policies", "nowhere"]), ("why", ["claims.jsonl", "--claim", "C1", "--policies", "nowhere"]),
    ("test", ["--policies", "nowhere"]), ("lint", ["--policies", "nowhere"]),
    ("explain", ["nowhere.policy"]), ("compile", ["nowhere.policy", "-o", "out"]), ("lint", ["nowhere.policy"]),
    ("diff", ["nowhere.policy", "mine/humana/trigger_points.policy"]),
])
def test_every_command_prints_a_missing_policy_file_or_folder_with_its_code(cli, mine, command, args):
    res = cli(command, *args)
    assert res.code == 2
    assert res.err.startswith("payrule: error[PR005]: ") and "nowhere" in res.err, res.err


# ---- paths as the user gave them ------------------------------------------------------------------


def test_paths_relative_to_the_working_directory(cli, monkeypatch):
    monkeypatch.chdir(ROOT)
    res = cli("check", "--policies", "docs/examples/acme", "docs/examples/acme/claims.jsonl")
    sources = {s for o in res.objects for ln in o["lines"] for r in ln["reasons"] for s in [r["source"]]}
    assert "docs/examples/acme/trigger_points.policy:14" in sources
    assert {s.rpartition(":")[0] for s in sources} == {"docs/examples/acme/trigger_points.policy", "policies/common/trigger_points.policy"}
    monkeypatch.chdir(ROOT / "docs")  # elsewhere, the shipped policies are still `policies/...`
    res = cli("check", "--policies", "examples/acme", "examples/acme/claims.jsonl")
    sources = {r["source"].rpartition(":")[0] for o in res.objects for ln in o["lines"] for r in ln["reasons"]}
    assert sources == {"examples/acme/trigger_points.policy", "policies/common/trigger_points.policy"}


def test_paths_outside_the_working_directory_are_shown_as_given(cli, mine, tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    for given in ("../mine", str(mine)):
        res = cli("check", "--policies", given, "../claims.jsonl", "--history", "../history.jsonl")
        assert reasons(res)["C1"] == [("frequency", f"{given}/humana/trigger_points.policy:{FREQUENCY_LINE}")], given
        res = cli("lint", f"{given}/humana/trigger_points.policy")
        assert res.code == 0


def test_the_shipped_policies_are_policies_slash_whatever_the_working_directory(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    jsonl(tmp_path / "c.jsonl", [claim("M1", tpi(modifiers=["50"]))])
    res = cli("check", "c.jsonl")
    assert reasons(res)["M1"] == [("bilateral", "policies/medicare/trigger_points.policy:36")]
    res = cli("check", "--policies", POLICIES, "c.jsonl")  # the shipped folder named: still the shipped files
    assert reasons(res)["M1"] == [("bilateral", "policies/medicare/trigger_points.policy:36")]
