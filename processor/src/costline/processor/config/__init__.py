"""The configuration: the typed config file (`core`: `CostlineConfig`, its sections, loading and checking; `chargeback`:
its `chargeback:` section) and the run-time settings of `costline serve` (`settings`). Importing a module of this
package loads only that module: the ledger reads its default timeout from `settings` without loading pydantic."""
