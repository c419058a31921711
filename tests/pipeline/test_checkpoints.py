"""Model states per batch: the newest older one is found; a bad file is a named error."""

from __future__ import annotations

from pathlib import Path

import pytest

from airpath.air.estimate import EdgeSpace
from airpath.errors import PipelineConfigError
from airpath.network.store import Network
from airpath.pipeline.model import ModelCheckpoints, StreamModel


def test_load_before_and_pruning(helsinki: Network, tmp_path: Path) -> None:
    space = EdgeSpace.from_network(helsinki)
    store = ModelCheckpoints(tmp_path, keep=3)
    assert store.load_before(5) is None
    for batch in (0, 2, 3, 7):
        model = StreamModel(space, (0, 15))
        model.n_batches = batch
        store.save(batch, model)
    assert store.batch_ids() == [2, 3, 7]
    found = store.load_before(7)
    assert found is not None
    assert found[0] == 3
    assert found[1].n_batches == 3
    assert store.load_before(2) is None
    (tmp_path / "state-000000000003.pkl").write_bytes(b"not a pickle")
    with pytest.raises(PipelineConfigError, match="unreadable model state"):
        store.load_before(5)
