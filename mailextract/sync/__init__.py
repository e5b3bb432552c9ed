"""Incremental sync of connections: runs started on demand or when a connection is due."""
