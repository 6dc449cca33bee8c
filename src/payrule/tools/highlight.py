"""A Pygments lexer for the policy language, registered as the `payrule` entry point of
`pygments.lexers`, so any Pygments-based tool (the docs site, `pygmentize -l policy`) finds it.

It follows `grammar/policy.lark`: keywords, set kinds, actions and scopes, the names a statement
declares, set members (codes, ranges, quoted words), numbers, strings with their escapes, and the
`{placeholders}` of a rule's message.
"""
from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, default, include, words
from pygments.token import Comment, Keyword, Literal, Name, Number, Operator, Punctuation, String, Whitespace

__all__ = ["PolicyLexer"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:[-.][A-Za-z0-9_]+)*"
_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_CODE = r"[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)*"
_END = r"(?![A-Za-z0-9_-])"  # a keyword is a whole name, not the start of `per-day`
_WS = r"\s+"

STATEMENT_WORDS = ("policy", "payer", "alias", "include", "source", "document", "url", "effective", "note", "rule",
                   "message", "per", "unless", "from", "until", "carc", "rarc")
SET_KINDS = ("codes", "diagnoses", "stems", "names")
ACTIONS = ("deny", "review")
SCOPES = ("line", "claim")
LOGIC = ("and", "or", "not")
CONDITION_WORDS = (
    "when", "code", "in", "is", "has", "lacks", "distinct", "same", "day", "as", "earlier", "sharing",
    "a", "lacking", "more", "less", "than", "sessions", "session", "days", "after", "the", "last",
    "within", "months", "month", "calendar", "year", "every", "at",
)
# Words after `has FIELD` that are not its value (`has muscles and ...`, not `has modifier 25`).
_NOT_VALUE = r"(?!(?:" + "|".join(STATEMENT_WORDS + SET_KINDS + LOGIC + ("in",)) + r")" + _END + ")"


class PolicyLexer(RegexLexer):
    """Pygments lexer for payrule policy files (`*.policy`)."""

    name = "payrule"
    aliases = ["payrule", "policy"]
    filenames = ["*.policy"]
    mimetypes = ["text/x-payrule-policy"]
    url = "https://pypi.org/project/payrule/"

    tokens = {
        "common": [
            (_WS, Whitespace),
            (r"#.*?$", Comment.Single),
        ],
        "root": [
            (r"(message)(\s+)(\")", bygroups(Keyword, Whitespace, String.Double), "message"),
            (r"\"", String.Double, "string"),
            include("common"),
            (r"(policy)(\s+)(" + _NAME + ")", bygroups(Keyword, Whitespace, Name.Class)),
            (r"(rule)(\s+)(" + _NAME + ")", bygroups(Keyword, Whitespace, Name.Function)),
            (r"(source)(\s+)(" + _NAME + ")", bygroups(Keyword, Whitespace, Name.Label)),
            (r"(include)(\s+)(" + _NAME + ")", bygroups(Keyword, Whitespace, Name.Class)),
            (r"(payer)(\s+)(" + _NAME + ")", bygroups(Keyword, Whitespace, Name.Constant)),
            (r"(per)(\s+)(?!calendar" + _END + ")(" + _NAME + ")", bygroups(Keyword, Whitespace, Name.Label)),
            (r"(" + "|".join(SET_KINDS) + r")(\s+)(" + _NAME + r")(\s*)(=)",
             bygroups(Keyword.Declaration, Whitespace, Name.Variable, Whitespace, Punctuation), "members"),
            (r"(code)(\s+)(is)(\s+)(" + _CODE + ")", bygroups(Keyword, Whitespace, Keyword, Whitespace, Number)),
            (r"(has|lacks)(\s+)(" + _NAME + r")(\s+)(\")",
             bygroups(Keyword, Whitespace, Name.Attribute, Whitespace, String.Double), "string"),
            (r"(has|lacks)(\s+)(" + _NAME + r")(\s+)" + _NOT_VALUE + "(" + _CODE + ")" + _END,
             bygroups(Keyword, Whitespace, Name.Attribute, Whitespace, Number)),
            (r"(has|lacks|distinct|lacking)(\s+)(" + _NAME + ")", bygroups(Keyword, Whitespace, Name.Attribute)),
            (r"(sharing)(\s+)(a)(\s+)(" + _NAME + ")",
             bygroups(Keyword, Whitespace, Keyword, Whitespace, Name.Attribute)),
            (r"(carc|rarc)(\s+)(" + _CODE + ")", bygroups(Keyword, Whitespace, Number)),
            (_DATE + _END, Literal.Date),
            (r"(every)(\s+)(" + _NAME + ")", bygroups(Keyword, Whitespace, Name.Attribute)),
            (r"(same)(\s+)(" + _NAME + r")(?=\s*(?:$|#|and|or|message|per|unless|from|until|carc|rarc|\)))",
             bygroups(Keyword, Whitespace, Name.Attribute)),
            (words(ACTIONS, suffix=_END), Keyword.Reserved),
            (words(SCOPES, suffix=_END), Keyword.Type),
            (words(LOGIC, suffix=_END), Operator.Word),
            (words(STATEMENT_WORDS + CONDITION_WORDS, suffix=_END), Keyword),
            (words(SET_KINDS, suffix=_END), Keyword.Declaration),
            (r"units" + _END, Name.Attribute),
            (_NAME, Name),
            (r"[0-9]+" + _END, Number.Integer),
            (_CODE, Number),
            (r">=|<=|!=|>|<|=", Operator),
            (r"\.\.", Operator),
            (r"[:,()]", Punctuation),
        ],
        # After `codes NAME =`: a member (code or quoted word), then `,` or `..` for another.
        "members": [
            include("common"),
            (r"\"", String.Double, ("after-member", "string")),
            (_CODE, Number, "after-member"),
            default("#pop"),
        ],
        "after-member": [
            include("common"),
            (r",", Punctuation, "#pop"),
            (r"\.\.", Operator, "#pop"),
            default("#pop:2"),
        ],
        "string": [
            (r"\"", String.Double, "#pop"),
            (r"\\.", String.Escape),
            (r"[^\"\\\n]+", String.Double),
        ],
        # A rule's message: placeholders in braces; `{{` and `}}` are literal braces.
        "message": [
            (r"\"", String.Double, "#pop"),
            (r"\\.", String.Escape),
            (r"\{\{|\}\}", String.Escape),
            (r"\{[A-Za-z_][A-Za-z0-9_]*\}", String.Interpol),
            (r"[{}]", String.Double),
            (r"[^\"\\\n{}]+", String.Double),
        ],
    }
