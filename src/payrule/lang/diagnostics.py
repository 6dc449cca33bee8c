"""Diagnostics: a value (its code, what went wrong, where, how to fix it) and pure renderers.

    policies/x.policy:12:9: error[PR201]: unknown code set `TPl`
       12 |     deny line when code in TPl
          |                            ^^^
       = help: did you mean `TPI`?

Every diagnostic is made from a code of the catalog (payrule.lang.codes), which gives its severity;
`as_json()` is the same finding as a JSON object (`payrule lint --format json`).
"""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from payrule.lang.codes import Severity, lookup
from payrule.lang.source import SourceFile, Span

__all__ = ["Severity", "Diagnostic", "DiagnosticError", "error", "warning", "did_you_mean", "one_line",
           "render", "render_all", "render_json", "summary"]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding. `code` is a catalog code (PR201), which gives the severity; `message` is one lowercase
    sentence with user text in backticks; the fix goes in `help`."""

    code: str
    message: str
    span: Span
    help: str | None = None
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        lookup(self.code)  # ValueError for a code the catalog does not have

    @property
    def severity(self) -> Severity:
        return lookup(self.code).severity

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.span.path, self.span.line, self.span.col, self.message)

    def as_json(self) -> dict[str, str | int | None]:
        """The finding as a JSON object: code, severity, message, help (or null) and where it is."""
        sp = self.span
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "help": self.help,
            "path": sp.path,
            "line": sp.line,
            "col": sp.col,
            "end_line": sp.end_line,
            "end_col": sp.end_col,
        }


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


def _make(severity: Severity, code: str, message: str, span: Span, help: str | None) -> Diagnostic:
    entry = lookup(code)
    if entry.severity is not severity:
        want = entry.severity.value
        raise ValueError(f"{code} has severity {want} in the catalog: call {want}(), not {severity.value}()")
    return Diagnostic(code, one_line(message), span, one_line(help) if help else help)


def error(code: str, message: str, span: Span, help: str | None = None) -> Diagnostic:
    """An error with its catalog code (PR201); ValueError when the catalog says the code is a warning."""
    return _make(Severity.ERROR, code, message, span, help)


def warning(code: str, message: str, span: Span, help: str | None = None) -> Diagnostic:
    """A warning with its catalog code (PR210); ValueError when the catalog says the code is an error."""
    return _make(Severity.WARNING, code, message, span, help)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """`did you mean `x`?` for the closest choice, or None."""
    pool = sorted(set(choices))
    close = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not close:
        low = {c.lower(): c for c in pool}
        close = [low[word.lower()]] if word.lower() in low else []
    return f"did you mean `{close[0]}`?" if close else None


SHOWN = 500  # the most of a source line a diagnostic shows (longer ones are machine-made)


def render(diag: Diagnostic, source: SourceFile | None) -> str:
    """The diagnostic as text: location, message, the source line, a caret under the span, help."""
    sp = diag.span
    out = [f"{sp.path}:{sp.line}:{sp.col}: {diag.severity.value}[{diag.code}]: {diag.message}"]
    text = source.line_text(sp.line) if source is not None else ""
    if text:
        num = str(sp.line)
        pad = " " * len(num)
        shown = text.expandtabs(1)
        width = sp.end_col - sp.col if sp.end_line == sp.line and sp.end_col > sp.col else 1
        width = max(1, min(width, len(shown) - sp.col + 1))
        col = sp.col
        if len(shown) > SHOWN:  # a very long line: the part around the caret, cut with `...`
            start = max(0, min(col - 1 - SHOWN // 3, len(shown) - SHOWN))
            width = min(width, SHOWN - (col - 1 - start))
            shown = ("..." if start else "") + shown[start:start + SHOWN] + ("..." if start + SHOWN < len(shown) else "")
            col = col - start + (3 if start else 0)
        out.append(f" {num} | {shown}")
        out.append(f" {pad} | {' ' * (col - 1)}{'^' * width}")
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


def render_json(diags: Sequence[Diagnostic]) -> str:
    """Every diagnostic sorted by file, line and column, as one JSON array of `as_json()` objects, one
    object a line (ASCII: other characters are escaped)."""
    ordered = sorted(diags, key=lambda d: d.sort_key)
    if not ordered:
        return "[]"
    return "[\n" + ",\n".join("  " + json.dumps(d.as_json()) for d in ordered) + "\n]"


def summary(errors: int, warnings: int) -> str:
    def plural(n: int, word: str) -> str:
        return f"{n} {word}" + ("" if n == 1 else "s")

    return f"{plural(errors, 'error')}, {plural(warnings, 'warning')}"
