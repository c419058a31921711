"""Concentration units: parse the spellings sensors use, convert everything to µg/m³.

Gases reported as a mixing ratio (ppb) are converted with the ideal-gas molar volume at a
stated temperature and pressure. The default is 20 °C and 1013.25 hPa: the EU Air Quality
Directive 2008/50/EC, Annex VI (section C), standardises gas volumes "at a temperature of
293 K and an atmospheric pressure of 101,3 kPa". Particulate matter has no molar mass, so
it is accepted only in mass units; ppb for PM is a :class:`~airpath.errors.UnitError`.

>>> round(ppb_to_ugm3(1.0, Pollutant.NO2), 3)   # 1 ppb NO2 at 20 °C, 1013.25 hPa
1.913
>>> round(ppb_to_ugm3(1.0, Pollutant.O3), 3)
1.995
>>> round(ppb_to_ugm3(1.0, Pollutant.NO2, temperature_c=25.0), 3)  # US EPA conditions
1.88
>>> to_ugm3(0.04, "mg/m3", Pollutant.PM10)
40.0
>>> parse_unit("µg/m³") is parse_unit("UG/M3") is Unit.UGM3
True
"""

from __future__ import annotations

from airpath.air.schema import Pollutant, Unit
from airpath.errors import UnitError

__all__ = [
    "GAS_CONSTANT_J_PER_MOL_K",
    "MOLAR_MASS_G_PER_MOL",
    "REFERENCE_PRESSURE_HPA",
    "REFERENCE_TEMPERATURE_C",
    "molar_volume_l_per_mol",
    "parse_unit",
    "ppb_to_ugm3",
    "to_ugm3",
    "ugm3_per_unit",
    "ugm3_to_ppb",
    "unit_allowed",
]

# CODATA 2018 exact value of the molar gas constant R.
GAS_CONSTANT_J_PER_MOL_K = 8.314462618
ZERO_CELSIUS_K = 273.15
# EU Directive 2008/50/EC Annex VI C: 293 K and 101.3 kPa for gases.
REFERENCE_TEMPERATURE_C = 20.0
REFERENCE_PRESSURE_HPA = 1013.25

# IUPAC standard atomic weights (N 14.0067, O 15.9994) summed; g/mol.
MOLAR_MASS_G_PER_MOL: dict[Pollutant, float] = {
    Pollutant.NO2: 46.0055,
    Pollutant.O3: 47.9982,
}

_PARTICULATE = frozenset({Pollutant.PM25, Pollutant.PM10})

# Spellings seen in feeds, after _normalise (lower case, micro signs → "u", "³" → "3").
_SPELLINGS: dict[str, Unit] = {
    "ug/m3": Unit.UGM3,
    "ugm3": Unit.UGM3,
    "ugm-3": Unit.UGM3,
    "ug m-3": Unit.UGM3,
    "ppb": Unit.PPB,
    "mg/m3": Unit.MGM3,
    "mgm3": Unit.MGM3,
}


def _normalise(text: str) -> str:
    # U+00B5 MICRO SIGN and U+03BC GREEK SMALL LETTER MU are both used for "micro".
    return text.strip().lower().replace("\u00b5", "u").replace("\u03bc", "u").replace("³", "3")


def parse_unit(text: str | Unit) -> Unit:
    """The :class:`Unit` a spelling such as ``"µg/m³"``, ``"ug/m3"`` or ``"PPB"`` names.

    >>> parse_unit(" Mg/m3 ")
    <Unit.MGM3: 'mg/m3'>
    >>> parse_unit("furlongs")
    Traceback (most recent call last):
    ...
    airpath.errors.UnitError: unknown concentration unit 'furlongs'
    """
    if isinstance(text, Unit):
        return text
    unit = _SPELLINGS.get(_normalise(text)) if isinstance(text, str) else None
    if unit is None:
        raise UnitError(f"unknown concentration unit {text!r}")
    return unit


def unit_allowed(unit: Unit, pollutant: Pollutant) -> bool:
    """Whether ``unit`` can express ``pollutant``: ppb is for gases only."""
    return not (unit is Unit.PPB and pollutant in _PARTICULATE)


def molar_volume_l_per_mol(
    *,
    temperature_c: float = REFERENCE_TEMPERATURE_C,
    pressure_hpa: float = REFERENCE_PRESSURE_HPA,
) -> float:
    """Ideal-gas molar volume V = RT/p in litres per mole.

    >>> round(molar_volume_l_per_mol(), 3)   # 20 °C, 1013.25 hPa
    24.055
    >>> round(molar_volume_l_per_mol(temperature_c=0.0), 3)   # STP
    22.414
    """
    temperature_k = temperature_c + ZERO_CELSIUS_K
    if temperature_k <= 0.0 or pressure_hpa <= 0.0:
        raise UnitError(
            f"reference conditions must be above absolute zero and vacuum, got "
            f"{temperature_c} °C and {pressure_hpa} hPa"
        )
    pressure_pa = pressure_hpa * 100.0
    return GAS_CONSTANT_J_PER_MOL_K * temperature_k / pressure_pa * 1000.0


def ugm3_per_unit(
    unit: Unit,
    pollutant: Pollutant,
    *,
    temperature_c: float = REFERENCE_TEMPERATURE_C,
    pressure_hpa: float = REFERENCE_PRESSURE_HPA,
) -> float:
    """How many µg/m³ one ``unit`` of ``pollutant`` is (the multiplier ``to_ugm3`` uses).

    The record and the vectorised validators both multiply by this one factor, so their
    results agree to the last bit.
    """
    if unit is Unit.UGM3:
        return 1.0
    if unit is Unit.MGM3:
        return 1000.0
    if pollutant not in MOLAR_MASS_G_PER_MOL:
        raise UnitError(f"{pollutant.value} is particulate matter: ppb has no meaning for it")
    # 1 ppb = 1e-9 mol/mol; air holds 1000/V mol per m³ (V in L/mol); 1 g = 1e6 µg.
    volume_l_per_mol = molar_volume_l_per_mol(
        temperature_c=temperature_c, pressure_hpa=pressure_hpa
    )
    return MOLAR_MASS_G_PER_MOL[pollutant] / volume_l_per_mol


def ppb_to_ugm3(
    value_ppb: float,
    pollutant: Pollutant,
    *,
    temperature_c: float = REFERENCE_TEMPERATURE_C,
    pressure_hpa: float = REFERENCE_PRESSURE_HPA,
) -> float:
    """A gas mixing ratio in ppb as a mass concentration in µg/m³."""
    factor = ugm3_per_unit(
        Unit.PPB, pollutant, temperature_c=temperature_c, pressure_hpa=pressure_hpa
    )
    return value_ppb * factor


def ugm3_to_ppb(
    value_ugm3: float,
    pollutant: Pollutant,
    *,
    temperature_c: float = REFERENCE_TEMPERATURE_C,
    pressure_hpa: float = REFERENCE_PRESSURE_HPA,
) -> float:
    """A gas mass concentration in µg/m³ as a mixing ratio in ppb.

    >>> round(ugm3_to_ppb(200.0, Pollutant.NO2), 1)   # the EU hourly NO2 limit
    104.6
    """
    factor = ugm3_per_unit(
        Unit.PPB, pollutant, temperature_c=temperature_c, pressure_hpa=pressure_hpa
    )
    return value_ugm3 / factor


def to_ugm3(
    value: float,
    unit: Unit | str,
    pollutant: Pollutant,
    *,
    temperature_c: float = REFERENCE_TEMPERATURE_C,
    pressure_hpa: float = REFERENCE_PRESSURE_HPA,
) -> float:
    """``value`` in ``unit`` (any accepted spelling) as µg/m³."""
    factor = ugm3_per_unit(
        parse_unit(unit), pollutant, temperature_c=temperature_c, pressure_hpa=pressure_hpa
    )
    return value * factor
