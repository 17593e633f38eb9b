"""TRPO pieces: conjugate gradient, the maximal step under a KL bound, backtracking line search.

Each works on one problem (a vector [D], scalars) or on a batch of independent problems (rows
[G, D], one scalar per row: packed sweep members): every dot product, step size and stopping test
is per row, so a row's result equals its problem solved alone.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp


def conjugate_gradient(
    matvec: Callable[[jax.Array], jax.Array],
    b: jax.Array,
    iterations: int,
    residual_tol: float = 1e-10,
) -> tuple[jax.Array, jax.Array]:
    """Approximately solve A x = b for symmetric positive-definite A, starting from x = 0.

    Runs a fixed number of iterations (static shapes); once the squared residual falls under
    `residual_tol`, further iterations leave x unchanged. Returns x and its residual r = b - A x,
    so that x^T A x = x^T (b - r) comes without another product. With b of rows [G, D], `matvec`
    maps rows to rows and each row is its own solve (its own dot products and stopping test).
    """

    def body(_, carry):
        x, r, p, r_dot = carry
        active = r_dot > residual_tol
        ap = matvec(p)
        alpha = r_dot / jnp.where(active, rowwise_dot(p, ap), 1.0)
        alpha = jnp.where(active, alpha, 0.0)[..., None]
        x = x + alpha * p
        r = r - alpha * ap
        new_r_dot = rowwise_dot(r, r)
        beta = (new_r_dot / jnp.where(active, r_dot, 1.0))[..., None]
        p = jnp.where(active[..., None], r + beta * p, p)
        return x, r, p, jnp.where(active, new_r_dot, r_dot)

    x0 = jnp.zeros_like(b)
    init = (x0, b, b, rowwise_dot(b, b))
    x, r, _, _ = jax.lax.fori_loop(0, iterations, body, init)
    return x, r


def rowwise_dot(a: jax.Array, b: jax.Array) -> jax.Array:
    """a . b of two vectors, or of each pair of rows of [G, D] arrays ([G])."""
    return jnp.vdot(a, b) if a.ndim == 1 else jnp.einsum("gd,gd->g", a, b)


def max_step(direction: jax.Array, curvature: jax.Array, max_kl: float) -> jax.Array:
    """The step along `direction` whose quadratic KL model 0.5 s^T F s equals max_kl.

    `curvature` is direction^T F direction (one per row for rows).
    """
    return direction * jnp.sqrt(2.0 * max_kl / jnp.maximum(curvature, 1e-12))[..., None]


def backtracking_line_search(
    evaluate: Callable[[jax.Array], tuple[jax.Array, jax.Array]],
    loss_before: jax.Array,
    max_kl: float,
    num_steps: int,
    ratio: float,
):
    """Try step fractions 1, ratio, ratio^2, ... and accept the first that lowers the loss with
    KL below max_kl. `evaluate(fraction) -> (loss, kl)`. With one problem per entry of
    `loss_before` [G], `evaluate` takes and returns [G] and each problem searches alone: the loop
    runs while any searches, and a problem that has accepted (or run out) keeps its result.

    Returns (fraction or 0 when none is accepted, loss, kl, number of fractions tried).
    """

    def not_done(carry):
        j, accepted, *_ = carry
        return jnp.any((~accepted) & (j < num_steps))

    def try_next(carry):
        j, accepted, fraction, loss, kl = carry
        searching = (~accepted) & (j < num_steps)
        trial = ratio**j
        trial_loss, trial_kl = evaluate(trial)
        ok = (trial_loss < loss_before) & (trial_kl < max_kl) & jnp.isfinite(trial_loss)
        return (
            jnp.where(searching, j + 1, j),
            accepted | (searching & ok),
            jnp.where(searching, trial, fraction),
            jnp.where(searching, trial_loss, loss),
            jnp.where(searching, trial_kl, kl),
        )

    shape = jnp.shape(loss_before)
    init = (
        jnp.zeros(shape, jnp.int32),
        jnp.zeros(shape, bool),
        jnp.zeros(shape),
        loss_before,
        jnp.zeros(shape),
    )
    tried, accepted, fraction, loss, kl = jax.lax.while_loop(not_done, try_next, init)
    return (
        jnp.where(accepted, fraction, 0.0),
        jnp.where(accepted, loss, loss_before),
        jnp.where(accepted, kl, 0.0),
        tried,
    )
