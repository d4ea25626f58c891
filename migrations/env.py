"""Alembic environment. `feedloop init` passes a connection; the `alembic` command reads FEEDLOOP_* settings."""

from alembic import context
from sqlmodel import SQLModel

import app.models  # noqa: F401  (registers the tables on SQLModel.metadata)

target_metadata = SQLModel.metadata


def run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    from app.db import make_engine
    from app.settings import load_settings

    with make_engine(load_settings().database_url).connect() as conn:
        run(conn)
        conn.commit()
