from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlmodel import SQLModel

from app import db


def test_upgrade_head_on_an_empty_database_yields_exactly_the_models(database_url):
    engine = create_engine(database_url) if not database_url.startswith("sqlite") else db.make_engine(database_url)
    db.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
    assert diff == []
    assert db.schema_is_current(engine)
    assert set(inspect(engine).get_table_names()) == set(SQLModel.metadata.tables) | {"alembic_version"}
    engine.dispose()


def test_upgrade_is_idempotent(database_url):
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    db.upgrade(engine)
    assert db.schema_is_current(engine)
    engine.dispose()


def test_an_empty_database_is_not_current(database_url):
    engine = db.make_engine(database_url)
    assert not db.schema_is_current(engine)
    engine.dispose()
