"""The lean acting path and the timing script: the same answers as before, faster."""


import numpy as np
import pytest
import torch
from stable_baselines3.common.logger import configure
from stable_baselines3.common.policies import BasePolicy

from sgmmq import SGMMQ
from sgmmq.mixture import GMMQFunction, MixtureValue


def quiet_model(**kwargs) -> SGMMQ:
    model = SGMMQ("GMMPolicy", "CartPole-v1", **{**dict(learning_starts=100, seed=0), **kwargs})
    model.set_logger(configure(None, []))
    return model


@pytest.mark.parametrize("normalized", [False, True])
def test_q_without_autograd_is_the_same_arithmetic(normalized):
    torch.manual_seed(0)
    q = GMMQFunction(4, 3, n_components=8, normalized=normalized)
    z = torch.rand(30, q.dim) * 2 - 1
    with torch.no_grad():
        lean = q.q_z(z)
    assert lean.grad_fn is None
    reference = MixtureValue.apply(z, q.euclidean, q.offset, q.precisions, normalized)
    assert reference.grad_fn is not None
    assert torch.equal(lean, reference.detach())


@pytest.mark.parametrize("loss", ["squared", "huber"])
@pytest.mark.parametrize("variant", [{}, {"normalized": True}, {"precision": "diagonal"}, {"offset": False}, {"stacked": 3}])
def test_closed_form_gradients_equal_autograds(loss, variant):
    """The update's gradient without an autograd graph (what SGMMQ and the batched trainer step on) against
    autograd through MixtureValue, the TD loss and the Hadamard penalty, in float64: every parameter, every option."""
    from sgmmq.agent import closed_form_gradients, temporal_difference_loss
    from sgmmq.sparsity import hadamard_penalty

    variant = dict(variant)
    stacked = variant.pop("stacked", None)
    torch.manual_seed(1)
    q = GMMQFunction(4, 3, n_components=6, **variant).double()
    lead = () if stacked is None else (stacked,)
    with torch.no_grad():
        q.euclidean.data = (q.euclidean.data + 0.3 * torch.randn_like(q.euclidean)).expand(*lead, -1, -1).clone()
        q.precisions.data = q.precisions.data.expand(*lead, -1, -1, -1).clone() * torch.rand(*lead, 6, 1, 1, dtype=torch.float64).add(0.5)
        if q.offset is not None:
            q.offset.data = torch.randn(*lead, 1, dtype=torch.float64)
    z = torch.rand(*lead, 20, q.dim, dtype=torch.float64) * 2 - 1
    target = 3 * torch.randn(*lead, 20, dtype=torch.float64)  # TD errors on both sides of Huber's kink
    td = temporal_difference_loss(q.q_z(z) - target, loss)
    (td.sum() + hadamard_penalty(q.u, q.v, 0.01)).backward()
    reference = {name: p.grad.clone() for name, p in q.named_parameters()}
    for p in q.parameters():
        p.grad = None
    got = closed_form_gradients(q, z, target, loss, 0.01)
    torch.testing.assert_close(got, td.detach(), rtol=1e-12, atol=1e-12)
    assert set(reference) == {name for name, p in q.named_parameters() if p.grad is not None}
    for name, p in q.named_parameters():
        torch.testing.assert_close(p.grad, reference[name], rtol=1e-10, atol=1e-12, msg=name)


def test_lean_predict_answers_as_sb3s_predict():
    from stable_baselines3.common.policies import BasePolicy

    model = quiet_model()
    model.learn(300)
    policy = model.policy
    rng = np.random.default_rng(0)
    for observation in (rng.uniform(-3, 3, (200, 4)).astype(np.float32), rng.uniform(-3, 3, 4).astype(np.float32),
                        rng.uniform(-3, 3, (5, 4)), rng.uniform(-3, 3, (1, 4)).astype(np.float32)):
        lean, _ = policy.predict(observation, deterministic=True)
        reference, _ = BasePolicy.predict(policy, observation, deterministic=True)
        assert lean.shape == reference.shape and lean.dtype == reference.dtype
        np.testing.assert_array_equal(lean, reference)
    with pytest.raises(ValueError, match="NaN"):
        policy.predict(np.array([[0, np.nan, 0, 0]], dtype=np.float32))
    with pytest.raises(ValueError):
        policy.predict(np.zeros((2, 5), dtype=np.float32))


def test_speed_readme_shows_before_and_after(tmp_path):
    from sgmmq import speed

    def record(us_dqn, us_sgmmq, optimizer_label):
        return {"command": "python -m sgmmq.speed", "note": "busy", "machine": "m", "versions": "v",
                "results": [{"env_id": "CartPole-v1", "steps": 1024, "chunk": 512, "ratios": [us_sgmmq / us_dqn] * 2,
                             "median_us_per_step": {"dqn_zoo": us_dqn, "sgmmq": us_sgmmq}, "median_ratio": us_sgmmq / us_dqn}],
                "profile": {"env_id": "CartPole-v1", "steps": 100, "us_per_step_unprofiled": us_sgmmq,
                            "parts_us_per_step": {speed.PARTS[0][0]: us_sgmmq * 1.5, optimizer_label: 400.0}}}

    label = {part[0].strip(): part[0] for part in speed.PARTS}
    speed.write_readme(tmp_path, record(1000, 800, label["optimizer.step (sgmmq.optim)"]),
                       before=record(1000, 1600, label["optimizer.step (geoopt)"]))
    text = (tmp_path / "README.md").read_text()
    assert "| CartPole-v1 | before | 1,024 (2 x 512) | 1000 / 1600: **1.60** (1.60-1.60) | - |" in text
    assert "| CartPole-v1 | after | 1,024 (2 x 512) | 1000 / 800: **0.80** (0.80-0.80) | - |" in text
    assert "optimizer.step (geoopt) | 400 | - |" in text and "optimizer.step (sgmmq.optim) | - | 400 |" in text


@pytest.mark.parametrize("argv, message", [(["--steps", "0"], "must be >= 1"), (["--before", "missing.json"], "no file at")])
def test_speed_refuses_bad_arguments(argv, message, capsys):
    from sgmmq import speed

    with pytest.raises(SystemExit):
        speed.main(argv)
    assert message in capsys.readouterr().err
