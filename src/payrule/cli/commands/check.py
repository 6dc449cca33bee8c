"""`payrule check`: decide claims with the policies."""
from __future__ import annotations

import contextlib
import gc
import os
import sys
import time

from payrule.claims.formats import FORMATS, FormatError, detect
from payrule.claims.readers import (
    LOW_MEMORY,
    ClaimError,
    HistoryError,
    ReadSession,
    duplicate_id_error,
    read_claims_stream,
    read_history,
)
from payrule.cli.commands._common import (
    EXIT_CLAIM_ERRORS,
    EXIT_OK,
    add_policy_arguments,
    load_checkers,
    read_input,
    usage_error,
)
from payrule.cli.progress import Progress, summary
from payrule.run.engine import decide, decision_json, render_jsonl

NAME = "check"
HELP = "decide claims with the policies"
DESCRIPTION = ("Decide claims (JSON Lines, CSV, X12 837P or FHIR R4) with the policies; print one decision or error "
               "object per claim, in input order.")
OUTPUTS = ("jsonl", "table", "fhir")


def add_arguments(c) -> None:
    c.add_argument("claims", nargs="*", metavar="CLAIMS",
                   help="claims files (JSON Lines, CSV, X12 837P or FHIR R4); standard input when none")
    c.add_argument("--history", metavar="FILE", help="earlier claims that count as already paid; not decided, not printed")
    add_policy_arguments(c)
    c.add_argument("--format", choices=(*FORMATS, "table"), default=None,
                   help="the claims' format: jsonl, csv, x12 or fhir (default: found from each file's name and "
                        "first bytes); `table` is kept as the old spelling of --output-format table")
    c.add_argument("--output-format", choices=OUTPUTS, default=None,
                   help="jsonl decisions (default), a table for people, or FHIR R4 ClaimResponses (NDJSON)")
    c.add_argument("-o", "--output", metavar="FILE",
                   help="write decisions here instead of standard output (`--output fhir`, `table` or `jsonl` "
                        "name the output format instead; write ./fhir for a file of that name)")
    c.add_argument("--low-memory", action="store_true",
                   help="also keep the reader's memo tables small: less memory, a little more time")
    c.add_argument("--in-memory", action="store_true",
                   help="hold every claim in memory instead of deciding one patient at a time from the file (same output)")
    c.add_argument("--jobs", type=int, metavar="N", default=None,
                   help="decide in N processes, each taking whole patients (default: the cores available, for a JSON "
                        "Lines file of 20,000 claims or more); the output is the same")
    c.add_argument("--summary", action="store_true", help="print a summary on stderr at the end (default when stderr is a terminal)")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary")


def run(args) -> int:
    # Millions of claim and line objects live until the end of the run: the cyclic garbage collector
    # would only rescan them again and again, so it is paused for the command.
    gc.disable()
    try:
        return _run(args)
    finally:
        gc.enable()


def _settle_formats(args) -> None:
    """--format is the input's format; `--format table` and `--output fhir|table|jsonl` are read as the
    output format (the old spelling, and the short one the issue tracker uses)."""
    if args.format == "table":
        args.format, args.output_format = None, args.output_format or "table"
    if args.output in OUTPUTS:
        args.output_format, args.output = args.output_format or args.output, None
    args.output_format = args.output_format or "jsonl"


def _run(args) -> int:
    _settle_formats(args)
    if args.jobs is not None and args.jobs < 1:
        return usage_error(f"--jobs must be 1 or more, not {args.jobs}")
    started = time.monotonic()
    bar = Progress(enabled=not args.quiet and sys.stderr.isatty())
    policies = load_checkers(args)
    # This run's reader memo tables. History claims live for the whole run, so they are read with the
    # default limits (their strings shared) even under --low-memory, which lowers them for the claims.
    session = ReadSession(keep_extra=policies.reads_extra)
    history = []
    if args.history:
        try:
            history = read_history(read_input(args.history), args.history, session)  # its format found from it
        except OSError as exc:
            return usage_error(f"cannot read history file {args.history}: {exc.strerror or exc}")
        except HistoryError as exc:
            return usage_error(str(exc))
    files = args.claims or ["-"]
    # A single JSON Lines file is decided one patient group at a time (payrule.run.stream); standard input,
    # CSV, several files and the table are read whole. Both give the same output.
    if (not args.in_memory and len(files) == 1 and files[0] != "-" and args.output_format == "jsonl"
            and args.format in (None, "jsonl") and _is_jsonl(files[0])):
        return _run_streaming(args, policies, history, files[0], bar, started,
                              session.with_limits(LOW_MEMORY) if args.low_memory else session)
    records = []
    used: set[str] = set()
    for path in files:
        progress = lambda done, total: bar.update("reading", done, total)  # noqa: E731
        try:
            if path == "-":
                recs = read_claims_stream(sys.stdin.buffer, "<stdin>", 0, len(records), progress, session, args.format)
            else:
                with open(path, "rb") as f:
                    recs = read_claims_stream(f, path, os.fstat(f.fileno()).st_size, len(records), progress, session,
                                              args.format)
        except OSError as exc:
            return usage_error(f"cannot read claims file {path}: {exc.strerror or exc}")
        except FormatError as exc:
            return usage_error(f"{'<stdin>' if path == '-' else path}: {exc}")
        if len(files) > 1:  # several files are one input: a claim_id an earlier file used is an error here
            recs = [ClaimError(r.claim_id, f"{path}: {r.error}", r.input_line) if isinstance(r, ClaimError)
                    else ClaimError(r.claim_id, f"{path}: {duplicate_id_error(r.claim_id)}", r.input_line)
                    if r.claim_id in used else r for r in recs]
            used.update(r.claim_id for r in recs if not isinstance(r, ClaimError))
        records.extend(recs)
    decided = decide(policies.checkers, records, history, progress=lambda done, total: bar.update("deciding", done, total))
    bar.close()
    try:
        with _output(args.output, "w") as out:
            if args.output_format == "table":
                out.write(format_table(decided))
            elif args.output_format == "fhir":
                from payrule.claims.fhir import render_claim_responses

                out.writelines(b.decode("utf-8") for b in render_claim_responses(
                    (decision_json(d) for d in decided), _claim_facts(records)))
            else:
                out.writelines(render_jsonl(decided))
    except OSError as exc:
        return usage_error(f"cannot write {args.output or 'the decisions'}: {exc.strerror or exc}")
    errors = sum(1 for d in decided if isinstance(d, ClaimError))
    if not args.quiet and (args.summary or sys.stderr.isatty()):
        counts = {"error": errors}
        lines = 0
        for d in decided:
            if not isinstance(d, ClaimError):
                counts[d.decision] = counts.get(d.decision, 0) + 1
                lines += len(d.claim.lines)
        sys.stderr.write(summary(counts, len(decided), lines, time.monotonic() - started) + "\n")
    return EXIT_CLAIM_ERRORS if errors else EXIT_OK


@contextlib.contextmanager
def _output(path: str | None, mode: str):
    """Where the decisions go. A file is written as `PATH.partial` and renamed to PATH once complete, so
    PATH is never a short output: a run that is killed, interrupted or fails leaves only the `.partial`
    file, named for what it is. Standard output is flushed here, so a full disk is an error, not lost."""
    if path is None:
        out = sys.stdout if "b" not in mode else _binary_stdout()
        yield out
        out.flush()
        return
    partial = path + ".partial"
    f = open(partial, mode, **({} if "b" in mode else {"encoding": "utf-8"}))
    try:
        yield f
        f.close()
    except BaseException:
        f.close()
        if isinstance(sys.exc_info()[1], KeyboardInterrupt):
            sys.stderr.write(f"payrule: interrupted: the decisions so far are in {partial}\n")
        raise
    os.replace(partial, path)


def _claim_facts(records) -> dict:
    """claim_id -> the claim, whose patient, payer and dates a ClaimResponse names beside the decision."""
    return {r.claim_id: r for r in records if not isinstance(r, ClaimError)}


def _is_jsonl(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return detect(path, f.read(65536)) == "jsonl"
    except OSError:
        return False


class _TextSink:
    """Bytes written to a text stream that has no binary buffer (redirect_stdout, notebooks)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, data: bytes) -> None:
        self.stream.write(data.decode("utf-8"))

    def flush(self) -> None:
        self.stream.flush()


def _binary_stdout():
    buffer = getattr(sys.stdout, "buffer", None)
    return buffer if buffer is not None else _TextSink(sys.stdout)


def _run_streaming(args, policies, history, path, bar, started, session: ReadSession) -> int:
    """One patient group at a time: see payrule.run.stream. Output is identical to --in-memory's."""
    from payrule.run.stream import WorkerError, check_file

    try:
        with _output(args.output, "wb") as out:
            sys.stdout.flush()
            counts, lines = check_file(policies.checkers, path, history, out,
                                       progress=lambda phase, done, total: bar.update(phase, done, total),
                                       session=session, jobs=args.jobs)
    except WorkerError as exc:  # raised inside the `with`, so no output file is made of a short run
        return usage_error(str(exc))
    except OSError as exc:
        if exc.filename == path:
            return usage_error(f"cannot read claims file {path}: {exc.strerror or exc}")
        return usage_error(f"cannot write {args.output or 'the decisions'}: {exc.strerror or exc}")
    finally:
        bar.close()
    if not args.quiet and (args.summary or sys.stderr.isatty()):
        sys.stderr.write(summary(counts, sum(counts.values()), lines, time.monotonic() - started) + "\n")
    return EXIT_CLAIM_ERRORS if counts.get("error") else EXIT_OK


def format_table(decided) -> str:
    """Decisions for people: one row per line, reasons beneath, a count at the end."""
    rows = []
    counts = {"approve": 0, "review": 0, "deny": 0, "error": 0}
    for d in decided:
        obj = decision_json(d)
        if "error" in obj:
            counts["error"] += 1
            rows.append(f"{obj['claim_id'] or '-':<12} {'':>4} {'':<6} {'ERROR':<8} input line {obj['input_line']}: {obj['error']}")
            continue
        counts[obj["decision"]] += 1
        for ln in obj["lines"]:
            rows.append(f"{obj['claim_id']:<12} {ln['line']:>4} {ln['code']:<6} {ln['decision'].upper()}")
            for r in ln["reasons"]:
                codes = "".join(f", {k.upper()} {r[k]}" for k in ("carc", "rarc") if k in r)
                rows.append(f"{'':<12} {'':>4} {'':<6} {'':<8} {r['outcome']}: {r['message']} "
                            f"[{r['policy']}/{r['rule']}, {r['source']}{codes}]")
    head = f"{'CLAIM':<12} {'LINE':>4} {'CODE':<6} DECISION"
    total = ", ".join(f"{n} {k}" for k, n in counts.items())
    return "\n".join([head, *rows, "", f"{sum(counts.values())} claims: {total}", ""])


