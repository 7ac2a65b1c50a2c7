"""Plain-text tables of the benchmark's results."""

from __future__ import annotations

from typing import Any


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(
    headers: list[str],
    rows: list[list[str]],
    text_columns: int = 3,
    last_is_text: bool = True,
) -> str:
    """Render rows under headers: text columns, then numbers right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            # The last column (the verdict) is text too, in the wide table.
            is_last_text = last_is_text and i == len(cells) - 1 and i > text_columns
            left = i < text_columns or is_last_text
            out.append(cell.ljust(widths[i]) if left else cell.rjust(widths[i]))
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def load_table(rows: list[dict[str, Any]]) -> str:
    """The main table: one line per workload, connections and stack.

    The ratio columns divide by the baseline's (or, in req/s /obvious, the
    obvious stack's) number on the same workload and connection count.
    """
    headers = [
        "workload",
        "conns",
        "stack",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "RSS peak MB",
        "cpu ms/req",
        "req/s /base",
        "p99 /base",
        "cpu /base",
        "req/s /obvious",
        "target",
    ]
    body = [
        [
            row["workload"],
            str(row["connections"]),
            row["stack"],
            _fmt(row["rps"], ".0f"),
            _fmt(row["p50_ms"], ".2f"),
            _fmt(row["p99_ms"], ".2f"),
            str(row["errors"]),
            _fmt(row["rss_peak_kb"] / 1024, ".1f"),
            _fmt(row["cpu_ms_per_req"], ".3f"),
            _fmt(row.get("rps_ratio"), ".2f"),
            _fmt(row.get("p99_ratio"), ".2f"),
            _fmt(row.get("cpu_ratio"), ".2f"),
            _fmt(row.get("vs_obvious"), ".2f"),
            row.get("verdict", ""),
        ]
        for row in rows
    ]
    return table(headers, body)


def engine_table(rows: list[dict[str, Any]]) -> str:
    """The service on PostgreSQL beside the service on SQLite, per workload.

    cpu columns: the service process per request; on PostgreSQL also the
    server's processes (postmaster and backends), pinned to the same core.
    """
    by_key = {(r["workload"], r["connections"], r["stack"]): r for r in rows}
    body = []
    for row in rows:
        if row.get("vs_sqlite") is None and row.get("verdict") != "no target":
            continue
        sqlite = by_key.get((row["workload"], row["connections"], "service"))
        if sqlite is None:
            continue
        body.append(
            [
                row["workload"],
                str(row["connections"]),
                _fmt(sqlite["rps"], ".0f"),
                _fmt(row["rps"], ".0f"),
                _fmt(row.get("vs_sqlite"), ".2f"),
                _fmt(sqlite["p99_ms"], ".2f"),
                _fmt(row["p99_ms"], ".2f"),
                _fmt(row.get("p99_vs_sqlite"), ".2f"),
                f"{sqlite['errors']}/{row['errors']}",
                _fmt(sqlite["cpu_ms_per_req"], ".3f"),
                _fmt(row["cpu_ms_per_req"], ".3f"),
                _fmt(row.get("db_cpu_ms_per_req"), ".3f"),
            ]
        )
    headers = [
        "workload",
        "conns",
        "sqlite req/s",
        "pg req/s",
        "pg/sqlite",
        "sqlite p99",
        "pg p99",
        "p99 pg/sqlite",
        "errors sqlite/pg",
        "sqlite cpu",
        "pg svc cpu",
        "pg db cpu",
    ]
    return table(headers, body, text_columns=2, last_is_text=False) if body else ""


def workers_table(rows: list[dict[str, Any]]) -> str:
    """The service with several worker processes beside one, per workload.

    cpu: ms per request of every process of the server (the supervisor and
    its workers).
    """
    by_key = {(r["workload"], r["connections"], r["stack"]): r for r in rows}
    body = []
    for row in rows:
        if "vs_one" not in row:
            continue
        one = by_key[(row["workload"], row["connections"], "service")]
        body.append(
            [
                row["workload"],
                str(row["connections"]),
                _fmt(one["rps"], ".0f"),
                _fmt(row["rps"], ".0f"),
                _fmt(row.get("vs_one"), ".2f"),
                _fmt(one["p99_ms"], ".2f"),
                _fmt(row["p99_ms"], ".2f"),
                f"{one['errors']}/{row['errors']}",
                _fmt(one["cpu_ms_per_req"], ".3f"),
                _fmt(row["cpu_ms_per_req"], ".3f"),
                row.get("verdict", ""),
            ]
        )
    headers = [
        "workload",
        "conns",
        "1 worker req/s",
        "workers req/s",
        "ratio",
        "1 p99",
        "workers p99",
        "errors 1/w",
        "1 cpu",
        "workers cpu",
        "target",
    ]
    return table(headers, body, text_columns=2) if body else ""


def timing_table(title: str, medians: dict[str, float]) -> str:
    """A two-column table of median seconds."""
    body = [[name, f"{seconds * 1000:.1f}"] for name, seconds in medians.items()]
    return title + "\n" + table(["what", "median ms"], body, text_columns=1)


def misses(rows: list[dict[str, Any]]) -> list[str]:
    """Return a line per workload and connection count that misses a target."""
    return [
        f"{r['workload']} c={r['connections']}: {r['verdict']}"
        for r in rows
        if r.get("misses")
    ]
