"""Deciding claims: loaded checkers, the engine, streaming, the reference interpreter, Spark."""
