"""The store's schema history as Alembic revisions (versions/), run by `core.store.migrate`;
the newest one's id is `core.store_constants.HEAD`."""
