"""Costline processor: OTLP spans in, priced and attributed cost out."""
