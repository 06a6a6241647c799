"""What every result file records about how it was made (files are written by :mod:`sgmmq.files`)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    described = f"{platform.platform()}, {cpu}, {os.cpu_count()} logical cores, Python {platform.python_version()}"
    try:
        import torch

        if torch.cuda.is_available():
            described += f", GPU {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return described


def versions() -> str:
    import geoopt
    import gymnasium
    import numpy as np
    import stable_baselines3
    import torch

    return (
        f"stable-baselines3 {stable_baselines3.__version__}, gymnasium {gymnasium.__version__}, "
        f"torch {torch.__version__}, geoopt {geoopt.__version__}, numpy {np.__version__}"
    )
