"""Reports read from the ledger: budgets, the chargeback statement, reconciliation with the providers' reports, repricing."""
