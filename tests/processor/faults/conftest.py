"""Fixtures for the fault suite (shared with the edge suite's subprocess tests)."""

from tests.processor.edge.served import CONFIG, Served, http_get, serve, serving, stop

__all__ = ["CONFIG", "Served", "http_get", "serve", "serving", "stop"]
