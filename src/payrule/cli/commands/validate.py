"""`payrule validate`: check claims files against their format's own rules, without deciding anything.

X12 837P files are checked against the 005010X222A1 implementation guide (pyx12), FHIR files against the
R4 resource definitions (fhir.resources); JSON Lines and CSV against contract section 1 (the readers'
own checks). Findings print one a line, `FILE: segment 12 (NM1): ...`; exit 0 when there are none, 1 when
there are, 2 when the file cannot be read at all.
"""
from __future__ import annotations

import sys

from payrule.claims.formats import FORMATS, FormatError, detect
from payrule.cli.commands._common import EXIT_CLAIM_ERRORS, EXIT_OK, read_input, usage_error

NAME = "validate"
HELP = "check claims files against their format (X12 guide, FHIR R4, the contract)"
DESCRIPTION = ("Check claims files without deciding them: X12 837P against the 005010X222A1 implementation guide, "
               "FHIR R4 resources against their definitions, JSON Lines and CSV against the contract. One finding a "
               "line; exit 0 when there are none, 1 when there are, 2 when a file cannot be read.")


def add_arguments(c) -> None:
    c.add_argument("files", nargs="+", metavar="FILE", help="claims files; - for standard input")
    c.add_argument("--format", choices=FORMATS, default=None, help="the files' format (default: found from each file)")


def run(args) -> int:
    found = 0
    for path in args.files:
        try:
            data = read_input(path)
        except OSError as exc:
            return usage_error(f"cannot read {path}: {exc.strerror or exc}")
        name = "<stdin>" if path == "-" else path
        fmt = args.format or detect(name, data[:65536])
        try:
            lines = _findings(fmt, data, name)
        except FormatError as exc:
            return usage_error(f"{name}: {exc}")
        except ImportError as exc:
            return usage_error(f"validating {fmt} needs {exc.name}: pip install 'payrule[{fmt}]'")
        for line in lines:
            sys.stdout.write(f"{name}: {line}\n")
        found += len(lines)
        if not lines:
            sys.stdout.write(f"{name}: valid {fmt}\n")
    return EXIT_CLAIM_ERRORS if found else EXIT_OK


_WHERE = {"x12": "segment", "fhir": "record", "jsonl": "input line", "csv": "input line"}


def _findings(fmt: str, data: bytes, name: str) -> list[str]:
    """The format's own findings, then what payrule itself cannot read (the claims `check` would print as
    errors), each naming where it is."""
    from payrule.claims.readers import ClaimError, read_claims

    out: list[str] = []
    if fmt == "x12":
        from payrule.claims.x12_validate import validate_x12

        out = [f.render() for f in validate_x12(data)]
    elif fmt == "fhir":
        from payrule.claims.fhir_validate import validate_fhir

        out = [f.render() for f in validate_fhir(data)]
    where = _WHERE[fmt]
    for r in read_claims(data, name, fmt=fmt):
        if isinstance(r, ClaimError):
            claim = f"claim {r.claim_id}: " if r.claim_id else ""
            out.append(f"{where} {r.input_line}: {claim}{r.error}")
    return out
