"""--engine postgres: the service on a PostgreSQL server of the bench's own.

The server is tests/pg.py's PostgresServer (Debian's initdb and pg_ctl, a
temporary folder, a free port, SCRAM password auth on 127.0.0.1), pinned
to the service's core: the postmaster and every backend share that CPU
with the service, as the SQLite stacks' database engine does in-process.
Its durability matches the SQLite stacks' synchronous=NORMAL in WAL mode:
fsync on, commits not waiting for their WAL flush (synchronous_commit=off;
a crash may lose the last commits, never corrupts). The database is
migrated by `python -m service migrate` with SERVICE_DATABASE_URL set,
then filled through psycopg2 with the rows the SQLite databases get.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg2
from psycopg2 import extras, sql

from bench import data, procs
from bench.baseline import utc_now
from tests.pg import PostgresServer, find_bindir

STACK = "service-pg"
DATABASE = "bench"
SETTINGS = {
    "fsync": "on",
    "full_page_writes": "on",
    "synchronous_commit": "off",
}
# Tables whose ids the fill sets itself: their sequences continue after them.
_SERIAL_TABLES = ("users", "api_tokens", "conversations", "messages")


def start_server(core: int | None) -> PostgresServer:
    """A fresh server pinned to core; RuntimeError when PostgreSQL is missing."""
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError(
            "--engine postgres needs the PostgreSQL server binaries "
            "(Debian: apt-get install postgresql)"
        )
    return PostgresServer(bindir, settings=dict(SETTINGS), core=core).start()


def prepare(server: PostgresServer, core: int | None) -> str:
    """Create, migrate and fill the bench database; return its URL."""
    url = server.create_database(DATABASE)
    env = procs.service_env_url(url, procs.free_port(), 1, "WARNING")
    _, result = procs.run_cli(procs.service_cmd("migrate"), env, core, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(
            "python -m service migrate on PostgreSQL failed "
            f"({result.returncode}):\n{result.stderr.decode(errors='replace')}"
        )
    fill(url)
    return url


def describe(url: str, core: int | None) -> str:
    """The report's note on this stack: server version, pinning, no targets."""
    con = psycopg2.connect(url)
    try:
        with con.cursor() as cur:
            cur.execute("SHOW server_version")
            (version,) = cur.fetchone()
    finally:
        con.close()
    where = (
        f"pinned with the service to core {core}" if core is not None else "not pinned"
    )
    return (
        f"{STACK}: the service on PostgreSQL {version} (postmaster and backends "
        f"{where}; its CPU is in 'db cpu ms/req'); synchronous_commit=off like "
        "SQLite's synchronous=NORMAL; no targets for these rows"
    )


def fill(url: str) -> None:
    """Insert the SQLite databases' rows, move the sequences on, ANALYZE."""
    now = utc_now()
    con = psycopg2.connect(url)
    try:
        with con, con.cursor() as cur:
            for table, columns, rows in data.metadata_rows(now) + data.messaging_rows(
                now
            ):
                statement = sql.SQL("INSERT INTO {} ({}) VALUES %s").format(
                    sql.Identifier(table),
                    sql.SQL(", ").join(map(sql.Identifier, columns)),
                )
                extras.execute_values(
                    cur, statement.as_string(cur), rows, page_size=1000
                )
            for table in _SERIAL_TABLES:
                cur.execute(
                    sql.SQL(
                        "SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                        "(SELECT max(id) FROM {}))"
                    ).format(sql.Identifier(table)),
                    (table,),
                )
        # Planner statistics, as a database in service has them (autovacuum
        # would gather them a minute in; the rounds should not straddle that).
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
    finally:
        con.close()


def server_cpu_seconds(server: PostgresServer) -> float | None:
    """CPU seconds of the postmaster and all its backends, live and ended."""
    try:
        postmaster = server.postmaster_pid()
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile: its time is in the postmaster's cutime
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid == postmaster:
            # utime, stime, and cutime + cstime: the backends it has reaped.
            total += sum(int(f) for f in fields[11:15]) / tick
        elif ppid == postmaster:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total
