"""Alembic environment: always run from oned.store.migrate on a connection it hands over."""

from alembic import context

from oned.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
