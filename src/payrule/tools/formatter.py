"""`payrule fmt`: one canonical layout for a policy, from its AST and the comments the parser keeps.

The layout is the one the shipped policies are written in:

    # Comments before the header stay at the top.
    policy acme-knee "Acme: knee injections"
      payer acme
      include common-knee
      source ACME "Acme medical policy 12.3: knee injections"

      codes KNEE = 12345, 12346
      diagnoses COVERED = A12.3, B45.6

      rule frequency:
        deny line when code in KNEE and more than 3 KNEE sessions within 12 months
          and lacks modifier 25
        message "{nth} session in 12 months"
        per ACME

- Two spaces per level; one statement per line; `rule ID:`, then the condition, then `message` and
  `per`, each on its own line.
- Blank lines: one wherever the author left one or more between statements or comments, and always
  one before and after a rule and between statement kinds (payer, include and source / sets / rules).
  None inside a statement, none after the last line.
- A condition fills its line up to WIDTH columns, then continues two deeper, breaking before `and` /
  `or`. A parenthesised group stays whole on the line if it fits, else starts a line of its own, else
  breaks inside (two deeper again), and what follows it starts a new line. A set's members fill lines
  the same way, continuing four deep.
- Parentheses only where precedence needs them (`not` > `and` > `or`), and where the author grouped an
  `and` inside an `and` (or an `or` inside an `or`): the tree keeps that grouping, so must the text.
- Strings are written exactly as in the source; numbers as plain integers; `within 1 month`.
- Comments: an own-line comment goes on its own line before the line holding the first thing after it;
  an end-of-line comment ends the line holding the last thing before it, and the line breaks there.
  Two end-of-line comments that land on one line are joined (`# a # b`); no comment is dropped.

`format_policy(format_policy(x)) == format_policy(x)` and `parse(format_policy(x)) == parse(x)`.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Callable, Iterator, Union

from payrule.lang import nodes, printer
from payrule.lang.lower import lower_cond
from payrule.lang.parser import parse
from payrule.lang.source import SourceFile

__all__ = ["WIDTH", "format_policy", "format_text", "format_cond"]

WIDTH = 88
_STMT, _BODY, _CONT = 2, 4, 6  # indents: statements, a rule's lines and set continuations, condition continuations

Pos = tuple[int, int]


@dataclass(eq=False)
class _Leaf:
    """A piece of text the layout never splits, with the source positions of the nodes it shows."""

    text: str
    starts: tuple[Pos, ...]
    leading: list[nodes.Comment] = field(default_factory=list)
    trailing: list[nodes.Comment] = field(default_factory=list)


@dataclass(eq=False)
class _Group:
    """Items joined by their prefixes (`and `, `or `), optionally wrapped in `open`...`close`."""

    items: list[tuple[str, "_Node"]]
    open: str = ""
    close: str = ""


_Node = Union[_Leaf, _Group]


def _leaves(node: _Node) -> Iterator[_Leaf]:
    if isinstance(node, _Leaf):
        yield node
    else:
        for _, item in node.items:
            yield from _leaves(item)


def _flat(node: _Node) -> str:
    if isinstance(node, _Leaf):
        return node.text
    return node.open + " ".join(p + _flat(i) for p, i in node.items) + node.close


def _flatable(node: _Node) -> bool:
    """True when no comment forces a break inside the node."""
    leaves = list(_leaves(node))
    return not any(l.leading for l in leaves[1:]) and not any(l.trailing for l in leaves[:-1])


def _lead(node: _Node) -> bool:
    return bool(next(_leaves(node)).leading)


@dataclass(eq=False)
class _Line:
    indent: int
    text: str = ""
    leaves: list[_Leaf] = field(default_factory=list)
    must_break: bool = False

    def joined(self, text: str) -> str:
        if not self.text or self.text.endswith("(") or text.startswith(")"):
            return self.text + text
        return self.text + " " + text

    def fits(self, text: str) -> bool:
        return self.indent + len(self.joined(text)) <= WIDTH


class _Layout:
    """Lines of one statement, filled greedily."""

    def __init__(self) -> None:
        self.lines: list[_Line] = []

    @property
    def cur(self) -> _Line:
        return self.lines[-1]

    def newline(self, indent: int) -> None:
        self.lines.append(_Line(indent))

    def text(self, text: str) -> None:
        self.cur.text = self.cur.joined(text)

    def add(self, node: _Node, text: str) -> None:
        self.text(text)
        leaves = list(_leaves(node))
        self.cur.leaves.extend(leaves)
        if leaves[-1].trailing:
            self.cur.must_break = True

    def fill(self, items: list[tuple[str, _Node]], indent: int) -> None:
        for prefix, item in items:
            self.place(item, prefix, indent)

    def place(self, node: _Node, prefix: str, indent: int, glued: bool = False) -> None:
        """Put `prefix + node` on the current line if it fits, else on a new line at `indent`, else
        break inside it (a group's items go two deeper). `glued`: the first item after `(`."""
        text = prefix + _flat(node)
        flat_ok = _flatable(node)
        if self.cur.leaves and (self.cur.must_break or _lead(node)):
            self.newline(indent)
        elif self.cur.leaves and not glued and not (flat_ok and self.cur.fits(text)):
            self.newline(indent)
        if isinstance(node, _Leaf) or (flat_ok and self.cur.fits(text)):
            self.add(node, text)
            return
        self.text(prefix + node.open)
        for i, (p, item) in enumerate(node.items):
            self.place(item, p, indent + 2, glued=(i == 0 and bool(prefix + node.open)))
        if node.close:
            self.text(node.close)
        self.cur.must_break = True  # what follows a group broken open starts a line of its own


# ---- AST -> leaves -----------------------------------------------------------------------------


class _Formatter:
    def __init__(self, source: SourceFile, policy: nodes.Policy):
        self.src = source
        self.policy = policy

    # text of leaves ---------------------------------------------------------------------------------
    def _slice(self, span) -> str | None:
        if span.path != self.src.name or span.line != span.end_line or span.line < 1:
            return None
        return self.src.line_text(span.line)[span.col - 1 : span.end_col - 1]

    def quoted(self, value: str, span) -> str:
        """A string as written in the source (its span), else encoded."""
        raw = self._slice(span)
        if raw and len(raw) >= 2 and raw[0] == raw[-1] == '"':
            return raw
        return printer.quote(value)

    def value(self, v: nodes.Value) -> str:
        return self.quoted(v.text, v.span) if v.quoted else v.text

    @staticmethod
    def _pos(*nodes) -> tuple[Pos, ...]:
        return tuple((n.span.line, n.span.col) for n in nodes if n is not None and n.span.line > 0)

    def leaf(self, text: str, *nodes) -> _Leaf:
        return _Leaf(text, self._pos(*nodes))

    # conditions -------------------------------------------------------------------------------------
    def atom(self, c: nodes.Cond) -> str:
        """One condition in canonical spelling: the one printer's, strings as written."""
        return printer.atom(lower_cond(c, source=self.src))

    @staticmethod
    def _needs_parens(item: nodes.Cond, parent: nodes.Cond) -> bool:
        if isinstance(parent, nodes.Or):
            return isinstance(item, nodes.Or)
        return isinstance(item, (nodes.And, nodes.Or))  # under `and` or `not`

    def cond(self, c: nodes.Cond, parent: nodes.Cond | None = None) -> _Node:
        if isinstance(c, (nodes.And, nodes.Or)):
            op = "and " if isinstance(c, nodes.And) else "or "
            group = _Group([(op if i else "", self.cond(item, c)) for i, item in enumerate(c.items)])
            if parent is not None and self._needs_parens(c, parent):
                group.open, group.close = "(", ")"
            return group
        if isinstance(c, nodes.Not):
            inner = self.cond(c.item, c)
            first = next(_leaves(inner))
            first.starts = self._pos(c) + first.starts
            if isinstance(inner, _Leaf):
                inner.text = "not " + inner.text
            else:
                inner.open = "not " + inner.open
            return inner
        return self.leaf(self.atom(c), c)

    # statements -------------------------------------------------------------------------------------
    def statement(self, s: nodes.Statement) -> tuple[str, list[_Leaf], Callable[[], list[_Line]]]:
        """(group, leaves, layout) for one statement; `layout()` runs once comments are attached."""
        match s:
            case nodes.Payer(name=n):
                text = self.quoted(n.value, n.span) if (self._slice(n.span) or "").startswith('"') else n.value
                return self._single("head", self.leaf(f"payer {text}", s, n))
            case nodes.Alias(names=names):
                texts = [self.quoted(n.value, n.span) if (self._slice(n.span) or "").startswith('"') else n.value
                         for n in names]
                return self._single("head", self.leaf("alias " + ", ".join(texts), s, *names))
            case nodes.Version(start=a, end=b):
                dates = " ".join(f"{w} {d.text}" for w, d in (("from", a), ("until", b)) if d is not None)
                return self._single("head", self.leaf(f"version {dates}", s, *(d for d in (a, b) if d is not None)))
            case nodes.Include(policy=p):
                return self._single("head", self.leaf(f"include {p.value}", s, p))
            case nodes.Source(name=n, text=t):
                head = self.leaf(f'source {n.value} "{t.raw}"', s, n, t)
                details = [self.leaf(f'{word} "{v.raw}"' if isinstance(v, nodes.Text) else f"{word} {v.text}", v)
                           for word, v in (("document", s.document), ("url", s.url), ("effective", s.effective),
                                           ("note", s.note)) if v is not None]
                if not details:
                    return self._single("head", head)

                def layout_source() -> list[_Line]:
                    lay = _Layout()
                    lay.newline(_STMT)
                    lay.add(head, head.text)
                    for d in details:
                        lay.newline(_BODY)
                        lay.add(d, d.text)
                    return lay.lines

                return "head", [head, *details], layout_source
            case nodes.SetDecl(kind=k, name=n, members=ms):
                head = self.leaf(f"{k} {n.value} =", s, n)
                members = []
                for i, m in enumerate(ms):
                    text = f"{self.value(m.lo)}..{self.value(m.hi)}" if isinstance(m, nodes.Range) else self.value(m)
                    members.append(self.leaf(text + ("," if i < len(ms) - 1 else ""), m))

                def layout_set() -> list[_Line]:
                    lay = _Layout()
                    lay.newline(_STMT)
                    lay.add(head, head.text)
                    lay.fill([("", m) for m in members], _BODY)
                    return lay.lines

                return "sets", [head, *members], layout_set
            case nodes.Rule():
                return self._rule(s)
        raise TypeError(f"not a statement: {s!r}")  # pragma: no cover

    @staticmethod
    def _single(group: str, leaf: _Leaf):
        def layout() -> list[_Line]:
            lay = _Layout()
            lay.newline(_STMT)
            lay.add(leaf, leaf.text)
            return lay.lines

        return group, [leaf], layout

    def _rule(self, r: nodes.Rule):
        """`rule ID:`, the condition, then the clauses in one order: `unless`, the dates, `message`, `per`,
        the denial codes."""
        head = self.leaf(f"rule {r.id.value}:", r, r.id)
        cond = self.cond(r.cond)
        unless = self.cond(r.unless) if r.unless is not None else None
        dates = " ".join(f"{w} {d.text}" for w, d in (("from", r.start), ("until", r.end)) if d is not None)
        when = self.leaf(dates, *(d for d in (r.start, r.end) if d is not None)) if dates else None
        msg = self.leaf(f'message "{r.message.raw}"', r.message) if r.message is not None else None
        cite = self.leaf(f"per {r.cite.value}", r.cite) if r.cite is not None else None
        codes = " ".join(f"{w} {c.value}" for w, c in (("carc", r.carc), ("rarc", r.rarc)) if c is not None)
        coded = self.leaf(codes, *(c for c in (r.carc, r.rarc) if c is not None)) if codes else None
        leaves = [head, *_leaves(cond), *(_leaves(unless) if unless is not None else ()),
                  *(x for x in (when, msg, cite, coded) if x is not None)]

        def fill(lay: _Layout, node: _Node) -> None:
            items = node.items if isinstance(node, _Group) and not node.open else [("", node)]
            lay.fill(items, _CONT)

        def layout() -> list[_Line]:
            lay = _Layout()
            lay.newline(_STMT)
            lay.add(head, head.text)
            lay.newline(_BODY)
            lay.text(f"{r.action} {r.scope} when")
            fill(lay, cond)
            if unless is not None:
                lay.newline(_BODY)
                lay.text("unless")
                fill(lay, unless)
            for extra in (when, msg, cite, coded):
                if extra is not None:
                    lay.newline(_BODY)
                    lay.add(extra, extra.text)
            return lay.lines

        return "rules", leaves, layout

    # the file ---------------------------------------------------------------------------------------
    def run(self) -> str:
        p = self.policy
        header = self.leaf(f'policy {p.id.value} "{p.title.raw}"', p, p.id, p.title)
        blocks = [("policy", [header], self._single("policy", header)[2], p.span.line)]
        for s in p.statements:
            group, leaves, layout = self.statement(s)
            blocks.append((group, leaves, layout, s.span.line))
        tail = self._attach(blocks)
        out: list[str] = []

        def emit(line: str, blank: bool) -> None:
            if blank and out and out[-1] != "":
                out.append("")
            out.append(line)

        prev = None
        for i, (group, _leaves_, layout, line_no) in enumerate(blocks):
            forced = i >= 1 and (group == "rules" or (i > 1 and (group != prev or prev == "rules")))
            prev = group
            for n, line in enumerate(layout()):
                indent = 0 if i == 0 else line.indent
                pre = sorted((c for l in line.leaves for c in l.leading), key=lambda c: (c.span.line, c.span.col))
                for k, c in enumerate(pre):
                    emit(" " * indent + c.text, (n == 0 and ((k == 0 and forced) or self._blank_before(c.span.line))))
                text = " " * indent + line.text
                post = [c.text for l in line.leaves for c in l.trailing]
                if post:
                    text += "  " + " ".join(post)
                emit(text, n == 0 and ((not pre and forced) or self._blank_before(line_no)))
        for c in tail:
            emit(" " * _STMT + c.text, self._blank_before(c.span.line))
        return "\n".join(out) + "\n"

    def _blank_before(self, line: int) -> bool:
        return line > 1 and not self.src.line_text(line - 1).strip()

    def _attach(self, blocks) -> list[nodes.Comment]:
        """Give each comment to a leaf: own-line ones to the first leaf after, end-of-line ones to the
        last leaf before. Returns the comments after everything (the file's tail)."""
        anchors: list[tuple[Pos, int, _Leaf]] = []
        for _, leaves, _, _ in blocks:
            for leaf in leaves:
                for pos in leaf.starts:
                    anchors.append((pos, len(anchors), leaf))
        anchors.sort(key=lambda a: (a[0], a[1]))
        keys = [a[0] for a in anchors]
        tail = []
        for c in self.policy.comments:
            c = nodes.Comment(c.text.rstrip(), c.span)
            pos = (c.span.line, c.span.col)
            own_line = not self.src.line_text(c.span.line)[: c.span.col - 1].strip()
            if own_line:
                i = bisect.bisect_right(keys, pos)
                if i < len(anchors):
                    anchors[i][2].leading.append(c)
                else:
                    tail.append(c)
            else:
                i = bisect.bisect_left(keys, pos) - 1
                (anchors[i][2].trailing if i >= 0 else anchors[0][2].leading).append(c)
        return tail


def format_policy(source: SourceFile) -> str:
    """The policy in canonical layout; raises DiagnosticError when it does not parse."""
    return _Formatter(source, parse(source)).run()


def format_text(text: str, name: str = "<policy>") -> str:
    return format_policy(SourceFile(name, text))


def format_cond(cond: nodes.Cond, source: SourceFile | None = None) -> str:
    """A condition on one line as `payrule fmt` writes it (for messages that quote one)."""
    return printer.print_cond(lower_cond(cond, source=source))
