"""Policies in plain English: every rule as one sentence, written from its condition tree.

The sentences come from the jinja2 templates under `templates/explain/`: one macro per condition
node (`conditions.jinja`), one template for a rule's sentence (`rule.jinja`) and one per output
format for a whole policy (`policy.text.jinja`, `policy.markdown.jinja`). Nothing here knows any
payer or code family: the words for a set are its name and members, taken from the policy.

    >>> from payrule import PolicySet
    >>> model = PolicySet.from_texts({"acme.policy": '''
    ...   policy acme-knee "Acme: knee injections"
    ...     payer acme
    ...     codes KNEE = 12345, 12346
    ...     rule spacing: deny line when code in KNEE and less than 7 days after the last KNEE session
    ... '''}).policies["acme-knee"]
    >>> explain_rule(model, model.rules[0])
    "Deny a KNEE line (12345 or 12346) when the patient's last KNEE session was fewer than 7 days before the date of service."
"""
from __future__ import annotations

import functools
import re
import textwrap
from dataclasses import replace
from datetime import date
from typing import Iterable

import jinja2

from payrule.codegen.compiler import template_environment
from payrule.lang import ir
from payrule.lang.ir import Placeholder, SetDef
from payrule.lang.printer import quote
from payrule.runtime.schema import field_for_word

__all__ = ["explain_rule", "explain_model", "render_policy", "message_text", "in_force_words", "codes_words", "FORMATS"]

FORMATS = ("text", "markdown")

# Sets with more members than this are shown as a sample and a count.
SHORT = 10
_PUNCT = re.compile(r"\s+([.,;])")


@functools.lru_cache(maxsize=None)
def _env() -> jinja2.Environment:
    env = template_environment("payrule.tools")  # prose: values are text, not Python
    env.filters.update(article=article, either=either, plural=plural, quote=quote, md=md_escape, wrap=_wrap, kind=_kind)
    env.globals.update(kind=_kind, singular=singular, field_plural=field_plural)
    return env


# ---- words -------------------------------------------------------------------------------------


def article(word: str) -> str:
    """`a` or `an` before `word`, by how it is likely said (`an EM`, `a TPI`, `an ANESTHESIA`)."""
    w = word.lstrip("\"'(`")
    if not w:
        return "a"
    first = w[0]
    if first.isdigit():
        return "an" if w.startswith(("8", "11", "18")) else "a"
    if first.lower() in "aeiou":
        return "an"
    letters = w.split()[0].replace("_", "")
    acronym = letters.isupper() and len(letters) <= 4
    return "an" if acronym and first.upper() in "FHLMNRSX" else "a"


def _kind(node: object) -> str:
    return type(node).__name__


def either(items: Iterable[str], word: str = "or") -> str:
    """`x`, `x or y`, `x, y or z`."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {word} " + items[-1]


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def singular(word: str) -> str:
    """`muscles` -> `muscle`, `diagnoses` -> `diagnosis`: a field's singular word, from the schema."""
    f = field_for_word(word)
    if f is None:
        return word
    if f.aliases:
        return f.aliases[0]
    return f.name[:-1] if f.name.endswith("s") else f.name


def field_plural(word: str) -> str:
    """The schema's name of the field a word names (`muscle` -> `muscles`)."""
    f = field_for_word(word)
    return f.name if f is not None else word


def md_escape(text: str) -> str:
    """Text safe to drop into Markdown prose: no emphasis, links, HTML or code spans by accident."""
    out = []
    for ch in text:
        if ch in "\\`*_[]<>|#":
            out.append("\\" + ch if ch != "<" else "&lt;")
        else:
            out.append(ch)
    return "".join(out)


def _wrap(text: str, width: int = 88, indent: str = "") -> str:
    return "\n".join(textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=indent,
                                   break_long_words=False, break_on_hyphens=False)) or indent.rstrip()


# ---- sets --------------------------------------------------------------------------------------


def _diagnosis(value: str) -> str:
    """A diagnosis in its normal form (`M791`) as it is written (`M79.1`)."""
    return value[:3] + "." + value[3:] if len(value) > 3 else value


def members(s: SetDef) -> list[str]:
    """A set's members as a reader writes them: codes and ranges, dotted diagnoses, quoted words."""
    if s.kind == "codes":
        shown = [v for v in s.values] + [f"{lo} to {hi}" for lo, hi in s.ranges]
        return sorted(shown)
    if s.kind == "diagnoses":
        return [_diagnosis(v) for v in s.values]
    return [quote(v) for v in s.values]


class _Mentions:
    """The first mention of a set in a sentence lists its members; later ones give its name only."""

    def __init__(self, model: ir.Policy):
        self.model = model
        self.seen: set[str] = set()

    def __call__(self, name: str) -> dict:
        first = name not in self.seen
        self.seen.add(name)
        try:
            s = self.model.set(name)
        except KeyError:  # pragma: no cover - a checked model resolves every name
            return {"name": name, "kind": None, "members": [], "more": 0, "first": first}
        shown = members(s)
        more = 0
        if len(shown) > SHORT:
            more = len(shown) - (SHORT // 2)
            shown = shown[: SHORT // 2]
        return {"name": name, "kind": s.kind, "members": shown, "more": more, "first": first}


def _negate(node: ir.Cond) -> ir.Cond | None:
    """The same condition said the other way round, when the node has a `negated` flag."""
    if isinstance(node, (ir.CodeIn, ir.Has)):
        return replace(node, negated=not node.negated)
    return None


# ---- API ---------------------------------------------------------------------------------------


def explain_rule(model: ir.Policy, rule: ir.Rule) -> str:
    """One rule of `model` as one plain-English sentence."""
    items = ir.conjuncts(rule.cond)
    guard = items[0] if rule.guard is not None else None
    rest = items[1:] if guard is not None else items
    text = _env().get_template("explain/rule.jinja").render(
        rule=rule,
        guard=guard,
        cond=ir.And(tuple(rest)) if len(rest) > 1 else (rest[0] if rest else None),
        mention=_Mentions(model),
        set_kind=lambda name: model.set(name).kind,
        negate=_negate,
        guard_set=guard.set.name if isinstance(guard, ir.CodeIn) else None,
    )
    return _PUNCT.sub(r"\1", " ".join(text.split()))


def explain_model(model: ir.Policy) -> list[tuple[ir.Rule, str]]:
    """Every rule the policy applies (included rules first, as the model orders them), explained."""
    return [(r, explain_rule(model, r)) for r in model.rules]


def message_text(rule: ir.Rule) -> str | None:
    """The rule's message as written, placeholders in braces; None when it has none."""
    if not rule.message:
        return None
    return "".join("{" + s.name + "}" if isinstance(s, Placeholder) else s.replace("{", "{{").replace("}", "}}")
                   for s in rule.message)


def in_force_words(rule: ir.Rule | ir.Policy) -> str | None:
    """`from 2024-04-01`, `until 2022-09-30`, `from 2021-10-01 until 2022-09-30`; None for an undated rule
    (or a policy that is not one of several versions)."""
    parts = [f"from {rule.start.isoformat()}" if rule.start else "", f"until {rule.end.isoformat()}" if rule.end else ""]
    return " ".join(p for p in parts if p) or None


def codes_words(rule: ir.Rule) -> str | None:
    """`CARC 119, RARC N640`; None when the rule names no code."""
    parts = [f"CARC {rule.carc}" if rule.carc else "", f"RARC {rule.rarc}" if rule.rarc else ""]
    return ", ".join(p for p in parts if p) or None


def render_policy(model: ir.Policy, fmt: str = "text", own_only: bool = False, on: date | None = None) -> str:
    """A whole policy for people: title, payer, aliases, sources and every rule, as `text` or `markdown`.
    With `on`, only the rules in force for a line with that date of service."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    every = [(r, t) for r, t in explain_model(model) if not own_only or r.policy == model.id]
    rules = [
        {"rule": r, "text": t, "message": message_text(r), "dates": in_force_words(r), "codes": codes_words(r)}
        for r, t in every
        if on is None or (model.in_force(on) and r.in_force(on))  # a version not in force then: no rule
    ]
    sources = [s for s in model.sources if not own_only or s[2] == model.id]
    docs = {d.id: d for d in model.documents}
    return _env().get_template(f"explain/policy.{fmt}.jinja").render(
        model=model, rules=rules, sources=sources, docs=docs, on=on.isoformat() if on else None,
        left_out=len(every) - len(rules), version=in_force_words(model))
