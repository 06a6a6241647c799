"""sgmmq: sparse Gaussian-mixture-model Q-functions, trained online on a Riemannian manifold."""

import warnings

# geoopt 0.5.1 calls torch.jit.script at import time, deprecated since torch 2.13: silence that one warning.
warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated", category=DeprecationWarning)

from sgmmq.agent import SGMMQ  # noqa: E402
from sgmmq.mixture import GMMQFunction  # noqa: E402
from sgmmq.policies import GMMPolicy  # noqa: E402

__version__ = "0.1.0"
__all__ = ["SGMMQ", "GMMPolicy", "GMMQFunction", "__version__"]
