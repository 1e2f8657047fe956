"""Delegated administration: roles and their scopes (`scope`), the API's changes as an overlay on the YAML baseline
(`overlay`), one change checked and stored (`changes`), and the merged state written back as a config file
(`export`). The changes are rows of the ledger's `costline_admin_changes` (`ledger.admin`), which is the audit log
too. User guide: docs/governance.md."""
