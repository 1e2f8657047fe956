"""Fixtures for the fault suite (shared with the edge suite's subprocess tests)."""

from tests.processor.served import CONFIG, Served, http_get, serve, serving, stop

from .ingesting import db_url, ingest  # noqa: F401 - fixtures: SQLite and real PostgreSQL, a Service in this process

__all__ = ["CONFIG", "Served", "http_get", "serve", "serving", "stop"]
