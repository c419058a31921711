"""Plain dicts (merged YAML layers) into frozen dataclasses, strictly.

Layers are written by people, so every mistake must come back as one line that names the
key, what was expected and which layer set the value: unknown keys (a typo such as
``coreRequests``), missing required keys, wrong types. YAML keys are the camelCase form of
the field names (``node_cores`` ↔ ``nodeCores``), as in Kubernetes manifests.

Supported field types: ``str``, ``int``, ``float``, ``bool``, ``X | None``, ``list[X]``,
``dict[str, X]``, ``Literal[...]`` and nested dataclasses. Numbers are accepted where a
string is expected (``nodeCores: 4``), never the other way round.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from airpath.deploy.errors import LayerError

T = TypeVar("T")
Path = tuple[str, ...]
Where = Callable[[Path], str]


def camel(name: str) -> str:
    """``node_cores`` → ``nodeCores``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def format_path(path: Path) -> str:
    """``("stream", "sparkConf", "spark.a.b")`` → ``stream.sparkConf["spark.a.b"]``."""
    out = ""
    for part in path:
        out += f'["{part}"]' if ("." in part or not part) else (f".{part}" if out else part)
    return out


def parse(cls: type[T], data: Any, where: Where, path: Path = ()) -> T:
    """``data`` as an instance of the dataclass ``cls``; ``where(path)`` says which layer
    set the value at ``path`` (for error messages)."""
    return typing.cast(T, _value(cls, data, path, where))


def _fail(path: Path, message: str, where: Where) -> LayerError:
    origin = where(path)
    return LayerError(
        f"{format_path(path) or '<root>'}: {message}" + (f" ({origin})" if origin else "")
    )


def _value(tp: Any, data: Any, path: Path, where: Where) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _value(inner[0], data, path, where)
    if data is None:
        raise _fail(path, f"a value is required ({_name(tp)})", where)
    if dataclasses.is_dataclass(tp):
        return _dataclass(typing.cast(type[Any], tp), data, path, where)
    if origin is typing.Literal:
        if data not in args:
            choices = ", ".join(repr(a) for a in args)
            raise _fail(path, f"must be one of {choices}, got {data!r}", where)
        return data
    if origin is list:
        if not isinstance(data, list):
            raise _fail(path, f"must be a list, got {type(data).__name__}", where)
        return [_value(args[0], item, (*path, str(i)), where) for i, item in enumerate(data)]
    if origin is dict:
        if not isinstance(data, Mapping):
            raise _fail(path, f"must be a mapping, got {type(data).__name__}", where)
        return {str(k): _value(args[1], v, (*path, str(k)), where) for k, v in data.items()}
    return _scalar(tp, data, path, where)


def _scalar(tp: Any, data: Any, path: Path, where: Where) -> Any:
    if tp is Any:
        return data
    if tp is bool:
        if not isinstance(data, bool):
            raise _fail(path, f"must be true or false, got {data!r}", where)
        return data
    if tp is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise _fail(path, f"must be an integer, got {data!r}", where)
        return data
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise _fail(path, f"must be a number, got {data!r}", where)
        return float(data)
    if tp is str:
        if isinstance(data, bool) or not isinstance(data, str | int | float):
            raise _fail(path, f"must be a string, got {data!r}", where)
        return str(data)
    raise TypeError(f"unsupported field type {tp!r}")  # pragma: no cover - a bug, not input


def _dataclass(cls: type[Any], data: Any, path: Path, where: Where) -> Any:
    if not isinstance(data, Mapping):
        raise _fail(path, f"must be a mapping, got {type(data).__name__}", where)
    hints = typing.get_type_hints(cls)
    fields = {camel(f.name): f for f in dataclasses.fields(cls)}
    unknown = sorted(set(map(str, data)) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise _fail((*path, unknown[0]), f"unknown key (known here: {known})", where)
    values: dict[str, Any] = {}
    for key, f in fields.items():
        if key in data:
            values[f.name] = _value(hints[f.name], data[key], (*path, key), where)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise _fail((*path, key), "is required but no layer sets it", where)
    return cls(**values)


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))
