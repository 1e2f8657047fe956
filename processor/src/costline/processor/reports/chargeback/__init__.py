"""Chargeback: from the ledger to a statement each business unit can be billed with.

`config` is the `chargeback:` section, `statement` turns a month of ledger rows into charges per team (exact
decimals, rounded to the cent once), `render` writes a statement as a table, CSV or JSON. Nothing here writes to
the ledger except `periods`, which freezes a closed month.
"""
