"""Ingest: OTLP decoded, spans normalised to calls, deduplicated, priced, attributed and written, in that order (`pipeline`); redaction and forwarding of what leaves."""
