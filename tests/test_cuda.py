"""S-GMM-QF on a GPU (``device="cuda"``, as in SB3): the same math, training with pruning, and
models that move between devices. Skipped where torch sees no GPU (CI); run on a GPU machine with
``pytest tests/test_cuda.py``."""

import numpy as np
import pytest
import torch
from stable_baselines3.common.logger import configure

from sgmmq import SGMMQ
from sgmmq.geometry import BoundedSPD
from sgmmq.mixture import GMMQFunction, MixtureValue

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_fused_mixture_gradients_on_the_gpu_match_finite_differences_and_the_cpu():
    g = torch.Generator().manual_seed(0)
    q = GMMQFunction(3, 2, n_components=4).double()
    with torch.no_grad():
        a = torch.randn(4, q.dim, q.dim, generator=g, dtype=torch.float64)
        q.precisions.copy_(a @ a.transpose(-1, -2) + torch.eye(q.dim, dtype=torch.float64))
        q.euclidean[:, :2] = torch.randn(4, 2, generator=g, dtype=torch.float64)
    inputs_cpu = [torch.randn(6, q.dim, generator=g, dtype=torch.float64), q.euclidean.detach().clone(),
                  torch.full((1,), 0.3, dtype=torch.float64), q.precisions.detach().clone()]
    inputs = [x.detach().cuda().requires_grad_() for x in inputs_cpu]
    assert torch.autograd.gradcheck(lambda *args: MixtureValue.apply(*args, False), tuple(inputs))
    on_gpu = MixtureValue.apply(*inputs, False)
    on_gpu.sum().backward()
    cpu = [x.detach().clone().requires_grad_() for x in inputs_cpu]
    MixtureValue.apply(*cpu, False).sum().backward()
    torch.testing.assert_close(on_gpu.cpu(), MixtureValue.apply(*inputs_cpu, False))
    for x_gpu, x_cpu in zip(inputs, cpu):
        torch.testing.assert_close(x_gpu.grad.cpu(), x_cpu.grad)


def test_retractions_on_the_gpu_stay_spd_and_inside_bounds():
    g = torch.Generator(device="cuda").manual_seed(0)
    manifold = BoundedSPD(eig_min=0.04, eig_max=2500.0)
    x = torch.eye(5, dtype=torch.float64, device="cuda").repeat(64, 1, 1)
    for step in range(300):
        scale = 10.0 ** (6 * torch.rand(1, generator=g, device="cuda").item() - 3)
        u = scale * torch.randn(64, 5, 5, generator=g, dtype=torch.float64, device="cuda")
        x = manifold.retr(x, (u + u.transpose(-1, -2)) / 2)
        eig = torch.linalg.eigvalsh(x)
        assert x.is_cuda and eig.min() >= 0.04 * (1 - 1e-9) and eig.max() <= 2500.0 * (1 + 1e-9), f"step {step}"


def test_training_with_pruning_on_the_gpu_and_loading_on_the_cpu(tmp_path):
    model = SGMMQ("GMMPolicy", "CartPole-v1", device="cuda", learning_starts=100, prune_interval=200,
                  prune_patience=1, prune_threshold=0.2, seed=0)
    model.set_logger(configure(None, []))
    model.learn(3000)
    assert model.live_components < 32, "nothing was pruned: the GPU pruning path was not exercised"
    assert all(p.is_cuda for p in model.policy.parameters())
    assert all(state["exp_avg"].is_cuda for state in model.policy.optimizer.state.values() if "exp_avg" in state)
    observations = np.random.default_rng(0).uniform(-1, 1, size=(200, 4)).astype(np.float32)
    actions, _ = model.predict(observations, deterministic=True)
    model.save(tmp_path / "model")
    on_cpu = SGMMQ.load(tmp_path / "model", device="cpu")
    assert all(not p.is_cuda for p in on_cpu.policy.parameters())
    np.testing.assert_array_equal(on_cpu.predict(observations, deterministic=True)[0], actions)
    with torch.no_grad():
        torch.testing.assert_close(on_cpu.policy(torch.as_tensor(observations)),
                                   model.policy(torch.as_tensor(observations, device="cuda")).cpu())
