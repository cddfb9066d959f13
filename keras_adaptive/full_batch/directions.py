"""Search directions of `minimize`, on the flat weight vector.

Each method proposes a descent direction d_k and a first trial step for the
line search, and hears which step was accepted: L-BFGS (two-loop recursion,
shared with the `LBFGS` optimizer), nonlinear conjugate gradients (PR+),
steepest descent, and truncated Newton (linear CG on Hessian-vector
products). `steihaug` solves the trust-region subproblem of `"trust-ncg"`.
Vectors are backend tensors in the weights' dtype; scalars are host floats.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from keras import ops

from keras_adaptive.optimizers.lbfgs import two_loop_recursion

Array = Any
Product = Callable[[Array], Array]


def dot(a: Array, b: Array) -> float:
    """a^T b as a host float."""
    return float(ops.convert_to_numpy(ops.sum(a * b)))


def steepest_descent_step(g: Array) -> float:
    """The first trial step along -g without curvature information:
    1 / ||g||_2, as SciPy's L-BFGS-B takes it."""
    return 1.0 / math.sqrt(max(dot(g, g), 1e-300))


class LBFGSDirection:
    """d = -H g by the two-loop recursion over the last m pairs
    (s, y) = (w_{k+1} - w_k, g_{k+1} - g_k), kept if s^T y > eps y^T y;
    H^0 = gamma I with gamma = s^T y / y^T y of the newest pair. The first
    trial step is 1."""

    def __init__(self, history_size: int, curvature_epsilon: float) -> None:
        self.history_size = history_size
        self.curvature_epsilon = curvature_epsilon
        # (s, y, rho = 1 / s^T y, gamma = s^T y / y^T y), oldest first.
        self.pairs: list[tuple[Array, Array, float, float]] = []

    def propose(self, w: Array, g: Array, iteration: int) -> tuple[Array, float] | None:
        if not self.pairs:
            return None
        newest_first = [(s, y, rho) for s, y, rho, _ in reversed(self.pairs)]
        return -two_loop_recursion(g, newest_first, self.pairs[-1][3]), 1.0

    def accepted(self, w, g, new_w, new_g, direction, alpha, slope) -> None:
        s, y = new_w - w, new_g - g
        sy, yy = dot(s, y), dot(y, y)
        if sy > self.curvature_epsilon * yy and yy > 0.0:
            self.pairs.append((s, y, 1.0 / sy, sy / yy))
            del self.pairs[: -self.history_size]

    def reset(self) -> None:
        self.pairs.clear()


class GradientDirection:
    """Steepest descent (d = -g) or, with `conjugate=True`, Polak-Ribière+
    conjugate gradients: d_k = -g_k + beta_k d_{k-1},
    beta_k = max(0, g_k^T (g_k - g_{k-1}) / g_{k-1}^T g_{k-1}), restarted
    along -g when d_k is not a descent direction and every `restart_every`
    iterations. The first trial step is alpha_{k-1} g_{k-1}^T d_{k-1} /
    g_k^T d_k (Nocedal & Wright 2006, eq. 3.60)."""

    def __init__(self, conjugate: bool, restart_every: int | None = None) -> None:
        self.conjugate = conjugate
        self.restart_every = restart_every
        # g, d, alpha and phi'(0) of the last iteration.
        self.last: tuple[Array, Array, float, float] | None = None

    def propose(self, w: Array, g: Array, iteration: int) -> tuple[Array, float] | None:
        if self.last is None:
            return None
        g_old, d_old, alpha_old, slope_old = self.last
        direction = -g
        restart = self.restart_every
        if self.conjugate and (restart is None or iteration % restart != 0):
            beta = dot(g, g - g_old) / dot(g_old, g_old)
            if beta > 0.0:
                direction = direction + ops.cast(beta, d_old.dtype) * d_old
        slope = dot(g, direction)
        if slope >= 0.0:  # not a descent direction: restart
            direction, slope = -g, -dot(g, g)
        return direction, alpha_old * slope_old / slope

    def accepted(self, w, g, new_w, new_g, direction, alpha, slope) -> None:
        self.last = (g, direction, alpha, slope)

    def reset(self) -> None:
        self.last = None


class _LinearCG:
    """Linear conjugate gradients on H p = -g from p = 0, stopped when the
    residual r = H p + g falls to min(0.5, sqrt(||g||)) ||g|| (the forcing
    sequence of Nocedal & Wright 2006, §7.1)."""

    def __init__(self, g: Array) -> None:
        self.gg = dot(g, g)
        norm = math.sqrt(self.gg)
        self.tolerance = min(0.5, math.sqrt(norm)) * norm
        self.p, self.r, self.d, self.rr = ops.zeros_like(g), g, -g, self.gg

    def advance(self, p_next: Array, alpha: float, hd: Array) -> bool:
        """Moves to p_next = p + alpha d; True when converged."""
        self.p = p_next
        self.r = self.r + ops.cast(alpha, hd.dtype) * hd
        rr_next = dot(self.r, self.r)
        if math.sqrt(rr_next) <= self.tolerance:
            return True
        self.d = -self.r + ops.cast(rr_next / self.rr, self.d.dtype) * self.d
        self.rr = rr_next
        return False


class NewtonCGDirection:
    """Truncated Newton (Nocedal & Wright 2006, Algorithm 7.1): d solves
    H d = -g by linear CG on Hessian-vector products, until
    ||H d + g|| <= eta_k ||g|| with eta_k = min(0.5, sqrt(||g||)), or until
    CG meets a direction of non-positive curvature (then the last iterate,
    or -g scaled by g^T g / |g^T H g| at the first CG step, as SciPy's
    `Newton-CG` does). The first trial step is 1, the Newton step."""

    def __init__(self, product_at: Callable[[Array], Product], max_products: int):
        self.product_at = product_at
        self.max_products = max_products

    def propose(self, w: Array, g: Array, iteration: int) -> tuple[Array, float]:
        product = self.product_at(w)
        cg = _LinearCG(g)
        for j in range(self.max_products):
            hd = product(cg.d)
            curvature = dot(cg.d, hd)
            if not curvature > 0.0:
                if j > 0:
                    break
                if curvature == 0.0:
                    return -g, steepest_descent_step(g)
                return -g, cg.gg / abs(curvature)
            alpha = cg.rr / curvature
            if cg.advance(cg.p + ops.cast(alpha, cg.d.dtype) * cg.d, alpha, hd):
                break
        return cg.p, 1.0

    def accepted(self, w, g, new_w, new_g, direction, alpha, slope) -> None:
        pass

    def reset(self) -> None:
        pass


@dataclass
class SteihaugStep:
    """A trust-region step and what its CG solve found."""

    p: Array
    #: m(p) - f = g^T p + p^T H p / 2, the quadratic model's change.
    model_change: float
    #: True if p lies on the boundary (CG left the region or met
    #: non-positive curvature).
    boundary: bool


def steihaug(
    g: Array, product: Product, radius: float, max_products: int
) -> SteihaugStep:
    """The trust-region step p ~ argmin g^T p + p^T H p / 2 subject to
    ||p|| <= radius, by CG-Steihaug (Nocedal & Wright 2006, Algorithm 7.2):
    CG from p = 0 with the stopping rule of `NewtonCGDirection`, stopping on
    the boundary where CG leaves the region or meets non-positive curvature
    (at the boundary point of lower model value)."""
    cg = _LinearCG(g)
    model_change = 0.0
    for _ in range(max_products):
        hd = product(cg.d)
        curvature = dot(cg.d, hd)
        if curvature > 0.0:
            alpha = cg.rr / curvature
            p_next = cg.p + ops.cast(alpha, cg.d.dtype) * cg.d
            if dot(p_next, p_next) < radius * radius:
                model_change -= 0.5 * alpha * cg.rr
                if cg.advance(p_next, alpha, hd):
                    break
                continue
        # To the boundary along d: ||p + tau d|| = radius, at the root of
        # lower model value m(p + tau d) = m(p) + tau r^T d + tau^2 d^T H d / 2.
        p, d = cg.p, cg.d
        pd, dd, pp, rd = dot(p, d), dot(d, d), dot(p, p), dot(cg.r, d)
        root = math.sqrt(max(pd * pd + dd * (radius * radius - pp), 0.0))
        taus = ((-pd + root) / dd, (-pd - root) / dd)
        changes = [tau * rd + 0.5 * tau * tau * curvature for tau in taus]
        best = min(range(2), key=changes.__getitem__)
        p = p + ops.cast(taus[best], d.dtype) * d
        return SteihaugStep(p, model_change + changes[best], True)
    return SteihaugStep(cg.p, model_change, False)
