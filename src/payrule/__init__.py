"""payrule: payer policies written as rules, compiled to Python checkers that decide claims.

The stages, one module each: grammar -> parser (AST) -> checker (model) -> compiler (Python source,
via emit and the jinja2 template) -> loader (checkers) -> engine (decisions). The API below wires them.
"""
__version__ = "0.1.0"

from .api import PolicyError, PolicySet, check, compile_policy  # noqa: E402

__all__ = ["PolicySet", "PolicyError", "check", "compile_policy", "__version__"]
