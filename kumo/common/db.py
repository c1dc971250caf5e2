"""Database access shared by every service: engines, sessions, migrations.

Each service owns its tables and its Alembic history (``<service>/migrations``,
version table ``alembic_version_<service>``). By default each service has its own
SQLite file in WAL mode; with ``database.url`` set they share one PostgreSQL
database, each in its own tables.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool


class Base(DeclarativeBase):
    """Declarative base; each service subclasses it to keep its own metadata."""


def make_engine(url: str, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        if not memory:
            Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=StaticPool if memory else None,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        # SQLite serialises writers; BEGIN IMMEDIATE makes a write transaction take
        # the lock up front instead of failing with "database is locked" on upgrade.
        @event.listens_for(engine, "connect")
        def _no_pysqlite_begin(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write", True) else "BEGIN")

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


class Database:
    """Engine + session factory for one service."""

    def __init__(self, url: str, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._lock = threading.Lock()

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any exception."""
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def reader(self) -> Iterator[Session]:
        """A read-only unit of work (no write lock taken on SQLite)."""
        with self.engine.connect() as conn:
            conn.info["write"] = False
            with Session(bind=conn, expire_on_commit=False) as session:
                try:
                    yield session
                finally:
                    # Detach what was read so it stays usable after the transaction ends.
                    session.expunge_all()
                    session.rollback()
                    conn.info["write"] = True

    def migrate(self, service: str, migrations_dir: Path) -> None:
        """Bring this service's tables to the newest revision (idempotent, cheap when current)."""
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        cfg = Config()
        cfg.set_main_option("script_location", str(migrations_dir))
        cfg.set_main_option("version_table", f"alembic_version_{service}")
        script = ScriptDirectory.from_config(cfg)
        with self._lock, self.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": f"alembic_version_{service}"})
            if set(ctx.get_current_heads()) == set(script.get_heads()):
                return
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()

    def dispose(self) -> None:
        self.engine.dispose()
