"""The SPD geometry: Riemannian gradient, retraction, eigenvalue bounds."""

import geoopt
import pytest
import torch
from geoopt.linalg import sym

from sgmmq.geometry import BoundedSPD, clamp_eigenvalues, riemannian_gradient, second_order_retraction


def random_spd(k: int, d: int, generator: torch.Generator, scale: float = 1.0) -> torch.Tensor:
    a = torch.randn(k, d, d, generator=generator, dtype=torch.float64)
    return scale * (a @ a.transpose(-1, -2) / d + 0.1 * torch.eye(d, dtype=torch.float64))


def random_symmetric(k: int, d: int, generator: torch.Generator, scale: float = 1.0) -> torch.Tensor:
    a = scale * torch.randn(k, d, d, generator=generator, dtype=torch.float64)
    return (a + a.transpose(-1, -2)) / 2


def test_riemannian_gradient_is_x_sym_g_x():
    g = torch.Generator().manual_seed(0)
    x = random_spd(8, 5, g)
    egrad = torch.randn(8, 5, 5, generator=g, dtype=torch.float64)  # not symmetric on purpose
    expected = x @ ((egrad + egrad.transpose(-1, -2)) / 2) @ x
    torch.testing.assert_close(riemannian_gradient(x, egrad), expected)
    torch.testing.assert_close(BoundedSPD(1e-3, 1e3).egrad2rgrad(x, egrad), expected)
    # and it agrees with geoopt's own affine-invariant SPD manifold
    torch.testing.assert_close(geoopt.SymmetricPositiveDefinite().egrad2rgrad(x, egrad), expected)


def test_riemannian_gradient_is_steepest_ascent_in_the_affine_invariant_metric():
    """<rgrad, xi>_X = <egrad, xi>_F for every tangent xi: the defining property of the Riemannian gradient."""
    g = torch.Generator().manual_seed(1)
    x = random_spd(4, 3, g)
    egrad = random_symmetric(4, 3, g)
    tangent = random_symmetric(4, 3, g)
    manifold = BoundedSPD(1e-3, 1e3)
    lhs = manifold.inner(x, manifold.egrad2rgrad(x, egrad), tangent)
    rhs = (egrad * tangent).sum((-1, -2))
    torch.testing.assert_close(lhs, rhs)


def test_inner_matches_geoopt():
    g = torch.Generator().manual_seed(2)
    x, u, v = random_spd(6, 4, g), random_symmetric(6, 4, g), random_symmetric(6, 4, g)
    torch.testing.assert_close(BoundedSPD(1e-3, 1e3).inner(x, u, v), geoopt.SymmetricPositiveDefinite().inner(x, u, v))


def test_second_order_retraction_is_a_retraction():
    """R_X(0) = X and d/dt R_X(t U) at t = 0 is U."""
    g = torch.Generator().manual_seed(3)
    x, u = random_spd(5, 4, g), random_symmetric(5, 4, g)
    torch.testing.assert_close(second_order_retraction(x, torch.zeros_like(u)), x)
    t = 1e-6
    derivative = (second_order_retraction(x, t * u) - second_order_retraction(x, -t * u)) / (2 * t)
    torch.testing.assert_close(derivative, u, atol=1e-6, rtol=1e-5)


def test_thousands_of_random_retractions_stay_spd_and_inside_bounds():
    g = torch.Generator().manual_seed(4)
    manifold = BoundedSPD(eig_min=0.04, eig_max=2500.0)
    x = manifold.projx(random_spd(64, 5, g))
    for step in range(2000):
        scale = 10.0 ** torch.empty(1).uniform_(-3, 3, generator=g).item()  # tiny to huge steps
        x = manifold.retr(x, random_symmetric(64, 5, g, scale))
        eig = torch.linalg.eigvalsh(x)
        assert torch.allclose(x, x.transpose(-1, -2))
        assert eig.min() >= 0.04 * (1 - 1e-9), f"step {step}: eigenvalue {eig.min()} below the floor"
        assert eig.max() <= 2500.0 * (1 + 1e-9), f"step {step}: eigenvalue {eig.max()} above the ceiling"


def test_clamp_eigenvalues_clips_only_what_is_outside():
    eigvecs = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64))[0]
    x = eigvecs @ torch.diag(torch.tensor([1e-5, 0.5, 2.0, 1e5], dtype=torch.float64)) @ eigvecs.T
    clamped = clamp_eigenvalues(x, 0.1, 100.0)
    torch.testing.assert_close(torch.linalg.eigvalsh(clamped), torch.tensor([0.1, 0.5, 2.0, 100.0], dtype=torch.float64))
    inside = BoundedSPD(0.1, 100.0)
    y = eigvecs @ torch.diag(torch.tensor([0.2, 0.5, 2.0, 50.0], dtype=torch.float64)) @ eigvecs.T
    torch.testing.assert_close(inside.projx(y), y)


def test_bounds_are_validated():
    with pytest.raises(ValueError, match="eig_min"):
        BoundedSPD(eig_min=1.0, eig_max=0.5)
    with pytest.raises(ValueError, match="eig_min"):
        BoundedSPD(eig_min=0.0, eig_max=1.0)


def test_retraction_and_projection_give_the_bits_of_the_plain_composition():
    """One batched Cholesky check and no second ``sym`` change no result: the reference is the formula."""
    g = torch.Generator().manual_seed(5)
    manifold = BoundedSPD(eig_min=0.04, eig_max=2500.0)
    x = manifold.projx(random_spd(32, 5, g))
    for scale in (1e-3, 1.0, 1e3):  # inside the bounds, and (large steps) some outside
        u = random_symmetric(32, 5, g, scale)
        y = sym(second_order_retraction(x, u))
        eig = torch.linalg.eigvalsh(y)
        inside = ((eig > 0.04) & (eig < 2500.0)).all(-1)
        reference = torch.where(inside[:, None, None], y, clamp_eigenvalues(y, 0.04, 2500.0))
        assert torch.equal(manifold.retr(x, u), reference)
        assert torch.equal(manifold.projx(y), reference)
