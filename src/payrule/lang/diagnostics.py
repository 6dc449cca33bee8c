"""Diagnostics: a value (what went wrong, where, how to fix it) and a pure renderer.

    policies/x.policy:12:9: error: unknown code set `TPl`
       12 |     deny line when code in TPl
          |                            ^^^
       = help: did you mean `TPI`?
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from enum import Enum
from typing import Iterable, Sequence

from payrule.lang.source import SourceFile, Span


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding. `message` is one lowercase sentence with user text in backticks; the fix goes in `help`."""

    severity: Severity
    message: str
    span: Span
    help: str | None = None
    code: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def sort_key(self) -> tuple:
        return (self.span.path, self.span.line, self.span.col, self.message)


class DiagnosticError(Exception):
    """Raised by a stage that cannot go on; carries every diagnostic found so far."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = tuple(sorted(diagnostics, key=lambda d: d.sort_key))
        super().__init__("; ".join(f"{d.span}: {d.message}" for d in self.diagnostics))


def one_line(text: str) -> str:
    """Text quoted from a policy, made safe for a one-line message: line breaks and other
    unprintable characters (U+2028, NUL, ...) are shown as escapes."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def error(message: str, span: Span, help: str | None = None, code: str | None = None) -> Diagnostic:
    return Diagnostic(Severity.ERROR, one_line(message), span, one_line(help) if help else help, code)


def warning(message: str, span: Span, help: str | None = None, code: str | None = None) -> Diagnostic:
    return Diagnostic(Severity.WARNING, one_line(message), span, one_line(help) if help else help, code)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """`did you mean `x`?` for the closest choice, or None."""
    pool = sorted(set(choices))
    close = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not close:
        low = {c.lower(): c for c in pool}
        close = [low[word.lower()]] if word.lower() in low else []
    return f"did you mean `{close[0]}`?" if close else None


def render(diag: Diagnostic, source: SourceFile | None) -> str:
    """The diagnostic as text: location, message, the source line, a caret under the span, help."""
    sp = diag.span
    tag = diag.severity.value + (f"[{diag.code}]" if diag.code else "")
    out = [f"{sp.path}:{sp.line}:{sp.col}: {tag}: {diag.message}"]
    text = source.line_text(sp.line) if source is not None else ""
    if text:
        num = str(sp.line)
        pad = " " * len(num)
        shown = text.expandtabs(1)
        width = sp.end_col - sp.col if sp.end_line == sp.line and sp.end_col > sp.col else 1
        width = max(1, min(width, len(shown) - sp.col + 1))
        out.append(f" {num} | {shown}")
        out.append(f" {pad} | {' ' * (sp.col - 1)}{'^' * width}")
        lead = f" {pad} = "
    else:
        lead = "  = "
    for note in diag.notes:
        out.append(f"{lead}note: {note}")
    if diag.help:
        out.append(f"{lead}help: {diag.help}")
    return "\n".join(out)


def render_all(diags: Sequence[Diagnostic], sources: dict[str, SourceFile]) -> str:
    """Every diagnostic sorted by file, line and column, then a count."""
    ordered = sorted(diags, key=lambda d: d.sort_key)
    parts = [render(d, sources.get(d.span.path)) for d in ordered]
    errors = sum(1 for d in ordered if d.severity is Severity.ERROR)
    warnings = len(ordered) - errors
    parts.append(summary(errors, warnings))
    return "\n".join(parts)


def summary(errors: int, warnings: int) -> str:
    def plural(n: int, word: str) -> str:
        return f"{n} {word}" + ("" if n == 1 else "s")

    return f"{plural(errors, 'error')}, {plural(warnings, 'warning')}"
