"""The stores beside the ledger create their tables when opened; the service opens several of them at once at start
(the chargeback gauges and the background reconciler both open the reconciliation store). Opening them together on a
fresh database must never fail with "table ... already exists"."""

from __future__ import annotations

import threading

from sqlalchemy import create_engine

from costline.processor.ledger.outcomes import OutcomeStore
from costline.processor.ledger.periods import PeriodStore
from costline.processor.ledger.reconciliation import ReconciliationStore

OPENERS = (ReconciliationStore, ReconciliationStore, OutcomeStore, OutcomeStore, PeriodStore, PeriodStore)


def _open_store(opener, engine, start: threading.Barrier, errors: list) -> None:
    start.wait()  # every opener at once, on a database none of them has seen
    try:
        opener(engine)
    except Exception as err:  # noqa: BLE001 - what the test is looking for
        errors.append(err)


def test_stores_opened_together_on_a_fresh_database_all_open(tmp_path):
    for attempt in range(15):
        engine = create_engine(f"sqlite:///{tmp_path / f'fresh-{attempt}.db'}")
        start, errors = threading.Barrier(len(OPENERS)), []

        threads = [threading.Thread(target=_open_store, args=(opener, engine, start, errors)) for opener in OPENERS]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        engine.dispose()
        assert not errors, errors
