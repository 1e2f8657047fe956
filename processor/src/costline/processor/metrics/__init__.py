"""What Prometheus scrapes: in-memory series (`aggregate`), the collector built from snapshots, the exposition writer, and the ledger-backed gauges refreshed off the scrape path."""
