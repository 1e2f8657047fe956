"""Test and demo helpers that ship with Costline (stdlib only)."""
