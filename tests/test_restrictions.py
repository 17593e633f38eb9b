"""Property tests of task restrictions: parsing, regions, finite pools, traced pool sizes.

Membership is checked with numpy against the box itself, not with the library's `in_region`.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl_jax.tasks import (
    MAX_FINITE_TASKS,
    Restriction,
    RestrictionError,
    bandit_space,
    covers_space,
    direction_angle_space,
    draw_pool,
    in_region,
    make_sampler,
    navigation_goal_space,
    parse_restriction,
)

BANDIT = bandit_space(5)
NAV = navigation_goal_space()
SPACES = {"bandit": BANDIT, "navigation": NAV}

# (space, restriction spec, low, high) with one (LO, HI) per coordinate spelled out.
RANGES = [
    ("bandit", "range:0.2,0.6", [0.2] * 5, [0.6] * 5),
    ("bandit", "range:0,0.5,0.5,1,0,1,0,1,0.25,0.75", [0, 0.5, 0, 0, 0.25], [0.5, 1, 1, 1, 0.75]),
    ("navigation", "range:0,0.5,-0.5,0", [0.0, -0.5], [0.5, 0.0]),
    ("navigation", "range:-0.1,0.1", [-0.1, -0.1], [0.1, 0.1]),
]
COMPLEMENTS = [
    ("bandit", "complement:0,0.8", [0.0] * 5, [0.8] * 5),
    ("navigation", "complement:-0.25,0.25", [-0.25, -0.25], [0.25, 0.25]),
    ("navigation", "complement:0,0.5,0,0.5", [0.0, 0.0], [0.5, 0.5]),
]


def _coords(tasks):
    return np.asarray(tasks.arm_probs if hasattr(tasks, "arm_probs") else tasks.goal)


def _inside(coords, low, high):
    return np.all((coords >= np.asarray(low)) & (coords <= np.asarray(high)), axis=-1)


def _sample(space, restriction, n=400, seed=0, **kwargs):
    sampler = make_sampler(space, restriction, **kwargs)
    return _coords(jax.jit(sampler, static_argnums=1)(jax.random.PRNGKey(seed), n))


# ----- regions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("space", "spec", "low", "high"), RANGES)
def test_range_samples_stay_inside_the_box(space, spec, low, high):
    restriction = parse_restriction(spec, SPACES[space])
    assert restriction.region == "range"
    np.testing.assert_allclose(restriction.low, low)
    np.testing.assert_allclose(restriction.high, high)
    coords = _sample(SPACES[space], restriction)
    assert _inside(coords, low, high).all()
    # Conditioned, not collapsed: the samples spread over the box (uniform base distribution).
    width = np.asarray(high) - np.asarray(low)
    assert np.all(coords.std(axis=0) > 0.2 * width)
    np.testing.assert_allclose(coords.mean(axis=0), (np.asarray(low) + high) / 2, atol=0.1)


@pytest.mark.parametrize(("space", "spec", "low", "high"), COMPLEMENTS)
def test_complement_samples_never_fall_inside(space, spec, low, high):
    restriction = parse_restriction(spec, SPACES[space])
    assert restriction.region == "complement"
    coords = _sample(SPACES[space], restriction)
    assert not _inside(coords, low, high).any()
    # Still inside the task space.
    assert _inside(coords, SPACES[space].low, SPACES[space].high).all()


@pytest.mark.parametrize(("space", "spec", "low", "high"), [*RANGES, *COMPLEMENTS])
def test_in_region_agrees_with_the_box_under_vmap(space, spec, low, high):
    space = SPACES[space]
    restriction = parse_restriction(spec, space)
    tasks = jax.vmap(space.sample)(jax.random.split(jax.random.PRNGKey(7), 2000))
    inside = np.asarray(jax.jit(jax.vmap(lambda t: in_region(space, restriction, t)))(tasks))
    expected = _inside(_coords(tasks), low, high)
    if restriction.region == "complement":
        expected = ~expected
    np.testing.assert_array_equal(inside, expected)
    assert 0 < expected.sum() < 2000  # both outcomes occur


def test_full_region_contains_everything():
    tasks = jax.vmap(NAV.sample)(jax.random.split(jax.random.PRNGKey(0), 100))
    assert bool(jnp.all(jax.vmap(lambda t: in_region(NAV, Restriction(), t))(tasks)))
    assert parse_restriction("full", NAV) == Restriction()


@pytest.mark.parametrize(("space", "spec", "low", "high"), [*RANGES, *COMPLEMENTS])
def test_describe_round_trips_through_parse(space, spec, low, high):
    restriction = parse_restriction(spec, SPACES[space])
    assert parse_restriction(restriction.describe(), SPACES[space]) == restriction


# ----- finite pools ----------------------------------------------------------------------------


@pytest.mark.parametrize(("space", "k"), [("bandit", 3), ("navigation", 1), ("navigation", 7)])
def test_finite_k_yields_exactly_its_k_tasks(space, k):
    space = SPACES[space]
    restriction = parse_restriction(f"finite:{k}", space)
    assert restriction == Restriction(num_tasks=k)
    pool = _coords(draw_pool(space, restriction, pool_seed=5))
    assert pool.shape == (k, space.num_coords)
    assert len(np.unique(pool, axis=0)) == k  # k distinct tasks
    coords = _sample(space, restriction, n=50 * k, pool_seed=5)
    seen = np.unique(coords, axis=0)
    np.testing.assert_array_equal(seen, np.unique(pool, axis=0))  # all k, and nothing else


def test_finite_pool_drawn_from_its_region():
    restriction = Restriction(region="range", low=(0.0, 0.0), high=(0.5, 0.5), num_tasks=6)
    pool = _coords(draw_pool(NAV, restriction, pool_seed=1))
    assert _inside(pool, [0.0, 0.0], [0.5, 0.5]).all()
    complement = Restriction(region="complement", low=(0.0, 0.0), high=(0.5, 0.5), num_tasks=6)
    assert not _inside(_coords(draw_pool(NAV, complement, pool_seed=1)), [0, 0], [0.5, 0.5]).any()


@pytest.mark.parametrize("space", ["bandit", "navigation"])
def test_smaller_pool_is_a_prefix_of_a_larger_one(space):
    space = SPACES[space]
    small = _coords(draw_pool(space, Restriction(num_tasks=2), pool_seed=3))
    large = _coords(draw_pool(space, Restriction(num_tasks=9), pool_seed=3))
    np.testing.assert_array_equal(small, large[:2])
    other_seed = _coords(draw_pool(space, Restriction(num_tasks=2), pool_seed=4))
    assert not np.allclose(small, other_seed)
    assert draw_pool(space, Restriction(), pool_seed=3) is None


@pytest.mark.parametrize(
    "restriction",
    [
        Restriction(num_tasks=3),
        Restriction(region="range", low=(0.0, -0.5), high=(0.5, 0.0), num_tasks=3),
    ],
    ids=["full", "range"],
)
def test_traced_num_active_selects_a_prefix(restriction):
    """vmap over num_active in [0, 1, 2, 3]: 0 samples the region, k the first k pool tasks."""
    pool = draw_pool(NAV, restriction, pool_seed=0)
    pool_coords = _coords(pool)
    n = 300

    def sample(num_active, key):
        return make_sampler(NAV, restriction, pool=pool, num_active=num_active)(key, n)

    active = jnp.array([0, 1, 2, 3])
    tasks = jax.jit(jax.vmap(sample, in_axes=(0, None)))(active, jax.random.PRNGKey(11))
    coords = _coords(tasks)  # [4, n, 2]
    assert coords.shape == (4, n, 2)

    # 0: the region itself: n distinct continuous draws, none of them a pool task.
    region = coords[0]
    assert len(np.unique(region, axis=0)) == n
    assert not any((region == task).all(axis=-1).any() for task in pool_coords)
    if restriction.region == "range":
        assert _inside(region, restriction.low, restriction.high).all()
    # k > 0: exactly the first k pool tasks, each of them seen.
    for k in (1, 2, 3):
        np.testing.assert_array_equal(
            np.unique(coords[k], axis=0), np.unique(pool_coords[:k], axis=0)
        )


def test_traced_num_active_matches_a_separate_smaller_pool():
    """Pool of 5 with num_active=2 draws exactly what a pool of 2 draws with the same key."""
    big, small = Restriction(num_tasks=5), Restriction(num_tasks=2)
    key = jax.random.PRNGKey(4)
    from_big = jax.jit(lambda k, a: make_sampler(NAV, big, num_active=a)(k, 64))(key, 2)
    from_small = jax.jit(lambda k: make_sampler(NAV, small)(k, 64))(key)
    np.testing.assert_array_equal(_coords(from_big), _coords(from_small))


@pytest.mark.parametrize("region", ["full", "range"])
def test_num_active_zero_matches_a_separate_run_without_pool(region):
    """num_active = 0 ("all tasks" in a sweep over pool sizes) draws exactly what the region's
    own sampler draws with the same key, so that member equals a separate run without a pool."""
    box = {"low": (0.0, -0.5), "high": (0.5, 0.0)} if region == "range" else {}
    without_pool = Restriction(region=region, **box)
    with_pool = Restriction(region=region, **box, num_tasks=4)
    key = jax.random.PRNGKey(8)
    from_pool = jax.jit(lambda k, a: make_sampler(NAV, with_pool, num_active=a)(k, 16))(key, 0)
    from_region = jax.jit(lambda k: make_sampler(NAV, without_pool)(k, 16))(key)
    np.testing.assert_array_equal(_coords(from_pool), _coords(from_region))


# ----- jit, vmap over keys, prefixes -----------------------------------------------------------


@pytest.mark.parametrize(
    "spec", ["full", "finite:4", "range:0,0.5,-0.5,0", "complement:-0.25,0.25"]
)
def test_samplers_work_under_jit_and_vmap_over_keys(spec):
    restriction = parse_restriction(spec, NAV)
    sampler = make_sampler(NAV, restriction, pool_seed=2)
    keys = jax.random.split(jax.random.PRNGKey(9), 5)
    batched = _coords(jax.jit(jax.vmap(lambda k: sampler(k, 6)))(keys))
    assert batched.shape == (5, 6, 2)
    jitted = jax.jit(sampler, static_argnums=1)
    one_by_one = np.stack([_coords(jitted(k, 6)) for k in keys])
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-6)
    # Different keys give different draws (for a finite pool of 4, across 6 draws at least).
    assert not np.allclose(batched[0], batched[1])
    # n tasks are a prefix of m > n tasks.
    np.testing.assert_array_equal(_coords(jitted(keys[0], 3)), one_by_one[0, :3])


def test_bandit_samplers_under_vmap_over_keys():
    restriction = parse_restriction("range:0.2,0.6", BANDIT)
    sampler = make_sampler(BANDIT, restriction)
    keys = jax.random.split(jax.random.PRNGKey(1), 8)
    coords = _coords(jax.jit(jax.vmap(lambda k: sampler(k, 10)))(keys))
    assert coords.shape == (8, 10, 5)
    assert _inside(coords, [0.2] * 5, [0.6] * 5).all()


# ----- parse errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("space", "spec", "message"),
    [
        ("navigation", "ring:0,1", "unknown restriction"),
        ("navigation", "", "unknown restriction"),
        ("navigation", "full:1", "takes no arguments"),
        ("navigation", "range:0.2,0.1", "empty interval"),
        ("navigation", "range:0.2,0.2", "empty interval"),
        ("navigation", "range:0,0.1,0.3,-0.3", "empty interval"),
        ("navigation", "range:0,2", "outside the task space"),
        ("navigation", "range:-0.7,0", "outside the task space"),
        ("bandit", "range:0.5,1.5", "outside the task space"),
        ("navigation", "complement:-0.5,0.5", "covers the space"),
        ("bandit", "complement:0,1", "covers the space"),
        ("navigation", "finite:0", "K must be"),
        ("navigation", "finite:-2", "K must be"),
        ("navigation", f"finite:{MAX_FINITE_TASKS + 1}", "K must be"),
        ("navigation", "finite:three", "integer K"),
        ("navigation", "finite:", "integer K"),
        ("navigation", "range:0,0.1,0.2", "LO,HI"),
        ("navigation", "range:", "LO,HI"),
        ("bandit", "range:0,0.5,0,0.5", "LO,HI"),  # two pairs for five coordinates
        ("navigation", "range:a,b", "numbers"),
        ("bandit", "range:0,0.01", "contains no task"),  # probability ~1e-10
    ],
)
def test_parse_errors(space, spec, message):
    with pytest.raises(RestrictionError, match=message) as error:
        parse_restriction(spec, SPACES[space], flag="train_tasks")
    assert "--train_tasks" in str(error.value)
    assert isinstance(error.value, ValueError)


def test_covers_space_only_for_the_whole_box():
    space = direction_angle_space()
    assert covers_space(space, parse_restriction("full", space))
    assert covers_space(space, parse_restriction("range:0,360", space))
    assert not covers_space(space, parse_restriction("range:0,90", space))
    assert not covers_space(space, parse_restriction("complement:0,90", space))
    # a finite pool of the full space still spans it: not a sub-range for out-of-sample studies
    assert covers_space(space, parse_restriction("finite:4", space))
