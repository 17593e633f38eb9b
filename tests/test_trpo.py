"""TRPO pieces: conjugate gradient, the maximal step under a KL bound, backtracking line search."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl_jax.rl import backtracking_line_search, conjugate_gradient, max_step


def _solve(matvec, b, iterations, jit=False):
    """conjugate_gradient's x, after checking that its residual is b - A x."""
    solve = lambda b: conjugate_gradient(matvec, b, iterations)
    x, residual = (jax.jit(solve) if jit else solve)(jnp.asarray(b))
    np.testing.assert_allclose(residual, b - matvec(x), rtol=1e-3, atol=1e-5)
    return x


def _spd_matrix(n, seed):
    m = np.random.default_rng(seed).normal(size=(n, n))
    return (m @ m.T + n * np.eye(n)).astype(np.float32)


def test_conjugate_gradient_hand_computed_2d():
    # [[4, 1], [1, 3]] x = [1, 2]  ->  x = [1/11, 7/11]; CG is exact after n = 2 iterations.
    a = jnp.array([[4.0, 1.0], [1.0, 3.0]])
    x = _solve(lambda v: a @ v, jnp.array([1.0, 2.0]), iterations=2)
    np.testing.assert_allclose(x, [1 / 11, 7 / 11], rtol=1e-5)


@pytest.mark.parametrize("n", [3, 6])
def test_conjugate_gradient_exact_after_n_iterations(n):
    a = _spd_matrix(n, seed=n)
    b = np.random.default_rng(100 + n).normal(size=n).astype(np.float32)
    expected = np.linalg.solve(a.astype(np.float64), b.astype(np.float64))
    x = _solve(lambda v: jnp.asarray(a) @ v, b, n, jit=True)
    np.testing.assert_allclose(x, expected, rtol=1e-4, atol=1e-5)
    # One iteration is a steepest-descent step: clearly not the solution yet.
    x1 = _solve(lambda v: jnp.asarray(a) @ v, jnp.asarray(b), 1)
    assert np.max(np.abs(np.asarray(x1) - expected)) > 1e-3


def test_conjugate_gradient_extra_iterations_after_convergence_stay_put():
    # Iterating past convergence must not divide 0 by 0 (NaN) nor move x.
    a = _spd_matrix(4, seed=0)
    b = np.ones(4, np.float32)
    x = _solve(lambda v: jnp.asarray(a) @ v, jnp.asarray(b), 50)
    np.testing.assert_allclose(x, np.linalg.solve(a, b), rtol=1e-4, atol=1e-5)
    x_zero = _solve(lambda v: jnp.asarray(a) @ v, jnp.zeros(4), 5)
    np.testing.assert_array_equal(x_zero, np.zeros(4))


def test_max_step_meets_the_kl_bound_exactly():
    fisher = jnp.asarray(_spd_matrix(5, seed=1))
    direction = jnp.arange(1.0, 6.0)
    max_kl = 0.01
    step = max_step(direction, direction @ fisher @ direction, max_kl)
    np.testing.assert_allclose(0.5 * step @ fisher @ step, max_kl, rtol=1e-5)
    # Along the direction, positive multiple.
    scale = np.asarray(step) / np.asarray(direction)
    np.testing.assert_allclose(scale, scale[0], rtol=1e-6)
    assert scale[0] > 0


def test_max_step_hand_computed():
    # F = I, direction (3, 4): curvature 25, step = d * sqrt(2 * 0.02 / 25) = d * 0.04.
    step = max_step(jnp.array([3.0, 4.0]), jnp.asarray(25.0), 0.02)
    np.testing.assert_allclose(step, [0.12, 0.16], rtol=1e-6)


def _search(evaluate, loss_before=0.0, max_kl=0.01, num_steps=10, ratio=0.8):
    run = jax.jit(lambda lb: backtracking_line_search(evaluate, lb, max_kl, num_steps, ratio))
    fraction, loss, kl, tried = run(jnp.asarray(loss_before))
    return float(fraction), float(loss), float(kl), int(tried)


def test_line_search_accepts_first_improving_fraction():
    # The loss improves only for fractions < 0.5: 1, 0.8, 0.64, 0.512 fail and 0.8^4 = 0.4096 is
    # accepted on the fifth evaluation.
    fraction, loss, kl, tried = _search(lambda f: (f - 0.5, 0.0 * f))
    assert fraction == pytest.approx(0.4096, rel=1e-6)
    assert loss == pytest.approx(0.4096 - 0.5, rel=1e-5)
    assert kl == 0.0
    assert tried == 5


def test_line_search_respects_the_kl_bound():
    # Every fraction improves the loss, but KL = 0.02 f^2 < 0.01 needs f < 0.7071: 1 and 0.8 are
    # rejected, 0.64 accepted (third try) with KL 0.02 * 0.4096.
    fraction, loss, kl, tried = _search(lambda f: (-f, 0.02 * f**2), max_kl=0.01)
    assert fraction == pytest.approx(0.64, rel=1e-6)
    assert loss == pytest.approx(-0.64, rel=1e-6)
    assert kl == pytest.approx(0.008192, rel=1e-5)
    assert tried == 3


def test_line_search_full_step_accepted_first():
    fraction, loss, _, tried = _search(lambda f: (-f, 0.0 * f), ratio=0.5)
    assert (fraction, loss, tried) == (1.0, -1.0, 1)


@pytest.mark.parametrize(
    "evaluate",
    [lambda f: (1.0 + f, 0.0 * f), lambda f: (jnp.nan * f, 0.0 * f), lambda f: (-f, 1.0 + f)],
    ids=["never-improves", "nan-loss", "kl-too-large"],
)
def test_line_search_rejects_everything(evaluate):
    fraction, loss, kl, tried = _search(evaluate, loss_before=0.25, num_steps=7)
    assert fraction == 0.0
    assert loss == 0.25  # the loss before, unchanged
    assert kl == 0.0
    assert tried == 7
