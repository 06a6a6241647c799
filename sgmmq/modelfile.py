"""Reading SGMMQ model files without running code from them.

An SB3 zip stores the objects JSON cannot hold as base64 cloudpickle (``":serialized:"`` fields of
its ``data`` entry), and unpickling runs whatever the file's author put there. SGMMQ therefore
saves (format version 2) every such field a second time as plain JSON under ``sgmmq_plain``, and
:func:`safe_objects` rebuilds each serialized field from plain values, handing them to SB3's
loader as ``custom_objects``, so SB3 never unpickles one. Tensors (``*.pth``) are read with
``torch.load(weights_only=True)``, which refuses pickled objects.

Version-1 files (before plain fields) are read from what SB3 already records beside each
pickle: the spaces' bounds, the schedule's ``start``/``end``, the pruner's strike counts, and the
class names and ``train_freq`` are read from the pickle's opcodes (``pickletools``, which parses
and executes nothing). The last observation and episode statistics exist only as pickles: they
are reset, so training continued from a version-1 file starts with a fresh episode.
"""

from __future__ import annotations

import base64
import collections
import io
import json
import pathlib
import pickle
import pickletools
import zipfile
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit
from stable_baselines3.common.utils import ConstantSchedule, LinearSchedule

from sgmmq.sparsity import Pruner

FORMAT_VERSION = 2
PLAIN_KEY = "sgmmq_plain"
TRUST_HINT = "pass trusted=True (CLI: --trust-file) to unpickle it, only for a file from a source you trust: unpickling can run any code"

# the only classes a file may name, by the (module, name) its pickle refers to
_POLICIES = {("sgmmq.policies", "GMMPolicy")}
_BUFFERS = {("stable_baselines3.common.buffers", name): cls for name, cls in (("ReplayBuffer", ReplayBuffer), ("NStepReplayBuffer", NStepReplayBuffer))}


class UntrustedFieldError(ValueError):
    """The file needs unpickling (a field or tensor entry holding a pickled object)."""


def read_archive(path: str | pathlib.Path | io.BufferedIOBase) -> tuple[bytes, str]:
    """The file's bytes (read once, so the file checked is the file loaded) and a name for messages."""
    if isinstance(path, (str, pathlib.Path)):
        path = pathlib.Path(path)
        if not path.exists() and path.with_suffix(".zip").exists():
            path = path.with_suffix(".zip")
        if not path.exists():
            raise FileNotFoundError(f"No saved model at {path}")
        return path.read_bytes(), str(path)
    return path.read(), getattr(path, "name", "the model file")


def read_data(raw: bytes, name: str) -> dict[str, Any]:
    """The ``data`` entry as a JSON object, or a ValueError saying what is wrong with the file."""
    if not zipfile.is_zipfile(io.BytesIO(raw)):
        raise ValueError(f"{name} is not an SB3/SGMMQ save file (not a zip archive; corrupt or truncated?)")
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            data = json.loads(archive.read("data"))
    except (KeyError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{name} is not a readable SB3 save file: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{name}: its 'data' entry must be a JSON object, got {type(data).__name__}")
    return data


def check_version(data: dict[str, Any], name: str) -> int:
    version = data.get("sgmmq_format_version")
    if version is None:
        policy = data.get("policy_class", {})
        origin = policy.get("__module__", "another algorithm") if isinstance(policy, dict) else "another algorithm"
        raise ValueError(f"{name} was not saved by SGMMQ (its policy comes from {origin}); load it with that algorithm")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{name}: field 'sgmmq_format_version' must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(f"{name} was saved in SGMMQ format version {version}; this sgmmq reads up to {FORMAT_VERSION}: upgrade sgmmq")
    return version


def check_tensors(raw: bytes, name: str) -> None:
    """Every ``.pth`` entry must load as plain tensors (``weights_only``); name the first that does not."""
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        for entry in archive.namelist():
            if entry.endswith(".pth"):
                try:
                    torch.load(io.BytesIO(archive.read(entry)), map_location="cpu", weights_only=True)
                except pickle.UnpicklingError as error:
                    if "Unsupported global" in str(error):  # a pickled object (code runs only through a global)
                        raise UntrustedFieldError(f"{name}: entry {entry!r} holds a pickled object, not only tensors; refused ({TRUST_HINT})") from None
                    raise ValueError(f"{name}: entry {entry!r} is not readable as tensors (corrupt?)") from None
                except (RuntimeError, EOFError, zipfile.BadZipFile) as error:
                    raise ValueError(f"{name}: entry {entry!r} is not readable as tensors ({str(error).splitlines()[0]})") from None


# --- plain fields (saving) ---------------------------------------------------------------------
def plain_fields(model: Any) -> dict[str, Any]:
    """Every field SB3 would pickle, as JSON values (what :func:`safe_objects` rebuilds from)."""

    def array(value: Any) -> Any:
        return None if value is None else {"dtype": str(np.asarray(value).dtype), "values": np.asarray(value).tolist()}

    obs_space, action_space = model.observation_space, model.action_space
    pruner = getattr(model, "pruner", None)
    buffer = model.replay_buffer_class
    plain: dict[str, Any] = {
        "policy_class": "GMMPolicy",
        "observation_space": {"low": obs_space.low.tolist(), "high": obs_space.high.tolist(), "dtype": str(obs_space.dtype)},
        "action_space": ({"n": int(action_space.n), "start": int(action_space.start)} if isinstance(action_space, spaces.Discrete)
                         else {"low": action_space.low.tolist(), "high": action_space.high.tolist(), "dtype": str(action_space.dtype)}),
        "train_freq": [int(model.train_freq.frequency), model.train_freq.unit.value],
        "replay_buffer_class": None if buffer is None else [buffer.__module__, buffer.__qualname__],
        "_last_obs": array(model._last_obs),
        "_last_original_obs": array(model._last_original_obs),
        "_last_episode_starts": array(model._last_episode_starts),
        "ep_info_buffer": None if model.ep_info_buffer is None else list(model.ep_info_buffer),
        "ep_success_buffer": None if model.ep_success_buffer is None else list(model.ep_success_buffer),
        "pruner": None if pruner is None else {
            "threshold": pruner.threshold, "patience": pruner.patience, "min_components": pruner.min_components,
            "strikes": None if pruner.strikes is None else pruner.strikes.tolist()},
    }
    optimizer_class = model.policy_kwargs.get("optimizer_class")
    if optimizer_class is not None and not isinstance(optimizer_class, str):
        from sgmmq.policies import optimizer_name

        name = optimizer_name(optimizer_class)  # another class has no plain form: loading it needs trusted=True
        if isinstance(name, str):
            plain["policy_kwargs"] = {**model.policy_kwargs, "optimizer_class": name}
    return _json_safe(plain)


def _json_safe(value: Any) -> Any:
    """Plain Python numbers for numpy ones (episode info holds numpy floats)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


# --- rebuilding (loading) ----------------------------------------------------------------------
def safe_objects(data: dict[str, Any], version: int, name: str, given: Any = ()) -> dict[str, Any]:
    """``custom_objects`` for SB3's loader: every pickled field of ``data`` (but those ``given``), rebuilt from plain values."""
    plain = data.get(PLAIN_KEY) if version >= 2 else None
    if version >= 2 and not isinstance(plain, dict):
        raise ValueError(f"{name}: field {PLAIN_KEY!r} must be a JSON object in format version {version}")
    objects: dict[str, Any] = {PLAIN_KEY: None}
    for key, value in data.items():
        if not (isinstance(value, dict) and ":serialized:" in value) or key in given:
            continue
        try:
            objects[key] = _from_plain(key, plain[key], data) if plain is not None and key in plain else _legacy(key, value, data)
        except UntrustedFieldError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise UntrustedFieldError(f"{name}: field {key!r} could not be rebuilt from plain values ({error}); {TRUST_HINT}") from None
        if objects[key] is _REFUSED:
            raise UntrustedFieldError(f"{name}: field {key!r} holds a pickled object that SGMMQ does not read safely; refused ({TRUST_HINT})")
    return objects


_REFUSED = object()


def _deque(items: list[Any] | None, data: dict[str, Any]) -> Any:
    return None if items is None else collections.deque(items, maxlen=int(data.get("_stats_window_size", 100)))


def _from_plain(key: str, value: Any, data: dict[str, Any]) -> Any:
    if key == "policy_class":
        return _policy_class(("sgmmq.policies", value))
    if key == "observation_space" or (key == "action_space" and "low" in value):  # a Box
        dtype = np.dtype(value["dtype"])
        return spaces.Box(np.asarray(value["low"], dtype=dtype), np.asarray(value["high"], dtype=dtype), dtype=dtype)
    if key == "action_space":
        return spaces.Discrete(int(value["n"]), start=int(value["start"]))
    if key == "train_freq":
        return TrainFreq(int(value[0]), TrainFrequencyUnit(value[1]))
    if key == "replay_buffer_class":
        return None if value is None else _BUFFERS.get(tuple(value), _REFUSED)
    if key in ("_last_obs", "_last_original_obs", "_last_episode_starts"):
        return None if value is None else np.asarray(value["values"], dtype=np.dtype(value["dtype"]))
    if key in ("ep_info_buffer", "ep_success_buffer"):
        return _deque(value, data)
    if key == "pruner":
        return None if value is None else _pruner(value["threshold"], value["patience"], value["min_components"], value["strikes"])
    if key == "policy_kwargs":
        if not isinstance(value, dict) or not isinstance(value.get("optimizer_class", ""), str):
            return _REFUSED
        return value
    return _schedule(key, data[key])


def _legacy(key: str, entry: dict[str, Any], data: dict[str, Any]) -> Any:
    """A version-1 field from what SB3 recorded beside the pickle, or from the pickle's opcodes."""
    if key == "policy_class":
        return _policy_class(_global_ref(entry[":serialized:"]))
    if key == "observation_space" and "Box" in entry[":type:"]:
        dtype = np.dtype(entry["dtype"])
        low, high = (np.array(entry[side].strip("[]").split(), dtype=dtype) for side in ("low", "high"))
        if low.shape != tuple(entry["_shape"]) or high.shape != low.shape:
            raise ValueError("its recorded bounds do not match its shape")
        return spaces.Box(low, high, dtype=dtype)
    if key == "action_space" and "Discrete" in entry[":type:"]:
        return spaces.Discrete(int(entry["n"]), start=int(entry["start"]))
    if key == "train_freq":
        return _legacy_train_freq(entry[":serialized:"])
    if key == "replay_buffer_class":
        return _BUFFERS.get(_global_ref(entry[":serialized:"]), _REFUSED)
    if key in ("_last_obs", "_last_original_obs", "_last_episode_starts"):
        return None  # only a pickle: the env is reset before training continues
    if key in ("ep_info_buffer", "ep_success_buffer"):
        return _deque([], data)
    if key == "pruner":
        strikes = entry["strikes"]
        counts = None if strikes == "None" else [int(s) for s in strikes.removeprefix("tensor([").removesuffix("])").split(",")]
        return _pruner(entry["threshold"], entry["patience"], entry["min_components"], counts)
    return _schedule(key, entry)


def _schedule(key: str, entry: Any) -> Any:
    if key == "lr_schedule":
        return None  # rebuilt from learning_rate by _setup_model
    if key == "learning_rate" and isinstance(entry, dict):
        kind = entry.get(":type:", "")
        if kind.endswith("utils.LinearSchedule'>"):
            return LinearSchedule(float(entry["start"]), float(entry["end"]), float(entry["end_fraction"]))
        if kind.endswith("utils.ConstantSchedule'>"):
            return ConstantSchedule(float(entry["val"]))
    return _REFUSED


def _pruner(threshold: float, patience: int, min_components: int, strikes: list[int] | None) -> Pruner:
    pruner = Pruner(float(threshold), int(patience), int(min_components))
    pruner.strikes = None if strikes is None else torch.tensor([int(s) for s in strikes], dtype=torch.long)
    return pruner


def _policy_class(ref: tuple[str, str] | None) -> Any:
    if ref not in _POLICIES:
        return _REFUSED
    from sgmmq.policies import GMMPolicy

    return GMMPolicy


def _opcodes(serialized: str) -> list[tuple[str, Any]]:
    """The pickle's opcodes and arguments, parsed without executing anything."""
    return [(op.name, arg) for op, arg, _ in pickletools.genops(base64.b64decode(serialized))]


def _global_ref(serialized: str) -> tuple[str, str] | None:
    """``(module, name)`` when the pickle is nothing but a reference to a class, else None."""
    ops = _opcodes(serialized)
    names = [op for op, _ in ops if op not in ("PROTO", "FRAME", "MEMOIZE", "STOP")]
    strings = [arg for op, arg in ops if op in ("SHORT_BINUNICODE", "BINUNICODE")]
    if names == ["SHORT_BINUNICODE", "SHORT_BINUNICODE", "STACK_GLOBAL"] or names == ["BINUNICODE", "BINUNICODE", "STACK_GLOBAL"]:
        return strings[0], strings[1]
    return None


def _legacy_train_freq(serialized: str) -> Any:
    """``TrainFreq(n, unit)`` read from its pickle: one integer and the unit's value, nothing else."""
    ops = _opcodes(serialized)
    allowed = {"PROTO", "FRAME", "MEMOIZE", "STOP", "SHORT_BINUNICODE", "BINUNICODE", "STACK_GLOBAL", "BININT1", "BININT2",
               "BININT", "BINGET", "GET", "TUPLE1", "TUPLE2", "REDUCE", "NEWOBJ", "EMPTY_TUPLE", "BINPUT"}
    if not {op for op, _ in ops} <= allowed:
        return _REFUSED
    strings = [arg for op, arg in ops if op in ("SHORT_BINUNICODE", "BINUNICODE")]
    ints = [arg for op, arg in ops if op.startswith("BININT") and op not in ("BINGET",)]
    globals_ok = {"stable_baselines3.common.type_aliases", "TrainFreq", "TrainFrequencyUnit"}
    units = [s for s in strings if s in ("step", "episode")]
    if len(ints) != 1 or len(units) != 1 or not set(strings) - set(units) <= globals_ok:
        return _REFUSED
    return TrainFreq(int(ints[0]), TrainFrequencyUnit(units[0]))
