"""The S-GMM-Q-function: closed forms, gradients against finite differences, sparsity and pruning."""

import math

import geoopt
import pytest
import torch

from sgmmq.mixture import GMMQFunction, MixtureValue, action_codes, component_size
from sgmmq.sparsity import Pruner, hadamard_penalty, slice_optimizer_state


def naive_q(q: GMMQFunction, z: torch.Tensor) -> torch.Tensor:
    """The textbook formula, one component at a time."""
    total = q.offset.expand(z.shape[0]).clone() if q.offset is not None else torch.zeros(z.shape[0], dtype=z.dtype)
    for k in range(q.n_components):
        diff = z - q.means[k]
        bump = torch.exp(-0.5 * ((diff @ q.precisions[k]) * diff).sum(-1))
        if q.normalized:
            bump = bump * torch.det(q.precisions[k]).sqrt() / (2 * math.pi) ** (q.dim / 2)
        total = total + q.xi[k] * bump
    return total


def randomized(q: GMMQFunction, seed: int = 0) -> GMMQFunction:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        q.euclidean[:, :2] = torch.randn(q.n_components, 2, generator=g, dtype=q.euclidean.dtype)
        a = torch.randn(q.n_components, q.dim, q.dim, generator=g, dtype=q.euclidean.dtype)
        q.precisions.copy_(a @ a.transpose(-1, -2) + torch.eye(q.dim, dtype=a.dtype))
        if q.offset is not None:
            q.offset.fill_(0.7)
    return q


@pytest.mark.parametrize("normalized", [False, True])
@pytest.mark.parametrize("encoding", ["index", "onehot"])
def test_forward_matches_the_formula(normalized, encoding):
    q = randomized(GMMQFunction(3, 4, n_components=6, action_encoding=encoding, normalized=normalized).double())
    states = torch.rand(10, 3, dtype=torch.float64) * 2 - 1
    actions = torch.randint(0, 4, (10,))
    z = q.encode(states, actions)
    torch.testing.assert_close(q.q_z(z), naive_q(q, z))
    torch.testing.assert_close(q.q_sa(states, actions), naive_q(q, z))
    # all actions at once equals one action at a time
    all_q = q(states)
    assert all_q.shape == (10, 4)
    for a in range(4):
        torch.testing.assert_close(all_q[:, a], q.q_sa(states, torch.full((10,), a)))


def test_normalized_bump_integrates_to_its_weight():
    q = randomized(GMMQFunction(1, 1, n_components=1, normalized=True, offset=False).double())
    # D = 2 (state, constant action code): integrate over a grid covering the bump
    grid = torch.linspace(-12, 12, 801, dtype=torch.float64)
    xx, yy = torch.meshgrid(grid, grid, indexing="ij")
    z = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1) + q.means[0]
    integral = q.q_z(z).sum() * (grid[1] - grid[0]) ** 2
    torch.testing.assert_close(integral, q.xi[0], rtol=1e-4, atol=1e-6)


def test_action_codes():
    torch.testing.assert_close(action_codes(3, "index"), torch.tensor([[-1.0], [0.0], [1.0]]))
    torch.testing.assert_close(action_codes(3, "onehot"), torch.eye(3))
    with pytest.raises(ValueError, match="action_encoding"):
        action_codes(3, "binary")


@pytest.mark.parametrize("normalized", [False, True])
def test_gradients_match_finite_differences(normalized):
    """d Q / d (z, u, v, means, offset, precisions) of the fused backward, against central differences."""
    g = torch.Generator().manual_seed(0)
    q = randomized(GMMQFunction(3, 2, n_components=4, normalized=normalized).double())
    z = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    euclidean = q.euclidean.detach().clone().requires_grad_()
    offset = q.offset.detach().clone().requires_grad_()
    precisions = q.precisions.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda *args: MixtureValue.apply(*args, normalized), (z, euclidean, offset, precisions)
    )


def test_gradient_with_respect_to_each_parameter_by_hand():
    """Spot-check one coordinate of u, v, a mean and a precision against a finite difference of the loss."""
    q = randomized(GMMQFunction(2, 3, n_components=5).double(), seed=3)
    states, actions = torch.rand(7, 2, dtype=torch.float64), torch.randint(0, 3, (7,))
    target = torch.randn(7, dtype=torch.float64)

    def loss() -> torch.Tensor:
        return (q.q_sa(states, actions) - target).square().mean()

    loss().backward()
    eps = 1e-6
    for name, param, index in [
        ("u", q.euclidean, (2, 0)),
        ("v", q.euclidean, (4, 1)),
        ("mean", q.euclidean, (1, 3)),
        ("offset", q.offset, (0,)),
        ("precision", q.precisions, (3, 0, 2)),
    ]:
        with torch.no_grad():
            param[index] += eps
            up = loss().item()
            param[index] -= 2 * eps
            down = loss().item()
            param[index] += eps
        assert param.grad[index].item() == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-8), name


def test_hadamard_penalty_is_l1_at_balanced_factors():
    """min over u*v = xi of (u^2 + v^2)/2 is |xi|, reached at |u| = |v|."""
    xi = torch.tensor([0.5, -2.0, 0.0, 3.0])
    u = xi.abs().sqrt() * torch.sign(xi)
    v = xi.abs().sqrt()
    assert hadamard_penalty(u, v, 2.0).item() == pytest.approx(2.0 * xi.abs().sum().item())
    assert hadamard_penalty(2 * u, v / 2, 2.0).item() > hadamard_penalty(u, v, 2.0).item()


def test_parameter_count():
    q = GMMQFunction(4, 2, n_components=20)  # CartPole with a scalar action code: D = 5
    assert component_size(5) == 21
    assert q.num_parameters() == 20 * 21 + 1
    assert q.num_training_parameters() == 20 * 22 + 1
    assert GMMQFunction(4, 2, n_components=20, offset=False, action_encoding="onehot").num_parameters() == 20 * 28


def test_keep_components_removes_them_and_their_optimizer_state():
    q = randomized(GMMQFunction(2, 2, n_components=6).double())
    optimizer = geoopt.optim.RiemannianAdam(q.parameters(), lr=1e-2)
    states = torch.rand(5, 2, dtype=torch.float64)
    q(states).sum().backward()
    optimizer.step()
    keep = torch.tensor([True, False, True, True, False, True])
    kept_means, kept_precisions = q.means.detach()[keep].clone(), q.precisions.detach()[keep].clone()
    slice_optimizer_state(optimizer, q.component_parameters(), keep)
    q.keep_components(keep)
    assert q.n_components == 4
    torch.testing.assert_close(q.means, kept_means)
    torch.testing.assert_close(q.precisions, kept_precisions)
    assert isinstance(q.precisions, geoopt.ManifoldParameter)
    assert optimizer.state[q.euclidean]["exp_avg"].shape == q.euclidean.shape
    optimizer.zero_grad()
    q(states).sum().backward()
    optimizer.step()  # the optimizer keeps working on the smaller pool
    assert q.num_parameters() == 4 * component_size(3) + 1


def test_load_state_dict_takes_the_saved_pool_size():
    big, small = GMMQFunction(2, 2, n_components=8), GMMQFunction(2, 2, n_components=3)
    big.load_state_dict(small.state_dict())
    assert big.n_components == 3
    states = torch.rand(4, 2)
    torch.testing.assert_close(big(states), small(states))


def test_pruner_waits_for_patience_and_keeps_the_largest():
    pruner = Pruner(threshold=0.1, patience=2)
    xi = torch.tensor([1.0, 0.05, 0.0, 2.0])
    assert pruner.check(xi) is None  # first strike only
    keep = pruner.check(xi)
    assert keep.tolist() == [True, False, False, True]
    assert Pruner(threshold=10.0, patience=1, min_components=1).check(xi).tolist() == [False, False, False, True]


def test_sparsity_on_a_toy_regression_leaves_few_components_and_pruning_keeps_predictions():
    """Three true bumps on [-1, 1], a pool of 30, geoopt's Riemannian SGD with the Hadamard penalty.

    Plain gradient steps on ``xi = u * v`` are rich-get-richer (the step on ``u_k`` scales with
    ``v_k``), so the components that explain the data grow and the penalty drives the others to
    exact zeros. (Riemannian Adam normalizes each coordinate's step, which cancels that dynamic:
    with it about half of this pool stays on, the L1 penalty being indifferent to how overlapping
    components share a bump.)
    """
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 100).unsqueeze(1)
    centers, widths, heights = torch.tensor([-0.6, 0.0, 0.5]), torch.tensor([0.15, 0.2, 0.1]), torch.tensor([2.0, -1.5, 1.0])
    y = (heights * torch.exp(-0.5 * ((x - centers) / widths) ** 2)).sum(1)
    actions = torch.zeros(100, dtype=torch.long)
    q = GMMQFunction(1, 1, n_components=30, init_std=0.3, std_bounds=(0.02, 2.0), offset=False)
    optimizer = geoopt.optim.RiemannianSGD(q.parameters(), lr=0.2)
    for _ in range(3000):
        loss = (q.q_sa(x, actions) - y).square().mean() + hadamard_penalty(q.u, q.v, 1e-2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    error = (q.q_sa(x, actions) - y).abs().max().item()
    assert error < 0.1, f"the pool does not fit the three bumps: max error {error}"
    xi = q.xi.detach().abs()
    live = int((xi > 1e-2).sum())
    assert 3 <= live <= 10, f"{live} of 30 components live: {sorted(xi.tolist(), reverse=True)}"
    assert int((xi < 1e-6).sum()) >= 12, "the penalty should leave (numerically) exact zeros behind"
    before = q.q_sa(x, actions).detach()
    q.keep_components(xi > 1e-2)
    assert q.n_components == live
    torch.testing.assert_close(q.q_sa(x, actions).detach(), before, atol=0.02, rtol=0)


def test_diagonal_precision_counts_and_gradient_is_the_full_gradients_diagonal():
    q = GMMQFunction(4, 2, n_components=20, precision="diagonal")  # D = 5: 1 + 5 + 5 per component
    assert component_size(5, "diagonal") == 11
    assert q.num_parameters() == 20 * 11 + 1
    full = randomized(GMMQFunction(4, 2, n_components=6), seed=3)
    diagonal = GMMQFunction(4, 2, n_components=6, precision="diagonal")
    diagonal.load_state_dict(full.state_dict())
    z = torch.randn(40, 5) * 0.7
    for module in (full, diagonal):
        module.q_z(z).square().sum().backward()
    torch.testing.assert_close(diagonal.euclidean.grad, full.euclidean.grad)
    torch.testing.assert_close(diagonal.precisions.grad, torch.diag_embed(torch.diagonal(full.precisions.grad, dim1=1, dim2=2)))
    with pytest.raises(ValueError, match="precision must be one of"):
        GMMQFunction(4, 2, precision="lowrank")


@pytest.mark.parametrize("optimizer", ["radam", "rsgd", "geoopt_radam"])
def test_diagonal_precisions_stay_exactly_diagonal_under_the_riemannian_optimizers(optimizer):
    """The diagonal submanifold is closed under the affine-invariant gradient, retraction and clipping."""
    from sgmmq.policies import OPTIMIZERS

    torch.manual_seed(0)
    q = GMMQFunction(3, 3, n_components=8, precision="diagonal", std_bounds=(0.1, 1.0))
    opt = OPTIMIZERS[optimizer](q.parameters(), lr=0.05)
    z, y = torch.rand(64, 4) * 2 - 1, torch.randn(64)
    for _ in range(200):  # large steps: eigenvalues reach the bounds, so the clipping runs too
        opt.zero_grad()
        ((q.q_z(z) - y).square().mean() + hadamard_penalty(q.u, q.v, 1e-3)).backward()
        opt.step()
    p = q.precisions.detach()
    off_diagonal = p - torch.diag_embed(torch.diagonal(p, dim1=1, dim2=2))
    assert torch.equal(off_diagonal, torch.zeros_like(p))
    diag = torch.diagonal(p, dim1=1, dim2=2)
    assert (diag >= q.manifold.eig_min * 0.999).all() and (diag <= q.manifold.eig_max * 1.001).all()
    assert not torch.allclose(diag, torch.full_like(diag, 4.0)), "the precisions should have moved"
