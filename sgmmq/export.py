"""Export a trained SGMMQ greedy policy to ONNX or to plain numpy arrays (``sgmmq export``).

    from sgmmq.export import export
    export("runs/cp/model.zip", "onnx", "cp.onnx")   # observation in; action and Q-values out
    export("runs/cp/model.zip", "npz", "cp.npz")     # run with sgmmq.numpy_policy (numpy only)

Both hold only the live components and the observation box; neither holds code to unpickle.
"""

from __future__ import annotations

import math
import pathlib
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

FORMATS = ("onnx", "npz")
ONNX_OPSET = 17


@torch.no_grad()
def greedy_arrays(policy: Any) -> dict[str, np.ndarray]:
    """The arrays that define a :class:`~sgmmq.policies.GMMPolicy`'s greedy policy (see sgmmq.numpy_policy)."""
    q_net = policy.q_net
    precisions = q_net.precisions.detach().double()
    weights = q_net.xi.detach().double()
    if q_net.normalized:  # fold (2 pi)^{-D/2} det(P_k)^{1/2} into the weights
        weights = weights * torch.exp(0.5 * torch.logdet(precisions) - 0.5 * q_net.dim * math.log(2 * math.pi))
    offset = q_net.offset.detach() if q_net.offset is not None else torch.zeros(1)
    low, high = (np.asarray(side, dtype=np.float32) for side in policy.obs_bounds)
    return {
        "weights": weights.float().cpu().numpy(),
        "means": q_net.means.detach().float().cpu().numpy(),
        "precisions": precisions.float().cpu().numpy(),
        "offset": offset.float().cpu().numpy().reshape(1),
        "obs_low": low,
        "obs_high": high,
        "action_codes": q_net.codes.float().cpu().numpy(),
    }


class GreedyModule(nn.Module):
    """The greedy policy as plain tensor ops (what the ONNX graph is traced from): obs -> (action, Q)."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        super().__init__()
        low, high = arrays["obs_low"], arrays["obs_high"]
        for name, value in {"center": (high + low) / 2, "half_width": (high - low) / 2, **arrays}.items():
            self.register_buffer(name, torch.as_tensor(np.asarray(value, dtype=np.float32)))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        states = ((obs - self.center) / self.half_width).clamp(-1.0, 1.0)
        batch, n_actions = states.shape[0], self.action_codes.shape[0]
        z = torch.cat([states.unsqueeze(1).expand(batch, n_actions, states.shape[1]),
                       self.action_codes.unsqueeze(0).expand(batch, n_actions, self.action_codes.shape[1])], dim=2)
        diff = z.unsqueeze(2) - self.means  # (B, A, K, D)
        quad = (torch.einsum("bakd,kde->bake", diff, self.precisions) * diff).sum(-1)
        q_values = torch.exp(-0.5 * quad) @ self.weights + self.offset
        return q_values.argmax(dim=1), q_values


def export_npz(policy: Any, out: str | pathlib.Path) -> pathlib.Path:
    out = pathlib.Path(out)
    np.savez(out, **greedy_arrays(policy))
    return out


def export_onnx(policy: Any, out: str | pathlib.Path) -> pathlib.Path:
    """ONNX graph with input ``observation`` (batch, obs_dim) float32 and outputs ``action`` (int64), ``q_values``."""
    out = pathlib.Path(out)
    module = GreedyModule(greedy_arrays(policy)).eval()
    example = torch.zeros(1, policy.observation_space.shape[0])
    with warnings.catch_warnings():  # the TorchScript exporter: no onnxscript dependency for a graph this small
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(module, (example,), str(out), input_names=["observation"], output_names=["action", "q_values"],
                          dynamic_axes={"observation": {0: "batch"}, "action": {0: "batch"}, "q_values": {0: "batch"}},
                          opset_version=ONNX_OPSET, dynamo=False)
    return out


def export(model: Any, fmt: str, out: str | pathlib.Path | None = None, trusted: bool = False) -> pathlib.Path:
    """Write ``model`` (an SGMMQ, its GMMPolicy, or a model file's path) as ``fmt`` to ``out``.

    ``out`` defaults to the model file with the format's suffix; an existing file is not overwritten.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    if isinstance(model, (str, pathlib.Path)):
        from sgmmq import SGMMQ

        out = out or pathlib.Path(model).with_suffix(f".{fmt}")
        model = SGMMQ.load(model, device="cpu", trusted=trusted)
    if out is None:
        raise ValueError("give an output path for a model that is not a file")
    out = pathlib.Path(out)
    if out.suffix != f".{fmt}":
        raise ValueError(f"the output of --format {fmt} must end in .{fmt}, got {out}")
    if out.exists():
        raise FileExistsError(f"{out} already exists; remove it or choose another --out")
    policy = getattr(model, "policy", model)
    if policy.q_net.continuous:  # the greedy action is an iterative argmax (GMMQFunction.greedy), not a table lookup
        raise ValueError("export covers discrete-action models; this model acts on a continuous (Box) action space")
    out.parent.mkdir(parents=True, exist_ok=True)
    return export_npz(policy, out) if fmt == "npz" else export_onnx(policy, out)
