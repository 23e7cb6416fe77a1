"""One file a schema version, oldest first; each only adds (a table, a column, an index)."""
