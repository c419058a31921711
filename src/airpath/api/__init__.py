"""The HTTP API: routes, the live pollution field, sensors and partner ingest.

::

    from airpath.api import ApiSettings, create_app
    app = create_app(ApiSettings.create("networks/helsinki", field_store="fields/helsinki"))

or ``airpath serve --network networks/helsinki`` (see :mod:`airpath.api.cli`).
"""

from airpath.api.app import create_app
from airpath.api.settings import ApiConfigError, ApiSettings, load_tokens

__all__ = ["ApiConfigError", "ApiSettings", "create_app", "load_tokens"]
