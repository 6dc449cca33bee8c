"""Checking an X12 837P file against the implementation guide (005010X222A1), for `payrule validate`.

`payrule check` reads X12 with its own reader (`payrule.claims.x12`), built for speed and for the
mapping of contract section 6: it reads what the mapping needs and lets the rest go. Whether a file is
a valid 837P - every required segment there, qualifiers from the guide's code lists, dates that are
dates, elements within their lengths - is a different question, answered here by pyx12, the
well-kept validator of the X12N guides. It is an optional dependency (`pip install payrule[x12]`),
imported only when a file is validated, so `payrule check` never loads it.

pyx12 reports through an error tree it writes out as JSON; `validate_x12` turns that into flat
`Finding`s, one per problem, each saying where: the segment's number among the file's segments (the
count `input_line` uses, and the one pyx12 calls the line), its id, and the element when the problem
is in one.

Severity: pyx12 reports everything as an error, and so does this, with one exception. A service line
note (NTE02) longer than the guide's 80 characters is a `warning`: contract section 6 has readers accept
such notes (the `muscles=...;substances=...` note of a TPI line is often longer), so payrule reads the
file as it is, while a payer holding to the guide may reject it.
"""
from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass

__all__ = ["Finding", "validate_x12"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem the guide finds in a file. `segment` is the 1-based number of the segment among the
    file's segments (None when pyx12 names none), `segment_id` its id, `element` the element
    (`NM109`, `SV101-2` for a component) when the problem is in one; `code` is pyx12's error code (the
    IK3/IK4 codes of a 999 acknowledgment for segments and elements)."""

    segment: int | None
    segment_id: str | None
    element: str | None
    severity: str  # "error" or "warning"
    code: str
    message: str

    def render(self) -> str:
        """One line: `segment 12 (NM1): element NM109: ...`."""
        where = []
        if self.segment is not None:
            where.append(f"segment {self.segment}" + (f" ({self.segment_id})" if self.segment_id else ""))
        elif self.segment_id:
            where.append(self.segment_id)
        if self.element:
            where.append(f"element {self.element}")
        head = ": ".join(where)
        word = "" if self.severity == "error" else f"{self.severity}: "
        return f"{head}: {word}{self.message}" if head else f"{word}{self.message}"


_LONG_NOTE = ("NTE", 2, "5")  # segment id, element, pyx12's code for "too long"


def validate_x12(data: bytes) -> list[Finding]:
    """What pyx12 finds wrong with an X12 837P file against 005010X222A1, in file order; an empty list
    for a file that validates clean. Raises ImportError (saying what to install) without pyx12."""
    try:
        import pyx12.errors
        import pyx12.params
        import pyx12.x12n_document
    except ImportError as exc:  # pragma: no cover - pyx12 is installed with payrule[x12]
        raise ImportError("validating X12 needs pyx12: pip install 'payrule[x12]'", name="pyx12") from exc
    # X12 is ASCII; a byte beyond it is kept (one character each) for pyx12 to report where it is.
    text = data.decode("latin-1").lstrip("\ufeff\xef\xbb\xbf \t\r\n")
    ids = _segment_ids(text)
    out = io.StringIO()
    log = logging.getLogger("pyx12")
    # pyx12 also logs every problem; they are returned here, so its log is held back for the call.
    saved = log.propagate, log.handlers[:]
    quiet = logging.NullHandler()
    log.addHandler(quiet)
    log.propagate = False
    try:
        ok = pyx12.x12n_document.x12n_document(pyx12.params.params(), io.StringIO(text), None, None, fd_json=out)
    except pyx12.errors.EngineError as exc:  # e.g. no map for the version the GS names
        return [Finding(None, None, None, "error", "engine", f"pyx12 cannot validate the file: {exc}")]
    finally:
        log.removeHandler(quiet)
        log.propagate, log.handlers[:] = saved[0], saved[1]
    if not out.getvalue():
        head = text[:3]
        return [Finding(1, head or None, None, "error", "isa",
                        "not an X12 interchange pyx12 can read (it needs an ISA segment of 106 characters, "
                        "version 00401 or 00501)")]
    findings = _findings(json.loads(out.getvalue()), ids)
    if not ok and not findings:  # pragma: no cover - pyx12 said invalid without saying why
        findings.append(Finding(None, None, None, "error", "invalid", "pyx12 rejects the file without naming a problem"))
    return findings


def _segment_ids(text: str) -> list[str]:
    """The id of each segment, by number - 1 (empty when the ISA gives no separators)."""
    if text[:3] != "ISA" or len(text) < 106:
        return []
    sep, term = text[3], text[105]
    segs = text.split(term)
    return [s.strip("\r\n").split(sep, 1)[0] for s in segs]


def _findings(doc: dict, ids: list[str]) -> list[Finding]:
    out: list[Finding] = []

    def seg_id(n: int | None) -> str | None:
        return ids[n - 1] if n is not None and 0 < n <= len(ids) else None

    def level(node: dict, code_key: str = "err_cde") -> None:
        n = node.get("cur_line")
        for err in node.get("errors", ()):
            out.append(Finding(n, seg_id(n), None, "error", str(err.get(code_key)), _words(err.get("err_str"))))

    for isa in doc.get("interchanges", ()):
        level(isa)
        for gs in isa.get("groups", ()):
            level(gs)
            for st in gs.get("transactions", ()):
                level(st)
                for seg in st.get("segments", ()):
                    # pyx12 files a missing segment under the missing segment's id, at the segment
                    # where it noticed: the id shown is the one that stands there.
                    n, sid = seg.get("cur_line"), seg.get("seg_id")
                    here = seg_id(n) or sid
                    for err in seg.get("errors", ()):
                        out.append(Finding(n, here, None, "error", str(err.get("err_cde")),
                                           _words(err.get("err_str"), err.get("err_val"))))
                    for ele in seg.get("elements", ()):
                        pos, sub = ele.get("ele_pos"), ele.get("subele_pos")
                        name = f"{sid}{pos:02d}" + (f"-{sub}" if sub else "") if isinstance(pos, int) else None
                        for err in ele.get("errors", ()):
                            code = str(err.get("err_cde"))
                            long_note = (sid, pos, code) == _LONG_NOTE
                            msg = _words(err.get("err_str"))
                            if long_note:
                                msg += " (payrule reads longer notes, as contract section 6 allows)"
                            out.append(Finding(n, here, name, "warning" if long_note else "error", code, msg))
    out.sort(key=lambda f: (f.segment is None, f.segment or 0))
    return out


def _words(err_str, value=None) -> str:
    """pyx12's message, on one line (it may quote a value that holds line breaks)."""
    msg = " ".join(str(err_str or "no description").split())
    if value and str(value) not in msg:
        msg += f" ({' '.join(str(value).split())})"
    return msg
