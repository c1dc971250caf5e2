"""The Alembic ``env.py`` body every service's migrations share.

A service's ``migrations/env.py`` is one line: ``run(target_metadata)``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData


def run(target_metadata: MetaData) -> None:
    cfg = context.config
    conn = cfg.attributes.get("connection")
    if conn is None:  # `alembic` CLI use: the URL comes from -x url=...
        from sqlalchemy import create_engine

        url = context.get_x_argument(as_dictionary=True).get("url", "sqlite://")
        with create_engine(url).connect() as conn:
            _run(conn, cfg, target_metadata)
            conn.commit()
        return
    _run(conn, cfg, target_metadata)


def _run(conn, cfg, target_metadata: MetaData) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=conn,
        target_metadata=target_metadata,
        version_table=cfg.get_main_option("version_table"),
        render_as_batch=conn.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
