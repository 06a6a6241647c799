"""sgmmq: sparse Gaussian-mixture-model Q-functions, trained online on a Riemannian manifold."""

import warnings
from typing import Any

# geoopt 0.5.1 calls torch.jit.script at import time, deprecated since torch 2.13: silence that one warning.
warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated", category=DeprecationWarning)

import sgmmq.envs  # noqa: E402,F401 -- the suite registers its tasks (sgmmq.registry), as gymnasium registers its envs

__version__ = "0.1.0"
__all__ = ["SGMMQ", "GMMPolicy", "GMMQFunction", "__version__"]

_LAZY = {"SGMMQ": "sgmmq.agent", "GMMPolicy": "sgmmq.policies", "GMMQFunction": "sgmmq.mixture"}


def __getattr__(name: str) -> Any:
    """Import torch, SB3 and geoopt only when the agent is used (``sgmmq --help`` stays fast)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sgmmq' has no attribute {name!r}")
