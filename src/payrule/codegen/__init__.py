"""Lowered IR -> Python source: the one writer of generated code, and its template."""
