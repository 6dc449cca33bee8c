"""Every example in docs/*.md and README.md is tested: policy blocks parse, check and compile; every
console block runs and its output matches.

The conventions (also on docs/contributing.md): an HTML comment right above a block says how it is tested.

    ```policy                          a whole policy: parses, checks and compiles (includes are
                                       looked up among the shipped policies)
    <!-- test: statements -->          statements (sets, sources, rules), checked inside a policy
                                       `doc-example` that declares the code sets of common-tpi
    <!-- test: condition -->           a condition, checked as `rule example: deny line when ...`
                                       in that same policy
    <!-- test: excerpt FILE -->        each line of the block appears in FILE (for policy blocks,
                                       comments aside); `compiled:POLICY` is the module
                                       `payrule compile` writes for a shipped policy
    <!-- test: file FILE -->           the block is exactly the content of FILE
    <!-- test: fails -->               the policy is rejected; the ```text block after it is the
                                       exact report (the file is called `example.policy`), or a
                                       console block after it runs payrule on it (`with=FILE`)
    <!-- test: explains -->           a blockquote: one paragraph per rule of the policy block
                                       above it, each exactly what `payrule explain` says
    <!-- test: output [exit=N] [with=FILE | in=scratch] -->
                                       a ```console block: `$ COMMAND` lines, each followed by its
                                       exact output (standard output, then standard error), run
                                       from the repository root; `/tmp/` is a fresh scratch folder;
                                       a line `...` stands for any lines; in=scratch runs in that
                                       scratch folder instead, and with=FILE too, where the policy
                                       block above is saved as FILE
    <!-- test: not run: REASON -->     a block of commands that cannot run in a test (an install,
                                       a server), and why
    <!-- test: synopsis -->            a line per command, `payrule COMMAND [OPTIONS]`: every
                                       command is listed, every option named is real
    ```pycon                           run as a doctest (a page's blocks share one session)

Every ```console, ```sh or ```bash block (or any block starting `$ `) is `output` or `not run`.
`pytest tests/test_docs.py --update-golden` writes what the commands print into the `output` blocks
(keeping the page's `...`): read the diff before committing it.
"""
from __future__ import annotations

import contextlib
import difflib
import doctest
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import payrule.api
import payrule.tools.explain
from payrule.cli import main
from payrule.codegen.compiler import compile_ir, compile_model
from payrule.lang import nodes
from payrule.lang.diagnostics import DiagnosticError, render_all
from payrule.lang.parser import parse
from payrule.lang.source import SourceFile
from payrule.loader import discover, load_workspace
from payrule.tools.explain import explain_rule

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SHIPPED = ROOT / "policies"
EXAMPLE = "example.policy"

_FENCE = re.compile(r"^(?P<indent>[ ]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)[^`]*$")
_MARK = re.compile(r"^\s*<!--\s*test:\s*(?P<what>.*?)\s*-->\s*$")


@dataclass
class Block:
    path: Path
    line: int
    lang: str
    text: str
    mark: str | None = None
    kind: str = "fence"  # or "quote"
    after: list = field(default_factory=list, repr=False)  # the blocks after this one in the page

    def __repr__(self) -> str:
        return f"<block {self.id}>"

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"

    @property
    def mark_word(self) -> str | None:
        return self.mark.split()[0] if self.mark else None

    @property
    def not_run(self) -> str | None:
        """The reason given by `<!-- test: not run: REASON -->`, else None."""
        if not self.mark or not self.mark.startswith("not run"):
            return None
        return self.mark[len("not run"):].strip(" :")

    @property
    def mark_arg(self) -> str:
        return self.mark.split(None, 1)[1] if self.mark and " " in self.mark else ""


def read_blocks(path: Path) -> list[Block]:
    """The fenced blocks and tested blockquotes of one Markdown page, in order."""
    lines = path.read_text(encoding="utf-8").split("\n")
    out: list[Block] = []
    mark: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _MARK.match(line)
        if m:
            mark = m.group("what")
            i += 1
            continue
        f = _FENCE.match(line)
        if f:
            indent, fence = len(f.group("indent")), f.group("fence")
            body = []
            j = i + 1
            while j < len(lines) and not (lines[j].strip().startswith(fence) and lines[j].strip().strip(fence[0]) == ""):
                body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
                j += 1
            out.append(Block(path, i + 1, f.group("info").lower(), "\n".join(body), mark))
            mark = None
            i = j + 1
            continue
        if mark is not None and mark.split()[0] == "explains" and line.startswith(">"):
            body = []
            j = i
            while j < len(lines) and lines[j].startswith(">"):
                body.append(lines[j][1:].strip())
                j += 1
            out.append(Block(path, i + 1, "", "\n".join(body), mark, kind="quote"))
            mark = None
            i = j
            continue
        if line.strip():
            mark = None  # a marker belongs to the block right under it
        i += 1
    for n, b in enumerate(out):
        b.after = out[n + 1:]
    return out


README = ROOT / "README.md"
PAGES = sorted(DOCS.glob("*.md")) + [README]
BLOCKS = [b for p in PAGES for b in read_blocks(p)]
POLICY_BLOCKS = [b for b in BLOCKS if b.lang == "policy"]
OUTPUT_BLOCKS = [b for b in BLOCKS if b.kind == "fence" and b.mark_word == "output"]
EXPLAINS = [b for b in BLOCKS if b.kind == "quote"]
FILE_BLOCKS = [b for b in BLOCKS if b.mark_word == "file"]
PYCON = [b for b in BLOCKS if b.lang == "pycon"]


def ids(blocks):
    return [b.id for b in blocks]


# ---- policies ----------------------------------------------------------------------------------


def _shipped_by_id() -> dict[str, tuple[Path, str]]:
    out = {}
    for p, name in discover(SHIPPED):
        pol = parse(SourceFile.read(p, name))
        out[pol.id.value] = (p, name)
    return out


SHIPPED_IDS = _shipped_by_id()


def _common_sets() -> str:
    """The set declarations of the shipped common-tpi policy, as written there."""
    path, name = SHIPPED_IDS["common-tpi"]
    src = SourceFile.read(path, name)
    return "\n".join(
        "\n".join(src.line_text(n) for n in range(s.span.line, s.span.end_line + 1))
        for s in parse(src).of_type(nodes.SetDecl)
    )


COMMON_SETS = _common_sets()


def policy_text(block: Block) -> str:
    """The whole policy a block stands for (a fragment is wrapped as the conventions say)."""
    body = "\n".join("  " + l if l.strip() else l for l in block.text.split("\n"))
    head = f'policy doc-example "A docs example"\n{COMMON_SETS}\n'
    if block.mark_word == "statements":
        return f"{head}{body}\n"
    if block.mark_word == "condition":
        return f"{head}  rule example: deny line when\n{body}\n"
    return block.text + "\n"


def _includes(text: str) -> list[tuple[Path, str]]:
    """The shipped policy files a text includes, directly or not."""
    try:
        pol = parse(SourceFile(EXAMPLE, text))
    except DiagnosticError:
        return []
    todo = [i.policy.value for i in pol.of_type(nodes.Include)]
    seen: dict[str, tuple[Path, str]] = {}
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in SHIPPED_IDS:
            continue
        seen[pid] = SHIPPED_IDS[pid]
        todo += [i.policy.value for i in parse(SourceFile.read(*seen[pid])).of_type(nodes.Include)]
    return sorted(seen.values(), key=lambda f: f[1])


def load(text: str):
    """The block checked together with the shipped policies it includes (and only those)."""
    return load_workspace(files=_includes(text), texts=[SourceFile(EXAMPLE, text)])


def own_model(ws):
    (model,) = [m for m in ws.policies.values() if m.path == EXAMPLE]
    return model


CHECKED = [b for b in POLICY_BLOCKS if b.mark_word in (None, "statements", "condition")]


@pytest.mark.parametrize("block", CHECKED, ids=ids(CHECKED))
def test_policy_block_parses_checks_and_compiles(block):
    text = policy_text(block)
    ws = load(text)
    assert not ws.errors, f"{block.id}: the example does not check:\n" + render_all(ws.diagnostics, ws.sources)
    model = own_model(ws)
    source = compile_ir(model)
    compile(source, f"<{block.id}>", "exec")


@pytest.mark.parametrize("block", [b for b in POLICY_BLOCKS if b.mark_word == "fails"],
                         ids=ids([b for b in POLICY_BLOCKS if b.mark_word == "fails"]))
def test_failing_policy_block_reports_what_the_page_shows(block):
    ws = load(policy_text(block))
    assert ws.errors, f"{block.id}: the example is meant to be rejected but checks clean"
    after = block.after[0] if block.after else None
    if after is not None and after.mark_word == "output" and _mark_option(after, "with"):
        return  # the console block after it runs payrule on it, and shows what it prints
    shown = after if after is not None and after.lang == "text" else None
    assert shown is not None, f"{block.id}: a `fails` block needs the ```text report right after it " \
                              "(or a console block `output with=FILE` that runs payrule on it)"
    assert render_all(ws.diagnostics, ws.sources) == shown.text.rstrip("\n")


@pytest.mark.parametrize("block", EXPLAINS, ids=ids(EXPLAINS))
def test_explained_sentences_match_payrule_explain(block):
    before = [b for b in BLOCKS if b.path == block.path and b.lang == "policy" and b.line < block.line]
    assert before, f"{block.id}: `explains` needs a policy block above it"
    source = before[-1]
    ws = load(policy_text(source))
    assert not ws.errors, render_all(ws.diagnostics, ws.sources)
    model = own_model(ws)
    said = [explain_rule(model, r) for r in model.rules if r.policy == model.id]
    shown = [" ".join(p.split()) for p in re.split(r"\n\s*\n", block.text) if p.strip()]
    assert shown == said


EXCERPTS = [b for b in BLOCKS if b.mark_word == "excerpt"]


def excerpt_source(arg: str) -> str:
    """`FILE`, or `compiled:POLICY` for the module `payrule compile` writes for a shipped policy."""
    if arg.startswith("compiled:"):
        path = ROOT / arg.split(":", 1)[1]
        ws = load_workspace(dirs=[SHIPPED])
        return compile_model(ws.model_for_file(path))
    return (ROOT / arg).read_text(encoding="utf-8")


@pytest.mark.parametrize("block", EXCERPTS, ids=ids(EXCERPTS))
def test_excerpt_appears_in_its_source(block):
    def statements(text):
        keep = (lambda l: l) if block.lang != "policy" else (lambda l: l.split("#")[0])
        return {re.sub(r"\s+", " ", keep(l)).strip() for l in text.split("\n")} - {""}

    whole = statements(excerpt_source(block.mark_arg))
    missing = statements(block.text) - whole
    assert not missing, f"{block.id}: not in {block.mark_arg}: {sorted(missing)}"


@pytest.mark.parametrize("block", FILE_BLOCKS, ids=ids(FILE_BLOCKS))
def test_block_is_the_file_it_names(block):
    target = ROOT / block.mark_arg
    assert target.is_file(), f"{block.id}: {block.mark_arg} does not exist"
    assert block.text.rstrip("\n") == target.read_text(encoding="utf-8").rstrip("\n")
    if target.suffix == ".policy":
        ws = load_workspace(files=[(target, block.mark_arg)], dirs=[SHIPPED])
        assert not ws.errors, render_all(ws.diagnostics, ws.sources)


# ---- shown outputs -----------------------------------------------------------------------------
#
# A ```console block marked `output` is one or more commands, each `$ COMMAND` (a line ending in `\`
# continues on the next), followed by its exact output: standard output, then standard error. A line
# that is only `...` stands for any number of lines (doctest's ellipsis, whole lines only). Each block
# runs on its own, from the repository root, with COLUMNS=80 and empty standard input, in a fresh
# scratch folder that `/tmp/` stands for (so `sed ... > /tmp/x.policy` writes nowhere shared, and the
# output shows `/tmp/x.policy`). With `in=scratch` the block runs in that scratch folder instead; with
# `with=FILE` too, and the folder holds the ```policy block above it saved as FILE. `exit=N` is the last command's exit status (0 by
# default); the commands before it must exit 0.
#
# `$ payrule ARGS` runs in-process; any other command line (a pipe, a redirection, `sed`, `cp`) runs
# with bash, with this interpreter's bin folder first on PATH so that `payrule` is this checkout's.

SHELL_LANGS = {"console", "sh", "bash", "shell", "shell-session", "zsh"}
_SHELL_SYNTAX = set("|&;<>()$`")


@dataclass
class Command:
    line: int  # of the page
    raw: list[str]  # the command's lines as the page shows them, `$ ` included
    shown: list[str]  # the output the page shows

    @property
    def text(self) -> str:
        parts = [self.raw[0][2:]] + [l.strip() for l in self.raw[1:]]
        return " ".join(p[:-1].rstrip() if p.endswith("\\") else p for p in parts)


def commands_of(block: Block) -> list[Command]:
    out: list[Command] = []
    lines = block.text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            raw = [line]
            while raw[-1].endswith("\\") and i + 1 < len(lines):
                i += 1
                raw.append(lines[i])
            out.append(Command(block.line + 1 + i - len(raw) + 1, raw, []))
        else:
            assert out, f"{block.id}: a console block starts with `$ COMMAND`"
            out[-1].shown.append(line)
        i += 1
    for c in out:
        while c.shown and not c.shown[-1].strip():
            c.shown.pop()
    return out


def _elided_parts(shown: list[str]) -> list[list[str]]:
    """The stretches of `shown` between its `...` lines (one stretch when there are none)."""
    parts: list[list[str]] = [[]]
    for line in shown:
        if line.strip() == "...":
            parts.append([])
        else:
            parts[-1].append(line)
    return parts


def output_matches(shown: list[str], got: list[str]) -> bool:
    """`shown` is `got`, where a line `...` in `shown` stands for any number of lines."""
    parts = _elided_parts(shown)
    if len(parts) == 1:
        return shown == got
    first, *middle, last = parts
    end = len(got) - len(last)
    if got[:len(first)] != first or end < len(first) or got[end:] != last:
        return False
    pos = len(first)
    for seg in middle:
        hit = next((k for k in range(pos, end - len(seg) + 1) if got[k:k + len(seg)] == seg), None)
        if hit is None:
            return False
        pos = hit + len(seg)
    return True


def _with_ellipsis(shown: list[str], got: list[str]) -> list[str] | None:
    """The new output for --update-golden, eliding what the page elided: as many lines before the first
    `...` and after the last; a stretch between two `...` is found again by the start of its first line
    (up to a parenthesis, where a line number would change). None when it cannot be found."""
    parts = _elided_parts(shown)
    if len(parts) == 1:
        return got
    dots = [line for line in shown if line.strip() == "..."]
    first, *middle, last = parts
    out, pos = got[:len(first)], len(first)
    end = len(got) - len(last)
    for n, seg in enumerate(middle):
        key = seg[0].split(" (")[0] if seg else ""
        hit = next((k for k in range(pos, end) if got[k].startswith(key)), None) if seg else pos
        if hit is None:
            return None
        out += [dots[n]] + got[hit:hit + len(seg)]
        pos = hit + len(seg)
    return out + [dots[-1]] + (got[end:] if last else [])


def _mark_option(block: Block, name: str) -> str | None:
    m = re.search(rf"\b{name}=(\S+)", block.mark or "")
    return m.group(1) if m else None


def run_command(command: str, cwd: Path, scratch: Path, monkeypatch) -> tuple[int, str]:
    """Run one command line the way the page says; its exit status and its output (stdout, stderr)."""
    text = command.replace("/tmp/", f"{scratch}/")
    monkeypatch.chdir(cwd)
    words = shlex.split(text)
    if words and words[0] == "payrule" and not (_SHELL_SYNTAX & set(text)):
        out, err = io.StringIO(), io.StringIO()
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b""), encoding="utf-8"))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(words[1:])
            except SystemExit as exc:  # --help, usage errors
                code = exc.code if isinstance(exc.code, int) else 0
        got = out.getvalue() + err.getvalue()
    else:
        env = dict(os.environ, COLUMNS="80", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        run = subprocess.run(["bash", "-c", text], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=300)
        code, got = run.returncode, run.stdout + run.stderr
    return code, _unmap(got, scratch, cwd)


def _unmap(text: str, scratch: Path, cwd: Path) -> str:
    """The output as it reads with `/tmp` for the scratch folder; a `____ title ____` rule that named the
    scratch folder is centred again, as it would be around the shorter name."""
    names = {str(scratch.resolve()), str(scratch)}
    if not scratch.resolve().samefile(cwd):
        names.add(os.path.relpath(scratch, cwd))
    forms = sorted(names, key=len, reverse=True)
    out = []
    for line in text.split("\n"):
        new = line
        for form in forms:
            new = new.replace(form, "/tmp")
        rule = re.fullmatch(r"_+( .* )_+", new)
        if new != line and rule:
            pad = max(len(line) - len(rule.group(1)), 8)
            new = "_" * (pad // 2) + rule.group(1) + "_" * (pad - pad // 2)
        out.append(new)
    return "\n".join(out)


def _policy_above(block: Block) -> Block:
    before = [b for b in BLOCKS if b.path == block.path and b.lang == "policy" and b.line < block.line]
    assert before, f"{block.id}: `with=FILE` needs a ```policy block above it"
    return before[-1]


@pytest.fixture
def scratch():
    """A fresh folder with a short name (so that output naming it reads as it would with `/tmp`)."""
    path = Path(tempfile.mkdtemp(prefix="payrule-docs-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("block", OUTPUT_BLOCKS, ids=ids(OUTPUT_BLOCKS))
def test_shown_output_matches(block, monkeypatch, scratch, request):
    assert block.lang == "console", f"{block.id}: `output` is for ```console blocks"
    commands = commands_of(block)
    assert commands, f"{block.id}: no `$ COMMAND` in the block"
    want_exit = int(_mark_option(block, "exit") or 0)
    monkeypatch.setenv("COLUMNS", "80")
    cwd = ROOT
    saved = _mark_option(block, "with")
    if saved:
        target = scratch / saved
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_policy_above(block).text + "\n", encoding="utf-8")
    if saved or _mark_option(block, "in") == "scratch":
        cwd = scratch
    update = request.config.getoption("--update-golden")
    wrong: list[str] = []
    new_text: list[str] = []
    for n, c in enumerate(commands):
        code, got = run_command(c.text, cwd, scratch, monkeypatch)
        expected_code = want_exit if n == len(commands) - 1 else 0
        assert code == expected_code, (
            f"{block.path.relative_to(ROOT).as_posix()}:{c.line}: `{c.text}` exited {code}, the page says "
            f"{expected_code}\n{got}")
        got_lines = got.rstrip("\n").split("\n") if got.strip() else []
        if not output_matches(c.shown, got_lines):
            diff = "\n".join(difflib.unified_diff(c.shown, got_lines, "the page", "payrule", lineterm=""))
            wrong.append(f"{block.path.relative_to(ROOT).as_posix()}:{c.line}: the output of `{c.text}` "
                         f"is not what the page shows:\n{diff}")
            elided = _with_ellipsis(c.shown, got_lines)
            if update:
                assert elided is not None, f"{wrong[-1]}\n(a stretch between two `...` is gone: update this block by hand)"
            got_lines = elided or got_lines
        else:
            got_lines = c.shown
        new_text += c.raw + got_lines
    if wrong and update:
        page = block.path.read_text(encoding="utf-8")
        old = block.text.rstrip("\n")
        assert page.count(old) == 1, f"{block.id}: the shown block is not unique on its page"
        block.path.write_text(page.replace(old, "\n".join(new_text)), encoding="utf-8")
        return
    assert not wrong, "\n\n".join(wrong) + "\n\n(after checking the new output: pytest tests/test_docs.py --update-golden)"


PYCON_PAGES = sorted({b.path for b in PYCON})


@pytest.mark.parametrize("page", PYCON_PAGES, ids=[p.name for p in PYCON_PAGES])
def test_python_examples_run(page, monkeypatch):
    """The ```pycon blocks of a page, in order, as one doctest session (they share their names)."""
    monkeypatch.chdir(ROOT)
    globs: dict = {}
    for block in [b for b in PYCON if b.path == page]:
        test = doctest.DocTestParser().get_doctest(block.text, globs, block.id, str(block.path), block.line)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        report = io.StringIO()
        runner.run(test, out=report.write, clear_globs=False)
        globs.update(test.globs)  # a DocTest runs in a copy of the names it is given
        assert runner.failures == 0, report.getvalue()
        assert test.examples, f"{block.id}: a pycon block with no example"


@pytest.mark.parametrize("module", [payrule.api, payrule.tools.explain], ids=lambda m: m.__name__)
def test_docstring_examples_on_the_api_page_run(module, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=False)
    assert result.attempted > 0 and result.failed == 0


# ---- guards ------------------------------------------------------------------------------------


def test_blocks_were_found():
    """sqlglot's guard: if the page parser broke, the tests above would pass on nothing."""
    assert len(POLICY_BLOCKS) >= 40
    assert len(CHECKED) >= 30
    assert len(EXPLAINS) >= 20
    assert len(OUTPUT_BLOCKS) >= 35
    assert sum(len(commands_of(b)) for b in OUTPUT_BLOCKS) >= 40
    assert len([b for b in POLICY_BLOCKS if b.mark_word == "fails"]) >= 8
    assert len(PYCON) >= 6
    assert len(FILE_BLOCKS) >= 8
    assert len(EXCERPTS) >= 3
    assert len(SYNOPSES) >= 1
    assert any(b.path == README for b in OUTPUT_BLOCKS + PYCON + POLICY_BLOCKS)


def _is_commands(b: Block) -> bool:
    return b.kind == "fence" and (b.lang in SHELL_LANGS or b.text.lstrip().startswith("$ "))


def test_every_console_block_runs_or_says_why_not():
    """A block of commands either runs (`output`) or says why it cannot (`not run: REASON`)."""
    bad = []
    for b in BLOCKS:
        if not _is_commands(b) or b.mark_word == "output":
            continue
        if b.not_run is None:
            bad.append(f"{b.id}: a ```{b.lang or 'text'} block of commands is not run: mark it "
                       "`<!-- test: output -->` with its real output, or `<!-- test: not run: WHY -->`")
        elif not b.not_run:
            bad.append(f"{b.id}: `not run` needs a reason")
    for b in OUTPUT_BLOCKS:
        if b.lang != "console":
            bad.append(f"{b.id}: `output` is for ```console blocks")
    assert not bad, "\n".join(bad)




def test_no_indented_code_block_of_commands():
    """Commands in an indented (unfenced) code block would escape the test above: fence them."""
    words = "|".join(sorted(_subcommands()))
    command = re.compile(rf"^(?: {{4}}|\t)+(?:\$ |(?:\.venv/bin/)?payrule (?:{words})\b|\.venv/bin/|python3? -m |pip install )")
    bad = []
    for page in PAGES:
        fenced = False
        fence = ""
        for n, line in enumerate(page.read_text(encoding="utf-8").split("\n"), 1):
            f = _FENCE.match(line)
            if f and not fenced:
                fenced, fence = True, f.group("fence")
                continue
            if fenced:
                if line.strip().startswith(fence) and line.strip().strip(fence[0]) == "":
                    fenced = False
                continue
            if command.match(line):
                bad.append(f"{page.relative_to(ROOT).as_posix()}:{n}: {line.strip()}")
    assert not bad, "commands in an indented code block (use a fenced ```console block):\n" + "\n".join(bad)


def _subcommands() -> set[str]:
    from payrule.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return set(sub.choices)


def _help(command: str) -> str:
    from payrule.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices[command].format_help()


SYNOPSES = [b for b in BLOCKS if b.mark_word == "synopsis"]


@pytest.mark.parametrize("block", SYNOPSES, ids=ids(SYNOPSES))
def test_command_synopsis_names_every_command_and_real_options(block):
    """A `synopsis` block: a line per command, `payrule COMMAND ...`; every command is there, and every
    option a line names is one of that command's."""
    seen = set()
    for n, line in enumerate(block.text.split("\n"), block.line + 1):
        if not line.strip():
            continue
        words = line.split("#")[0].split()
        assert words[:1] == ["payrule"] and len(words) > 1, f"{block.path.name}:{n}: not `payrule COMMAND ...`"
        command = words[1]
        assert command in _subcommands(), f"{block.path.name}:{n}: there is no command `{command}`"
        seen.add(command)
        helptext = _help(command)
        for opt in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", line.split("#")[0]):
            assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", helptext), \
                f"{block.path.name}:{n}: `payrule {command}` has no option {opt}"
    assert seen == _subcommands(), f"{block.id}: commands missing: {sorted(_subcommands() - seen)}"


def test_cli_reference_lists_every_command():
    table = (DOCS / "cli.md").read_text(encoding="utf-8").split("## ")[0]
    listed = set(re.findall(r"^\| \[`([\w-]+)`\]", table, re.M))
    assert listed == _subcommands(), f"docs/cli.md's command table: missing {sorted(_subcommands() - listed)}, " \
                                     f"not commands {sorted(listed - _subcommands())}"


README_COMMANDS = [m.group(1) for m in re.finditer(r"`(payrule [\w-]+ [^`]+)`", README.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("command", README_COMMANDS)
def test_readme_commands_run(command, monkeypatch, scratch):
    """The commands the README names inline (its console blocks are run above) work as written."""
    code, got = run_command(command, ROOT, scratch, monkeypatch)
    assert code == 0, f"README.md: `{command}` exited {code}:\n{got}"
    assert got.strip()


def test_every_policy_block_is_tested():
    """An unmarked block that is not a whole policy would fail to parse; say which mark it needs."""
    known = {None, "statements", "condition", "excerpt", "file", "fails"}
    for b in POLICY_BLOCKS:
        assert b.mark_word in known, f"{b.id}: unknown test mark {b.mark!r}"
    for b in BLOCKS:
        if b.mark_word == "output":
            assert b.lang == "console", b.id


def _features(cond: nodes.Cond, out: set) -> None:
    match cond:
        case nodes.And(items=items) | nodes.Or(items=items):
            out.add(type(cond).__name__)
            for c in items:
                _features(c, out)
        case nodes.Not(item=item):
            out.add("Not")
            _features(item, out)
        case nodes.CodeIn(negated=neg):
            out.add("code not in" if neg else "code in")
        case nodes.CodeIs():
            out.add("code is")
        case nodes.Has(negated=neg, value=v, set=s):
            word = "lacks" if neg else "has"
            out.add(f"{word} in set" if s is not None else f"{word} value" if v is not None else word)
            if v is not None:
                out.add("quoted value" if v.quoted else "code value")
        case nodes.Compare(distinct=d, op=op):
            out.add("distinct" if d else "units")
            out.add(f"op {op}")
        case nodes.SameDay(earlier=e, sharing=sh, lacking=la):
            out.add("same day")
            if e:
                out.add("earlier")
            if sh is not None:
                out.add("sharing")
            if la is not None:
                out.add("lacking")
        case nodes.SessionLimit(window=w):
            out.add(f"limit {w.unit}")
        case nodes.Spacing():
            out.add("spacing")


def test_every_construct_has_a_tested_example():
    seen: set[str] = set()
    for b in CHECKED:
        pol = parse(SourceFile(EXAMPLE, policy_text(b)))
        for s in pol.statements:
            seen.add(type(s).__name__)
            if isinstance(s, nodes.SetDecl):
                seen.add(f"set {s.kind}")
                seen.update("range" for m in s.members if isinstance(m, nodes.Range))
            if isinstance(s, nodes.Rule):
                seen.update({s.action, s.scope})
                if s.message is not None:
                    seen.add("message")
                if s.cite is not None:
                    seen.add("per")
                _features(s.cond, seen)
    wanted = {
        "Payer", "Include", "Source", "SetDecl", "Rule", "set codes", "set diagnoses", "set stems",
        "set names", "range", "deny", "review", "line", "claim", "message", "per", "And", "Or", "Not",
        "code in", "code not in", "code is", "has", "lacks", "has value", "lacks value", "has in set",
        "lacks in set", "quoted value", "code value", "units", "distinct", "op >", "op <", "same day",
        "earlier", "sharing", "lacking", "limit days", "limit months", "limit calendar year", "spacing",
    }
    assert wanted - seen == set()
