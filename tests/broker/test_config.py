"""Broker configuration: collateral fetching is opt-in and cached under the state directory."""

from __future__ import annotations

from pathlib import Path

from ccdeploy.broker.app import collateral_fetcher
from ccdeploy.broker.config import BrokerConfig


def test_collateral_fetching_is_opt_in_and_cached_in_the_state_dir(tmp_path: Path) -> None:
    config = BrokerConfig(state_dir=tmp_path, db_url="sqlite:///x.db", kek_uris=("file:/k",))
    assert config.fetch_collateral is False
    fetching = BrokerConfig(state_dir=tmp_path, db_url="sqlite:///x.db", kek_uris=("file:/k",), fetch_collateral=True)
    assert BrokerConfig.from_json(fetching.to_json()) == fetching
    fetcher = collateral_fetcher(tmp_path)
    assert fetcher.path_for("https://sharedwus.wus.attest.azure.net/certs").parent == tmp_path / "collateral"
