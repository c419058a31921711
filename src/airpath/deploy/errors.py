"""The errors of ``airpath.deploy``, as one branch of airpath's error tree.

::

    AirpathError
    └── DeployError                       anything the Kubernetes tooling refuses
        ├── LayerError        (InputError)  a layer file that is missing or malformed, sets a
        │                                   key it may not, or a sparkConf key the operator
        │                                   rejects
        ├── SizingError       (InputError)  executor or driver sizes that can never schedule
        ├── ManifestError     (InputError)  a rendered manifest its typed model or schema
        │                                   rejects
        └── ClusterError                    the Kubernetes API refused a request or cannot be
            │                               reached
            └── KubeconfigError (InputError) no usable kubeconfig or context

Every message is one line that names the layer, field or object at fault, because the
CLI prints it as ``airpath: error: …`` and exits 2.
"""

from __future__ import annotations

from airpath.errors import AirpathError, InputError


class DeployError(AirpathError):
    """Base of every error raised by ``airpath.deploy``."""


class LayerError(DeployError, InputError):
    """A configuration layer that is missing, malformed or sets a refused key."""


class SizingError(DeployError, InputError):
    """Executor or driver sizes that can never schedule on the node pool given."""


class ManifestError(DeployError, InputError):
    """A rendered manifest that its typed model or schema rejects."""


class ClusterError(DeployError):
    """The Kubernetes API refused a request or cannot be reached."""


class KubeconfigError(ClusterError, InputError):
    """No usable kubeconfig file or context."""
