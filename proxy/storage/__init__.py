"""Durable storage: the request log (and, through its migrations, users and keys).

`LogSink` is the seam: SQLite today; a PostgreSQL writer would be another implementation.
"""
