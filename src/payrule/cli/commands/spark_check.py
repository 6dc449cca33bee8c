"""`payrule spark-check`: decide a JSON Lines claims file on Apache Spark, with the output of `payrule check`."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

from payrule.api import PolicySet
from payrule.claims.readers import HistoryError
from payrule.cli.commands._common import EXIT_CLAIM_ERRORS, EXIT_OK, usage_error
from payrule.loader import default_policy_dir

NAME = "spark-check"
HELP = "decide claims on Apache Spark (needs payrule[spark])"
DESCRIPTION = ("Decide a JSON Lines claims file on Apache Spark: claims are grouped by payer and patient and each "
               "group is decided by the compiled policies on the workers. The output is what `payrule check` prints "
               "for the same file, in input order.")


def add_arguments(c) -> None:
    c.add_argument("claims", metavar="CLAIMS", help="claims file (JSON Lines): a local path or any URI Spark reads")
    c.add_argument("--history", metavar="FILE", help="earlier claims that count as already paid; not decided, not printed")
    c.add_argument("--policies", metavar="DIR", action="append", help="policy folder (default: the shipped policies); may repeat")
    c.add_argument("-o", "--output", metavar="FILE", help="write decisions here instead of standard output")
    c.add_argument("--master", default="local[2]", help="Spark master URL (default: local[2])")
    c.add_argument("--conf", metavar="KEY=VALUE", action="append", default=[], help="a Spark setting; may repeat")


def _missing(path: str, what: str) -> int | None:
    """The CLI's error for a local file that cannot be read (a URI with a scheme is left to Spark)."""
    if "://" in path:
        return None
    p = Path(path)
    if not p.is_file():
        reason = "Is a directory" if p.is_dir() else "No such file or directory"
        return usage_error(f"cannot read {what} file {path}: {reason}")
    return None


def run(args) -> int:
    for name in ("pyspark", "pandas", "pyarrow"):
        try:
            importlib.import_module(name)
        except ImportError:
            return usage_error(f"spark-check needs pyspark, pandas and pyarrow ({name} is missing): install payrule[spark]")
    if args.claims == "-" or args.claims.lower().endswith(".csv"):
        return usage_error("spark-check reads a JSON Lines file (not standard input, not CSV)")
    conf = []
    for item in args.conf:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            return usage_error(f"--conf takes KEY=VALUE, not {item!r}")
        conf.append((key.strip(), value))
    for path, what in ((args.claims, "claims"), (args.history, "history")):
        if path is not None and (code := _missing(path, what)) is not None:
            return code
    policies = PolicySet.load([Path(d) for d in (args.policies or [default_policy_dir()])])  # PolicyError: exit 2

    from pyspark.errors import AnalysisException
    from pyspark.sql import SparkSession

    from payrule.run.spark import check_dataframe, local_session, read_claims_text

    spark = SparkSession.getActiveSession()  # in-process (notebooks, tests): use it, settings and all
    owned = spark is None
    if owned:
        spark = local_session(args.master, conf)
    try:
        try:
            history = read_claims_text(spark, args.history) if args.history else None
            result = check_dataframe(spark, read_claims_text(spark, args.claims), history, policies,
                                     history_name=args.history or "history")
        except HistoryError as exc:
            return usage_error(str(exc))
        except AnalysisException as exc:
            return usage_error(str(exc).strip().splitlines()[0])
        errors = 0
        out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
        try:
            for row in result.orderBy("input_line").toLocalIterator():
                out.write(row["output"] + "\n")
                errors += row["decision"] == "error"
        finally:
            if args.output:
                out.close()
    finally:
        if owned:
            spark.stop()
    return EXIT_CLAIM_ERRORS if errors else EXIT_OK
