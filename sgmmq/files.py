"""Files: crash-safe writes (every file a user relies on appears complete or not at all) and the one config-file reader.

A file is written under a temporary name beside its destination (same file system), flushed to
disk, then renamed over the destination in one step (``os.replace`` is atomic on POSIX and
Windows). A process killed at any instant therefore leaves either the previous file or the new
one, plus at most a hidden ``.NAME.*.tmp`` leftover that the next write of the same file removes.
Files are created with the usual permissions (``0666`` less the umask), not ``mkstemp``'s ``0600``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
from collections.abc import Iterator
from typing import Any

TMP_SUFFIX = ".tmp"


def _tmp_name(path: pathlib.Path) -> pathlib.Path:
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")


def remove_leftovers(path: pathlib.Path) -> None:
    """Delete temporary files that killed writers of ``path`` left behind."""
    for leftover in path.parent.glob(f".{path.name}.*{TMP_SUFFIX}"):
        leftover.unlink(missing_ok=True)


def fsync_folder(folder: pathlib.Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | pathlib.Path) -> Iterator[pathlib.Path]:
    """A temporary path to write ``path``'s content to (e.g. ``model.save(tmp)``); it replaces
    ``path`` when the block ends without an exception, and is removed otherwise."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    tmp = _tmp_name(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def write_bytes_atomic(path: str | pathlib.Path, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text_atomic(path: str | pathlib.Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path: str | pathlib.Path, data: Any, indent: int = 1) -> None:
    write_text_atomic(path, json.dumps(data, indent=indent) + "\n")


def sha256(path: str | pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_figure(fig: Any, path: str | pathlib.Path, dpi: int = 100) -> None:
    """``fig.savefig`` through :func:`atomic_path` (the format from ``path``'s suffix)."""
    path = pathlib.Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")


def parse_config(path: pathlib.Path) -> Any:
    """The contents of a config file by its suffix: YAML (.yml, .yaml), TOML (.toml), else JSON;
    a parse error is one ValueError line naming the file (train --config and the study configs)."""
    kind = {".yml": "YAML", ".yaml": "YAML", ".toml": "TOML"}.get(path.suffix, "JSON")
    text = path.read_text()
    try:
        if kind == "YAML":
            import yaml

            return yaml.safe_load(text)
        if kind == "TOML":
            import tomllib  # Python 3.11+

            return tomllib.loads(text)
        return json.loads(text)
    except Exception as error:  # noqa: BLE001 -- yaml, json and toml each raise their own
        raise ValueError(f"{path} is not valid {kind}: {' '.join(str(error).split())}") from None
