"""TRPO pieces: conjugate gradient, the maximal step under a KL bound, backtracking line search."""

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
    so that x^T A x = x^T (b - r) comes without another product.
    """

    def body(_, carry):
        x, r, p, r_dot = carry
        active = r_dot > residual_tol
        ap = matvec(p)
        alpha = r_dot / jnp.where(active, jnp.vdot(p, ap), 1.0)
        alpha = jnp.where(active, alpha, 0.0)
        x = x + alpha * p
        r = r - alpha * ap
        new_r_dot = jnp.vdot(r, r)
        beta = new_r_dot / jnp.where(active, r_dot, 1.0)
        p = jnp.where(active, r + beta * p, p)
        return x, r, p, jnp.where(active, new_r_dot, r_dot)

    x0 = jnp.zeros_like(b)
    init = (x0, b, b, jnp.vdot(b, b))
    x, r, _, _ = jax.lax.fori_loop(0, iterations, body, init)
    return x, r


def max_step(direction: jax.Array, curvature: jax.Array, max_kl: float) -> jax.Array:
    """The step along `direction` whose quadratic KL model 0.5 s^T F s equals max_kl.

    `curvature` is direction^T F direction.
    """
    return direction * jnp.sqrt(2.0 * max_kl / jnp.maximum(curvature, 1e-12))


def backtracking_line_search(
    evaluate: Callable[[jax.Array], tuple[jax.Array, jax.Array]],
    loss_before: jax.Array,
    max_kl: float,
    num_steps: int,
    ratio: float,
):
    """Try step fractions 1, ratio, ratio^2, ... and accept the first that lowers the loss with
    KL below max_kl. `evaluate(fraction) -> (loss, kl)`.

    Returns (fraction or 0 when none is accepted, loss, kl, number of fractions tried).
    """

    def not_done(carry):
        j, accepted, *_ = carry
        return (~accepted) & (j < num_steps)

    def try_next(carry):
        j, _, _, _, _ = carry
        fraction = ratio**j
        loss, kl = evaluate(fraction)
        accepted = (loss < loss_before) & (kl < max_kl) & jnp.isfinite(loss)
        return j + 1, accepted, fraction, loss, kl

    init = (jnp.asarray(0), jnp.asarray(False), jnp.asarray(0.0), loss_before, jnp.asarray(0.0))
    tried, accepted, fraction, loss, kl = jax.lax.while_loop(not_done, try_next, init)
    return (
        jnp.where(accepted, fraction, 0.0),
        jnp.where(accepted, loss, loss_before),
        jnp.where(accepted, kl, 0.0),
        tried,
    )
