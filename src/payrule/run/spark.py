"""Decide claims on Apache Spark with the compiled checkers: the same output objects as `payrule check`.

    from payrule.run.spark import local_session, read_claims_text, check_dataframe

    spark = local_session()                                    # or your own SparkSession
    out = check_dataframe(spark, read_claims_text(spark, "claims.jsonl"),
                          read_claims_text(spark, "history.jsonl"))   # history: optional
    for row in out.orderBy("input_line").toLocalIterator():   # (input_line, decision, output)
        print(row.output)

How it runs (contract sections 2, 3 and 5):

1. The policies are checked and compiled on the driver; only the generated Python *source* travels to
   the workers (in the task closure), where `payrule.loader.load_module` loads it once per worker process.
2. Every input line is read by payrule's own claim reader (`payrule.claims.readers`), one line at a time, so an
   unreadable claim gets the very error object the CLI prints, at its physical `input_line`.
3. A claim_id already used earlier in the file makes the later claim an error: the smallest input line per
   claim_id is found with a window over claim_id.
4. The readable claims and the history are partitioned by (payer, patient) and sorted so that each group
   is a run of rows: its history in file order, then its claims in input order (`Claim.order` is the input
   line). `payrule.run.engine.decide` decides each run; Python is called once per batch, not once per group.

Nothing depends on how Spark partitions the data: each output row is a function of its (payer, patient)
group, its claim_id's first occurrence and its own input line.
"""
from __future__ import annotations

import functools
import os
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from payrule.claims.readers import ClaimError, ReadSession, duplicate_id_error, history_error, read_jsonl_rows
from payrule.run.engine import decide, render_jsonl
from payrule.run.loaded import Checker, load_module
from payrule.runtime import Claim

__all__ = ["check_dataframe", "read_claims_text", "with_input_lines", "policy_sources", "local_session", "OUTPUT_SCHEMA"]

OUTPUT_SCHEMA = "input_line long, decision string, output string"
LINES_SCHEMA = "input_line long, value binary"
_SCAN_SCHEMA = "input_line long, seen_id string, payer_key string, patient_id string, error string, value binary"

# ---- reading one physical line exactly as `payrule check` reads it ---------------------------------


def _read_line(raw: bytes | None, n: int, session: ReadSession, history: bool = False,
               seen: set | None = None) -> Claim | ClaimError | None:
    """Input line `n` as payrule's reader reads it: a Claim, a ClaimError, or None for a blank line.
    The claim_id check across lines is not made here (see `_marked`); `seen`, if given, gains the
    claim_id the reader counts as used (a readable claim's, or an unreadable one's once read)."""
    if raw is None:
        return None
    if b"\n" in raw:
        raise ValueError(f"input line {n} holds a line break: read the file with read_claims_text")
    return next(read_jsonl_rows([raw], history, n, None, n, set() if seen is None else seen, session), None)


def _duplicate_error(claim_id: str, n: int) -> ClaimError:
    """The error payrule's reader gives a claim whose claim_id an earlier claim already used."""
    return ClaimError(claim_id, duplicate_id_error(claim_id), n)


def _render(rec) -> str:
    return next(render_jsonl([rec]))[:-1]


# ---- policies: compiled on the driver, loaded once per worker process ------------------------------


def policy_sources(policies=None) -> tuple[tuple[str, str, str], ...]:
    """(payer, policy id, generated Python source) for every payer policy, compiled on the driver.
    `policies`: a PolicySet, a policy folder or a list of folders (default: the shipped policies)."""
    from payrule.api import PolicySet

    if not isinstance(policies, PolicySet):
        if isinstance(policies, (str, os.PathLike)):
            policies = [policies]
        policies = PolicySet.load(policies)
    return tuple((payer, chk.policy_id, policies.source(chk.policy_id)) for payer, chk in sorted(policies.checkers.items()))


@functools.lru_cache(maxsize=4)
def _checkers(sources: tuple[tuple[str, str, str], ...]) -> dict[str, Checker]:
    """The loaded checkers for these sources, loaded once per worker process (for the last few sets)."""
    return {payer: Checker(load_module(text, pid)) for payer, pid, text in sources}


# ---- the worker side: plain functions over pandas batches -----------------------------------------


def _frame(columns: dict[str, list], ints: Sequence[str] = ("input_line",)):
    import pandas as pd

    return pd.DataFrame({k: pd.Series(v, dtype="int64" if k in ints else object) for k, v in columns.items()})


def _scan(sources, history: bool, batches: Iterator) -> Iterator:
    """Each line -> (input_line, seen_id, payer_key, patient_id, error, value). `seen_id` is the claim_id
    the reader counts as used; `error` the rendered error object; `value` kept for the claims to decide
    (for history, every line: a bad one is read again on the driver to say what is wrong)."""
    checkers = _checkers(sources)
    session = ReadSession()  # this task's
    for pdf in batches:
        cols: dict[str, list] = {k: [] for k in ("input_line", "seen_id", "payer_key", "patient_id", "error", "value")}
        for n, raw in zip(pdf["input_line"].tolist(), pdf["value"].tolist()):
            used: set = set()
            rec = _read_line(raw, n, session, seen=used)
            if rec is None:
                continue
            seen = payer = patient = error = None
            keep = raw if history else None
            if isinstance(rec, ClaimError):
                if rec.claim_id is not None and rec.claim_id in used:
                    seen = rec.claim_id
                error = _render(rec)
            else:
                seen, patient = rec.claim_id, rec.patient_id
                if rec.payer_key in checkers:
                    payer, keep = checkers[rec.payer_key].payer, raw
                elif not history:  # a history claim for another payer is left out, as the CLI does
                    error = _render(decide(checkers, [rec])[0])
            for k, v in zip(cols, (n, seen, payer, patient, error, keep)):
                cols[k].append(v)
        yield _frame(cols)


def _errors(batches: Iterator) -> Iterator:
    """Error rows -> output rows; a repeated claim_id gets the reader's own message."""
    for pdf in batches:
        cols: dict[str, list] = {"input_line": [], "decision": [], "output": []}
        for n, seen, dup, error in zip(pdf["input_line"].tolist(), pdf["seen_id"].tolist(), pdf["dup"].tolist(), pdf["error"].tolist()):
            cols["input_line"].append(n)
            cols["decision"].append("error")
            cols["output"].append(_render(_duplicate_error(seen, n)) if dup else error)
        yield _frame(cols)


def _decide_stream(sources, batches: Iterator) -> Iterator:
    """A partition of (payer_key, patient_id, kind, input_line, value) rows sorted by those columns, so
    each (payer, patient) group is a run of rows: its history (kind 0) in file order, then its claims
    (kind 1) in input order. A group may run on from one batch into the next."""
    checkers = _checkers(sources)
    session = ReadSession()  # this task's
    key, claims, past = None, [], []
    for pdf in batches:
        cols: dict[str, list] = {"input_line": [], "decision": [], "output": []}
        for payer, patient, kind, n, raw in zip(pdf["payer_key"].tolist(), pdf["patient_id"].tolist(),
                                                pdf["kind"].tolist(), pdf["input_line"].tolist(), pdf["value"].tolist()):
            if (payer, patient) != key:
                _decide_group(checkers, claims, past, cols)
                key, claims, past = (payer, patient), [], []
            if kind:
                claims.append(_read_line(raw, n, session))
            else:
                rec = _read_line(raw, n, session, history=True)
                if isinstance(rec, ClaimError):  # pragma: no cover - unreadable history stops the job first
                    raise history_error("history", rec)
                past.append(rec)
        yield _frame(cols)
    cols = {"input_line": [], "decision": [], "output": []}
    _decide_group(checkers, claims, past, cols)
    yield _frame(cols)


def _decide_group(checkers, claims: list, past: list, cols: dict) -> None:
    """Decide one (payer, patient) group and add its output rows to `cols`."""
    if not claims:
        return
    decided = decide(checkers, claims, past)
    cols["input_line"].extend(c.input_line for c in claims)
    cols["decision"].extend(d.decision for d in decided)
    cols["output"].extend(line[:-1] for line in render_jsonl(decided))


# ---- the driver side ------------------------------------------------------------------------------


def read_claims_text(spark, path: str | os.PathLike):
    """A JSON Lines file as (input_line, value) rows, one per physical line, blank lines counted, split on
    "\\n" only (as `payrule check` does) and kept as bytes (a line that is not UTF-8 stays an error)."""
    df = spark.read.option("lineSep", "\n").text(str(path))
    return with_input_lines(df)


def with_input_lines(df):
    """`df` (a `value` column, as `spark.read.text` gives) with `input_line` (from 1) and `value` as bytes.

    Straight from a file scan, a line's number comes from its file block's start and its place in the
    block, so it does not depend on how Spark packed the blocks into partitions; for any other DataFrame
    it is the row's place in the DataFrame's order (`zipWithIndex`)."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    value = F.col("value").cast("binary").alias("value")
    try:
        tagged = df.select(F.col("_metadata.file_block_start").alias("_b"), F.monotonically_increasing_id().alias("_i"), value)
    except AnalysisException:
        indexed = df.select(value).rdd.zipWithIndex().map(lambda t: (t[1] + 1, t[0][0]))
        return df.sparkSession.createDataFrame(indexed, LINES_SCHEMA)
    if len(df.inputFiles()) > 1:
        raise ValueError("one claims file at a time: input lines are numbered within a file")
    if tagged.rdd.getNumPartitions() == 1:  # one block, read in order: no job to count lines
        return tagged.select((F.col("_i") + 1).alias("input_line"), "value")
    blocks = tagged.groupBy("_b").agg(F.count(F.lit(1)).alias("_n"), F.min("_i").alias("_lo")).collect()
    shift, before = [], 0
    for b in sorted(blocks, key=lambda b: b["_b"]):
        shift += [F.lit(b["_b"]), F.lit(before + 1 - b["_lo"])]  # block start -> input_line - _i
        before += b["_n"]
    if not shift:
        return df.sparkSession.createDataFrame([], LINES_SCHEMA)
    return tagged.select((F.col("_i") + F.create_map(*shift)[F.col("_b")]).alias("input_line"), "value")


def _lines(df):
    from pyspark.sql import functions as F

    if "input_line" not in df.columns:
        return with_input_lines(df)
    return df.select(F.col("input_line").cast("long").alias("input_line"), F.col("value").cast("binary").alias("value"))


def _marked(scanned):
    """`dup`: an earlier input line already used this claim_id."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    first = F.min("input_line").over(Window.partitionBy("seen_id"))
    return scanned.withColumn("dup", F.coalesce(F.col("seen_id").isNotNull() & (first < F.col("input_line")), F.lit(False)))


def check_dataframe(spark, claims_df, history_df=None, policies=None, history_name: str = "history"):
    """Decide every claim of `claims_df`; a DataFrame of (input_line, decision, output) rows, one per input
    claim, where `output` is the JSON object `payrule check` prints for it and `decision` is approve, review,
    deny or error. Order it by input_line to get the CLI's output.

    `claims_df`/`history_df`: (input_line, value) rows from `read_claims_text`, or what `spark.read.text`
    gives (then numbered by `with_input_lines`). `policies`: a PolicySet, a folder or folders (default: the
    shipped policies). An unreadable history claim raises HistoryError, with the CLI's message, naming the
    file as `history_name`; that check runs one Spark job now, the rest is lazy."""
    from pyspark.sql import functions as F

    sources = policy_sources(policies)
    scanned = _lines(claims_df).mapInPandas(functools.partial(_scan, sources, False), _SCAN_SCHEMA)
    marked = _marked(scanned)
    bad = F.col("dup") | F.col("error").isNotNull()
    # Both branches read every column, so that they share one shuffle and each line is read once.
    errors = marked.where(bad).mapInPandas(_errors, OUTPUT_SCHEMA)
    rows = marked.where(~bad).select("payer_key", "patient_id", F.lit(1).alias("kind"), "input_line", "value")
    if history_df is not None:
        past = _marked(_lines(history_df).mapInPandas(functools.partial(_scan, sources, True), _SCAN_SCHEMA))
        _raise_history_error(past.where(F.col("dup") | F.col("error").isNotNull()), history_name)
        past = past.where(F.col("payer_key").isNotNull())
        rows = rows.unionByName(past.select("payer_key", "patient_id", F.lit(0).alias("kind"), "input_line", "value"))
    # One Python call per batch of rows, not per group: each partition is sorted into runs of one group.
    decided = (rows.repartition("payer_key", "patient_id")
               .sortWithinPartitions("payer_key", "patient_id", "kind", "input_line")
               .mapInPandas(functools.partial(_decide_stream, sources), OUTPUT_SCHEMA))
    return errors.unionByName(decided)


def _raise_history_error(bad, name: str) -> None:
    """HistoryError for the first unreadable history claim, worded by payrule's reader: the bad line is
    read again here, at its own line number (a repeated claim_id behind a claim that used it)."""
    first = bad.orderBy("input_line").select("input_line", "seen_id", "dup", "value").first()
    if first is None:
        return
    n, raw = first["input_line"], first["value"]
    rec = _duplicate_error(first["seen_id"], n) if first["dup"] else _read_line(raw, n, ReadSession(), history=True)
    if isinstance(rec, ClaimError):
        raise history_error(name, rec)
    raise AssertionError(f"history line {n} was flagged unreadable but reads")  # pragma: no cover


# ---- a quiet local session ------------------------------------------------------------------------

_LOG4J = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
logger.utils.name = org.apache.spark.util.Utils
logger.utils.level = error
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = error
"""


def local_session(master: str = "local[2]", conf: Iterable[tuple[str, str]] = (), app_name: str = "payrule"):
    """A SparkSession for payrule: no web UI, no progress bars, little logging, workers running this
    Python (`PYSPARK_PYTHON`, unless set). An active session is returned as it is (its settings untouched)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false", "spark.driver.memory": "1g",
                "spark.sql.shuffle.partitions": "8"}
    settings.update(conf)
    with tempfile.TemporaryDirectory(prefix="payrule-spark-") as tmp:
        log4j = Path(tmp) / "log4j2.properties"
        log4j.write_text(_LOG4J, encoding="utf-8")
        java = settings.get("spark.driver.extraJavaOptions", "")
        settings["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile={log4j.as_uri()} {java}".strip()
        builder = SparkSession.builder.master(master).appName(app_name)
        for key, value in settings.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
