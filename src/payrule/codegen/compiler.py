"""Lowered IR -> Python source: the template `templates/module.py.jinja` lays out the module, the
writer in `emit.py` writes what goes in it.

`compile_model` is pure and deterministic: the same model gives the same bytes, whatever the hash
seed, because every set is sorted before it is written and nothing depends on time or place.
"""
from __future__ import annotations

import functools
from datetime import date
from typing import Any

import jinja2

from payrule import __version__
from payrule.codegen.emit import (
    MAX_PLAN_BLOCKS,
    plan_signatures,
    set_idents,
    write_grouped_index,
    write_index,
    write_plan,
    write_plans_table,
    write_rule,
    write_rules_table,
    write_sets,
    write_sources,
)
from payrule.codegen.pycode import PyCode, Writer, py_comment, py_doc, py_ident, py_literal
from payrule.lang import ir
from payrule.lang.lower import lower_policy
from payrule.lang.model import Model
from payrule.runtime import API_VERSION

__all__ = ["compile_ir", "compile_model", "template_environment", "InternalCompilerError"]


class InternalCompilerError(Exception):
    """The generated module does not compile: a payrule bug, never the policy author's fault."""

    def __init__(self, message: str, source: str):
        super().__init__(f"{message}\n--- generated source ---\n{source}")
        self.source = source


def _only_pycode(value: object) -> PyCode:
    if not isinstance(value, PyCode):
        raise TypeError(f"template value {value!r} was not made safe with py_literal/py_ident")
    return value


def template_environment(package: str = "payrule.codegen", **options: Any) -> jinja2.Environment:
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


def _write_indexes(w: Writer, policy: ir.Policy, idents: dict[str, PyCode]) -> None:
    for name, sets in (("SAME_DAY_SETS", policy.same_day_sets), ("EARLIER_SETS", policy.earlier_sets),
                       ("SESSION_SETS", policy.session_sets)):
        write_index(w, name, sets, idents)
    write_grouped_index(w, policy.grouped_sets, idents)


def compile_ir(policy: ir.Policy) -> str:
    """The Python module for one lowered policy, as text."""
    taken: set[str] = set()
    idents = set_idents(policy, taken)
    rules = [(r, py_ident(r.id, "rule_", taken)) for r in policy.rules]
    signatures = plan_signatures(list(policy.rules), MAX_PLAN_BLOCKS)
    plans = [(sig, py_ident(f"plan_{n}", "", taken)) for n, sig in enumerate(signatures, 1)]

    def written(fn) -> PyCode:  # type: ignore[no-untyped-def]
        w = Writer()
        fn(w)
        return w.text()

    doc = f"{policy.title}\n\nPolicy {policy.id}" + (
        f" for payer {policy.payer}" if policy.payer else " (included by payer policies)")
    if policy.includes:
        doc += ", including " + ", ".join(policy.includes)
    doc += ".\n"
    text = _env().get_template("module.py.jinja").render(
        version=py_comment(__version__),
        path=py_comment(policy.path),
        digest=PyCode(policy.digest),
        module_doc=py_doc(doc),
        policy_id=py_literal(policy.id),
        payer=py_literal(policy.payer),
        aliases=py_literal(policy.aliases),
        policy_version=py_literal(None if policy.start is None and policy.end is None else (
            policy.start.toordinal() if policy.start else 1, policy.end.toordinal() if policy.end else date.max.toordinal())),
        title=written(lambda w: w.wrapped("TITLE = ", [py_literal(policy.title)], "")),
        api=py_literal(API_VERSION),
        sources=written(lambda w: write_sources(w, policy.sources)),
        sets=written(lambda w: write_sets(w, policy, idents)),
        rules=[written(lambda w, r=r, i=i: write_rule(w, r, i, idents)) for r, i in rules],
        table=written(lambda w: write_rules_table(w, rules, idents)),
        plans=[written(lambda w, sig=sig, i=i: write_plan(w, i, sig, list(policy.rules), idents)) for sig, i in plans],
        plans_table=written(lambda w: write_plans_table(w, plans)),
        index=written(lambda w: _write_indexes(w, policy, idents)),
    )
    try:
        compile(text, f"<payrule {policy.id}>", "exec")
    except SyntaxError as exc:  # pragma: no cover - would be a payrule bug
        raise InternalCompilerError(f"generated code for {policy.id} does not compile: {exc}", text) from None
    return text


def compile_model(model: Model) -> str:
    """The Python module for one checked policy (lowered first), as text."""
    return compile_ir(lower_policy(model))
