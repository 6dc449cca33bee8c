"""The policy analyst's tools: formatter, linter, explain, policy tests, the Pygments lexer."""
