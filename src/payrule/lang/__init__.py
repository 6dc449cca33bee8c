"""The policy language: source text, grammar, parser, nodes, diagnostics, checker, checked model, lowered IR."""
