"""Kubernetes quantities and Spark memory strings, as integers with units in their names.

Kubernetes writes CPU as cores or millicores (``4``, ``3400m``, ``0.5``) and memory with
binary or decimal suffixes (``16Gi``, ``512Mi``, ``1G``); see the `quantity reference`_.
Spark writes JVM sizes with lower-case binary suffixes (``2g`` is 2 GiB, ``512m`` is
512 MiB; `Spark configuration`_). Inside airpath every CPU amount is an ``int`` of
millicores and every memory amount an ``int`` of MiB, so arithmetic never mixes units.

>>> parse_cpu_m("3.4"), parse_cpu_m("3400m"), format_cpu(3400)
(3400, 3400, '3400m')
>>> parse_memory_mib("16Gi"), parse_spark_memory_mib("2g"), format_spark_memory(10240)
(16384, 2048, '10g')

.. _quantity reference:
   https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/
.. _Spark configuration: https://spark.apache.org/docs/latest/configuration.html
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

from airpath.deploy.errors import LayerError

_MIB = 1024 * 1024
_MEMORY_FACTORS = {
    "": Decimal(1),
    "k": Decimal(1000),
    "M": Decimal(1000**2),
    "G": Decimal(1000**3),
    "T": Decimal(1000**4),
    "Ki": Decimal(1024),
    "Mi": Decimal(1024**2),
    "Gi": Decimal(1024**3),
    "Ti": Decimal(1024**4),
}
_SPARK_FACTORS_MIB = {
    "k": Decimal(1) / 1024,
    "m": Decimal(1),
    "g": Decimal(1024),
    "t": Decimal(1024**2),
}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([A-Za-z]*)$")


def _split(text: str, what: str) -> tuple[Decimal, str]:
    match = _QUANTITY.match(str(text).strip())
    if not match:
        raise LayerError(f"{what}: not a quantity: {text!r}")
    try:
        return Decimal(match.group(1)), match.group(2)
    except InvalidOperation:  # pragma: no cover - the regex admits only decimals
        raise LayerError(f"{what}: not a quantity: {text!r}") from None


def parse_cpu_m(text: str | int | float, what: str = "cpu") -> int:
    """CPU as millicores: ``"4"`` → 4000, ``"3400m"`` → 3400, ``0.5`` → 500."""
    number, unit = _split(str(text), what)
    if unit == "m":
        value = number
    elif unit == "":
        value = number * 1000
    else:
        raise LayerError(f"{what}: CPU takes cores or millicores (4, 3400m), got {text!r}")
    return math.floor(value)


def format_cpu(millicores: int) -> str:
    """``4000`` → ``"4"``, ``3400`` → ``"3400m"`` (whole cores without a suffix)."""
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def parse_memory_mib(text: str | int, what: str = "memory") -> int:
    """Kubernetes memory as whole MiB, rounded down: ``"16Gi"`` → 16384."""
    number, unit = _split(str(text), what)
    if unit not in _MEMORY_FACTORS:
        raise LayerError(f"{what}: unknown memory unit {unit!r} in {text!r} (use Mi, Gi, M, G)")
    return math.floor(number * _MEMORY_FACTORS[unit] / _MIB)


def format_memory(mib: int) -> str:
    """``16384`` → ``"16Gi"``, ``1500`` → ``"1500Mi"``."""
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def parse_spark_memory_mib(text: str | int, what: str = "memory") -> int:
    """A Spark JVM size as MiB: ``"2g"`` → 2048, ``"512m"`` → 512; a bare number is MiB
    (as ``spark.executor.memoryOverhead`` reads it)."""
    number, unit = _split(str(text), what)
    unit = unit.lower()
    if unit == "":
        return math.floor(number)
    if unit.endswith("b"):
        unit = unit[:-1]
    if unit not in _SPARK_FACTORS_MIB:
        raise LayerError(f"{what}: Spark sizes are like 512m or 2g, got {text!r}")
    return math.floor(number * _SPARK_FACTORS_MIB[unit])


def format_spark_memory(mib: int) -> str:
    """``10240`` → ``"10g"``, ``2925`` → ``"2925m"`` (Spark's own units: m = MiB)."""
    return f"{mib // 1024}g" if mib % 1024 == 0 else f"{mib}m"
