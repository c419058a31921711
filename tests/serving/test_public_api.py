"""The serving package's public surface is its explicit ``__all__``."""

from __future__ import annotations

from airpath import serving


def test_all_is_exactly_the_public_names() -> None:
    assert sorted(serving.__all__) == serving.__all__
    for name in serving.__all__:
        assert getattr(serving, name) is not None
    public = {n for n in vars(serving) if not n.startswith("_")}
    modules = {"redis_store", "snapshot", "store", "subscriber"}
    assert public - modules == set(serving.__all__)
