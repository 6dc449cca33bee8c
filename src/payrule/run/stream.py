"""How `payrule check` decides a JSON Lines file: the same decisions as holding every claim in memory
(`--in-memory`), in a fraction of the memory.

Three passes over a JSON Lines file (read with positioned reads, never mapped or held whole):

1. index: a cheap decode of each row's claim_id, patient_id and payer records where the row is,
   which patient-and-payer group it belongs to, and whether an earlier row used its claim_id;
2. decide: one group at a time, its rows are read in full (by the same reader as the default mode),
   decided, and their output written to a temporary file;
3. output: the outputs are copied out in input order.

Memory holds the index and one group, not every claim. CSV input, standard input, several files and
the table format are read whole instead.
"""
from __future__ import annotations

import os
import tempfile
from array import array
from typing import BinaryIO, Sequence

import msgspec

from payrule.claims.readers import LOW_MEMORY, ClaimError, Limits, ReadSession, read_jsonl_rows, read_one
from payrule.run.engine import Decided, claim_decision, decide_group, history_by_group, render_jsonl
from payrule.run.loaded import Checker, route_error
from payrule.runtime import Claim, payer_key

__all__ = ["check_file"]


class _Head(msgspec.Struct):
    claim_id: object = None
    patient_id: object = None
    payer: object = None


_HEAD = msgspec.json.Decoder(_Head).decode
_HEAD_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)


def _text(v) -> str | None:
    return v if isinstance(v, str) and v.strip() else None


def check_file(checkers: dict[str, Checker], path: str, history: Sequence[Claim], out: BinaryIO,
               progress=None, small_tables: bool = False, session: ReadSession | None = None) -> tuple[dict[str, int], int]:
    """Decide the JSON Lines claims in `path`, writing the output to `out` (binary). Returns the count
    of claims by decision (and "error"), and the number of service lines decided. `session`: the
    run's ReadSession; without one, a new one with `LOW_MEMORY` limits when `small_tables`
    (--low-memory: small memo tables, no strings shared across the file), else the default limits."""
    if session is None:
        session = ReadSession(LOW_MEMORY if small_tables else Limits())
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return {}, 0
        return _check(checkers, f, size, history, out, progress, session)


def _check(checkers, f, size, history, out, progress, session: ReadSession) -> tuple[dict[str, int], int]:
    fd = f.fileno()
    # -- pass 1: index ---------------------------------------------------------------------------
    starts, ends, numbers = array("q"), array("q"), array("q")  # a row's bytes: [start, end) (with its newline)
    dup = bytearray()  # 1 where an earlier row used the claim_id
    groups: dict[tuple[str, str], array] = {}
    alone = array("q")  # rows read on their own: unroutable, or not readable enough to route
    seen: set[str] = set()
    pre: dict[int, object] = {}  # rows already read in pass 1
    pos, n = 0, 0
    for line in f:
        end = pos + len(line)
        raw = line[:-1] if line.endswith(b"\n") else line
        n += 1
        head = raw[3:] if n == 1 and raw.startswith(b"\xef\xbb\xbf") else raw  # as the reader sees it
        if head.strip():
            i = len(starts)
            starts.append(pos)
            ends.append(end)
            numbers.append(n)
            try:
                h = _HEAD(head)
            except _HEAD_ERRORS:
                h = None
            if h is None or not isinstance(h, _Head):
                # Rare: not readable enough to route cheaply. Read it in full now, with the real
                # `seen`, exactly as the default mode would, and keep the result for pass 2.
                rec = next(read_jsonl_rows([raw], False, i, None, n, seen, session), None)
                pre[i] = rec
                dup.append(0)
                if isinstance(rec, Claim) and rec.payer_key in checkers:
                    patient, key = rec.patient_id, checkers[rec.payer_key].payer
                else:
                    patient, key = None, None
            else:
                cid = _text(h.claim_id)
                dup.append(1 if cid is not None and cid in seen else 0)
                if cid is not None:
                    seen.add(cid)
                patient, payer = _text(h.patient_id), _text(h.payer)
                key = payer_key(payer) if payer is not None else None
                if key in checkers:  # an alias routes to its policy's payer
                    key = checkers[key].payer
            if patient is None or key not in checkers:
                alone.append(i)
            else:
                g = groups.get((key, patient))
                if g is None:
                    g = groups[(key, patient)] = array("q")
                g.append(i)
            if progress is not None and not i & 8191:
                progress("indexing", end, size)
        pos = end
    seen.clear()
    past = history_by_group(checkers, history)

    # -- pass 2: decide, one group at a time ---------------------------------------------------------
    counts: dict[str, int] = {}
    lines = 0
    rendered: dict = {}  # each rule's rendered parts, for this run
    where = array("q", bytes(8 * len(starts)))  # output offset of each row in the temporary file
    sizes = array("l", bytes(array("l").itemsize * len(starts)))  # and its length
    with tempfile.TemporaryFile() as tmp:

        def read(i: int):
            if i in pre:
                return pre.pop(i)
            raw = os.pread(fd, ends[i] - starts[i], starts[i])
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            used = set()
            if dup[i]:
                used.add(_HEAD(raw[3:] if numbers[i] == 1 and raw.startswith(b"\xef\xbb\xbf") else raw).claim_id)
            return read_one(raw, numbers[i], i, used, session)

        def emit(i: int, rec) -> None:
            nonlocal lines
            where[i] = tmp.tell()
            if not isinstance(rec, ClaimError):
                lines += len(rec.claim.lines)
            text = next(render_jsonl([rec], rendered)).encode("utf-8")
            sizes[i] = len(text)
            tmp.write(text)
            kind = "error" if isinstance(rec, ClaimError) else rec.decision
            counts[kind] = counts.get(kind, 0) + 1

        for i in alone:
            rec = read(i)
            if isinstance(rec, Claim):  # readable, but no policy for its payer
                rec = ClaimError(rec.claim_id, f"no policy for payer {rec.payer!r}", rec.input_line)
            emit(i, rec)
        done = 0
        for key, rows in groups.items():
            recs = [(i, read(i)) for i in rows]
            checker = checkers[key[0]]
            if checker.version is not None or checker.versions:  # a line no version is in force for
                recs = [(i, _routed(checker, r)) for i, r in recs]
            claims = [r for _, r in recs if isinstance(r, Claim)]
            if claims:
                decide_group(checkers[key[0]], claims, past.get(key, ()))
            for i, rec in recs:
                emit(i, Decided(rec, claim_decision(rec)) if isinstance(rec, Claim) else rec)
            for c in claims:  # claim <-> line is a cycle: break it so the group is freed now,
                for ln in c.lines:  # even with the cyclic collector paused
                    ln.claim = None
            done += len(rows)
            if progress is not None and done & ~8191 != (done - len(rows)) & ~8191:
                progress("deciding", done, len(starts))

        # -- pass 3: output in input order -------------------------------------------------------
        tmp.flush()
        tfd = tmp.fileno()
        batch: list[bytes] = []
        for i in range(len(starts)):
            batch.append(os.pread(tfd, sizes[i], where[i]))
            if len(batch) >= 4096:
                out.write(b"".join(batch))
                batch.clear()
        out.write(b"".join(batch))
    return counts, lines


def _routed(checker, rec):
    """The record, or the error a claim becomes when no version of its payer's policy is in force on a line's date."""
    if isinstance(rec, Claim):
        why = route_error(checker, rec)
        if why is not None:
            return ClaimError(rec.claim_id, why, rec.input_line)
    return rec
