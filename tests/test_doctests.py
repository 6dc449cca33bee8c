"""Examples in docstrings run (sqlglot's guard: at least one module with examples was found)."""
import doctest
import importlib
import pkgutil

import payrule


def test_docstring_examples_run():
    tried = 0
    for info in pkgutil.walk_packages(payrule.__path__, "payrule."):
        if info.name.endswith(("spark", "spark_check", "__main__")):
            continue  # needs the optional pyspark extra
        module = importlib.import_module(info.name)
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, info.name
        tried += result.attempted
    assert tried >= 3
