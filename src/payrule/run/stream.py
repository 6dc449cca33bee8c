"""How `payrule check` decides a JSON Lines file: the same decisions as holding every claim in memory
(`--in-memory`), in a fraction of the memory.

Three passes over a JSON Lines file (read with positioned reads, never mapped or held whole):

1. index: a cheap decode of each row's claim_id, patient_id and payer records where the row is,
   which patient-and-payer group it belongs to, and whether an earlier row used its claim_id; a file
   of INDEX_IN_TWO_FROM bytes or more, when `jobs` allows more than one process, is indexed in two
   halves at once, the later half by a forked process whose table is then joined to the first's
   (`_Rows.extend` settles what the later half could not know: claim ids the first half used, rows
   to read in full in order);
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
from bisect import bisect_left
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
        return _check(checkers, path, f, size, history, out, progress, session, jobs)


def _check(checkers, path, f, size, history, out, progress, session: ReadSession, jobs: int | None) -> tuple[dict[str, int], int]:
    fd = f.fileno()
    # -- pass 1: index ---------------------------------------------------------------------------
    rows = _Rows()
    seen: set[str] = set()
    split = _split_point(fd, size) if _index_in_two(jobs, size) else size
    child = _index_later_half(checkers, path, split, size, session) if split < size else None
    f.seek(0)
    rows.index(checkers, f, 0, split, seen, session, progress, size)
    if child is not None:
        later = _join_later_half(child)
        if later is not None:
            rows.extend(later, seen, checkers, fd, session)
            split = size
    if split < size:  # no second process, or it could not index its half: this one does
        f.seek(split)
        rows.index(checkers, f, split, size, seen, session, progress, size)
    starts, ends, numbers, dup, groups, alone, pre = (rows.starts, rows.ends, rows.numbers, rows.dup, rows.groups,
                                                      rows.alone, rows.pre)
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


class _Rows:
    """Pass 1's table: for each row (a line that is not blank) where its bytes are ([start, end), with
    the newline), its line number, whether an earlier row used its claim_id (`dup`), and the rows of
    each (payer, patient) group; `alone` the rows read on their own (unroutable, or not readable
    enough to route), `pre` the rows already read in full. `lines`: the file's lines read so far."""

    def __init__(self) -> None:
        self.starts, self.ends, self.numbers = array("q"), array("q"), array("q")
        self.dup = bytearray()
        self.groups: dict[tuple[str, str], array] = {}
        self.alone = array("q")
        self.pre: dict[int, object] = {}
        self.lines = 0
        self.firsts: list[tuple[int, str]] = []  # (row, claim_id) of each claim_id's first row (`keep_firsts`)
        self.deferred: list[int] = []  # rows to read in full (`keep_firsts`)

    def index(self, checkers, f, lo: int, hi: int, seen: set, session: ReadSession, progress, size: int,
              keep_firsts: bool = False) -> None:
        """Index the rows of bytes [lo, hi) of the file (f positioned at lo, a line's start), `seen`
        the claim ids of the rows before lo. With `keep_firsts` (the later half, indexed by a second
        process that cannot know the rows before it), the first row of each claim_id is kept in
        `firsts` and a row that needs reading in full in `deferred`, for `extend` to finish."""
        starts, ends, numbers, dup, groups, alone = self.starts, self.ends, self.numbers, self.dup, self.groups, self.alone
        routes: dict[str, str | None] = {}  # a payer as written -> the payer its policy answers to, or None
        firsts = self.firsts
        pos, n = lo, self.lines
        for line in f:
            n += 1
            if n == 1 and lo == 0 and line.startswith(b"\xef\xbb\xbf"):  # as the reader sees it
                line = line[3:]
                pos += 3
            end = pos + len(line)
            if not line or line.isspace():
                pos = end
                if pos >= hi:
                    break
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
                if keep_firsts:  # read in full by `extend`, once the rows before it are known
                    self.deferred.append(i)
                    dup.append(0)
                    pos = end
                    if pos >= hi:
                        break
                    continue
                # Rare: not readable enough to route cheaply. Read it in full now, with the real
                # `seen`, exactly as the default mode would, and keep the result for pass 2.
                raw = line[:-1] if line.endswith(b"\n") else line
                rec = next(read_jsonl_rows([raw], False, i, None, n, seen, session), None)
                self.pre[i] = rec
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
                        if keep_firsts:
                            firsts.append((i, cid))
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
            if pos >= hi:
                break
        self.lines = n

    def extend(self, later: "_Rows", seen: set, checkers, fd: int, session: ReadSession) -> None:
        """Append the later half's table (indexed from its own row 0 and line 1) to this one, which
        holds every row before it and `seen` their claim ids: its rows and lines renumbered after
        these, and, in row order, each claim_id it saw first marked a repeat where an earlier row
        used it, and each deferred row read in full (from `fd`) with the claim ids before it, as
        `index` would have."""
        base, lines = len(self.starts), self.lines
        self.starts.extend(later.starts)
        self.ends.extend(later.ends)
        self.numbers.extend(array("q", [x + lines for x in later.numbers]))
        self.dup.extend(later.dup)
        groups = self.groups
        flat = array("q")  # every group's rows in one array, renumbered in one go, then cut up again
        for rows in later.groups.values():
            flat.extend(rows)
        flat = array("q", [r + base for r in flat])
        at = 0
        for key, rows in later.groups.items():
            moved = flat[at:at + len(rows)]
            at += len(rows)
            g = groups.get(key)
            if g is None:
                groups[key] = moved
            else:
                g.extend(moved)
        self.alone.extend(array("q", [r + base for r in later.alone]))
        self.lines += later.lines
        firsts = later.firsts
        rows_of = [i for i, _ in firsts]
        at = 0
        for d in [*later.deferred, None]:  # the first rows up to each deferred row, then that row
            upto = len(firsts) if d is None else bisect_left(rows_of, d, at)
            ids = [cid for _, cid in firsts[at:upto]]
            repeated = seen.intersection(ids)  # set operations in C; repeats are few
            if repeated:
                for i, cid in firsts[at:upto]:
                    if cid in repeated:
                        self.dup[base + i] = 1
            seen.update(ids)
            at = upto
            if d is not None:
                self._read_deferred(base + d, seen, checkers, fd, session)
        if later.deferred:
            self.alone = array("q", sorted(self.alone))

    def _read_deferred(self, i: int, seen: set, checkers, fd: int, session: ReadSession) -> None:
        raw = os.pread(fd, self.ends[i] - self.starts[i], self.starts[i])
        raw = raw[:-1] if raw.endswith(b"\n") else raw
        rec = next(read_jsonl_rows([raw], False, i, None, self.numbers[i], seen, session), None)
        self.pre[i] = rec
        if isinstance(rec, Claim) and rec.payer_key in checkers:
            key = (checkers[rec.payer_key].payer, rec.patient_id)
            g = self.groups.get(key)
            self.groups[key] = array("q", [i]) if g is None else array("q", sorted([*g, i]))
        else:
            self.alone.append(i)  # out of row order: `extend` sorts them once


INDEX_IN_TWO_FROM = 8 << 20  # bytes: a file this size or more is indexed by two processes when --jobs allows


def _index_in_two(jobs: int | None, size: int) -> bool:
    return (jobs is None or jobs > 1) and size >= INDEX_IN_TWO_FROM and hasattr(os, "fork") and available_cores() > 1


def _split_point(fd: int, size: int) -> int:
    """Where the later half starts: the first line that starts at or after the middle of the file."""
    mid = size // 2
    while mid < size:
        chunk = os.pread(fd, 1 << 16, mid)
        nl = chunk.find(b"\n")
        if nl >= 0:
            return mid + nl + 1
        mid += len(chunk)
    return size


def _index_later_half(checkers, path: str, lo: int, hi: int, session: ReadSession):
    """Fork a process that indexes bytes [lo, hi) (`_Rows.index` with `keep_firsts`) and writes its
    table to a temporary file; returns (pid, that file). It opens the file anew: a file descriptor
    shared across fork shares its offset too."""
    out = tempfile.TemporaryFile()
    pid = os.fork()
    if pid == 0:  # the child: index, write, leave without running the parent's cleanup
        code = 0
        try:
            with open(path, "rb") as mine:
                mine.seek(lo)
                rows = _Rows()
                rows.index(checkers, mine, lo, hi, set(), session, None, hi, keep_firsts=True)
                keys = list(rows.groups)
                flat, sizes = array("q"), array("q")
                for k in keys:
                    flat.extend(rows.groups[k])
                    sizes.append(len(rows.groups[k]))
                out.write(msgspec.msgpack.encode([
                    rows.starts.tobytes(), rows.ends.tobytes(), rows.numbers.tobytes(), bytes(rows.dup),
                    rows.alone.tobytes(), keys, flat.tobytes(), sizes.tobytes(),
                    [i for i, _ in rows.firsts], [c for _, c in rows.firsts], rows.deferred, rows.lines]))
                out.flush()
        except BaseException:  # noqa: BLE001 - the parent indexes this half itself
            code = 3
        finally:
            os._exit(code)
    return pid, out


def _join_later_half(child) -> "_Rows | None":
    """The later half's table, or None when its process could not index it (a crash, a kill): then
    the parent indexes that half itself, and no work is lost."""
    pid, out = child
    try:
        _, status = os.waitpid(pid, 0)
        if status != 0:
            return None
        out.seek(0)
        data = out.read()
        if not data:
            return None
        (starts, ends, numbers, dup, alone, keys, flat_b, sizes_b, first_rows, first_ids, deferred,
         lines) = msgspec.msgpack.decode(data)
    except (OSError, msgspec.DecodeError, ValueError):
        return None
    finally:
        out.close()
    rows = _Rows()
    rows.starts.frombytes(starts)
    rows.ends.frombytes(ends)
    rows.numbers.frombytes(numbers)
    rows.dup = bytearray(dup)
    rows.alone.frombytes(alone)
    flat, sizes = array("q"), array("q")
    flat.frombytes(flat_b)
    sizes.frombytes(sizes_b)
    at = 0
    for (key, patient), n in zip(keys, sizes):
        rows.groups[(key, patient)] = flat[at:at + n]
        at += n
    rows.firsts = list(zip(first_rows, first_ids))
    rows.deferred = deferred
    rows.lines = lines
    return rows


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
