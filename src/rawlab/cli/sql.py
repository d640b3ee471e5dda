"""`rawlab sql`: SQL over captures (DuckDB in process), as tables or Parquet datasets."""

from __future__ import annotations

import sys

import click


@click.command()
@click.argument("query", metavar="SQL")
@click.argument("inputs", nargs=-1, required=True, metavar="FILE_OR_DIR...",
                type=click.Path(readable=False))
@click.option("--json", "form", flag_value="json", help="NDJSON: one object per row.")
@click.option("--csv", "form", flag_value="csv", help="CSV with a header line.")
def sql(query: str, inputs: tuple[str, ...], form: str | None) -> None:
    """Run the SQL query over the views `packets`, `connections` and `segments` of
    captures (pcap/pcapng files, directories of them) or Parquet datasets written by
    `--parquet` (docs/tables.md has every column).

    Captures are read straight through Arrow streams (nothing copied to disk);
    `connections` and `segments` run the TCP analyser, only when the query names them.
    DuckDB runs the query in process; times are UTC. Output: an aligned table (default),
    --json or --csv. A capture that cannot be read to its end gives every row before the
    problem and a warning naming the file; a query DuckDB rejects prints its message on
    one line (exit 5).

    \b
    rawlab sql "SELECT src, dst, count(*) n, sum(wirelen) bytes FROM packets
                GROUP BY src, dst ORDER BY bytes DESC LIMIT 10" captures/
    """
    from rawlab.present import sql as psql

    def warn(msg: str) -> None:
        click.echo(f"rawlab: warning: {msg}", err=True)

    con = psql.open_views(list(inputs), query, warn)
    cur = psql.run(con, query)
    psql.write_result(cur, sys.stdout, form or "table")
