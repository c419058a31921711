"""Every error airpath raises on purpose, as one tree.

::

    AirpathError
    ├── InputError                    bad input from a user, a file or a request
    │   ├── SourceError               unknown, unreadable or corrupt source file
    │   ├── EmptyNetworkError         nothing rideable left after filtering
    │   ├── ElevationError            elevation tile missing or corrupt
    │   ├── CoordinateError           NaN or out-of-range latitude/longitude
    │   ├── OutsideCoverageError      a point too far from any rideable street
    │   ├── SameEndpointsError        origin and destination snap to the same place
    │   ├── ProfileError              unknown routing profile or bad profile option
    │   ├── FieldError                pollution field of the wrong shape or with bad values
    │   ├── UnitError                 unknown unit, or ppb given for particulate matter
    │   ├── ReadingSchemaError        a readings table missing columns of READING_SCHEMA
    │   ├── SimulationError           bad simulator input (duration, start, station file)
    │   ├── ObservationError          an observation batch with mismatched or invalid columns
    │   ├── SnapshotError             a field snapshot that is corrupt or for another network
    │   └── PipelineConfigError       a bad streaming/training job setting or path
    ├── NoRouteError                  no rideable connection between two points
    ├── NetworkFormatError            an on-disk network that is missing, partial or too new
    └── FieldStoreError               the field store has no snapshot yet
        └── StoreUnavailableError     the field store (e.g. Redis) cannot be reached

The CLI turns any :class:`AirpathError` into one line on stderr and a non-zero exit.
"""

from __future__ import annotations


class AirpathError(Exception):
    """Base of every error airpath raises on purpose."""


class InputError(AirpathError):
    """Bad input from a user, a file or a request."""


class SourceError(InputError):
    """An input file that is unknown, unreadable or corrupt."""


class EmptyNetworkError(InputError):
    """Nothing rideable is left after filtering."""


class ElevationError(InputError):
    """An elevation tile is missing or corrupt."""


class CoordinateError(InputError):
    """A latitude/longitude that is NaN or out of range."""


class OutsideCoverageError(InputError):
    """A point farther from any rideable street than the snapping limit."""


class SameEndpointsError(InputError):
    """Origin and destination are the same place."""


class ProfileError(InputError):
    """Unknown routing profile or a bad profile option."""


class FieldError(InputError):
    """A pollution field with the wrong shape or NaN/negative values."""


class NoRouteError(AirpathError):
    """No rideable connection between two points."""


class NetworkFormatError(AirpathError):
    """An on-disk network that is missing, partial or of an unsupported format version."""


class UnitError(InputError):
    """An unknown concentration unit, or one not valid for the pollutant (ppb for PM)."""


class ReadingSchemaError(InputError):
    """A readings table (Arrow or pandas) missing columns of ``READING_SCHEMA``."""


class SimulationError(InputError):
    """Bad simulator input: duration, start time, station or incident file."""


class ObservationError(InputError):
    """An observation batch with mismatched columns or invalid values."""


class SnapshotError(InputError):
    """A field snapshot that is corrupt, truncated or made for another network."""


class PipelineConfigError(InputError):
    """A bad setting or path for the streaming or training job."""


class FieldStoreError(AirpathError):
    """The field store holds no snapshot (yet), or cannot serve the one asked for."""


class StoreUnavailableError(FieldStoreError):
    """The field store's backend (e.g. a Redis server) cannot be reached."""
