"""`payrule serve`: the policies behind an HTTP JSON API (Starlette on uvicorn).

The application is built by `create_app(policies)` around one loaded `PolicySet`; it keeps no state
between requests. Starlette is imported only when the app is built, so `import payrule.serve` costs
nothing for the rest of payrule (and works without the `serve` extra installed).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["create_app", "DEFAULT_MAX_BODY"]

DEFAULT_MAX_BODY = 10 * 1024 * 1024  # bytes; `payrule serve --max-body`

if TYPE_CHECKING:
    from payrule.serve.app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":  # lazily: importing it imports Starlette
        from payrule.serve.app import create_app

        return create_app
    raise AttributeError(name)
