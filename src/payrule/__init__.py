"""payrule: payer policies written as rules, compiled to Python checkers that decide claims.

The stages, one module each: grammar -> parser (AST) -> checker (model) -> compiler (Python source,
via emit and the jinja2 template) -> loader (checkers) -> engine (decisions). `payrule.api` wires them;
its names are re-exported here lazily, so that generated checkers, which import only
`payrule.runtime`, never load the compiler, lark or jinja2.
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["PolicySet", "PolicyError", "check", "compile_policy", "__version__"]


def __getattr__(name: str):
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'payrule' has no attribute {name!r}")
