"""Source text and positions: the only types every stage shares besides the AST."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Span:
    """A range in a policy file; lines and columns count from 1."""

    path: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"

    @property
    def where(self) -> str:
        """`path:line`, the form a decision's `source` field uses."""
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A policy's text and the name it is reported under (e.g. `policies/acme/knee.policy`)."""

    name: str
    text: str
    lines: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(self.text.split("\n")))

    @classmethod
    def read(cls, path: str | Path, name: str | None = None) -> "SourceFile":
        """Read a policy file as UTF-8, with or without a byte-order mark (some editors write one);
        `name` defaults to the path as given."""
        p = Path(path)
        return cls(name or p.as_posix(), p.read_text(encoding="utf-8-sig"))

    def line_text(self, line: int) -> str:
        if 1 <= line <= len(self.lines):
            return self.lines[line - 1].rstrip("\r")
        return ""

    def span(self, line: int, col: int, end_line: int | None = None, end_col: int | None = None) -> Span:
        return Span(self.name, line, col, end_line or line, end_col or col + 1)
