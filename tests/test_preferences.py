"""Preference draws: precision of the pairwise cosine, validity, randomness, reproducibility."""

import importlib.util
import math
import random
import re
from pathlib import Path

import numpy as np
import pytest

from bargain.game import PRECISION, Preferences, generate_preferences
from bargain.game import preferences as preferences_module

LEVELS = [0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0]
SIZES = [(m, n) for m in range(2, 13) for n in range(2, min(m, 10) + 1)]  # (n_items, n_agents)
BENCH = Path(__file__).resolve().parent.parent / "bench" / "precision.py"
# bench/precision.py: per size, the seed of the worst of its 1,000 draws and that draw's max |cos - c|
WORST = {
    (2, 2): (4, 0.005),
    (3, 2): (2, 0.001),
    (3, 3): (352, 0.00522054516713466),
    (4, 2): (44, 0.001),
    (4, 3): (969, 0.0041994820201110145),
    (4, 4): (785, 0.006812003272476552),
    (5, 2): (44, 0.001),
    (5, 3): (709, 0.0019256154176372497),
    (5, 4): (46, 0.0048979800040808),
    (5, 5): (209, 0.007990742062344736),
    (6, 2): (2, 0.001),
    (6, 3): (192, 0.0012024414424185448),
    (6, 4): (19, 0.0042926819535293),
    (6, 5): (312, 0.005476392330926616),
    (6, 6): (217, 0.007727867026820101),
    (7, 2): (44, 0.001),
    (7, 3): (296, 0.001),
    (7, 4): (433, 0.002395544002438618),
    (7, 5): (987, 0.004600189695092349),
    (7, 6): (713, 0.006843393554420041),
    (7, 7): (379, 0.009199060109225554),
    (8, 2): (44, 0.001),
    (8, 3): (86, 0.001),
    (8, 4): (984, 0.001858665903777812),
    (8, 5): (776, 0.003574076441581142),
    (8, 6): (314, 0.005457710751378908),
    (8, 7): (325, 0.008054145520775657),
    (8, 8): (623, 0.009922527913962864),
    (9, 2): (380, 0.001),
    (9, 3): (128, 0.001),
    (9, 4): (856, 0.0015809015061101217),
    (9, 5): (18, 0.0031476184744615443),
    (9, 6): (407, 0.004927187580914649),
    (9, 7): (525, 0.006099758517121356),
    (9, 8): (127, 0.007774573394879136),
    (9, 9): (356, 0.009860509830585451),
    (10, 2): (884, 0.001),
    (10, 3): (338, 0.001),
    (10, 4): (865, 0.0013929840946713123),
    (10, 5): (339, 0.0028067866137568356),
    (10, 6): (461, 0.0038304007344705515),
    (10, 7): (795, 0.005335146137384339),
    (10, 8): (102, 0.007007673086863342),
    (10, 9): (915, 0.008310527910214471),
    (10, 10): (533, 0.011003918173466687),
    (11, 2): (44, 0.001),
    (11, 3): (800, 0.001),
    (11, 4): (381, 0.0012054758210647276),
    (11, 5): (605, 0.0021967107967637567),
    (11, 6): (893, 0.003340234505147144),
    (11, 7): (533, 0.004887438150563528),
    (11, 8): (727, 0.006185012826895986),
    (11, 9): (349, 0.007282310787108948),
    (11, 10): (977, 0.00860042466876243),
    (12, 2): (2, 0.001),
    (12, 3): (79, 0.0009862853043770548),
    (12, 4): (541, 0.0010981619070792314),
    (12, 5): (301, 0.0017514904841041679),
    (12, 6): (361, 0.0029580478364001905),
    (12, 7): (100, 0.004179386478052494),
    (12, 8): (273, 0.005511025727847618),
    (12, 9): (473, 0.006455544361872567),
    (12, 10): (55, 0.007609723351285347),
}


def max_cos_error(base: np.ndarray, c: float) -> float:
    """Independent of the module: plain Python over every pair."""
    rows = [[float(x) for x in row] for row in base]
    worst = 0.0
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            dot = sum(a * b for a, b in zip(rows[i], rows[j]))
            cos = dot / math.sqrt(sum(a * a for a in rows[i]) * sum(b * b for b in rows[j]))
            worst = max(worst, abs(cos - c))
    return worst


def check_valid(prefs: Preferences, n: int, m: int) -> None:
    assert prefs.base.shape == (n, m)
    assert np.issubdtype(prefs.base.dtype, np.integer)
    assert (prefs.base >= 0).all()
    assert prefs.base.sum(axis=1).tolist() == [100] * n


def draw(seed, n: int, m: int, c: float, **kw) -> Preferences:
    return generate_preferences(np.random.default_rng(seed), n, m, c, **kw)


@pytest.mark.parametrize("c", LEVELS)
def test_default_game_within_0_002(c):
    """m = 5, n = 2: every one of 200 draws per level is within the documented bound (<= 0.002)."""
    assert PRECISION[(5, 2)] <= 0.002
    for seed in range(200):
        prefs = draw(seed, 2, 5, c)
        check_valid(prefs, 2, 5)
        assert max_cos_error(prefs.base, c) <= PRECISION[(5, 2)], (seed, prefs.base.tolist())


def test_default_game_random_levels():
    rng = np.random.default_rng(99)
    for seed in range(300):
        c = float(rng.uniform())
        prefs = draw(seed, 2, 5, c)
        check_valid(prefs, 2, 5)
        assert max_cos_error(prefs.base, c) <= PRECISION[(5, 2)], (c, prefs.base.tolist())


def test_extremes_are_exact():
    for seed in range(50):
        same = draw(seed, 3, 5, 1.0).base
        assert (same == same[0]).all()
        disjoint = draw(seed, 3, 5, 0.0).base
        assert ((disjoint > 0).sum(axis=0) <= 1).all()  # pairwise disjoint supports
        assert max_cos_error(disjoint, 0.0) == 0.0


def load_bench():
    """bench/precision.py, which measured the table: its ``draw`` replays any measured draw."""
    spec = importlib.util.spec_from_file_location("bench_precision", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("m", "n"), SIZES)
def test_measured_worst_draws_replay_within_the_bound(m, n):
    """The worst of the 1,000 measured draws of every size replays exactly, and the bound is its
    error plus the documented headroom, so the table is the measurement (not an estimate)."""
    seed, error = WORST[(m, n)]
    c, prefs = load_bench().draw(seed, m, n)
    check_valid(prefs, n, m)
    assert max_cos_error(prefs.base, c) == pytest.approx(error, abs=1e-12)
    assert PRECISION[(m, n)] == math.ceil(preferences_module.HEADROOM * error * 1e4 - 1e-9) / 1e4


@pytest.mark.parametrize(("m", "n"), SIZES)
def test_every_size_within_the_bound_on_a_subsample(m, n):
    """Three more of the measured draws per size (fixed and random levels) against the bound."""
    bench = load_bench()
    for seed in (1, 2, 3):
        c, prefs = bench.draw(seed, m, n)
        assert max_cos_error(prefs.base, c) <= PRECISION[(m, n)], (seed, c, prefs.base.tolist())


@pytest.mark.slow
@pytest.mark.parametrize(("m", "n"), SIZES)
def test_every_size_within_the_bound_beyond_the_measured_seeds(m, n):
    """Draws the measurement never saw (seeds 1000-1009) stay within the bound: the headroom holds."""
    bench = load_bench()
    for seed in range(1000, 1010):
        c, prefs = bench.draw(seed, m, n)
        assert max_cos_error(prefs.base, c) <= PRECISION[(m, n)], (seed, c, prefs.base.tolist())


def test_precision_table_matches_docstring():
    rows = re.findall(r"^ {4}(\d+) +((?:[-\d.]+ *)+)$", preferences_module.__doc__, flags=re.MULTILINE)
    documented = {}
    for m, cells in rows:
        for n, cell in enumerate(cells.split(), start=2):
            if cell != "-":
                documented[(int(m), n)] = float(cell)
    assert documented == PRECISION
    assert set(PRECISION) == set(SIZES)


@pytest.mark.parametrize(("n", "m"), [(3, 2), (10, 2), (4, 1), (2, 1)])
def test_more_agents_than_items_only_at_full_competition(n, m):
    prefs = draw(1, n, m, 1.0)
    check_valid(prefs, n, m)
    assert (prefs.base == prefs.base[0]).all()
    if n > m:
        with pytest.raises(ValueError, match=rf"env.competition=0.99 < 1 needs env.n_items >= env.n_agents "
                                             rf"\(got env.n_items={m}, env.n_agents={n}\)"):
            draw(1, n, m, 0.99)


@pytest.mark.parametrize("c", [0.0, 0.3, 0.9, 1.0])
def test_reproducible_and_random(c):
    first = [draw(seed, 2, 5, c).base.tolist() for seed in range(100)]
    assert first == [draw(seed, 2, 5, c).base.tolist() for seed in range(100)]
    assert len({str(b) for b in first}) >= 98  # different seeds give different vectors
    # not a fixed pattern: each agent's favourite item varies, and so do the supports at c = 0
    for agent in (0, 1):
        assert len({int(np.argmax(b[agent])) for b in first}) == 5
        if c == 0.0:
            assert {sum(x > 0 for x in b[agent]) for b in first} == {1, 2, 3, 4}


def test_reproducible_for_larger_games_and_matrix():
    for kw in ({}, {"kind": "matrix", "cooperation": 0.4}):
        a, b = draw(5, 4, 7, 0.6, **kw), draw(5, 4, 7, 0.6, **kw)
        np.testing.assert_array_equal(a.values, b.values)
        assert not np.array_equal(a.values, draw(6, 4, 7, 0.6, **kw).values)


def test_global_rngs_untouched():
    np.random.seed(123)
    random.seed(123)
    before = (np.random.get_state()[1].copy(), random.getstate())
    draw(0, 3, 5, 0.5)
    assert np.array_equal(np.random.get_state()[1], before[0]) and random.getstate() == before[1]


def test_matrix_preferences():
    n, m, coop = 3, 5, 0.3
    prefs = draw(8, n, m, 0.7, kind="matrix", cooperation=coop)
    check_valid(prefs, n, m)
    assert prefs.kind == "matrix" and prefs.cooperation == coop and prefs.competition == 0.7
    assert prefs.values.shape == (n, m, n)
    for i in range(n):
        for k in range(m):
            for j in range(n):
                expected = prefs.base[i, k] if i == j else coop * prefs.base[j, k]
                assert prefs.values[i, k, j] == pytest.approx(expected)
    np.testing.assert_array_equal(prefs.base, draw(8, n, m, 0.7).base)  # same draw as the vector kind
    np.testing.assert_array_equal(prefs.as_matrix(), prefs.values)


def test_vector_preferences_fields():
    prefs = draw(2, 3, 4, 0.5)
    assert prefs.kind == "vector" and prefs.cooperation == 0.0 and prefs.competition == 0.5
    np.testing.assert_array_equal(prefs.values, prefs.base)
    assert (prefs.n_agents, prefs.n_items) == (3, 4)
    assert set(prefs.cosines()) == {"0-1", "0-2", "1-2"}
    b = prefs.base.astype(float)
    assert prefs.cosines()["1-2"] == pytest.approx(b[1] @ b[2] / np.linalg.norm(b[1]) / np.linalg.norm(b[2]))
    with pytest.raises(ValueError):
        prefs.base[0, 0] = 5  # read-only
    matrix = prefs.as_matrix()
    assert matrix[1, 2, 1] == prefs.base[1, 2] and matrix[1, 2, 0] == 0.0


def test_preferences_copy_their_arrays():
    base = np.array([[60, 40], [30, 70]])
    prefs = Preferences("vector", base, base, 0.5)
    base[0, 0] = 0
    assert prefs.base[0, 0] == 60 and base.flags.writeable


@pytest.mark.parametrize(
    ("args", "kw", "message"),
    [
        ((2, 5, 1.2), {}, r"env.competition=1.2 must be in \[0, 1\]"),
        ((2, 5, -0.1), {}, r"env.competition=-0.1 must be in \[0, 1\]"),
        ((1, 5, 0.5), {}, "env.n_agents=1 must be >= 2"),
        ((2, 0, 1.0), {}, "env.n_items=0 must be >= 1"),
        ((2, 5, 0.5), {"kind": "tensor"}, "preferences.kind='tensor' must be one of vector, matrix"),
        ((2, 5, 0.5), {"kind": "matrix", "cooperation": 1.5}, r"preferences.cooperation=1.5 must be in \[0, 1\]"),
        ((2, 5, 0.5), {"cooperation": 0.5}, "preferences.cooperation=0.5 is only used with preferences.kind='matrix'"),
    ],
)
def test_invalid_settings(args, kw, message):
    with pytest.raises(ValueError, match=message):
        draw(0, *args, **kw)


def test_preferences_validate_shapes():
    with pytest.raises(ValueError, match=r"matrix preferences need values of shape \(2, 3, 2\)"):
        Preferences("matrix", np.zeros((2, 3)), np.zeros((2, 3)), 0.5)
