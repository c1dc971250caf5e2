"""Account and container databases: one small SQLite file each, as in Swift.

A container DB lists its objects (name, timestamp, size, type, etag) and keeps the
container's metadata and running totals; an account DB does the same for containers.
A DB is "deleted" while its delete timestamp is newer than its put timestamp; a later
PUT brings it back.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = {
    "container": """
        CREATE TABLE IF NOT EXISTS item (
            name TEXT PRIMARY KEY, created_at TEXT NOT NULL, size INTEGER NOT NULL DEFAULT 0,
            content_type TEXT NOT NULL DEFAULT '', etag TEXT NOT NULL DEFAULT '',
            deleted INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX IF NOT EXISTS ix_item_deleted_name ON item (deleted, name);
    """,
    "account": """
        CREATE TABLE IF NOT EXISTS item (
            name TEXT PRIMARY KEY, put_timestamp TEXT NOT NULL DEFAULT '0',
            delete_timestamp TEXT NOT NULL DEFAULT '0', object_count INTEGER NOT NULL DEFAULT 0,
            bytes_used INTEGER NOT NULL DEFAULT 0, deleted INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX IF NOT EXISTS ix_item_deleted_name ON item (deleted, name);
    """,
}
_STAT = """
    CREATE TABLE IF NOT EXISTS stat (
        id INTEGER PRIMARY KEY CHECK (id = 1), name TEXT NOT NULL, created_at TEXT NOT NULL,
        put_timestamp TEXT NOT NULL, delete_timestamp TEXT NOT NULL DEFAULT '0',
        metadata TEXT NOT NULL DEFAULT '{}', storage_policy TEXT NOT NULL DEFAULT '',
        item_count INTEGER NOT NULL DEFAULT 0, object_count INTEGER NOT NULL DEFAULT 0,
        bytes_used INTEGER NOT NULL DEFAULT 0);
"""


@dataclass(slots=True)
class Info:
    name: str
    created_at: str
    put_timestamp: str
    delete_timestamp: str
    metadata: dict[str, list[str]]  # header name -> [value, timestamp]
    storage_policy: str
    item_count: int  # containers in an account, objects in a container
    object_count: int
    bytes_used: int

    @property
    def deleted(self) -> bool:
        return float(self.delete_timestamp) > float(self.put_timestamp)


def _successor(text: str) -> str:
    """The smallest string above every string that starts with ``text``."""
    last = ord(text[-1])
    if last >= 0x10FFFF:
        return text + "\U0010ffff"
    return text[:-1] + chr(last + 1)


class Broker:
    kind = ""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous = NORMAL")
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._conn() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def exists(self) -> bool:
        return self.path.exists()

    def create(self, name: str, timestamp: str, storage_policy: str = "") -> None:
        """Create the DB atomically: built whole under a temporary name, then linked into place, so
        the auditor and replicator never see a file without its schema. Idempotent."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            tmp = self.path.with_name(f"{self.path.name}.tmp-{uuid.uuid4().hex}")
            try:
                conn = sqlite3.connect(tmp, isolation_level=None)
                try:
                    conn.executescript(_SCHEMA[self.kind] + _STAT)
                    conn.execute(
                        "INSERT OR IGNORE INTO stat (id, name, created_at, put_timestamp, storage_policy)"
                        " VALUES (1, ?, ?, ?, ?)",
                        (name, timestamp, timestamp, storage_policy),
                    )
                finally:
                    conn.close()
                with contextlib.suppress(FileExistsError):  # a concurrent create won: keep its DB
                    os.link(tmp, self.path)
            finally:
                tmp.unlink(missing_ok=True)
        with self._conn() as conn:
            conn.execute("PRAGMA journal_mode = WAL")  # commits without a journal file's fsyncs
            conn.executescript(_SCHEMA[self.kind] + _STAT)
            conn.execute(
                "INSERT OR IGNORE INTO stat (id, name, created_at, put_timestamp, storage_policy)"
                " VALUES (1, ?, ?, ?, ?)",
                (name, timestamp, timestamp, storage_policy),
            )

    def info(self) -> Info | None:
        if not self.exists():
            return None
        with self._conn() as conn:
            return self._info_in(conn)

    @staticmethod
    def _info_in(conn: sqlite3.Connection) -> Info | None:
        row = conn.execute(
            "SELECT name, created_at, put_timestamp, delete_timestamp, metadata, storage_policy,"
            " item_count, object_count, bytes_used FROM stat WHERE id = 1"
        ).fetchone()
        if row is None:
            return None
        return Info(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6], row[7], row[8])

    def put(self, timestamp: str, metadata: dict[str, str]) -> bool:
        """Re-create (if deleted) and update metadata; True if it was newly created or revived."""
        with self._tx() as conn:
            put_ts, del_ts = conn.execute("SELECT put_timestamp, delete_timestamp FROM stat").fetchone()
            revived = float(del_ts) > float(put_ts)
            if revived:
                conn.execute("UPDATE stat SET metadata = '{}', created_at = ?", (timestamp,))
            if float(timestamp) > float(put_ts):
                conn.execute("UPDATE stat SET put_timestamp = ?", (timestamp,))
            self._merge_metadata(conn, timestamp, metadata)
        return revived

    def update_metadata(self, timestamp: str, metadata: dict[str, str]) -> None:
        with self._tx() as conn:
            self._merge_metadata(conn, timestamp, metadata)

    @staticmethod
    def _merge_metadata(conn: sqlite3.Connection, timestamp: str, metadata: dict[str, str]) -> None:
        if not metadata:
            return
        current = json.loads(conn.execute("SELECT metadata FROM stat").fetchone()[0])
        for key, value in metadata.items():
            old = current.get(key)
            if old is None or float(old[1]) <= float(timestamp):
                current[key] = [value, timestamp]
        current = {k: v for k, v in current.items() if v[0] != ""}
        conn.execute("UPDATE stat SET metadata = ?", (json.dumps(current),))

    # ---- replication ---------------------------------------------------------------------------

    def db_id(self) -> str:
        """A random id of this copy of the DB; a peer keeps its sync point against it."""
        with self._tx() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS replica (id TEXT NOT NULL)")
            conn.execute("CREATE TABLE IF NOT EXISTS sync_point (remote_id TEXT PRIMARY KEY, point INTEGER)")
            row = conn.execute("SELECT id FROM replica").fetchone()
            if row is None:
                row = (uuid.uuid4().hex,)
                conn.execute("INSERT INTO replica (id) VALUES (?)", row)
        return str(row[0])

    def sync_point(self, remote_id: str) -> int:
        self.db_id()
        with self._conn() as conn:
            row = conn.execute("SELECT point FROM sync_point WHERE remote_id = ?", (remote_id,)).fetchone()
        return int(row[0]) if row else -1

    def set_sync_point(self, remote_id: str, point: int) -> None:
        self.db_id()
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO sync_point (remote_id, point) VALUES (?, ?)", (remote_id, point)
            )

    def max_row(self) -> int:
        with self._conn() as conn:
            return int(conn.execute("SELECT COALESCE(MAX(rowid), -1) FROM item").fetchone()[0])

    def stat_dump(self) -> dict[str, Any]:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT name, created_at, put_timestamp, delete_timestamp, metadata, storage_policy FROM stat"
            ).fetchone()
        keys = ("name", "created_at", "put_timestamp", "delete_timestamp", "metadata", "storage_policy")
        out = dict(zip(keys, row, strict=True))
        out["metadata"] = json.loads(out["metadata"])
        return out

    def merge_stat(self, stat: dict[str, Any]) -> None:
        """Take a replica's timestamps and metadata (newest of each wins); create the DB if missing."""
        if not self.exists():
            self.create(stat["name"], stat["created_at"], stat.get("storage_policy", ""))
        with self._tx() as conn:
            created, put_ts, del_ts, meta = conn.execute(
                "SELECT created_at, put_timestamp, delete_timestamp, metadata FROM stat"
            ).fetchone()
            current = json.loads(meta)
            for key, (value, ts) in stat.get("metadata", {}).items():
                old = current.get(key)
                if old is None or float(old[1]) < float(ts):
                    current[key] = [value, ts]
            conn.execute(
                "UPDATE stat SET created_at = ?, put_timestamp = ?, delete_timestamp = ?, metadata = ?",
                (
                    min(created, stat["created_at"], key=float),
                    max(put_ts, stat["put_timestamp"], key=float),
                    max(del_ts, stat["delete_timestamp"], key=float),
                    json.dumps(current),
                ),
            )

    def merge_items(self, rows: list[list[Any]]) -> None:
        raise NotImplementedError

    def item_rows(self, after: int, limit: int) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def check_integrity(self) -> str | None:
        """None when SQLite finds the file sound, else its complaint."""
        try:
            with self._conn() as conn:
                rows = conn.execute("PRAGMA quick_check").fetchall()
                conn.execute("SELECT name FROM stat").fetchone()
        except sqlite3.DatabaseError as exc:
            return str(exc)
        result = "; ".join(str(r[0]) for r in rows)
        return None if result == "ok" else result

    def mark_deleted(self, timestamp: str) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE stat SET delete_timestamp = ?", (timestamp,))

    def listing(
        self,
        *,
        limit: int,
        marker: str = "",
        end_marker: str = "",
        prefix: str = "",
        delimiter: str = "",
        reverse: bool = False,
    ) -> list[dict[str, Any]]:
        """Live rows in name order (bytewise), with ``{"subdir": ...}`` roll-ups for a delimiter."""
        out: list[dict[str, Any]] = []
        lo, hi = self._bounds(marker, end_marker, prefix, reverse)
        cols = self._columns()
        with self._conn() as conn:
            while len(out) < limit:
                sql = f"SELECT {cols} FROM item WHERE deleted = 0"
                args: list[Any] = []
                if lo[0]:
                    sql += " AND name >= ?" if lo[1] else " AND name > ?"
                    args.append(lo[0])
                if hi:
                    sql += " AND name < ?"
                    args.append(hi)
                wanted = limit - len(out)
                sql += (" ORDER BY name DESC" if reverse else " ORDER BY name") + " LIMIT ?"
                args.append(wanted)
                rows = conn.execute(sql, args).fetchall()
                requery = False
                for row in rows:
                    name = row[0]
                    if delimiter:
                        idx = name.find(delimiter, len(prefix))
                        if idx >= 0:
                            subdir = name[: idx + len(delimiter)]
                            out.append({"subdir": subdir})
                            if reverse:
                                hi = subdir
                            else:
                                lo = (_successor(subdir), True)
                            requery = True
                            break
                    out.append(self._row(row))
                    if reverse:
                        hi = name
                    else:
                        lo = (name, False)
                if not requery and len(rows) < wanted:
                    break
        return out[:limit]

    def _bounds(self, marker: str, end_marker: str, prefix: str, reverse: bool) -> tuple[tuple[str, bool], str]:
        """(value, inclusive) lower bound and exclusive upper bound on the name; reverse order swaps
        what the markers bound."""
        lo: tuple[str, bool] = ((end_marker if reverse else marker), False)
        hi: str = marker if reverse else end_marker
        if prefix:
            if not lo[0] or lo[0] < prefix:
                lo = (prefix, True)
            after_prefix = _successor(prefix)
            if not hi or hi > after_prefix:
                hi = after_prefix
        return lo, hi

    def _columns(self) -> str:
        raise NotImplementedError

    def _row(self, row: tuple[Any, ...]) -> dict[str, Any]:
        raise NotImplementedError


class ContainerBroker(Broker):
    kind = "container"

    def _columns(self) -> str:
        return "name, created_at, size, content_type, etag"

    def _row(self, row: tuple[Any, ...]) -> dict[str, Any]:
        return {"name": row[0], "created_at": row[1], "bytes": row[2], "content_type": row[3], "hash": row[4]}

    # Swift's listing row, built by SQLite: last_modified from the timestamp's digits (as listing_rows.iso)
    _SWIFT_ROW = (
        "json_object('hash', etag, 'last_modified', "
        "strftime('%Y-%m-%dT%H:%M:%S', CAST(created_at AS INTEGER), 'unixepoch') || '.' || "
        "CASE WHEN instr(created_at, '.') > 0 "
        "THEN substr(substr(created_at, instr(created_at, '.') + 1) || '000000', 1, 6) ELSE '000000' END, "
        "'bytes', size, 'name', name, 'content_type', content_type)"
    )

    def swift_json(self, *, limit: int, marker: str = "", end_marker: str = "", prefix: str = "",
                   reverse: bool = False) -> bytes | None:
        """A listing without a delimiter as the Swift API's JSON, each row built by SQLite (a 10,000-row
        page of a large container costs no Python per field). None when a row needs the Python path
        (a symlink's content type, a timestamp that is not plain digits)."""
        lo, hi = self._bounds(marker, end_marker, prefix, reverse)
        sql = f"SELECT {self._SWIFT_ROW}, content_type LIKE '%;symlink_target=%' OR created_at GLOB '*[^0-9.]*' " \
              "FROM item WHERE deleted = 0"
        args: list[Any] = []
        if lo[0]:
            sql += " AND name >= ?" if lo[1] else " AND name > ?"
            args.append(lo[0])
        if hi:
            sql += " AND name < ?"
            args.append(hi)
        sql += (" ORDER BY name DESC" if reverse else " ORDER BY name") + " LIMIT ?"
        args.append(limit)
        with self._conn() as conn:
            rows = conn.execute(sql, args).fetchall()
        if any(special for _, special in rows):
            return None
        return ("[" + ",".join(row for row, _ in rows) + "]").encode()

    def put_object(self, name: str, timestamp: str, size: int, content_type: str, etag: str) -> None:
        self._upsert(name, timestamp, size, content_type, etag, deleted=0)

    def delete_object(self, name: str, timestamp: str) -> None:
        self._upsert(name, timestamp, 0, "", "", deleted=1)

    def _upsert(self, name: str, ts: str, size: int, ctype: str, etag: str, *, deleted: int) -> None:
        with self._tx() as conn:
            self._upsert_in(conn, name, ts, size, ctype, etag, deleted)

    def apply_updates(self, rows: list[tuple[str, str, int, str, str, int]]) -> Info | None:
        """Object rows [(name, timestamp, size, content_type, etag, deleted)] from object writes,
        all in one transaction (a group commit); the totals after it, or None when the container
        does not exist or is deleted (then nothing is written)."""
        if not self.exists():
            return None
        with self._tx() as conn:
            info = self._info_in(conn)
            if info is None or info.deleted:
                return None
            for name, ts, size, ctype, etag, deleted in rows:
                self._upsert_in(conn, name, ts, size, ctype, etag, deleted)
            return self._info_in(conn)

    def merge_items(self, rows: list[list[Any]]) -> None:
        """Rows from a replica: [name, created_at, size, content_type, etag, deleted]; newer wins."""
        with self._tx() as conn:
            for name, ts, size, ctype, etag, deleted in rows:
                self._upsert_in(conn, name, ts, int(size), ctype, etag, int(deleted))

    def item_rows(self, after: int, limit: int) -> list[tuple[Any, ...]]:
        with self._conn() as conn:
            return conn.execute(
                "SELECT rowid, name, created_at, size, content_type, etag, deleted FROM item"
                " WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (after, limit),
            ).fetchall()

    # ---- container sync: this copy's progress, kept in a table replication does not carry ----------

    _SYNC_TABLE = (
        "CREATE TABLE IF NOT EXISTS container_sync (id INTEGER PRIMARY KEY CHECK (id = 1),"
        " sync_to TEXT NOT NULL, point1 INTEGER NOT NULL, point2 INTEGER NOT NULL)"
    )

    def sync_points(self, sync_to: str) -> tuple[int, int]:
        """(point1, point2): the last row this copy synced of its own share, and of every row.
        Both start over (-1) when the container syncs somewhere else than they were kept for."""
        with self._tx() as conn:
            conn.execute(self._SYNC_TABLE)
            row = conn.execute("SELECT sync_to, point1, point2 FROM container_sync WHERE id = 1").fetchone()
            if row is None or row[0] != sync_to:
                conn.execute(
                    "INSERT OR REPLACE INTO container_sync (id, sync_to, point1, point2) VALUES (1, ?, -1, -1)",
                    (sync_to,),
                )
                return -1, -1
            return int(row[1]), int(row[2])

    def set_sync_points(self, sync_to: str, point1: int | None = None, point2: int | None = None) -> None:
        with self._tx() as conn:
            conn.execute(self._SYNC_TABLE)
            row = conn.execute("SELECT sync_to, point1, point2 FROM container_sync WHERE id = 1").fetchone()
            p1, p2 = (int(row[1]), int(row[2])) if row is not None and row[0] == sync_to else (-1, -1)
            conn.execute(
                "INSERT OR REPLACE INTO container_sync (id, sync_to, point1, point2) VALUES (1, ?, ?, ?)",
                (sync_to, p1 if point1 is None else point1, p2 if point2 is None else point2),
            )

    @staticmethod
    def _upsert_in(
        conn: sqlite3.Connection, name: str, ts: str, size: int, ctype: str, etag: str, deleted: int
    ) -> None:
        old = conn.execute("SELECT created_at, size, deleted FROM item WHERE name = ?", (name,)).fetchone()
        if old is not None and (
            float(old[0]) > float(ts) or (float(old[0]) == float(ts) and old[2] == deleted)
        ):
            return  # a newer update already arrived
        d_count, d_bytes = 0, 0
        if old is not None and not old[2]:
            d_count, d_bytes = -1, -old[1]
        if not deleted:
            d_count, d_bytes = d_count + 1, d_bytes + size
        conn.execute(
            "INSERT OR REPLACE INTO item (name, created_at, size, content_type, etag, deleted)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (name, ts, size, ctype, etag, deleted),
        )
        conn.execute(
            "UPDATE stat SET item_count = item_count + ?, object_count = object_count + ?,"
            " bytes_used = bytes_used + ?",
            (d_count, d_count, d_bytes),
        )


class AccountBroker(Broker):
    kind = "account"

    def _columns(self) -> str:
        return "name, put_timestamp, object_count, bytes_used"

    def _row(self, row: tuple[Any, ...]) -> dict[str, Any]:
        return {"name": row[0], "put_timestamp": row[1], "count": row[2], "bytes": row[3]}

    def merge_items(self, rows: list[list[Any]]) -> None:
        """Rows from a replica: [name, put_timestamp, delete_timestamp, object_count, bytes_used, deleted]."""
        with self._tx() as conn:
            for name, put_ts, delete_ts, count, used, _deleted in rows:
                self._put_container_in(conn, name, put_ts, delete_ts, int(count), int(used))

    def item_rows(self, after: int, limit: int) -> list[tuple[Any, ...]]:
        with self._conn() as conn:
            return conn.execute(
                "SELECT rowid, name, put_timestamp, delete_timestamp, object_count, bytes_used, deleted"
                " FROM item WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (after, limit),
            ).fetchall()

    def put_container(
        self, name: str, put_ts: str, delete_ts: str, object_count: int, bytes_used: int
    ) -> None:
        with self._tx() as conn:
            self._put_container_in(conn, name, put_ts, delete_ts, object_count, bytes_used)

    @staticmethod
    def _put_container_in(
        conn: sqlite3.Connection, name: str, put_ts: str, delete_ts: str, object_count: int, bytes_used: int
    ) -> None:
        deleted = 1 if float(delete_ts) > float(put_ts) else 0
        old = conn.execute(
            "SELECT put_timestamp, delete_timestamp, object_count, bytes_used, deleted FROM item WHERE name = ?",
            (name,),
        ).fetchone()
        if old is not None:
            put_ts = max(put_ts, old[0], key=float)
            delete_ts = max(delete_ts, old[1], key=float)
            deleted = 1 if float(delete_ts) > float(put_ts) else 0
            if (old[0], old[1], old[2], old[3]) == (put_ts, delete_ts, object_count, bytes_used):
                return  # nothing new (a replica sending back what it got from here)
        d_cont, d_obj, d_bytes = 0, 0, 0
        if old is not None and not old[4]:
            d_cont, d_obj, d_bytes = -1, -old[2], -old[3]
        if not deleted:
            d_cont, d_obj, d_bytes = d_cont + 1, d_obj + object_count, d_bytes + bytes_used
        conn.execute(
            "INSERT OR REPLACE INTO item (name, put_timestamp, delete_timestamp, object_count, bytes_used,"
            " deleted) VALUES (?, ?, ?, ?, ?, ?)",
            (
                name,
                put_ts,
                delete_ts,
                object_count if not deleted else 0,
                bytes_used if not deleted else 0,
                deleted,
            ),
        )
        conn.execute(
            "UPDATE stat SET item_count = item_count + ?, object_count = object_count + ?,"
            " bytes_used = bytes_used + ?",
            (d_cont, d_obj, d_bytes),
        )
