"""Registration is atomic with its audit entry, and single log leaves are read by index, on both backends."""

from __future__ import annotations

import pytest

from ccdeploy.broker.store import BrokerStore, audit_leaf_data
from ccdeploy.errors import BrokerUnavailable
from tests.broker.store.test_store import model, raw_sql
from tests.broker.store.workers import T0

_SQLITE_FAIL = (
    "CREATE TRIGGER fail_audit BEFORE INSERT ON audit_log WHEN NEW.kind = 'model-registered'"
    " BEGIN SELECT RAISE(ABORT, 'disk full'); END"
)
_PG_FAIL = (
    "CREATE FUNCTION fail_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " IF NEW.kind = 'model-registered' THEN RAISE EXCEPTION 'disk full'; END IF; RETURN NEW; END $$;"
    " CREATE TRIGGER fail_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION fail_audit()"
)


def test_a_failed_registration_append_leaves_no_model(store_url: str, store: BrokerStore) -> None:
    raw_sql(store_url, _SQLITE_FAIL if store_url.startswith("sqlite:") else _PG_FAIL)
    with pytest.raises(BrokerUnavailable):
        store.append_event("model-registered", {"name": "resnet"}, T0, logged=True, model=model())
    assert store.get_model("resnet") is None
    assert list(store.audit_entries()) == [] and store.log_leaves() == []
    appended = store.append_event("denial", {}, T0, logged=False)  # the store still works
    assert appended.entry.seq == 1


def test_registration_commits_model_entry_and_leaf_together(store: BrokerStore) -> None:
    record = model()
    appended = store.append_event("model-registered", {"name": "resnet"}, T0, logged=True, model=record)
    assert store.get_model("resnet") == record
    assert appended.log_index == 0
    replaced = model(head=b"other")
    store.append_event("model-registered", {"name": "resnet"}, T0, logged=True, model=replaced)
    assert store.get_model("resnet") == replaced and store.model_names() == ["resnet"]


def test_log_leaf_reads_one_leaf(store: BrokerStore) -> None:
    assert store.log_leaf(0) is None
    entries = [store.append_event("release", {"n": n}, T0, logged=n != 1).entry for n in range(4)]
    leaves = store.log_leaves()
    assert leaves == [audit_leaf_data(entries[n]) for n in (0, 2, 3)]
    assert [store.log_leaf(index) for index in range(3)] == leaves
    assert store.log_leaf(3) is None and store.log_leaf(-1) is None
