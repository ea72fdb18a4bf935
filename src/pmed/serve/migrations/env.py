"""Alembic environment of ``pmed serve``: run in-process by :func:`pmed.serve.db.upgrade`.

The caller passes an open connection in ``config.attributes["connection"]``; a URL
(``sqlalchemy.url``) is used only when Alembic is run by hand (``alembic -x`` style).
"""

from alembic import context
from sqlalchemy import create_engine

from pmed.serve.db import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    with create_engine(config.get_main_option("sqlalchemy.url")).begin() as conn:
        _run(conn)
