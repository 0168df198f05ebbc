"""The PostgreSQL sink: envelopes and dead letters in two tables, written with COPY, idempotently.

``postgresql://USER[:PASSWORD]@HOST[:PORT]/DB?table=events[&dead_letter_table=NAME][&libpq...]``

One table holds every contract and version (``docs/sinks.md`` says why): ``id`` (the envelope's
UUIDv7, primary key), ``received_at``, ``contract``, ``version``, ``payload`` (JSONB, for
queries) and ``payload_text`` (the payload exactly as received: JSONB drops duplicate keys,
reorders keys and rewrites numbers such as ``1e2``, and cannot hold ``\\u0000``, so ``payload``
is NULL for the rare payload that has one). Dead letters go to ``<table>_dead_letter``. Both are
created when missing.

A block is written in one transaction: COPY into temporary staging tables, then ``INSERT ...
SELECT ... ON CONFLICT (id) DO NOTHING``, then COMMIT, which is the confirmation. A block sent
again (a retry after a lost answer, a replayed spool) therefore never makes a duplicate row.

psycopg is imported here only, so only a run with a PostgreSQL URL loads it.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

import msgspec
import psycopg
from psycopg import sql

from logkit.sinks import Sink, SinkError, SinkSetupError, SinkUnavailable

if TYPE_CHECKING:
    from logkit.ingest import IngestBlock

DEFAULT_TABLE = "events"
DEFAULT_CONNECT_TIMEOUT = "5"  # seconds, libpq's connect_timeout
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# libpq messages that mean "not there right now" rather than "wrongly configured".
_DOWN = (
    "connection refused",
    "timeout expired",
    "could not receive data",
    "server closed the connection",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "no route to host",
    "network is unreachable",
    "too many clients",
    "connection reset",
    "no such file or directory",  # a Unix socket without a server: refused, in effect
    "temporary failure in name resolution",  # the resolver is down, not the name wrong
)

_EVENTS_DDL = (
    "CREATE TABLE IF NOT EXISTS {} ("
    " id uuid PRIMARY KEY,"
    " received_at timestamptz NOT NULL,"
    " contract text NOT NULL,"
    " version integer NOT NULL,"
    " payload jsonb,"
    " payload_text text NOT NULL,"
    " inserted_at timestamptz NOT NULL DEFAULT now())"
)
_DEAD_DDL = (
    "CREATE TABLE IF NOT EXISTS {} ("
    " id uuid PRIMARY KEY,"
    " received_at timestamptz NOT NULL,"
    " contract text,"
    " version integer,"
    " reason text NOT NULL,"
    " record jsonb,"
    " record_text text NOT NULL,"
    " inserted_at timestamptz NOT NULL DEFAULT now())"
)
_EVENT_COLUMNS = {"id", "received_at", "contract", "version", "payload", "payload_text"}
_DEAD_COLUMNS = {"id", "received_at", "contract", "version", "reason", "record", "record_text"}


class _Envelope(msgspec.Struct):
    id: str
    received_at: str
    payload: msgspec.Raw


class _DeadLetter(msgspec.Struct):
    id: str
    received_at: str
    reason: str
    contract: str | None = None
    version: int | None = None


_envelopes = msgspec.json.Decoder(_Envelope).decode_lines
_dead_letters = msgspec.json.Decoder(_DeadLetter).decode_lines


def _copy_text(value: bytes) -> bytes:
    """A value in COPY's text format (the input has no newline: it is one JSON line)."""
    return value.replace(b"\\", b"\\\\").replace(b"\t", b"\\t").replace(b"\r", b"\\r")


def _one_line(exc: BaseException) -> str:
    """libpq's multi-line message as one line, without the 'FATAL:' noise."""
    # libpq adds a hint on a line of its own ("Is the server running ..."): the first line says it.
    text = " ".join(str(exc).strip().split("\n", 1)[0].split())
    for prefix in ("connection failed: ",):
        text = text.removeprefix(prefix)
    # 'connection to server at "h" (1.2.3.4), port 5432 failed: FATAL: password ...': keep
    # the cause; the URL is printed beside it anyway.
    cause = re.split(r"failed: (?:FATAL: |ERROR: )?", text)
    return cause[-1].strip() if len(cause) > 1 and cause[-1].strip() else text


def _is_down(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in _DOWN)


def _parse_url(url: str, label: str) -> tuple[str, str, str]:
    """``(conninfo, table, dead_letter_table)``: logkit's own query parameters taken out."""
    base, _, query = url.partition("?")
    params = parse_qsl(query, keep_blank_values=True)
    table, dead = DEFAULT_TABLE, None
    rest: list[tuple[str, str]] = []
    for key, value in params:
        if key == "table":
            table = value
        elif key == "dead_letter_table":
            dead = value
        else:
            rest.append((key, value))
    dead = dead or f"{table}_dead_letter"
    for name in (table, dead):
        if not _NAME.fullmatch(name):
            raise SinkSetupError(
                f"--sink {label}: table name {name!r} must be a plain SQL name "
                "(letters, digits, _; at most 63; not starting with a digit)"
            )
    keys = {key for key, _ in rest}
    if "connect_timeout" not in keys:
        rest.append(("connect_timeout", DEFAULT_CONNECT_TIMEOUT))
    if "application_name" not in keys:
        rest.append(("application_name", "logkit"))
    # A server that vanished without closing the connection (a network partition) must fail
    # the write within seconds, so that the block is spooled, not hang for TCP's 15 minutes.
    for key, value in (
        ("keepalives_idle", "10"),
        ("keepalives_interval", "5"),
        ("keepalives_count", "3"),
        ("tcp_user_timeout", "30000"),
    ):
        if key not in keys:
            rest.append((key, value))
    return f"{base}?{urlencode(rest)}", table, dead


class PostgresSink(Sink):
    """Envelopes into ``table``, dead letters into ``dead_letter_table``."""

    schemes = ("postgresql", "postgres")

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.conninfo, self.table, self.dead_table = _parse_url(url, self.label)
        self._conn: psycopg.Connection[Any] | None = None

    # -- connecting ----------------------------------------------------------------------------

    def check(self) -> None:
        """Connect, create the tables when missing and check their columns."""
        self._connection(setup=True)

    def _connection(self, *, setup: bool = False) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        self._conn = None
        try:
            conn = psycopg.connect(self.conninfo)
        except psycopg.OperationalError as exc:
            message = _one_line(exc)
            if _is_down(message):
                raise SinkUnavailable(f"{self.label}: {message}") from exc
            if setup:
                raise SinkSetupError(f"--sink {self.label}: {message}") from exc
            raise SinkError(f"{self.label}: {message}") from exc
        except psycopg.Error as exc:  # a malformed URL or an unknown parameter
            raise SinkSetupError(f"--sink {self.label}: {_one_line(exc)}") from exc
        try:
            self._prepare(conn)
        except psycopg.OperationalError as exc:
            conn.close()
            raise SinkUnavailable(f"{self.label}: {_one_line(exc)}") from exc
        except psycopg.Error as exc:
            conn.close()
            error = f"{self.label}: cannot use the tables: {_one_line(exc)}"
            raise (SinkSetupError(f"--sink {error}") if setup else SinkError(error)) from exc
        self._conn = conn
        return conn

    def _prepare(self, conn: psycopg.Connection[Any]) -> None:
        """Create what is missing, then check columns and rights. Existing tables are only
        read: a role with INSERT and SELECT on tables an administrator made needs no more."""
        tables = (
            (self.table, _EVENTS_DDL, _EVENT_COLUMNS),
            (self.dead_table, _DEAD_DDL, _DEAD_COLUMNS),
        )
        for name, ddl, wanted in tables:
            quoted = sql.Identifier(name).as_string(conn)
            if not self._exists(conn, quoted):
                with conn.transaction():
                    # Two processes creating it at once: the lock makes the second one wait.
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext('logkit.sinks.postgres'))")
                    conn.execute(sql.SQL(ddl).format(sql.Identifier(name)))
                    if name == self.table:
                        conn.execute(
                            sql.SQL(
                                "CREATE INDEX IF NOT EXISTS {} ON {}"
                                " (contract, version, received_at)"
                            ).format(
                                sql.Identifier(f"{name}_contract_idx"[:63]), sql.Identifier(name)
                            )
                        )
            rows = conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s)"
                " AND attnum > 0 AND NOT attisdropped",
                (quoted,),
            ).fetchall()
            missing = sorted(wanted - {row[0] for row in rows})
            if missing:
                raise psycopg.ProgrammingError(
                    f"table {name} exists without the columns {', '.join(missing)}; "
                    "give another ?table= or drop it"
                )
            allowed = conn.execute(
                "SELECT has_table_privilege(to_regclass(%s), 'INSERT')"
                " AND has_table_privilege(to_regclass(%s), 'SELECT')",
                (quoted, quoted),
            ).fetchone()
            if not (allowed and allowed[0]):
                raise psycopg.ProgrammingError(
                    f"the role may not INSERT into (and SELECT from) table {name}"
                )
        conn.commit()

        # Staging tables live as long as the connection; ON COMMIT DELETE ROWS empties them.
        conn.execute(
            sql.SQL(
                "CREATE TEMP TABLE logkit_stage_events (id uuid, received_at timestamptz,"
                " contract text, version integer, payload_text text) ON COMMIT DELETE ROWS"
            )
        )
        conn.execute(
            sql.SQL(
                "CREATE TEMP TABLE logkit_stage_dead (id uuid, received_at timestamptz,"
                " contract text, version integer, reason text, record_text text)"
                " ON COMMIT DELETE ROWS"
            )
        )
        # The slow path for a block whose JSON PostgreSQL rejects as jsonb (\u0000): NULL.
        conn.execute(
            "CREATE FUNCTION pg_temp.logkit_jsonb(t text) RETURNS jsonb LANGUAGE plpgsql"
            " IMMUTABLE AS $$ BEGIN RETURN t::jsonb;"
            " EXCEPTION WHEN others THEN RETURN NULL; END $$"
        )
        conn.commit()

    @staticmethod
    def _exists(conn: psycopg.Connection[Any], quoted: str) -> bool:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (quoted,)).fetchone()
        return bool(row and row[0])

    # -- writing -------------------------------------------------------------------------------

    def write(self, block: IngestBlock) -> None:
        """Store the block in one transaction; return once it is committed."""
        if not block.events and not block.dead:
            return
        events, dead = _rows(block)
        try:
            try:
                self._write(events, dead, lenient=False)
            except psycopg.DataError:
                self._rollback()
                self._write(events, dead, lenient=True)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self._drop()
            raise SinkUnavailable(f"{self.label}: {_one_line(exc)}") from exc
        except psycopg.Error as exc:
            self._rollback()
            raise SinkError(f"{self.label}: write failed: {_one_line(exc)}") from exc

    def _write(self, events: bytes, dead: bytes, *, lenient: bool) -> None:
        conn = self._connection()
        cast = "pg_temp.logkit_jsonb({})" if lenient else "{}::jsonb"
        with conn.cursor() as cur:
            if events:
                with cur.copy("COPY logkit_stage_events FROM STDIN") as copy:
                    copy.write(events)
                cur.execute(
                    sql.SQL(
                        "INSERT INTO {} (id, received_at, contract, version, payload, payload_text)"
                        " SELECT id, received_at, contract, version, "
                        + cast.format("payload_text")
                        + ", payload_text FROM logkit_stage_events ON CONFLICT (id) DO NOTHING"
                    ).format(sql.Identifier(self.table))
                )
            if dead:
                with cur.copy("COPY logkit_stage_dead FROM STDIN") as copy:
                    copy.write(dead)
                cur.execute(
                    sql.SQL(
                        "INSERT INTO {} (id, received_at, contract, version, reason, record,"
                        " record_text) SELECT id, received_at, contract, version, reason, "
                        + cast.format("record_text")
                        + ", record_text FROM logkit_stage_dead ON CONFLICT (id) DO NOTHING"
                    ).format(sql.Identifier(self.dead_table))
                )
        conn.commit()

    def _rollback(self) -> None:
        if self._conn is not None:
            try:
                self._conn.rollback()
            except psycopg.Error:
                self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        self._drop()


def _rows(block: IngestBlock) -> tuple[bytes, bytes]:
    """The block's envelopes and dead letters as COPY text rows for the staging tables."""
    events = bytearray()
    for (contract, version, _dt), data in block.events.items():
        middle = f"\t{contract}\t{version}\t".encode()
        text = bytes(data)
        # Most blocks hold nothing COPY must escape: then the payloads go as they are.
        escape = b"\\" in text or b"\t" in text or b"\r" in text
        for envelope in _envelopes(text):
            events += f"{envelope.id}\t{envelope.received_at}".encode()
            events += middle
            events += _copy_text(bytes(envelope.payload)) if escape else envelope.payload
            events += b"\n"
    dead = bytearray()
    for data in block.dead.values():
        text = bytes(data)
        lines = text.rstrip(b"\n").split(b"\n")
        for line, record in zip(lines, _dead_letters(text), strict=True):
            name = b"\\N" if record.contract is None else _copy_text(record.contract.encode())
            number = "\\N" if record.version is None else str(record.version)
            dead += f"{record.id}\t{record.received_at}\t".encode()
            dead += name
            dead += f"\t{number}\t".encode()
            dead += _copy_text(record.reason.encode())
            dead += b"\t"
            dead += _copy_text(line)
            dead += b"\n"
    return bytes(events), bytes(dead)


SINK = PostgresSink
