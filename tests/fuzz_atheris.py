#!/usr/bin/env python3
"""Coverage-guided fuzzing of the policy front end with atheris (libFuzzer). Not part of the test suite
(pytest collects only test_*.py) and not a dependency: install atheris to use it.

    .venv/bin/pip install atheris
    .venv/bin/python tests/fuzz_atheris.py -atheris_runs=200000            # corpus in /tmp/payrule-atheris-corpus
    .venv/bin/python tests/fuzz_atheris.py -max_total_time=3600 my-corpus/  # an hour, your own corpus folder

The oracle is the one of tests/test_fuzz.py (`frontend`): parse + check + (when clean) compile + load;
anything raised other than payrule's own DiagnosticError, or a diagnostic that points outside its file
or renders without `file:line:col`, source line and caret, is a crash. libFuzzer writes the input that
caused it to `crash-<sha1>`; replay it with `python tests/fuzz_atheris.py crash-<sha1>`.

The first byte of an input picks how its text is checked: on its own, or in place of one of the shipped
policies, next to the other two (so that includes resolve). The corpus starts from the shipped policies.
"""
from __future__ import annotations

import sys
from pathlib import Path

import atheris

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

with atheris.instrument_imports(include=["payrule"]):
    import payrule.codegen.compiler  # noqa: F401
    import payrule.lang.checker  # noqa: F401 - instrumented before test_fuzz imports them
    import payrule.lang.parser  # noqa: F401
    import payrule.loader  # noqa: F401

from test_fuzz import SHIPPED, frontend  # noqa: E402

NAMES = sorted(SHIPPED)
DEFAULT_CORPUS = Path("/tmp/payrule-atheris-corpus")


def texts_for(data: bytes) -> dict[str, str] | None:
    if not data:
        return None
    try:
        text = data[1:].decode("utf-8")
    except UnicodeDecodeError:
        return None  # policy files are read as UTF-8; an undecodable file is refused before parsing
    mode = data[0] % (len(NAMES) + 1)
    if mode == len(NAMES):
        return {"policies/fuzz.policy": text}
    texts = dict(SHIPPED)
    texts[NAMES[mode]] = text
    return texts


def test_one_input(data: bytes) -> None:
    texts = texts_for(data)
    if texts is not None:
        frontend(texts)


def seed_corpus(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        return
    for i, name in enumerate(NAMES):
        (folder / f"shipped-{i}").write_bytes(bytes([i]) + SHIPPED[name].encode("utf-8"))
        (folder / f"alone-{i}").write_bytes(bytes([len(NAMES)]) + SHIPPED[name].encode("utf-8"))


def main() -> None:
    args = list(sys.argv)
    if not any(not a.startswith("-") for a in args[1:]):
        seed_corpus(DEFAULT_CORPUS)
        args.append(str(DEFAULT_CORPUS))
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
