"""Policy text -> lark parse tree -> AST. Lark's errors become diagnostics an analyst can act on."""
from __future__ import annotations

import dataclasses
import re
from datetime import date
from typing import Any

from lark import Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from lark.tree import Meta

from payrule.lang import nodes
from payrule.lang.diagnostics import Diagnostic, DiagnosticError, did_you_mean, error
from payrule.lang.grammar import expected_words, keyword_of, parser
from payrule.lang.source import SourceFile, Span
from payrule.runtime.schema import field_for_word

__all__ = ["parse", "parse_text", "decode_string"]


def parse(source: SourceFile) -> nodes.Policy:
    """Parse one policy file; raises DiagnosticError with a located, hinted message."""
    try:
        tree = parser().parse(source.text)
    except UnexpectedInput as exc:
        raise DiagnosticError([_syntax_diagnostic(source, exc)]) from None
    deep = _too_deep(tree)
    if deep is not None:
        raise DiagnosticError([error("PR009", f"a condition nested more than {MAX_DEPTH} deep", source.span(*deep),
                                     help="write it flatter: `a and b and c` needs no parentheses, and `not not x` is `x`")])
    try:
        policy = _ToAst(source).transform(tree)
    except VisitError as exc:  # errors raised inside the transformer arrive wrapped
        if isinstance(exc.orig_exc, DiagnosticError):
            raise exc.orig_exc from None
        raise
    return nodes.Policy(policy.id, policy.title, policy.statements, _comments(source), policy.span)


MAX_DEPTH = 100  # conditions nest at most this deep: later stages walk them recursively
MAX_DIGITS = 6  # numbers in a policy (counts, windows, units) have at most this many digits


def _too_deep(tree: Tree[Token]) -> tuple[int, int] | None:
    """(line, column) where the parse tree is nested more than MAX_DEPTH deep, else None (walked without
    recursion: the tree may be deeper than Python's stack)."""
    stack: list[tuple[Any, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH + 20:  # the statements above a condition take a few levels
            meta = node.meta
            return (getattr(meta, "line", 1), getattr(meta, "column", 1))
        for child in node.children:
            if isinstance(child, Tree):
                stack.append((child, depth + 1))
    return None


def parse_text(text: str, name: str = "<policy>") -> nodes.Policy:
    return parse(SourceFile(name, text))


_COMMENT = re.compile(r'"(?:[^"\\\n\r]|\\.)*"|(#[^\n]*)')


def _comments(source: SourceFile) -> tuple[nodes.Comment, ...]:
    """Comments with positions, for the formatter (strings are skipped so a `#` inside one is not one)."""
    out = []
    for n, text in enumerate(source.lines, 1):
        for m in _COMMENT.finditer(text):
            if m.group(1):
                col = m.start(1) + 1
                out.append(nodes.Comment(m.group(1).rstrip("\r"), source.span(n, col, n, col + len(m.group(1)))))
    return tuple(out)


# ---- syntax errors -----------------------------------------------------------------------------


def _syntax_diagnostic(source: SourceFile, exc: UnexpectedInput) -> Diagnostic:
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        expected = set(exc.expected) | ({"$END"} if _can_end(exc) else set())
        if tok.type == "$END":
            line, col = _end_position(source)
            return error(
                "PR001",
                "unexpected end of file",
                source.span(line, col),
                help=f"expected {expected_words(expected)}",
            )
        width = max(1, len(str(tok)))
        span = source.span(tok.line, tok.column, tok.line, tok.column + width)
        words = [w for t in expected for w in keyword_of(t)]
        hint = did_you_mean(str(tok), words) if words else None
        what = f"unexpected `{tok}`"
        help_ = f"expected {expected_words(expected)}"
        if hint and len(words) > 1:
            help_ = f"{hint} ({help_})"
        elif hint:
            help_ = hint
        prev = _previous_token(exc)
        if "COLON" in expected and len(expected) == 1:
            help_ = "a rule's name is followed by `:`, as in `rule frequency: deny line when ...`"
        elif str(tok) in ("=", ">", "<") and prev is not None and prev.type == "CMP":
            help_ = f"write one comparison: `{prev}{tok}` is not one; equality is a single `=`"
        elif expected == {"CMP"} and prev is not None and prev.type == "NAME":
            starts = ["code", "has", "lacks", "distinct", "same", "more", "less", "not"]
            guess = did_you_mean(str(prev), starts)
            if guess:
                pw = max(1, len(str(prev)))
                line, col = prev.line or 1, prev.column or 1
                return error("PR001", f"unknown condition `{prev}`", source.span(line, col, line, col + pw), help=guess)
            help_ = f"`{prev}` is read as a field compared with a number, e.g. `units > 1`: expected a comparison"
        elif expected == {"STRING"} and prev is not None and prev.type == "NAME" and _is_policy_header(exc):
            what, help_ = "the policy needs a title", 'write it after the id: `policy ID "Title"`'
        return error("PR001", what, span, help=help_)
    if isinstance(exc, UnexpectedCharacters):
        line, col = exc.line, exc.column
        text = source.line_text(line)
        ch = text[col - 1] if 0 < col <= len(text) else ""
        span = source.span(line, col)
        if ch == '"':
            return error(
                "PR002",
                "unclosed string",
                source.span(line, col, line, len(text) + 1),
                help='close the string with `"` on the same line; write `\\"` for a quote inside it',
            )
        if ch == "'":
            return error("PR003", "strings use double quotes", span, help="write \"...\" instead of '...'")
        allowed = set(exc.allowed or ())
        shown = ch if ch.strip() else repr(ch)
        return error("PR001", f"unexpected character `{shown}`", span, help=f"expected {expected_words(allowed)}")
    if isinstance(exc, UnexpectedEOF):  # pragma: no cover - LALR reports $END as UnexpectedToken
        line, col = _end_position(source)
        return error("PR001", "unexpected end of file", source.span(line, col), help=f"expected {expected_words(set(exc.expected))}")
    raise exc  # pragma: no cover


def _previous_token(exc: UnexpectedToken) -> Token | None:
    history = getattr(exc, "token_history", None)
    return history[-1] if history else None


def _is_policy_header(exc: UnexpectedToken) -> bool:
    try:
        stack = exc.interactive_parser.parser_state.value_stack
    except AttributeError:  # pragma: no cover
        return False
    return len(stack) == 2 and getattr(stack[0], "type", "") == "POLICY"


def _can_end(exc: UnexpectedToken) -> bool:
    try:
        return "$END" in exc.interactive_parser.accepts()  # type: ignore[no-untyped-call]
    except Exception:  # pragma: no cover - defensive: accepts() replays the parser
        return False


def _end_position(source: SourceFile) -> tuple[int, int]:
    lines = source.lines
    n = len(lines)
    while n > 1 and not lines[n - 1].strip():
        n -= 1
    return n, len(lines[n - 1].rstrip()) + 1 if lines else 1


# ---- strings -----------------------------------------------------------------------------------

_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}
_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|.)", re.S)


def decode_string(raw: str, span: Span | None = None) -> str:
    """Decode the text between the quotes: `\\"`, `\\\\`, `\\n`, `\\t` and `\\uXXXX` (a surrogate pair of
    `\\uXXXX` escapes is one character; a lone surrogate is an error)."""
    if "\\" not in raw:  # most strings have no escape at all
        return raw

    def fail(m: re.Match[str], code: str, message: str, help_: str) -> None:
        if span is None:
            raise ValueError(message)
        col = span.col + 1 + m.start()
        raise DiagnosticError([error(code, message, Span(span.path, span.line, col, span.line, col + len(m.group(0))), help=help_)])

    out: list[str] = []
    pos = 0
    pending_high: re.Match[str] | None = None
    for m in _ESCAPE.finditer(raw):
        out.append(raw[pos:m.start()])
        pos = m.end()
        esc = m.group(1)
        if esc.startswith("u") and len(esc) == 5:
            cp = int(esc[1:], 16)
            if 0xD800 <= cp <= 0xDBFF and pending_high is None:
                pending_high = m
                continue
            if 0xDC00 <= cp <= 0xDFFF and pending_high is not None and pending_high.end() == m.start():
                hi = int(pending_high.group(1)[1:], 16)
                out.append(chr(0x10000 + ((hi - 0xD800) << 10) + (cp - 0xDC00)))
                pending_high = None
                continue
            if pending_high is not None or 0xD800 <= cp <= 0xDFFF:
                bad = pending_high or m
                fail(bad, "PR006", f"lone surrogate escape `{bad.group(0)}` in a string",
                     "a \\uD800-\\uDFFF escape must be half of a pair (high then low), or write the character itself")
            out.append(chr(cp))
            continue
        if pending_high is not None:
            fail(pending_high, "PR006", f"lone surrogate escape `{pending_high.group(0)}` in a string",
                 "a \\uD800-\\uDFFF escape must be half of a pair (high then low), or write the character itself")
        if esc in _ESCAPES:
            out.append(_ESCAPES[esc])
            continue
        fail(m, "PR004", f"unknown escape `\\{esc}` in a string",
             'write `\\\\` for a backslash; the escapes are \\" \\\\ \\n \\t and \\uXXXX')
    if pending_high is not None:
        fail(pending_high, "PR006", f"lone surrogate escape `{pending_high.group(0)}` in a string",
             "a \\uD800-\\uDFFF escape must be half of a pair (high then low), or write the character itself")
    out.append(raw[pos:])
    return "".join(out)


def _claim_only(word: str) -> bool:
    """A field only a claim has (`prior_auth`): `has prior_auth` means `claim has prior_auth`."""
    f = field_for_word(word)
    return f is not None and f.where == "claim"


# ---- tree -> AST -------------------------------------------------------------------------------


@v_args(meta=True)
class _ToAst(Transformer[Token, Any]):
    def __init__(self, source: SourceFile):
        super().__init__(visit_tokens=False)
        self.src = source

    # helpers
    def _span(self, meta: Meta) -> Span:
        return Span(self.src.name, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tspan(self, tok: Token) -> Span:
        return Span(self.src.name, tok.line or 0, tok.column or 0, tok.end_line or 0, tok.end_column or 0)

    def _ident(self, tok: Token) -> nodes.Ident:
        return nodes.Ident(str(tok), self._tspan(tok))

    def _text(self, tok: Token) -> nodes.Text:
        raw = str(tok)[1:-1]
        sp = self._tspan(tok)
        return nodes.Text(decode_string(raw, sp), raw, sp)

    def _num(self, tok: Token) -> nodes.Number:
        if len(tok.lstrip("0")) > MAX_DIGITS:
            raise DiagnosticError([error("PR008", f"the number `{str(tok)[:12]}{'...' if len(tok) > 12 else ''}` is too large",
                                         self._tspan(tok), help=f"numbers in a policy have at most {MAX_DIGITS} digits")])
        return nodes.Number(int(tok), self._tspan(tok))

    @staticmethod
    def _of(children: list[Any], *types: str) -> list[Token]:
        return [c for c in children if isinstance(c, Token) and c.type in types]

    # top level
    def start(self, meta: Meta, children: list[Any]) -> Any:
        return children[0]

    def policy(self, meta: Meta, children: list[Any]) -> Any:
        name = self._of(children, "NAME")[0]
        title = self._of(children, "STRING")[0]
        stmts = tuple(c for c in children if not isinstance(c, Token))
        return nodes.Policy(self._ident(name), self._text(title), stmts, (), self._span(meta))

    def payer(self, meta: Meta, children: list[Any]) -> Any:
        tok = children[1]
        value = self._text(tok).value if tok.type == "STRING" else str(tok)
        return nodes.Payer(nodes.Ident(value, self._tspan(tok)), self._span(meta))

    def include(self, meta: Meta, children: list[Any]) -> Any:
        return nodes.Include(self._ident(children[1]), self._span(meta))

    def source(self, meta: Meta, children: list[Any]) -> Any:
        details: dict[str, Any] = {}
        for kind, value, span in children[3:]:
            if kind in details:
                raise DiagnosticError([error("PR307", f"source `{children[1]}` has two `{kind}` clauses", span,
                                             help=f"a source takes one `{kind}`")])
            details[kind] = value
        return nodes.Source(self._ident(children[1]), self._text(children[2]), span=self._span(meta), **details)

    def source_document(self, meta: Meta, children: list[Any]) -> Any:
        return ("document", self._text(children[1]), self._span(meta))

    def source_url(self, meta: Meta, children: list[Any]) -> Any:
        return ("url", self._text(children[1]), self._span(meta))

    def source_effective(self, meta: Meta, children: list[Any]) -> Any:
        return ("effective", self._date(children[1]), self._span(meta))

    def source_note(self, meta: Meta, children: list[Any]) -> Any:
        return ("note", self._text(children[1]), self._span(meta))

    def set_decl(self, meta: Meta, children: list[Any]) -> Any:
        kind = str(children[0])
        members = tuple(c for c in children[3:] if not isinstance(c, Token))
        return nodes.SetDecl(kind, self._ident(children[1]), members, self._span(meta))  # type: ignore[arg-type]

    def code(self, meta: Meta, children: list[Any]) -> Any:
        return nodes.Value(str(children[0]), False, self._tspan(children[0]))

    def text(self, meta: Meta, children: list[Any]) -> Any:
        t = self._text(children[0])
        return nodes.Value(t.value, True, t.span)

    def range(self, meta: Meta, children: list[Any]) -> Any:
        return nodes.Range(children[0], children[2], self._span(meta))

    def alias(self, meta: Meta, children: list[Any]) -> Any:
        names = tuple(nodes.Ident(self._text(t).value if t.type == "STRING" else str(t), self._tspan(t))
                      for t in children[1:] if isinstance(t, Token) and t.type in ("NAME", "STRING"))
        return nodes.Alias(names, self._span(meta))

    def version(self, meta: Meta, children: list[Any]) -> Any:
        start = end = None
        toks = [c for c in children if isinstance(c, Token)]
        for kw, val in zip(toks, toks[1:]):
            if kw.type == "FROM":
                start = self._date(val)
            elif kw.type == "UNTIL":
                end = self._date(val)
        return nodes.Version(start, end, self._span(meta))

    _CLAUSE_WORDS = {"message": "message", "cite": "per", "unless": "unless", "start": "from", "end": "until",
                     "carc": "carc", "rarc": "rarc"}

    def rule(self, meta: Meta, children: list[Any]) -> Any:
        rid = self._ident(children[1])
        action, scope = str(children[3]), str(children[4])
        cond = children[6]
        clauses: dict[str, Any] = {}
        for kind, value, span in children[7:]:
            if kind in clauses:
                word = self._CLAUSE_WORDS[kind]
                raise DiagnosticError([error(
                    "PR307", f"rule `{rid.value}` has two `{word}` clauses", span,
                    help=f"a rule takes one `{word}`; the first is on line {clauses[kind][1].line}")])
            clauses[kind] = (value, span)
        got = {k: v for k, (v, _) in clauses.items()}
        return nodes.Rule(rid, action, scope, cond, span=self._span(meta), **got)  # type: ignore[arg-type]

    def message(self, meta: Meta, children: list[Any]) -> Any:
        return ("message", self._text(children[1]), self._span(meta))

    def citation(self, meta: Meta, children: list[Any]) -> Any:
        return ("cite", self._ident(children[1]), self._span(meta))

    def exception(self, meta: Meta, children: list[Any]) -> Any:
        return ("unless", children[1], self._span(meta))

    def _date(self, tok: Token) -> nodes.DateLit:
        sp = self._tspan(tok)
        try:
            value = date.fromisoformat(str(tok))
        except ValueError:
            raise DiagnosticError([error("PR007", f"`{tok}` is not a date", sp,
                                         help="write a real date as YYYY-MM-DD, e.g. `2024-04-01`")]) from None
        return nodes.DateLit(str(tok), value, sp)

    def from_date(self, meta: Meta, children: list[Any]) -> Any:
        return ("start", self._date(children[1]), self._span(meta))

    def until_date(self, meta: Meta, children: list[Any]) -> Any:
        return ("end", self._date(children[1]), self._span(meta))

    def carc(self, meta: Meta, children: list[Any]) -> Any:
        return ("carc", self._ident(children[1]), self._span(meta))

    def rarc(self, meta: Meta, children: list[Any]) -> Any:
        return ("rarc", self._ident(children[1]), self._span(meta))

    # conditions
    def or_cond(self, meta: Meta, children: list[Any]) -> Any:
        return nodes.Or(tuple(c for c in children if not isinstance(c, Token)), self._span(meta))

    def and_cond(self, meta: Meta, children: list[Any]) -> Any:
        return nodes.And(tuple(c for c in children if not isinstance(c, Token)), self._span(meta))

    def negation(self, meta: Meta, children: list[Any]) -> Any:
        return nodes.Not(children[1], self._span(meta))

    def group(self, meta: Meta, children: list[Any]) -> Any:
        return children[1]

    def code_in(self, meta: Meta, children: list[Any]) -> Any:
        return nodes.CodeIn(self._ident(children[2]), False, self._span(meta))

    def code_not_in(self, meta: Meta, children: list[Any]) -> Any:
        return nodes.CodeIn(self._ident(children[3]), True, self._span(meta))

    def code_is(self, meta: Meta, children: list[Any]) -> Any:
        tok = children[2]
        return nodes.CodeIs(nodes.Value(str(tok), False, self._tspan(tok)), self._span(meta))

    def setref(self, meta: Meta, children: list[Any]) -> Any:
        return tuple(self._ident(t) for t in self._of(children, "NAME"))

    def _has(self, meta: Meta, children: list[Any], negated: bool, outside: bool = False) -> Any:
        field = self._ident(children[1])
        value = set_ = None
        others: tuple[nodes.Ident, ...] = ()
        last = children[-1]
        if isinstance(last, tuple):  # a set reference
            set_, others = last[0], last[1:]
        elif len(children) == 3:
            tok = children[2]
            if tok.type == "STRING":
                t = self._text(tok)
                value = nodes.Value(t.value, True, t.span)
            else:
                value = nodes.Value(str(tok), False, self._tspan(tok))
        return nodes.Has(field, negated, value, set_, outside, others, _claim_only(field.value), span=self._span(meta))

    def has(self, meta: Meta, children: list[Any]) -> Any:
        return self._has(meta, children, False)

    has_value = has_in = has

    def has_not_in(self, meta: Meta, children: list[Any]) -> Any:
        return self._has(meta, children, False, outside=True)

    def lacks(self, meta: Meta, children: list[Any]) -> Any:
        return self._has(meta, children, True)

    lacks_value = lacks_in = lacks

    def lacks_not_in(self, meta: Meta, children: list[Any]) -> Any:
        return self._has(meta, children, True, outside=True)

    def every_in(self, meta: Meta, children: list[Any]) -> Any:
        refs = children[-1]
        field = self._ident(children[1])
        return nodes.Every(field, refs[0], refs[1:], _claim_only(field.value), span=self._span(meta))

    def scoped(self, meta: Meta, children: list[Any]) -> Any:
        test = children[1]
        if str(children[0]) == "line":
            return test
        return dataclasses.replace(test, claim=True, span=self._span(meta))

    def compare(self, meta: Meta, children: list[Any]) -> Any:
        return nodes.Compare(self._ident(children[0]), str(children[1]), self._num(children[2]), False, self._span(meta))  # type: ignore[arg-type]

    def compare_distinct(self, meta: Meta, children: list[Any]) -> Any:
        return nodes.Compare(self._ident(children[1]), str(children[2]), self._num(children[3]), True, self._span(meta))  # type: ignore[arg-type]

    def same_day(self, meta: Meta, children: list[Any]) -> Any:
        earlier = any(isinstance(c, Token) and c.type == "EARLIER" for c in children)
        name = self._of(children, "NAME")[0]
        sharing = lacking = None
        for c in children:
            if isinstance(c, Tree) and c.data == "sharing":
                sharing = self._ident(c.children[2])  # type: ignore[arg-type]
            elif isinstance(c, Tree) and c.data == "lacking":
                lacking = self._ident(c.children[1])  # type: ignore[arg-type]
        return nodes.SameDay(self._ident(name), earlier, sharing, lacking, self._span(meta))

    def sharing(self, meta: Meta, children: list[Any]) -> Any:
        return Tree("sharing", children, meta)

    def lacking(self, meta: Meta, children: list[Any]) -> Any:
        return Tree("lacking", children, meta)

    def session_limit(self, meta: Meta, children: list[Any]) -> Any:
        count = self._num(children[2])
        set_ = self._ident(children[3])
        by = children[6] if len(children) > 6 else None
        return nodes.SessionLimit(count, set_, children[5], by, span=self._span(meta))

    def grouping(self, meta: Meta, children: list[Any]) -> Any:
        return self._ident(children[3])

    def window(self, meta: Meta, children: list[Any]) -> Any:
        unit = str(children[2].children[0]) if isinstance(children[2], Tree) else str(children[2])
        unit = "days" if unit.startswith("day") else "months"
        return nodes.Window(unit, self._num(children[1]), self._span(meta))  # type: ignore[arg-type]

    def unit(self, meta: Meta, children: list[Any]) -> Any:
        return children[0]

    def calendar_year(self, meta: Meta, children: list[Any]) -> Any:
        return nodes.Window("calendar year", None, self._span(meta))

    def spacing(self, meta: Meta, children: list[Any]) -> Any:
        unit_tok = children[3].children[0] if isinstance(children[3], Tree) else children[3]
        unit = "days" if str(unit_tok).startswith("day") else "months"
        by = children[9] if len(children) > 9 else None
        return nodes.Spacing(self._num(children[2]), self._ident(children[7]), unit, by,  # type: ignore[arg-type]
                             span=self._span(meta))
