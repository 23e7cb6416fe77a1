"""The store's schema history as Alembic revisions (versions/), run by `core.store.migrate`."""

# The newest revision. A store already at it is opened without importing Alembic; a test keeps
# this equal to the head of versions/.
HEAD = "0013"
