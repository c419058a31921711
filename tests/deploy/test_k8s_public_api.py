"""The deploy package's public surface is its explicit ``__all__``; errors join the tree."""

from __future__ import annotations

import pytest

from airpath import deploy
from airpath.deploy import errors
from airpath.errors import AirpathError, InputError


def test_all_is_exactly_the_public_names() -> None:
    assert sorted(deploy.__all__) == deploy.__all__
    for name in deploy.__all__:
        assert getattr(deploy, name) is not None
    assert set(deploy.__all__) <= set(dir(deploy))
    public = {n for n in vars(deploy) if not n.startswith("_")}
    modules = {
        "access", "cli", "config", "dashboard", "diagnose", "errors", "kube", "kubefake",
        "layers", "monitoring", "ops", "pods", "quantity", "rendering", "resolve", "router",
        "services", "sizing", "spark", "sparkconf", "typed", "validate",
    }  # fmt: skip
    plumbing = {"annotations", "importlib", "Any", "TYPE_CHECKING"}
    assert public - modules - plumbing == set(deploy.__all__)


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        deploy.nope  # noqa: B018


def test_errors_are_airpath_errors_and_input_errors_where_the_user_is_at_fault() -> None:
    assert issubclass(errors.DeployError, AirpathError)
    for cls in (
        errors.LayerError,
        errors.SizingError,
        errors.ManifestError,
        errors.KubeconfigError,
    ):
        assert issubclass(cls, InputError)
        assert issubclass(cls, errors.DeployError)
    assert not issubclass(errors.ClusterError, InputError)
