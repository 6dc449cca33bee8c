"""`payrule validate`: check claims files against their format's own rules, without deciding anything.

X12 837P files are checked against the 005010X222A1 implementation guide (pyx12), FHIR files against the
R4 resource definitions (fhir.resources); JSON Lines and CSV against contract section 1 (the readers'
own checks). Findings print one a line, `FILE: segment 12 (NM1): ...`; exit 0 when there are none (warnings aside),
1 when there are, 2 when a file cannot be read at all (after what was found before the reader gave up).
"""
from __future__ import annotations

import sys

from payrule.claims.formats import FORMATS, FormatError, detect
from payrule.cli.commands._common import EXIT_CLAIM_ERRORS, EXIT_OK, EXIT_USAGE, read_input, usage_error

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
    status = EXIT_OK
    for path in args.files:
        try:
            data = read_input(path)
        except OSError as exc:
            return usage_error(f"cannot read {path}: {exc.strerror or exc}")
        name = "<stdin>" if path == "-" else path
        fmt = args.format or detect(name, data[:65536])
        findings: list[tuple[str, bool]] = []
        try:
            _findings(fmt, data, name, findings)
        except ImportError as exc:
            return usage_error(f"validating {fmt} needs {exc.name}: pip install 'payrule[{fmt}]'")
        except FormatError as exc:  # the guide's findings so far are shown first: they often say why
            for line, _ in findings:
                sys.stdout.write(f"{name}: {line}\n")
            sys.stdout.flush()
            usage_error(f"{name}: {exc}")
            status = EXIT_USAGE
            continue
        for line, _ in findings:
            sys.stdout.write(f"{name}: {line}\n")
        errors = sum(1 for _, is_error in findings if is_error)
        found += errors
        if not errors:
            sys.stdout.write(f"{name}: valid {fmt}" + (f" ({len(findings)} warnings)" if findings else "") + "\n")
    if status == EXIT_USAGE:
        return status
    return EXIT_CLAIM_ERRORS if found else EXIT_OK


_WHERE = {"x12": "segment", "fhir": "record", "jsonl": "input line", "csv": "input line"}


def _findings(fmt: str, data: bytes, name: str, out: list[tuple[str, bool]]) -> None:
    """Append (line, is an error) for the format's own findings, then for what payrule itself cannot read
    (the claims `check` would print as errors), each naming where it is. Warnings (an X12 note longer
    than the guide's 80 characters, which payrule reads) are shown but do not make the file invalid."""
    from payrule.claims.readers import ClaimError, read_claims

    if fmt == "x12":
        from payrule.claims.x12_validate import validate_x12

        out.extend((f.render(), f.severity == "error") for f in validate_x12(data))
    elif fmt == "fhir":
        from payrule.claims.fhir_validate import validate_fhir

        out.extend((f.render(), True) for f in validate_fhir(data))
    where = _WHERE[fmt]
    for r in read_claims(data, name, fmt=fmt):
        if isinstance(r, ClaimError):
            claim = f"claim {r.claim_id}: " if r.claim_id else ""
            out.append((f"{where} {r.input_line}: {claim}{r.error}", True))
