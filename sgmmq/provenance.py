"""What every result file records about how it was made, and how it is written (atomically)."""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and a rename: a killed run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


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
