"""Every example in docs/*.md is tested: policy blocks parse, check and compile; shown outputs match.

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
                                       exact report (the file is called `example.policy`)
    <!-- test: explains -->           a blockquote: one paragraph per rule of the policy block
                                       above it, each exactly what `payrule explain` says
    <!-- test: output [exit=N] -->     a ```console block `$ payrule ARGS` then its exact output
                                       (standard output, then standard error), run from the
                                       repository root
    ```pycon                           run as a doctest (a page's blocks share one session)
"""
from __future__ import annotations

import contextlib
import doctest
import io
import re
import shlex
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


PAGES = sorted(DOCS.glob("*.md"))
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
    shown = next((b for b in block.after[:1] if b.lang == "text"), None)
    assert shown is not None, f"{block.id}: a `fails` block needs the ```text report right after it"
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


@pytest.mark.parametrize("block", OUTPUT_BLOCKS, ids=ids(OUTPUT_BLOCKS))
def test_shown_output_matches(block, monkeypatch, request):
    assert block.lang == "console", f"{block.id}: `output` is for ```console blocks"
    first, _, expected = block.text.partition("\n")
    assert first.startswith("$ payrule "), f"{block.id}: a tested console block starts with `$ payrule ...`"
    want_exit = int(re.search(r"exit=(\d+)", block.mark).group(1)) if "exit=" in block.mark else 0
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", "80")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(shlex.split(first[2:])[1:])
        except SystemExit as exc:  # --help
            code = exc.code or 0
    assert code == want_exit, f"{block.id}: exit status {code}, the page says {want_exit}\n{err.getvalue()}"
    got = (out.getvalue() + err.getvalue()).rstrip("\n")
    if got != expected.rstrip("\n") and request.config.getoption("--update-golden"):
        page = block.path.read_text(encoding="utf-8")
        old = block.text.rstrip("\n")
        assert page.count(old) == 1, f"{block.id}: the shown block is not unique on its page"
        block.path.write_text(page.replace(old, first + "\n" + got), encoding="utf-8")
        return
    assert got == expected.rstrip("\n")


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
    assert len(POLICY_BLOCKS) >= 23
    assert len(CHECKED) >= 19
    assert len(EXPLAINS) >= 14
    assert len(OUTPUT_BLOCKS) >= 14
    assert len([b for b in POLICY_BLOCKS if b.mark_word == "fails"]) >= 2
    assert len(PYCON) >= 5
    assert len(FILE_BLOCKS) >= 5
    assert len(EXCERPTS) >= 2


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
