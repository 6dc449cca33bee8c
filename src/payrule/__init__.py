"""payrule: payer policies written as rules, compiled to Python checkers that decide claims.

The pipeline, one package a stage: `payrule.lang` (source -> parse tree -> nodes -> checked model ->
lowered IR), `payrule.codegen` (IR -> Python source), `payrule.runtime` (all a generated checker
imports), `payrule.claims` (claims in), `payrule.run` (loaded checkers -> decisions), `payrule.tools`
(fmt, lint, explain, tests) and `payrule.cli`. `payrule.loader` and `payrule.api` wire them; the API's
names are re-exported here lazily, so that generated checkers, which import only `payrule.runtime`,
never load the compiler, lark or jinja2.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"
__all__ = ["PolicySet", "PolicyError", "check", "compile_policy", "__version__"]


def __getattr__(name: str) -> object:
    if name in __all__:
        # Loaded on first use, by name: `import payrule.runtime` (all a generated checker does) or
        # `from payrule import __version__` (the compiler) must not pull in the API and its stages.
        api = importlib.import_module("payrule.api")
        return getattr(api, name)
    raise AttributeError(f"module 'payrule' has no attribute {name!r}")
