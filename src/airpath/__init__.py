"""airpath: cycling routes that minimise the air pollution a rider breathes.

The public Python API::

    import airpath
    network = airpath.load_network("networks/helsinki")
    router = airpath.Router(network)
    result = router.route((60.178, 24.937), (60.166, 24.952), profile="least_exposure")
    router.apply_field(airpath.PollutionField.create(...))   # live weights
"""

from airpath.errors import (
    AirpathError,
    CoordinateError,
    FieldError,
    InputError,
    NetworkFormatError,
    NoRouteError,
    OutsideCoverageError,
    ProfileError,
    SameEndpointsError,
    SourceError,
)
from airpath.network.store import Network, load_network
from airpath.routing.field import PollutionField
from airpath.routing.result import Route, RouteResult
from airpath.routing.router import Router

__all__ = [
    "AirpathError",
    "CoordinateError",
    "FieldError",
    "InputError",
    "Network",
    "NetworkFormatError",
    "NoRouteError",
    "OutsideCoverageError",
    "PollutionField",
    "ProfileError",
    "Route",
    "RouteResult",
    "Router",
    "SameEndpointsError",
    "SourceError",
    "load_network",
]
