"""mkdocs hooks: pages written at build time from the policy files and the docstrings.

- The policy catalog: `catalog/index.md` and one page per shipped policy (`catalog/<policy id>.md`):
  title, payer, sources, every rule in plain English (payrule.tools.explain), the rule as written, and
  the policy test cases (`policies/<folder>/cases/*.json`) that cover it. The nav entry
  `Policy catalog: catalog/index.md` in mkdocs.yml becomes a section holding all of them.
- The Python API page: `<!-- generated: python-api -->` in `python-api.md` is replaced by each
  public function's and class's signature and docstring.
- "Edit this page" links go to the file a page is written from: a policy's catalog page to the policy
  file, the changelog page to `CHANGELOG.md` (`edit_uri` is relative to `docs/`).

Nothing here knows about a particular policy: a new policy file gets its page on the next build.
"""
from __future__ import annotations

import importlib
import inspect
import json
import logging
import pkgutil
import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

from payrule import runtime
from payrule.lang.diagnostics import render_all
from payrule.lang.ir import Policy as Model
from payrule.lang.ir import Rule as CheckedRule
from payrule.loader import load_workspace
from payrule.tools.explain import codes_words, explain_rule, in_force_words, md_escape, message_text

log = logging.getLogger("mkdocs.hooks.catalog")

CATALOG = "catalog"
NAV_ENTRY = f"{CATALOG}/index.md"
API_MARKER = "<!-- generated: python-api -->"
EDIT_ELSEWHERE = {"changelog.md": "../CHANGELOG.md"}  # a page written from a file outside docs/
HERE = Path(__file__).resolve().parent

_state: dict = {}


# ---- reading policies and their cases ------------------------------------------------------------


@dataclass
class Case:
    name: str
    description: str
    path: str  # as shown: policies/<folder>/cases/<file>.json
    page: str  # the catalog page (policy id) the case is listed on
    claims: list
    history: list
    expect: list
    anchor: str = ""


@dataclass
class Coverage:
    """Which cases make a rule fire, and which check a line it could fire on and expect it not to."""

    fires: list = field(default_factory=list)  # [(Case, expect entry)]
    quiet: list = field(default_factory=list)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "case"


def load_policies(root: Path) -> dict[str, Model]:
    ws = load_workspace(dirs=[root / "policies"])
    if ws.errors:
        raise PluginError("the shipped policies have errors:\n" + render_all(ws.diagnostics, ws.sources))
    return ws.policies


def page_of_folder(models: dict[str, Model], folder: str) -> str | None:
    """The catalog page of a `policies/<folder>/`: its payer policy, else its first policy."""
    here = sorted((m for m in models.values() if m.path.split("/")[1:2] == [folder]),
                  key=lambda m: (m.payer is None, m.id))
    return here[0].id if here else None


def load_cases(root: Path, models: dict[str, Model]) -> list[Case]:
    """Every `policies/<folder>/cases/*.json`; a case that cannot be read is a warning (strict: an error)."""
    cases = []
    for path in sorted((root / "policies").glob("*/cases/*.json")):
        folder = path.parent.parent.name
        shown = f"policies/{folder}/cases/{path.name}"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            case = Case(
                name=str(data.get("name") or path.stem),
                description=str(data.get("description") or ""),
                path=shown,
                page=page_of_folder(models, folder) or "",
                claims=list(data.get("claims") or []),
                history=list(data.get("history") or []),
                expect=list(data.get("expect") or []),
            )
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            log.warning(f"policy test case {shown} cannot be read: {exc}")
            continue
        if case.page:
            cases.append(case)
    taken: dict[str, set] = {}
    for c in cases:
        base = "case-" + slug(c.name)
        anchor, n = base, 1
        while anchor in taken.setdefault(c.page, set()):
            n += 1
            anchor = f"{base}-{n}"
        taken[c.page].add(anchor)
        c.anchor = anchor
    return cases


def _admits(model: Model, rule: CheckedRule, code: str) -> bool:
    if rule.guard is None:
        return True
    if isinstance(rule.guard, str):
        return code == rule.guard
    return code in runtime.CodeSet(rule.guard.values, rule.guard.ranges)


def coverage(models: dict[str, Model], cases: list[Case]) -> dict[tuple[str, str], Coverage]:
    """(policy id, rule id) -> the cases that expect it to fire, or not to fire, on some line.

    A case's claim picks its policy by payer, as `payrule check` does; `rules` in an expectation is
    the exact list of rules that fired on that line, so a rule it leaves out did not fire there."""
    by_payer = {m.payer: m for m in models.values() if m.payer}
    out: dict[tuple[str, str], Coverage] = {}
    for case in cases:
        claims = {c.get("claim_id"): c for c in case.claims if isinstance(c, dict)}
        for e in case.expect:
            if not isinstance(e, dict) or not isinstance(e.get("rules"), list):
                continue
            claim = claims.get(e.get("claim"))
            if claim is None:
                continue
            model = by_payer.get(str(claim.get("payer", "")).strip().lower())
            if model is None:
                continue
            code = next((str(ln.get("code", "")).upper() for ln in claim.get("lines", []) if isinstance(ln, dict) and ln.get("line") == e.get("line")), "")
            fired = set(e["rules"])
            for rule in model.rules:
                key = (rule.policy, rule.id)
                if rule.id in fired:
                    out.setdefault(key, Coverage()).fires.append((case, e))
                elif rule.scope == "line" and code and _admits(model, rule, code):
                    out.setdefault(key, Coverage()).quiet.append((case, e))
    return out


# ---- pages --------------------------------------------------------------------------------------


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(md=md_escape, json=lambda v: json.dumps(v, ensure_ascii=False))
    return env


def order(models: dict[str, Model]) -> list[Model]:
    """Payer policies by payer, then the policies that are only included."""
    return sorted(models.values(), key=lambda m: (m.payer is None, m.payer or "", m.id))


def policy_page(model: Model, models: dict[str, Model], cases: list[Case], cov: dict) -> str:
    own = [r for r in model.rules if r.policy == model.id]
    included = [r for r in model.rules if r.policy != model.id]

    def link(case: Case) -> str:
        target = "" if case.page == model.id else f"{case.page}.md"
        return f"[{md_escape(case.name)}]({target}#{case.anchor})"

    rules = []
    for r in own:
        c = cov.get((r.policy, r.id), Coverage())
        rules.append({
            "rule": r,
            "text": explain_rule(model, r),
            "message": message_text(r),
            "dates": in_force_words(r),
            "codes": codes_words(r),
            "fires": sorted({link(case) for case, _ in c.fires}),
            "quiet": sorted({link(case) for case, _ in c.quiet}),
        })
    extra = [{"rule": r, "text": explain_rule(model, r)} for r in included]
    users = [m for m in order(models) if model.id in m.includes]
    return _env().get_template("catalog_page.md.jinja").render(
        model=model,
        rules=rules,
        included=extra,
        users=users,
        cases=[c for c in cases if c.page == model.id],
        codes=_line_codes,
        line_field=_line_field,
        docs={d.id: d for d in model.documents},
    )


def _line_field(case: Case, e: dict, name: str) -> str:
    """A field of the case line an expectation is about (its code, its date of service), or ""."""
    for c in case.claims:
        if isinstance(c, dict) and c.get("claim_id") == e.get("claim"):
            for ln in c.get("lines", []):
                if isinstance(ln, dict) and ln.get("line") == e.get("line"):
                    return str(ln.get(name, ""))
    return ""


def _line_codes(case: Case, e: dict) -> str:
    return _line_field(case, e, "code")


def index_page(models: dict[str, Model], cases: list[Case]) -> str:
    return _env().get_template("catalog_index.md.jinja").render(
        policies=order(models), cases=cases,
    )


def compare_page(models: dict[str, Model]) -> str:
    """The payers' own rules side by side, grouped by the code set (or code) each rule starts with."""
    payers = [m for m in order(models) if m.payer is not None]
    shared = sorted({models[i].id: models[i] for m in payers for i in m.includes}.values(), key=lambda m: m.id)
    groups: dict[str, dict] = {}
    for m in payers:
        for r in m.rules:
            if r.policy != m.id:
                continue
            g = r.guard
            if g is None:
                key, title = "~", "Rules about any line"
            elif isinstance(g, str):
                key, title = g, f"Code {g}"
            else:
                key, title = g.name, f"{g.name}: " + ", ".join(list(g.values) + [f"{lo}-{hi}" for lo, hi in g.ranges])
            group = groups.setdefault(key, {"title": title, "rows": [], "payers": set()})
            group["rows"].append({"payer": m.payer, "rule": r, "text": explain_rule(m, r),
                                  "dates": in_force_words(r), "codes": codes_words(r)})
            group["payers"].add(m.payer)
    out = []
    for key in sorted(groups, key=lambda k: (-len(groups[k]["payers"]), k)):
        g = groups[key]
        g["silent"] = [p.payer for p in payers if p.payer not in g["payers"]]
        out.append(g)
    return _env().get_template("catalog_compare.md.jinja").render(payers=payers, shared=shared, groups=out)


# ---- the Python API page ------------------------------------------------------------------------

API = (
    ("payrule", ("PolicySet", "PolicyError", "check", "compile_policy")),
    ("payrule.tools.explain", ("explain_rule", "explain_model", "render_policy", "message_text")),
    ("payrule.tools.highlight", ("PolicyLexer",)),
)


def doc_markdown(doc: str | None) -> str:
    """A docstring as Markdown: doctest examples become `pycon` blocks."""
    if not doc:
        return ""
    lines = inspect.cleandoc(doc).splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith(">>>"):
            indent = len(line) - len(line.lstrip())
            block = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i][indent:])
                i += 1
            out += ["", "```pycon", *block, "```", ""]
            continue
        out.append(line)
        i += 1
    return "\n".join(out).strip()


class _Ann:
    """An annotation kept as the source wrote it (`from __future__ import annotations` makes it a string)."""

    def __init__(self, text):
        self.text = text.strip("'\"") if isinstance(text, str) else inspect.formatannotation(text)

    def __repr__(self) -> str:
        return self.text


def _signature(name: str, obj, drop_first: bool = False) -> str:
    """`name(a: int, b: str = 'x') -> bool`, one parameter a line when it is long."""
    sig = inspect.signature(obj)
    params = list(sig.parameters.values())[1 if drop_first else 0:]
    params = [p.replace(annotation=_Ann(p.annotation)) if p.annotation is not p.empty else p for p in params]
    ret = sig.return_annotation
    sig = sig.replace(parameters=params, return_annotation=_Ann(ret) if ret is not sig.empty else sig.empty)
    text = f"{name}{sig}"
    if len(text) <= 72 or not params:
        return text
    body = ",\n".join("    " + str(p) for p in sig.parameters.values())
    tail = f" -> {sig.return_annotation!r}" if sig.return_annotation is not sig.empty else ""
    return f"{name}(\n{body},\n){tail}"


def _members(cls) -> list[tuple[str, object]]:
    out = []
    for name, value in cls.__dict__.items():
        if name.startswith("_"):
            continue
        if isinstance(value, (classmethod, staticmethod)):
            out.append((name, value.__func__))
        elif isinstance(value, property) or inspect.isfunction(value):
            out.append((name, value))
    return out


def _cell(text: str) -> str:
    """Docstring text in a table cell: its `code` spans kept, `|` and `<` made safe."""
    return text.replace("|", "\\|").replace("<", "&lt;")


def api_markdown() -> str:
    parts: list[str] = []
    for modname, names in API:
        mod = importlib.import_module(modname)
        parts.append(f"## `{modname}`\n")
        first = doc_markdown(mod.__doc__)
        if first:
            parts.append(first + "\n")
        for name in names:
            obj = getattr(mod, name)
            if inspect.isclass(obj):
                own_init = "__init__" in obj.__dict__
                sig = _signature(name, obj.__init__, drop_first=True) if own_init else name
                header = f"class {sig}"
            else:
                header = f"def {_signature(name, obj)}"
            parts.append(f"### `{modname}.{name}` {{ #{modname.replace('.', '-')}-{name.lower()} }}\n")
            parts.append(f"```python\n{header}\n```\n")
            parts.append(doc_markdown(obj.__doc__) + "\n")
            if inspect.isclass(obj) and modname == "payrule":
                for mname, member in _members(obj):
                    if isinstance(member, property):
                        parts.append(f"#### `{name}.{mname}` (property)\n")
                        parts.append(doc_markdown(member.__doc__ or "") + "\n")
                        continue
                    bound = isinstance(obj.__dict__[mname], (classmethod,)) or inspect.isfunction(obj.__dict__[mname])
                    parts.append(f"#### `{name}.{mname}`\n")
                    parts.append(f"```python\n{_signature(mname, member, drop_first=bound)}\n```\n")
                    parts.append(doc_markdown(member.__doc__) + "\n")
    parts.append("## Every module\n")
    parts.append("The stages, one module each (the module's own docstring, first line):\n")
    parts.append("| module | what it does |\n|---|---|")
    import payrule

    for info in sorted(pkgutil.iter_modules(payrule.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"payrule.{info.name}")
        summary = (inspect.getdoc(mod) or "").split("\n\n")[0].replace("\n", " ")
        parts.append(f"| `payrule.{info.name}` | {_cell(summary)} |")
    return "\n".join(parts) + "\n"


# ---- the hooks ----------------------------------------------------------------------------------


def on_config(config, **kwargs):
    root = Path(config.config_file_path).resolve().parent
    models = load_policies(root)
    cases = load_cases(root, models)
    _state.update(root=root, models=models, cases=cases, cov=coverage(models, cases))
    section = ([NAV_ENTRY, {"Payer comparison": f"{CATALOG}/compare.md"}]
               + [{m.title: f"{CATALOG}/{m.id}.md"} for m in order(models)])
    nav = config.nav or []
    for i, item in enumerate(nav):
        if isinstance(item, dict) and NAV_ENTRY in item.values():
            (title,) = item.keys()
            nav[i] = {title: section}
            break
    return config


def on_files(files, config, **kwargs):
    models, cases, cov = _state["models"], _state["cases"], _state["cov"]
    files.append(File.generated(config, NAV_ENTRY, content=index_page(models, cases)))
    files.append(File.generated(config, f"{CATALOG}/compare.md", content=compare_page(models)))
    for m in order(models):
        page = File.generated(config, f"{CATALOG}/{m.id}.md", content=policy_page(m, models, cases, cov))
        page.edit_uri = f"../{m.path}"  # the policy file, relative to docs/
        files.append(page)
    for src, target in EDIT_ELSEWHERE.items():
        f = files.get_file_from_path(src)
        if f is not None:
            f.edit_uri = target
    return files


def on_page_markdown(markdown, page, config, files, **kwargs):
    if API_MARKER in markdown:
        return markdown.replace(API_MARKER, api_markdown())
    return markdown
