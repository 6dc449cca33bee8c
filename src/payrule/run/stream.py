"""How `payrule check` decides a JSON Lines file: the same decisions as holding every claim in memory
(`--in-memory`), in a fraction of the memory.

Three passes over a JSON Lines file (read with positioned reads, never mapped or held whole):

1. index: a cheap decode of each row's claim_id, patient_id and payer records where the row is,
   which patient-and-payer group it belongs to, and whether an earlier row used its claim_id;
2. decide: one group at a time, its rows are read in full (by the same reader as the default mode),
   decided, and their output written to a temporary file; with `jobs` > 1 the groups are shared out
   among that many forked workers (a patient's decisions depend only on that patient's claims), each
   with a temporary file of its own;
3. output: the outputs are copied out in input order, so every `jobs` writes the same bytes.

Memory holds the index and one group (per worker), not every claim. CSV input, standard input, several files and
the table format are read whole instead.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from array import array
from typing import BinaryIO, Sequence

import msgspec

from payrule.claims.readers import (
    LOW_MEMORY,
    ClaimError,
    Limits,
    ReadSession,
    fast_row_reader,
    read_jsonl_rows,
    read_one,
)
from payrule.run.engine import Decided, claim_decision, decide_group, history_by_group, render_one
from payrule.run.loaded import Checker, route_error
from payrule.runtime import Claim, payer_key

__all__ = ["check_file", "WorkerError", "available_cores", "PARALLEL_FROM"]


class _Head(msgspec.Struct):
    claim_id: object = None
    patient_id: object = None
    payer: object = None


_HEAD = msgspec.json.Decoder(_Head).decode
_HEAD_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)


def _text(v) -> str | None:
    return v if isinstance(v, str) and v.strip() else None


def check_file(checkers: dict[str, Checker], path: str, history: Sequence[Claim], out: BinaryIO,
               progress=None, small_tables: bool = False, session: ReadSession | None = None,
               jobs: int | None = 1) -> tuple[dict[str, int], int]:
    """Decide the JSON Lines claims in `path`, writing the output to `out` (binary). Returns the count
    of claims by decision (and "error"), and the number of service lines decided. `session`: the
    run's ReadSession; without one, a new one with `LOW_MEMORY` limits when `small_tables`
    (--low-memory: small memo tables, no strings shared across the file), else the default limits.
    `jobs` > 1: pass 2 runs in that many forked processes, each deciding whole patient groups (a
    patient's decisions depend only on that patient's claims); the output is byte for byte the same.
    `jobs` None: the cores this process may use, for a file of PARALLEL_FROM rows or more (forking
    costs more than it saves on a small one). Raises WorkerError when a worker dies."""
    if session is None:
        session = ReadSession(LOW_MEMORY if small_tables else Limits())
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return {}, 0
        return _check(checkers, f, size, history, out, progress, session, jobs)


def _check(checkers, f, size, history, out, progress, session: ReadSession, jobs: int | None) -> tuple[dict[str, int], int]:
    fd = f.fileno()
    # -- pass 1: index ---------------------------------------------------------------------------
    starts, ends, numbers = array("q"), array("q"), array("q")  # a row's bytes: [start, end) (with its newline)
    dup = bytearray()  # 1 where an earlier row used the claim_id
    groups: dict[tuple[str, str], array] = {}
    alone = array("q")  # rows read on their own: unroutable, or not readable enough to route
    seen: set[str] = set()
    pre: dict[int, object] = {}  # rows already read in pass 1
    routes: dict[str, str | None] = {}  # a payer as written -> the payer its policy answers to, or None
    pos, n = 0, 0
    lines = iter(f)
    for line in lines:
        n += 1
        if n == 1 and line.startswith(b"\xef\xbb\xbf"):  # as the reader sees it
            line = line[3:]
            pos += 3
        end = pos + len(line)
        if not line or line.isspace():
            pos = end
            continue
        i = len(starts)
        starts.append(pos)
        ends.append(end)
        numbers.append(n)
        try:
            h = _HEAD(line)  # trailing whitespace (the newline) is JSON whitespace
        except _HEAD_ERRORS:
            h = None
        if h is None or h.__class__ is not _Head:
            # Rare: not readable enough to route cheaply. Read it in full now, with the real
            # `seen`, exactly as the default mode would, and keep the result for pass 2.
            raw = line[:-1] if line.endswith(b"\n") else line
            rec = next(read_jsonl_rows([raw], False, i, None, n, seen, session), None)
            pre[i] = rec
            dup.append(0)
            if isinstance(rec, Claim) and rec.payer_key in checkers:
                patient, key = rec.patient_id, checkers[rec.payer_key].payer
            else:
                patient, key = None, None
        else:
            cid = h.claim_id
            if cid.__class__ is str and cid.strip():
                if cid in seen:
                    dup.append(1)
                else:
                    dup.append(0)
                    seen.add(cid)
            else:
                dup.append(0)
            patient, payer = h.patient_id, h.payer
            if patient.__class__ is not str or not patient.strip():
                patient = None
            if payer.__class__ is str:
                if payer in routes:
                    key = routes[payer]
                else:
                    k = payer_key(payer) if payer.strip() else None
                    key = routes[payer] = checkers[k].payer if k in checkers else None  # an alias routes to its payer
            else:
                key = None
        if patient is None or key is None:
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
    index = _Index(fd, starts, ends, numbers, dup, pre, session)
    past = history_by_group(checkers, history)
    if jobs is None:
        jobs = available_cores() if len(starts) >= PARALLEL_FROM else 1
    if not hasattr(os, "fork"):  # pragma: no cover - Windows: one process
        jobs = 1
    buckets = _buckets(groups, alone, jobs)
    if len(buckets) == 1:
        parts = [_decide_part(checkers, index, buckets[0], groups, past, progress)]
    else:
        parts = _decide_in_workers(checkers, index, buckets, groups, past)
    try:
        counts: dict[str, int] = {}
        lines = 0
        owner = bytearray(len(starts))  # which part decided each row
        for k, part in enumerate(parts):
            lines += part.lines
            for kind, n in part.counts.items():
                counts[kind] = counts.get(kind, 0) + n
            for i in part.rows:
                owner[i] = k
        # -- pass 3: output in input order -------------------------------------------------------
        fds = [part.tmp.fileno() for part in parts]
        batch: list[bytes] = []
        for i in range(len(starts)):
            k = owner[i]
            part = parts[k]
            batch.append(os.pread(fds[k], part.sizes[i], part.where[i]))
            if len(batch) >= 4096:
                out.write(b"".join(batch))
                batch.clear()
        out.write(b"".join(batch))
    finally:
        for part in parts:
            part.tmp.close()
    return counts, lines


PARALLEL_FROM = 20_000  # rows: below this, --jobs' default is one process


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class _Index:
    """Pass 1's findings, and reading a row in full by it."""

    def __init__(self, fd, starts, ends, numbers, dup, pre, session):
        self.fd, self.starts, self.ends, self.numbers, self.dup, self.pre = fd, starts, ends, numbers, dup, pre
        self.session = session
        self.fast = fast_row_reader(session)

    def read(self, i: int):
        if i in self.pre:
            return self.pre.pop(i)
        raw = os.pread(self.fd, self.ends[i] - self.starts[i], self.starts[i])
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        if self.fast is not None and not self.dup[i]:
            claim = self.fast(raw, self.numbers[i], i)
            if claim is not None:
                return claim
        used = set()
        if self.dup[i]:
            used.add(_HEAD(raw[3:] if self.numbers[i] == 1 and raw.startswith(b"\xef\xbb\xbf") else raw).claim_id)
        return read_one(raw, self.numbers[i], i, used, self.session)


class _Part:
    """What deciding one share of the rows left: their output in `tmp` (row i at where[i], sizes[i]
    bytes), the rows it holds, and its counts."""

    def __init__(self, tmp, n_rows: int):
        self.tmp = tmp
        self.where = array("q", bytes(8 * n_rows))
        self.sizes = array("q", bytes(8 * n_rows))
        self.rows = array("q")
        self.counts: dict[str, int] = {}
        self.lines = 0


def _buckets(groups: dict, alone: array, jobs: int) -> list[tuple[list, array]]:
    """The groups (and the rows decided alone) shared out among `jobs` parts, each part a group at a
    time to the part with the fewest rows so far: deterministic, and balanced by rows, not groups."""
    jobs = max(1, min(jobs, len(groups)))
    shares: list[tuple[list, array]] = [([], array("q")) for _ in range(jobs)]
    if jobs == 1:
        return [(list(groups), alone)]
    load = [0] * jobs
    shares[0][1].extend(alone)
    load[0] = len(alone)
    for key, rows in groups.items():
        k = load.index(min(load))
        shares[k][0].append(key)
        load[k] += len(rows)
    return shares


def _decide_part(checkers, index: _Index, bucket, groups, past, progress=None) -> _Part:
    """Decide one share of the rows (pass 2), its output written to a temporary file of its own."""
    keys, alone = bucket
    part = _Part(tempfile.TemporaryFile(), len(index.starts))
    tmp, where, sizes, rows_of, counts = part.tmp, part.where, part.sizes, part.rows, part.counts
    rendered: dict = {}  # each rule's rendered parts, for this run
    offset = 0
    read = index.read

    def emit(i: int, rec) -> None:
        nonlocal offset
        if not isinstance(rec, ClaimError):
            part.lines += len(rec.claim.lines)
        text = render_one(rec, rendered).encode("utf-8")
        where[i] = offset
        sizes[i] = len(text)
        offset += len(text)
        tmp.write(text)
        rows_of.append(i)
        kind = "error" if isinstance(rec, ClaimError) else rec.decision
        counts[kind] = counts.get(kind, 0) + 1

    for i in alone:
        rec = read(i)
        if isinstance(rec, Claim):  # readable, but no policy for its payer
            rec = ClaimError(rec.claim_id, f"no policy for payer {rec.payer!r}", rec.input_line)
        emit(i, rec)
    done, total = 0, len(index.starts)
    for key in keys:
        rows = groups[key]
        recs = [(i, read(i)) for i in rows]
        checker = checkers[key[0]]
        if checker.version is not None or checker.versions:  # a line no version is in force for
            recs = [(i, _routed(checker, r)) for i, r in recs]
        claims = [r for _, r in recs if isinstance(r, Claim)]
        if claims:
            decide_group(checker, claims, past.get(key, ()))
        for i, rec in recs:
            emit(i, Decided(rec, claim_decision(rec)) if isinstance(rec, Claim) else rec)
        for c in claims:  # claim <-> line is a cycle: break it so the group is freed now,
            for ln in c.lines:  # even with the cyclic collector paused
                ln.claim = None
        done += len(rows)
        if progress is not None and done & ~8191 != (done - len(rows)) & ~8191:
            progress("deciding", done, total)
    tmp.flush()
    return part


class WorkerError(Exception):
    """A worker process of `--jobs` died before finishing its share: nothing is written."""


def _decide_in_workers(checkers, index: _Index, buckets, groups, past) -> list[_Part]:
    """Pass 2 in one forked process per bucket. Each writes its output to a temporary file made here
    (so it outlives the worker) and its row table to a second one; a worker that dies (a crash, a
    kill, an exception) is a WorkerError naming the input lines it held, never a short output."""
    tmps = [(tempfile.TemporaryFile(), tempfile.TemporaryFile()) for _ in buckets]
    pids = []
    for k, bucket in enumerate(buckets):
        pid = os.fork()
        if pid == 0:  # the worker: decide, write the row table, leave without running the parent's cleanup
            code = 0
            try:
                part = _decide_part(checkers, index, bucket, groups, past)
                out, table = tmps[k][0], tmps[k][1]
                part.tmp.seek(0)
                shutil.copyfileobj(part.tmp, out)
                out.flush()
                table.write(msgspec.msgpack.encode([part.rows.tobytes(), part.where.tobytes(), part.sizes.tobytes(),
                                                    part.counts, part.lines]))
                table.flush()
            except BaseException:  # noqa: BLE001 - reported by the parent as this worker's failure
                code = 3
            finally:
                os._exit(code)
        pids.append(pid)
    failed = []
    for k, pid in enumerate(pids):
        _, status = os.waitpid(pid, 0)
        if status != 0:
            failed.append((k, status))
    if failed:
        for out, table in tmps:
            out.close()
            table.close()
        k, status = failed[0]
        rows = sorted(i for key in buckets[k][0] for i in groups[key]) + list(buckets[k][1])
        lines = sorted(index.numbers[i] for i in rows)
        how = (f"was killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
               else f"failed (exit status {os.waitstatus_to_exitcode(status)})")
        raise WorkerError(f"worker {k + 1} of {len(pids)}, deciding {len(rows)} claims between input lines "
                          f"{lines[0] if lines else 0} and {lines[-1] if lines else 0}, {how}; nothing was written")
    parts = []
    for out, table in tmps:
        table.seek(0)
        rows_b, where_b, sizes_b, counts, lines = msgspec.msgpack.decode(table.read())
        table.close()
        part = _Part(out, 0)
        part.rows.frombytes(rows_b)
        part.where.frombytes(where_b)
        part.sizes.frombytes(sizes_b)
        part.counts, part.lines = counts, lines
        parts.append(part)
    return parts


def _routed(checker, rec):
    """The record, or the error a claim becomes when no version of its payer's policy is in force on a line's date."""
    if isinstance(rec, Claim):
        why = route_error(checker, rec)
        if why is not None:
            return ClaimError(rec.claim_id, why, rec.input_line)
    return rec
