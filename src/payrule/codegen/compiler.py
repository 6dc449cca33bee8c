"""Checked model -> Python source, through the jinja2 template `templates/module.py.jinja`.

`compile_model` is pure and deterministic: the same model gives the same bytes, whatever the hash
seed, because every set is sorted before it is written and nothing depends on time or place.
"""
from __future__ import annotations

import functools

import jinja2

from payrule import __version__
from payrule.codegen.emit import index_sets, rule_body, set_value
from payrule.lang.model import Model
from payrule.codegen.pycode import PyCode, py_comment, py_doc, py_ident, py_literal
from payrule.runtime import API_VERSION

__all__ = ["compile_model", "InternalCompilerError"]


class InternalCompilerError(Exception):
    """The generated module does not compile: a payrule bug, never the policy author's fault."""

    def __init__(self, message: str, source: str):
        super().__init__(f"{message}\n--- generated source ---\n{source}")
        self.source = source


def _only_pycode(value):
    if not isinstance(value, PyCode):
        raise TypeError(f"template value {value!r} was not made safe with py_literal/py_ident")
    return value


def template_environment(package: str = "payrule.codegen", **options) -> jinja2.Environment:
    """The templates under `<package>/templates/`: undefined names are errors, no HTML escaping (it
    would corrupt Python and prose alike), block tags take their line with them."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        **options,
    )


@functools.lru_cache(maxsize=None)
def _env() -> jinja2.Environment:
    """For Python source: every value must have been made safe by pycode (finalize refuses the rest)."""
    return template_environment(finalize=_only_pycode)


def _mapping(names: list[str], idents: dict[str, PyCode]) -> PyCode:
    if not names:
        return PyCode("{}")
    return PyCode("{" + ", ".join(f"{py_literal(n)}: {idents[n]}" for n in names) + "}")


def _guard(guard: tuple[str, str] | None, set_idents: dict[str, PyCode]) -> PyCode:
    if guard is None:
        return py_literal(None)
    kind, value = guard
    return set_idents[value] if kind == "set" else py_literal(frozenset((value,)))


def compile_model(model: Model) -> str:
    """The Python module for one checked policy, as text."""
    taken: set[str] = set()
    set_idents = {s.name: py_ident(s.name, "S_", taken) for s in model.sets}
    sets = [{"ident": set_idents[s.name], "value": set_value(s)} for s in model.sets]
    rules = []
    for r in model.rules:
        ident = py_ident(r.id, "rule_", taken)
        doc_lines = [f"{r.policy} / {r.id}, {r.source}", "", *r.text.split("\n")]
        if r.citation:
            doc_lines += ["", f"Per {r.cite}: {r.citation}"]
        doc = "\n".join(("    " + l if l else "") for l in doc_lines).lstrip() + "\n    "
        rules.append({
            "ident": ident,
            "doc": py_doc(doc),
            "body": rule_body(model, set_idents, r),
            "policy": py_literal(r.policy),
            "id": py_literal(r.id),
            "outcome": py_literal(r.action),
            "scope": py_literal(r.scope),
            "source": py_literal(r.source),
            "guard": _guard(r.guard, set_idents),
        })
    same, earlier, sessions = index_sets(model.rules)
    doc = f"{model.title}\n\nPolicy {model.id}" + (f" for payer {model.payer}" if model.payer else " (included by payer policies)")
    if model.includes:
        doc += ", including " + ", ".join(model.includes)
    doc += ".\n"
    text = _env().get_template("module.py.jinja").render(
        version=py_comment(__version__),
        path=py_comment(model.path),
        digest=PyCode(model.digest),
        module_doc=py_doc(doc),
        policy_id=py_literal(model.id),
        payer=py_literal(model.payer),
        title=py_literal(model.title),
        api=py_literal(API_VERSION),
        sources=[{"id": py_literal(i), "text": py_literal(t)} for i, t, _ in model.sources],
        sets=sets,
        rules=rules,
        same_day=_mapping(same, set_idents),
        earlier=_mapping(earlier, set_idents),
        sessions=_mapping(sessions, set_idents),
    )
    try:
        compile(text, f"<payrule {model.id}>", "exec")
    except SyntaxError as exc:  # pragma: no cover - would be a payrule bug
        raise InternalCompilerError(f"generated code for {model.id} does not compile: {exc}", text) from None
    return text
