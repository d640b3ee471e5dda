"""The same Parquet dataset and the same SQL on Apache Spark (local mode, Java 17): the
README's queries answer as DuckDB does (README, "More than one machine").

One Spark session for the module (its start-up is most of the time: ~20 s here).
"""

from __future__ import annotations

import datetime
import decimal
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_sql import QUERIES, make_day

ROOT = Path(__file__).resolve().parents[2]


def _need() -> None:
    if shutil.which("java") is None:
        pytest.skip("no Java runtime: ./setup.sh --test installs openjdk-17-jre-headless")
    try:
        import pyspark  # noqa: F401
    except ImportError:
        pytest.skip("pyspark is not installed: ./setup.sh --test (the dev extra) installs it")


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset of several captures: captures/ and a made night (two hours, one
    capture cut short)."""
    base = tmp_path_factory.mktemp("spark")
    day = make_day(base / "day")
    out = base / "lake"
    for cmd in ("read", "tcp"):
        r = subprocess.run([sys.executable, "-m", "rawlab", cmd, str(day), str(ROOT / "captures"),
                            "--parquet", str(out)], check=False, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def spark(lake: Path) -> Any:
    _need()
    from pyspark.sql import SparkSession

    s = (SparkSession.builder.master("local[2]").appName("rawlab-test")
         .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
         .config("spark.sql.session.timeZone", "UTC").config("spark.driver.memory", "1g")
         .getOrCreate())
    s.sparkContext.setLogLevel("ERROR")
    for t in ("packets", "connections", "segments"):
        s.read.parquet(str(lake / t)).createOrReplaceTempView(t)
    yield s
    s.stop()


def _norm(v: Any) -> Any:
    """One value the way both engines' Python values compare: timestamps as naive UTC,
    decimals and floats as numbers rounded to the microsecond."""
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(datetime.UTC).replace(tzinfo=None)
        return v
    if isinstance(v, decimal.Decimal | float):
        return round(float(v), 6)
    return v


def duckdb_rows(lake: Path, sql: str) -> list[tuple[Any, ...]]:
    from rawlab.present.sql import open_views, run

    con = open_views([str(lake)], sql, pytest.fail)
    return [tuple(map(_norm, r)) for r in run(con, sql).fetchall()]


@pytest.mark.parametrize("title", sorted(QUERIES))
def test_readme_query_on_spark_equals_duckdb(spark: Any, lake: Path, title: str) -> None:
    sql = QUERIES[title]
    want = duckdb_rows(lake, sql)
    got = [tuple(map(_norm, r)) for r in spark.sql(sql).collect()]
    assert got == want
    assert want  # every query has an answer on this dataset


def test_spark_prunes_the_same_partitions(spark: Any, lake: Path) -> None:
    sql = ("SELECT count(*) AS n FROM packets WHERE date = DATE '2023-11-14' AND hour = 23")
    assert [tuple(r) for r in spark.sql(sql).collect()] == duckdb_rows(lake, sql) == [(7,)]
    plan = spark.sql(sql)._jdf.queryExecution().executedPlan().toString()
    assert "PartitionFilters" in plan and "hour" in plan
