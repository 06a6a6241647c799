"""The SPD cone with the affine-invariant metric, and the eigenvalue bounds S-GMM-QF needs.

Precisions ``P = C^{-1}`` live here. Inversion is an isometry of the affine-invariant metric, so
optimizing precisions is geometrically the same as optimizing covariances, and the forward pass
needs no inverse. A bare SPD cone lets a component collapse (eigenvalue -> infinity) or flatten
into a constant (eigenvalue -> 0); the bounds keep every precision inside
``[eig_min, eig_max]``, enforced after every retraction.
"""

from __future__ import annotations

import torch
from geoopt import SymmetricPositiveDefinite
from geoopt.linalg import sym


def riemannian_gradient(x: torch.Tensor, egrad: torch.Tensor) -> torch.Tensor:
    """Affine-invariant Riemannian gradient ``X sym(G) X`` of a Euclidean gradient ``G``."""
    return x @ sym(egrad) @ x


def second_order_retraction(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``X + U + 1/2 U X^{-1} U``, SPD for every symmetric ``U``: it equals
    ``1/2 X + 1/2 (X + U) X^{-1} (X + U)``, positive definite plus positive semi-definite."""
    return sym(x + u + 0.5 * u @ torch.linalg.solve(x, u))


def clamp_eigenvalues(x: torch.Tensor, eig_min: float, eig_max: float) -> torch.Tensor:
    """Project symmetric matrices onto ``{X : eig_min <= eig(X) <= eig_max}`` (spectral clipping)."""
    eigvals, eigvecs = torch.linalg.eigh(sym(x))
    eigvals = eigvals.clamp(eig_min, eig_max)
    return sym((eigvecs * eigvals.unsqueeze(-2)) @ eigvecs.transpose(-1, -2))


class BoundedSPD(SymmetricPositiveDefinite):
    """geoopt's SPD manifold (affine-invariant metric) with eigenvalues kept in ``[eig_min, eig_max]``.

    ``retr`` is the second-order retraction followed by spectral clipping; ``transp`` is the
    identity (a valid vector transport for a retraction-based optimizer, and one eigen-decomposition
    cheaper per step than geoopt's parallel transport).
    """

    name = "BoundedSPD"

    def __init__(self, eig_min: float, eig_max: float):
        if not 0.0 < eig_min < eig_max:
            raise ValueError(f"need 0 < eig_min < eig_max, got eig_min={eig_min}, eig_max={eig_max}")
        super().__init__(default_metric="AIM")
        self.eig_min = float(eig_min)
        self.eig_max = float(eig_max)

    def projx(self, x: torch.Tensor) -> torch.Tensor:
        """Spectral clipping of ``sym(x)``, done only for the matrices outside the bounds."""
        return self._clip_outside(sym(x))

    def _clip_outside(self, x: torch.Tensor) -> torch.Tensor:
        """Spectral clipping of symmetric ``x``, done only for the matrices outside the bounds.

        ``X - eig_min I`` and ``eig_max I - X`` both admit a Cholesky factor exactly when every
        eigenvalue lies strictly inside the bounds: a batched factorization (only its success flags
        are read) spares the eigen-decomposition at almost every step.
        """
        eye = torch.eye(x.shape[-1], dtype=x.dtype, device=x.device)
        inside = torch.linalg.cholesky_ex(x - self.eig_min * eye).info == 0
        # eig_max I - X needs its own factorization only where the trace (the largest eigenvalue's upper
        # bound, once the lower bound holds) reaches eig_max: rarely, so usually one Cholesky, not two
        if not bool((torch.diagonal(x, dim1=-2, dim2=-1).sum(-1) < self.eig_max).all()):
            inside = inside & (torch.linalg.cholesky_ex(self.eig_max * eye - x).info == 0)
        if bool(inside.all()):
            return x
        return torch.where(inside[..., None, None], x, clamp_eigenvalues(x, self.eig_min, self.eig_max))

    def egrad2rgrad(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return riemannian_gradient(x, u)

    def inner(self, x: torch.Tensor, u: torch.Tensor, v: torch.Tensor | None = None, keepdim: bool = False) -> torch.Tensor:
        """Affine-invariant ``tr(X^{-1} U X^{-1} V)``, by one solve instead of an inverse and four products."""
        a = torch.linalg.solve(x, u)
        b = a if v is None else torch.linalg.solve(x, v)
        ret = (a * b.transpose(-1, -2)).sum((-1, -2))
        return ret[..., None, None] if keepdim else ret

    def retr(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self._clip_outside(second_order_retraction(x, u))  # already exactly symmetric: sym(sym(y)) == sym(y)

    def transp(self, x: torch.Tensor, y: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return v

    def extra_repr(self) -> str:
        return f"eig_min={self.eig_min}, eig_max={self.eig_max}"
