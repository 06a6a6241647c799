"""The fused Riemannian optimizers take the same steps as geoopt's, through pruning, births and save/load."""

import copy
import io

import geoopt
import pytest
import torch

from sgmmq.mixture import GMMQFunction
from sgmmq.optim import FusedRiemannianAdam, FusedRiemannianSGD
from sgmmq.sparsity import hadamard_penalty, slice_optimizer_state

PAIRS = {
    "adam": (geoopt.optim.RiemannianAdam, FusedRiemannianAdam, dict(lr=1e-2)),
    "adam_wd_amsgrad": (geoopt.optim.RiemannianAdam, FusedRiemannianAdam, dict(lr=1e-2, weight_decay=1e-2, amsgrad=True, stabilize=3)),
    "sgd": (geoopt.optim.RiemannianSGD, FusedRiemannianSGD, dict(lr=1e-2)),
    "sgd_momentum": (geoopt.optim.RiemannianSGD, FusedRiemannianSGD, dict(lr=1e-2, momentum=0.9, weight_decay=1e-3, stabilize=2)),
    "sgd_nesterov": (geoopt.optim.RiemannianSGD, FusedRiemannianSGD, dict(lr=1e-2, momentum=0.9, nesterov=True)),
}


def random_model(seed: int, n_components: int = 12) -> GMMQFunction:
    """A Q-function with random weights, means and SPD precisions (inside the eigenvalue bounds)."""
    torch.manual_seed(seed)
    q = GMMQFunction(4, 2, n_components=n_components)
    with torch.no_grad():
        q.euclidean[:, :2] = torch.randn(n_components, 2)
        a = torch.randn(n_components, q.dim, q.dim)
        q.precisions.copy_(a @ a.transpose(-1, -2) / q.dim + torch.eye(q.dim))
        q.offset.fill_(0.3)
    return q


def take_steps(q: GMMQFunction, optimizer: torch.optim.Optimizer, n: int, seed: int) -> None:
    """``n`` steps on a TD-like loss over random batches (the same batches for every caller with this seed)."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        states = torch.rand(32, 4, generator=g) * 2 - 1
        actions = torch.randint(0, 2, (32,), generator=g)
        targets = torch.randn(32, generator=g)
        loss = (q.q_sa(states, actions) - targets).square().mean() + hadamard_penalty(q.u, q.v, 1e-3)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def assert_same(reference: GMMQFunction, fused: GMMQFunction, ref_opt, fused_opt) -> None:
    for (name, a), b in zip(reference.named_parameters(), fused.parameters()):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6, msg=lambda m: f"{name}: {m}")
        state_a, state_b = ref_opt.state[a], fused_opt.state[b]
        for key, value in state_a.items():
            if key == "step":
                assert torch.all(state_b["step"] == value), f"{name} step"
            else:
                torch.testing.assert_close(state_b[key], value, rtol=0, atol=1e-6, msg=lambda m: f"{name} {key}: {m}")


@pytest.mark.parametrize("variant", list(PAIRS))
def test_fused_steps_equal_geoopt_steps(variant):
    reference_class, fused_class, kwargs = PAIRS[variant]
    reference = random_model(0)
    fused = copy.deepcopy(reference)
    ref_opt, fused_opt = reference_class(reference.parameters(), **kwargs), fused_class(fused.parameters(), **kwargs)
    for chunk in range(3):
        take_steps(reference, ref_opt, 5, seed=chunk)
        take_steps(fused, fused_opt, 5, seed=chunk)
        assert_same(reference, fused, ref_opt, fused_opt)
    assert not torch.equal(reference.euclidean, random_model(0).euclidean), "nothing moved"


@pytest.mark.parametrize("variant", ["adam", "sgd_momentum"])
def test_fused_steps_equal_geoopt_after_pruning_and_a_learning_rate_change(variant):
    reference_class, fused_class, kwargs = PAIRS[variant]
    reference = random_model(1)
    fused = copy.deepcopy(reference)
    ref_opt, fused_opt = reference_class(reference.parameters(), **kwargs), fused_class(fused.parameters(), **kwargs)
    take_steps(reference, ref_opt, 6, seed=0)
    take_steps(fused, fused_opt, 6, seed=0)
    keep = torch.tensor([True, False, True, True, False, False, True, True, True, False, True, True])
    for q, opt in ((reference, ref_opt), (fused, fused_opt)):
        slice_optimizer_state(opt, q.component_parameters(), keep)
        q.keep_components(keep)
        for group in opt.param_groups:  # what SB3's _update_learning_rate does
            group["lr"] = 5e-3
    assert all(value.shape[0] == int(keep.sum()) for value in fused_opt.state[fused.euclidean].values())
    take_steps(reference, ref_opt, 6, seed=1)
    take_steps(fused, fused_opt, 6, seed=1)
    assert_same(reference, fused, ref_opt, fused_opt)


@pytest.mark.parametrize("variant", ["adam", "sgd_momentum"])
def test_saved_and_loaded_state_continues_the_same_steps(variant):
    _, fused_class, kwargs = PAIRS[variant]
    whole = random_model(2)
    resumed = copy.deepcopy(whole)
    whole_opt = fused_class(whole.parameters(), **kwargs)
    take_steps(whole, whole_opt, 4, seed=0)
    buffer = io.BytesIO()
    torch.save({"model": whole.state_dict(), "optimizer": whole_opt.state_dict()}, buffer)
    take_steps(whole, whole_opt, 4, seed=1)

    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    resumed.load_state_dict(saved["model"])
    resumed_opt = fused_class(resumed.parameters(), **kwargs)
    resumed_opt.load_state_dict(saved["optimizer"])
    take_steps(resumed, resumed_opt, 4, seed=1)
    for a, b in zip(whole.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


def test_a_newborn_component_starts_adam_afresh():
    """Rows appended with zero moments and step 0 (component births) get their own bias correction."""
    grown = random_model(3, n_components=3)
    opt = FusedRiemannianAdam(grown.parameters(), lr=1e-2)
    take_steps(grown, opt, 5, seed=0)
    newborn = random_model(4, n_components=1)
    with torch.no_grad():
        for param, row in zip(grown.component_parameters(), newborn.component_parameters()):
            state = opt.state[param]
            param.data = torch.cat([param.data, row.data])
            for key, value in state.items():
                state[key] = torch.cat([value, torch.zeros_like(value[:1])])
    before = [p.detach().clone() for p in grown.component_parameters()]
    take_steps(grown, opt, 1, seed=1)
    assert opt.state[grown.euclidean]["step"].tolist() == [6.0, 6.0, 6.0, 1.0]
    # a first Adam step moves every coordinate with a nonzero gradient by about lr (1e-2)
    moved = (grown.euclidean[3] - before[0][3]).abs()
    grad = grown.euclidean.grad[3]
    assert torch.all(moved[grad != 0] > 0.9e-2) and torch.all(moved[grad != 0] < 1.1e-2)


def test_step_hooks_still_run_and_a_copied_optimizer_still_steps():
    q = random_model(7)
    opt = FusedRiemannianAdam(q.parameters(), lr=1e-2)
    calls = []
    handle = opt.register_step_post_hook(lambda optimizer, args, kwargs: calls.append(optimizer))
    take_steps(q, opt, 2, seed=0)
    assert calls == [opt, opt]
    handle.remove()
    take_steps(q, opt, 1, seed=0)
    assert len(calls) == 2
    twin = copy.deepcopy(q)
    twin_opt = FusedRiemannianAdam(twin.parameters(), lr=1e-2)
    twin_opt.load_state_dict(copy.deepcopy(opt).state_dict())
    take_steps(q, opt, 2, seed=1)
    take_steps(twin, twin_opt, 2, seed=1)
    assert torch.equal(q.euclidean, twin.euclidean) and torch.equal(q.precisions, twin.precisions)


@pytest.mark.parametrize("fused_class, kwargs", [(FusedRiemannianAdam, dict(lr=1e-2)), (FusedRiemannianSGD, dict(lr=1e-2, momentum=0.9))])
def test_agents_stacked_on_a_seed_axis_take_the_steps_of_separate_optimizers(fused_class, kwargs):
    """The design for many seeds in one process: (S, K, ...) parameters, one step for all S."""
    models = [random_model(10 + s) for s in range(3)]
    stacked = []
    for params in zip(*(m.parameters() for m in models)):  # euclidean, offset, precisions
        data = torch.stack([p.detach() for p in params])
        manifold = getattr(params[0], "manifold", None)
        stacked.append(geoopt.ManifoldParameter(data, manifold=manifold) if manifold else torch.nn.Parameter(data))
    for param in stacked:
        param.component_dims = 2
    stacked_opt = fused_class(stacked, **kwargs)
    separate_opts = [fused_class(m.parameters(), **kwargs) for m in models]
    for chunk in range(3):
        for seed, (m, opt) in enumerate(zip(models, separate_opts)):
            take_steps(m, opt, 1, seed=100 * chunk + seed)
        # the same gradients, computed at the stacked point (equal to each model's before its step)
        copies = [copy.deepcopy(m) for m in models]
        for s, c in enumerate(copies):
            with torch.no_grad():
                for mine, param in zip(c.parameters(), stacked):
                    mine.copy_(param[s])
            c.zero_grad()
            g = torch.Generator().manual_seed(100 * chunk + s)
            states, actions, targets = torch.rand(32, 4, generator=g) * 2 - 1, torch.randint(0, 2, (32,), generator=g), torch.randn(32, generator=g)
            ((c.q_sa(states, actions) - targets).square().mean() + hadamard_penalty(c.u, c.v, 1e-3)).backward()
        for i, param in enumerate(stacked):
            param.grad = torch.stack([list(c.parameters())[i].grad for c in copies])
        stacked_opt.step()
        for s, m in enumerate(models):
            for mine, param in zip(m.parameters(), stacked):
                assert torch.equal(mine, param[s])
    if fused_class is FusedRiemannianAdam:
        assert stacked_opt.state[stacked[0]]["step"].shape == (3, 12)


def test_state_of_another_optimizer_is_refused():
    q = random_model(5)
    reference = geoopt.optim.RiemannianAdam(q.parameters(), lr=1e-2)
    take_steps(q, reference, 1, seed=0)
    fused = FusedRiemannianAdam(q.parameters(), lr=1e-2)
    fused.load_state_dict(reference.state_dict())
    with pytest.raises(ValueError, match="one step count per component"):
        take_steps(q, fused, 1, seed=0)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: FusedRiemannianAdam(p, lr=-1.0), "learning rate"),
        (lambda p: FusedRiemannianAdam(p, betas=(1.0, 0.999)), "betas"),
        (lambda p: FusedRiemannianSGD(p, lr=1e-2, nesterov=True), "Nesterov"),
    ],
)
def test_bad_arguments_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make(random_model(6).parameters())


# --- inside the agent -----------------------------------------------------------------------------


def quiet_model(**kwargs):
    from stable_baselines3.common.logger import configure

    from sgmmq import SGMMQ

    defaults = dict(learning_starts=100, prune_interval=200, prune_patience=1, seed=0)
    model = SGMMQ("GMMPolicy", "CartPole-v1", **{**defaults, **kwargs})
    model.set_logger(configure(None, []))
    return model


@pytest.mark.parametrize("fused, geoopt_name, extra", [("radam", "geoopt_radam", {}), ("rsgd", "geoopt_rsgd", dict(learning_rate=1e-3))])
def test_agent_trains_to_the_same_bits_with_the_fused_and_geoopt_optimizers(fused, geoopt_name, extra):
    """Same seed, same transitions: the default optimizer changes no result, only the time (pruning included)."""
    torch.set_num_threads(1)
    models = []
    for name in (fused, geoopt_name):  # built and trained one after the other: the seed sets global generators
        models.append(quiet_model(policy_kwargs=dict(optimizer_class=name), **extra))
        models[-1].learn(700)
    fused_model, geoopt_model = models
    assert isinstance(fused_model.policy.optimizer, FusedRiemannianAdam if fused == "radam" else FusedRiemannianSGD)
    assert fused_model.prune_events == geoopt_model.prune_events and fused_model.prune_events, "no pruning happened"
    for key, value in geoopt_model.policy.state_dict().items():
        assert torch.equal(fused_model.policy.state_dict()[key], value), key


def test_agent_with_the_fused_optimizer_saves_loads_and_resumes_its_state(tmp_path):
    from sgmmq import SGMMQ

    model = quiet_model()
    model.learn(500)  # pruned at 300 and 500: moments and step counts have the pruned size
    model.save(tmp_path / "model")
    loaded = SGMMQ.load(tmp_path / "model", env=model.get_env())
    assert isinstance(loaded.policy.optimizer, FusedRiemannianAdam)
    saved_states = list(model.policy.optimizer.state.values())
    for saved, state in zip(saved_states, loaded.policy.optimizer.state.values()):
        assert saved.keys() == state.keys()
        for key in saved:
            assert torch.equal(saved[key], state[key]) and saved[key].dtype == state[key].dtype, key
    loaded.set_logger(model.logger)
    loaded.learn(200, reset_num_timesteps=False)


def test_models_saved_with_geoopts_optimizer_still_load_and_train(tmp_path):
    from sgmmq import SGMMQ

    model = quiet_model(policy_kwargs=dict(optimizer_class="geoopt_radam"))
    model.learn(300)
    model.save(tmp_path / "old")
    loaded = SGMMQ.load(tmp_path / "old", env=model.get_env())
    assert type(loaded.policy.optimizer) is geoopt.optim.RiemannianAdam
    loaded.set_logger(model.logger)
    loaded.learn(100, reset_num_timesteps=False)
