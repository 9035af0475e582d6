"""Helmholtz machine, wake-sleep and the likelihood metrics in bits.

Oracles: brute-force sums over every hidden configuration written out with
explicit products (the definitions of P(x), Q(h|x) and F); the delta rules of
Hinton, Dayan, Frey & Neal (1995) written out by hand; KL(p || p) = 0.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from predcode import HelmholtzMachine, load_model
from predcode.datasets.bars import make_bars, make_shifter
from predcode.exceptions import NotFittedError, ValidationError
from predcode.kernels import get_kernel
from predcode.metrics.likelihood import (
    free_energy_bits,
    importance_log_likelihood_bits,
    kl_bits,
    kl_divergence_bits,
    log_likelihood_bits,
)

from .conftest import tolerance


def _gen(hm):
    """The generative parameters the likelihood metrics take."""
    return hm.generative_params()


def _params(hm):
    """Generative and recognition parameters, the free-energy metrics' arguments."""
    return hm.generative_params(), hm.recognition_params()


def _sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def _bern(t, p):
    return float(np.prod(np.where(t == 1, p, 1 - p)))


def _tiny(sizes=(3, 2, 2), seed=0, scale=1.5):
    """A fitted machine with random (large) weights, replaced after a trivial fit."""
    X = (np.random.default_rng(seed).random((4, sizes[0])) < 0.5).astype(float)
    hm = HelmholtzMachine(sizes, epochs=1, lr=0.0, backend="numpy", random_state=seed).fit(X)
    rng = np.random.default_rng(seed + 1)
    for l in range(1, len(sizes)):
        hm.G_[l][...] = scale * rng.standard_normal(hm.G_[l].shape)
        hm.R_[l][...] = scale * rng.standard_normal(hm.R_[l].shape)
    for l in range(len(sizes)):
        hm.c_[l][...] = scale * rng.standard_normal(sizes[l])
        hm.r_[l][...] = scale * rng.standard_normal(sizes[l])
    return hm


def _configs(n):
    return [np.array(c, dtype=float) for c in itertools.product((0, 1), repeat=n)]


def _brute(hm, x):
    """P(x) and F(x) (bits) by explicit sums over h1, h2 of a 3-layer machine."""
    G, c, R, r = hm.G_, hm.c_, hm.R_, hm.r_
    px, F = 0.0, 0.0
    for h1 in _configs(hm.sizes_[1]):
        for h2 in _configs(hm.sizes_[2]):
            joint = (_bern(h2, _sig(c[2])) * _bern(h1, _sig(G[2] @ h2 + c[1]))
                     * _bern(x, _sig(G[1] @ h1 + c[0])))
            q = _bern(h1, _sig(R[1] @ x + r[1])) * _bern(h2, _sig(R[2] @ h1 + r[2]))
            px += joint
            F += q * (math.log2(q) - math.log2(joint))
    return px, F


def test_exact_likelihood_and_free_energy_equal_brute_force():
    hm = _tiny()
    X = np.array(_configs(3))
    want = np.array([_brute(hm, x) for x in X])
    np.testing.assert_allclose(log_likelihood_bits(_gen(hm), X), np.log2(want[:, 0]), atol=1e-12)
    np.testing.assert_allclose(free_energy_bits(*_params(hm), X), want[:, 1], atol=1e-12)
    np.testing.assert_allclose(hm.energy(X), want[:, 1], atol=1e-12)
    assert abs(want[:, 0].sum() - 1.0) < 1e-12  # P sums to one over all images
    # F is an upper bound on the description length -log2 P(x)
    assert np.all(want[:, 1] >= -np.log2(want[:, 0]) - 1e-12)


def test_likelihood_of_a_four_layer_net_sums_to_one():
    hm = _tiny(sizes=(4, 3, 2, 2), seed=4)
    X = np.array(_configs(4))
    p = 2.0 ** log_likelihood_bits(_gen(hm), X)
    assert abs(p.sum() - 1.0) < 1e-12


def test_monte_carlo_free_energy_and_importance_sampling_agree_with_exact():
    hm = _tiny(seed=2, scale=1.0)
    X = np.array(_configs(3))
    for l in (1, 2):  # a uniform proposal: bounded importance weights
        hm.R_[l][...] = 0.0
        hm.r_[l][...] = 0.0
    exact_F = free_energy_bits(*_params(hm), X)
    mc_F = free_energy_bits(*_params(hm), X, exact=False, n_samples=20000, random_state=0)
    np.testing.assert_allclose(mc_F, exact_F, atol=0.05)
    exact = log_likelihood_bits(_gen(hm), X)
    est, se = importance_log_likelihood_bits(*_params(hm), X, n_samples=4000, random_state=1)
    assert np.all(np.abs(est - exact) < 5 * se + 1e-3), (est - exact, se)
    _, se_small = importance_log_likelihood_bits(*_params(hm), X, n_samples=400, random_state=1)
    assert np.all(se < se_small)


def test_kl_zero_for_the_model_distribution_itself_and_positive_otherwise():
    """A (3, 1) machine with G = 0 is a product of Bernoullis; KL to itself is 0."""
    hm = _tiny(sizes=(3, 1), seed=5)
    hm.G_[1][...] = 0.0
    X = np.array(_configs(3))
    p_model = np.array([_bern(x, _sig(hm.c_[0])) for x in X])
    assert abs(kl_bits(_gen(hm), X, p_model)) < 1e-12
    uniform = np.full(8, 1 / 8)
    assert kl_bits(_gen(hm), X, uniform) > 0.01


@given(st.lists(st.floats(0.01, 1.0), min_size=2, max_size=8),
       st.lists(st.floats(0.01, 1.0), min_size=2, max_size=8))
def test_kl_divergence_is_nonnegative_and_zero_only_for_equal(a, b):
    n = min(len(a), len(b))
    p = np.array(a[:n]) / sum(a[:n])
    q = np.array(b[:n]) / sum(b[:n])
    assert kl_divergence_bits(p, np.log2(p)) == pytest.approx(0.0, abs=1e-12)
    kl = kl_divergence_bits(p, np.log2(q))
    assert kl >= -1e-12
    if np.abs(p - q).max() > 1e-3:
        assert kl > 0


class _Feed:
    """Replaces the model's uniform draws by prepared ones (to replay the sampling)."""

    def __init__(self, rng, dtype):
        self.rng, self.dtype, self.drawn = rng, dtype, []

    def __call__(self, shape):
        u = self.rng.random(shape).astype(self.dtype)
        self.drawn.append(u)
        return u


def test_wake_and_sleep_updates_equal_the_delta_rules():
    """One wake-sleep step, replayed by hand (Hinton et al. 1995 delta rules)."""
    hm = _tiny(sizes=(4, 3, 2), seed=7, scale=0.8)
    hm.lr_ = (0.3, 0.2, 0.1)
    hm.lr_recognition_ = (0.05, 0.15)
    before = {k: [None if v is None else v.copy() for v in getattr(hm, k)]
              for k in ("G_", "c_", "R_", "r_")}
    feed = _Feed(np.random.default_rng(0), np.float64)
    hm._uniform = feed
    X = (np.random.default_rng(1).random((5, 4)) < 0.5).astype(float)
    hm._wake(X)
    hm._sleep(6)
    G, c, R, r = (before[k] for k in ("G_", "c_", "R_", "r_"))
    u = feed.drawn
    # wake: recognition samples, then generative deltas
    s1 = (u[0] < _sig(X @ R[1].T + r[1])).astype(float)
    s2 = (u[1] < _sig(s1 @ R[2].T + r[2])).astype(float)
    n = 5
    c2 = c[2] + 0.1 / n * (s2 - _sig(c[2])).sum(0)
    d1 = s1 - _sig(s2 @ G[2].T + c[1])
    G2, c1 = G[2] + 0.2 / n * d1.T @ s2, c[1] + 0.2 / n * d1.sum(0)
    d0 = X - _sig(s1 @ G[1].T + c[0])
    G1, c0 = G[1] + 0.3 / n * d0.T @ s1, c[0] + 0.3 / n * d0.sum(0)
    # sleep: dream with the new generative weights, then recognition deltas
    m = 6
    t2 = (u[2] < _sig(c2)).astype(float)
    t1 = (u[3] < _sig(t2 @ G2.T + c1)).astype(float)
    t0 = (u[4] < _sig(t1 @ G1.T + c0)).astype(float)
    e1 = t1 - _sig(t0 @ R[1].T + r[1])
    R1, r1 = R[1] + 0.05 / m * e1.T @ t0, r[1] + 0.05 / m * e1.sum(0)
    e2 = t2 - _sig(t1 @ R[2].T + r[2])
    R2, r2 = R[2] + 0.15 / m * e2.T @ t1, r[2] + 0.15 / m * e2.sum(0)
    for got, want in ((hm.G_[1], G1), (hm.G_[2], G2), (hm.c_[0], c0), (hm.c_[1], c1),
                      (hm.c_[2], c2), (hm.R_[1], R1), (hm.R_[2], R2), (hm.r_[1], r1),
                      (hm.r_[2], r2)):
        np.testing.assert_allclose(got, want, atol=1e-13)


def test_wake_update_is_the_gradient_of_the_log_joint():
    """The generative delta rule equals d log P(s_below | s_above) / dW (finite differences)."""
    rng = np.random.default_rng(3)
    W, b = rng.standard_normal((4, 3)), rng.standard_normal(4)
    s = (rng.random((5, 3)) < 0.5).astype(float)
    t = (rng.random((5, 4)) < 0.5).astype(float)
    k = get_kernel("hm_delta", "numpy")

    def logp(W_):
        return float(k(W_.copy(), b.copy(), s, t, 0.0))

    W1 = W.copy()
    k(W1, b.copy(), s, t, 1.0)
    grad = np.zeros_like(W)
    h = 1e-6
    for i in range(4):
        for j in range(3):
            E = np.zeros_like(W)
            E[i, j] = h
            grad[i, j] = (logp(W + E) - logp(W - E)) / (2 * h)
    np.testing.assert_allclose((W1 - W) * 5, grad, atol=1e-7)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_kernels_match_reference(fast_backend, xp, dtype):
    rng = np.random.default_rng(0)
    W0, b0 = rng.standard_normal((6, 5)).astype(dtype), rng.standard_normal(6).astype(dtype)
    s = (rng.random((7, 5)) < 0.5).astype(dtype)
    t = (rng.random((7, 6)) < 0.5).astype(dtype)
    u = rng.random((7, 6)).astype(dtype)
    tol = tolerance(dtype)
    ref, fast = get_kernel("hm_delta", "numpy"), get_kernel("hm_delta", fast_backend)
    Wr, br = W0.copy(), b0.copy()
    lr = ref(Wr, br, s, t, 0.3)
    Wf, bf = xp.asarray(W0), xp.asarray(b0)
    lf = fast(Wf, bf, xp.asarray(s), xp.asarray(t), 0.3)
    from predcode.backend import to_numpy

    np.testing.assert_allclose(to_numpy(Wf), Wr, atol=tol, rtol=tol)
    np.testing.assert_allclose(to_numpy(bf), br, atol=tol, rtol=tol)
    assert abs(float(to_numpy(lf)) - float(lr)) < tol * max(1.0, abs(float(lr)))
    pr, outr = np.empty((7, 6), dtype), np.empty((7, 6), dtype)
    get_kernel("hm_sample", "numpy")(s, W0, b0, u, pr, outr)
    pf, outf = xp.empty((7, 6), dtype), xp.empty((7, 6), dtype)
    get_kernel("hm_sample", fast_backend)(xp.asarray(s), xp.asarray(W0), xp.asarray(b0),
                                          xp.asarray(u), pf, outf)
    np.testing.assert_allclose(to_numpy(pf), pr, atol=tol, rtol=tol)
    np.testing.assert_array_equal(to_numpy(outf), outr)


def test_backends_give_the_same_fit(backend):
    X = make_bars(300, random_state=0)
    ref = HelmholtzMachine(epochs=2, batch_size=10, random_state=0, backend="numpy").fit(X)
    hm = HelmholtzMachine(epochs=2, batch_size=10, random_state=0, backend=backend)
    if backend == "cupy":
        import cupy

        X = cupy.asarray(X)
    hm.fit(X)
    from predcode.backend import to_numpy

    for l in (1, 2):
        np.testing.assert_allclose(to_numpy(hm.G_[l]), ref.G_[l], atol=1e-9)
        np.testing.assert_allclose(to_numpy(hm.R_[l]), ref.R_[l], atol=1e-9)


def test_training_on_bars_lowers_kl_and_save_load_round_trip(tmp_path):
    from predcode.datasets.bars import bars_distribution

    imgs, p = bars_distribution()
    X = make_bars(20000, random_state=0)
    hm = HelmholtzMachine((16, 8, 1), epochs=1, lr=0.2, batch_size=10, random_state=0)
    hm.fit(X[:10])
    kl0 = kl_bits(_gen(hm), imgs, p)
    hm.partial_fit(X)
    kl1 = kl_bits(_gen(hm), imgs, p)
    assert kl1 < kl0 - 1.0, (kl0, kl1)
    assert len(hm.history_["wake_bits"]) == 2
    path = hm.save(tmp_path / "hm")
    hm2 = load_model(path)
    assert isinstance(hm2, HelmholtzMachine)
    np.testing.assert_allclose(hm2.energy(imgs), hm.energy(imgs), atol=1e-12)
    np.testing.assert_allclose(hm2.infer(imgs), hm.infer(imgs), atol=1e-12)
    dreams = hm.sample(50, random_state=0)
    assert dreams.shape == (50, 16) and set(np.unique(dreams)) <= {0.0, 1.0}


def test_init_bias_sets_generative_and_recognition_biases():
    X = make_bars(20, random_state=0)
    hm = HelmholtzMachine(epochs=1, lr=0.0, init_bias=(-3.0, -2.0), random_state=0).fit(X)
    np.testing.assert_array_equal(hm.c_[0], -3.0)
    np.testing.assert_array_equal(hm.c_[1], -2.0)
    np.testing.assert_array_equal(hm.r_[1], -2.0)
    np.testing.assert_array_equal(hm.c_[2], 0.0)  # top bias b_L starts at 0
    np.testing.assert_array_equal(hm.r_[2], 0.0)


def test_rates_set_between_partial_fits_apply():
    """A schedule is set_params + partial_fit: with rate 0 the next pass changes nothing."""
    X = make_bars(200, random_state=0)
    hm = HelmholtzMachine(epochs=1, lr=0.3, random_state=0).fit(X)
    G, R = hm.G_[1].copy(), hm.R_[1].copy()
    hm.set_params(lr=0.0)
    hm.partial_fit(X)
    np.testing.assert_array_equal(hm.G_[1], G)
    np.testing.assert_array_equal(hm.R_[1], R)
    hm.set_params(lr=0.3)
    hm.partial_fit(X)
    assert np.abs(hm.G_[1] - G).max() > 1e-3


def test_shifter_wide_net_uses_importance_sampling():
    X = make_shifter(200, random_state=0)
    hm = HelmholtzMachine((32, 24, 1), epochs=1, random_state=0, n_samples_energy=50).fit(X)
    F = hm.energy(X[:5])  # 25 hidden units: Monte-Carlo
    est, se = importance_log_likelihood_bits(*_params(hm), X[:5], n_samples=200, random_state=0)
    assert F.shape == (5,) and np.all(np.isfinite(se))
    assert np.all(F >= est - 5 * se - 0.5)  # F bounds -log2 P from above
    with pytest.raises(ValidationError, match="importance_log_likelihood_bits"):
        log_likelihood_bits(_gen(hm), X[:2])


def test_bad_inputs_raise_clear_errors():
    X = make_bars(20, random_state=0)
    with pytest.raises(ValidationError, match=r"binary.*\(X > 0.5\)"):
        HelmholtzMachine(epochs=1).fit(X * 0.5)
    with pytest.raises(ValidationError, match=r"expected shape \(n, 16\)"):
        HelmholtzMachine(epochs=1).fit(X[:, :15])
    with pytest.raises(ValidationError, match="NaN"):
        bad = X.copy()
        bad[0, 0] = np.nan
        HelmholtzMachine(epochs=1).fit(bad)
    with pytest.raises(ValidationError, match="takes no y"):
        HelmholtzMachine(epochs=1).fit(X, np.zeros(20))
    with pytest.raises(ValidationError, match=r"lr: expected 3 rates"):
        HelmholtzMachine(epochs=1, lr=(0.1, 0.2)).fit(X)
    with pytest.raises(ValidationError, match="lr_recognition"):
        HelmholtzMachine(epochs=1, lr_recognition=-1.0).fit(X)
    with pytest.raises(ValidationError, match="init_bias: expected a number or 2 numbers"):
        HelmholtzMachine(epochs=1, init_bias=(1.0,)).fit(X)
    with pytest.raises(ValidationError, match="sizes"):
        HelmholtzMachine(sizes=(16,)).fit(X)
    with pytest.raises(NotFittedError):
        HelmholtzMachine().energy(X)
    hm = HelmholtzMachine(epochs=1).fit(X)
    with pytest.raises(ValidationError, match=r"expected shape \(n, 16\)"):
        hm.energy(np.zeros((2, 9)))
    with pytest.raises(ValidationError, match="binary"):
        log_likelihood_bits(_gen(hm), X + 2)
    with pytest.raises(ValidationError, match="HelmholtzMachine"):
        log_likelihood_bits(object(), X)


class _RowFeed:
    """Hands out one row of U per image, in the order the batch path draws them."""

    def __init__(self, U):
        self.U, self.row, self.col = U, 0, 0

    def __call__(self, shape):
        k = shape[1]
        v = self.U[self.row, self.col:self.col + k][None, :]
        self.col += k
        if self.col == self.U.shape[1]:
            self.row, self.col = self.row + 1, 0
        return v


@pytest.mark.parametrize("sizes", [(4, 3, 2), (5, 3, 2, 2)])
def test_online_kernel_equals_batch_steps_of_one_image(sizes):
    """``batch_size=1`` (the fused ``hm_online`` pass) replays the per-image wake and
    sleep steps of the batch path exactly, given the same uniform numbers."""
    X = (np.random.default_rng(1).random((12, sizes[0])) < 0.4).astype(float)
    a, b = _tiny(sizes=sizes, seed=3, scale=0.8), _tiny(sizes=sizes, seed=3, scale=0.8)
    L = len(sizes) - 1
    for hm in (a, b):
        hm.lr_ = tuple(0.05 * (l + 2) for l in range(L + 1))
        hm.lr_recognition_ = tuple(0.07 * (l + 1) for l in range(L))
    U = np.random.default_rng(2).random((12, sum(sizes[1:]) + sum(sizes)))
    a._uniform = lambda shape: U
    wake, sleep = a._online_pass(X)
    b._uniform = _RowFeed(U)
    w_ref = s_ref = 0.0
    for i in range(12):
        w_ref += float(b._wake(X[i:i + 1]))
        s_ref += float(b._sleep(1))
    for name in ("G_", "R_", "c_", "r_"):
        for x, y in zip(getattr(a, name), getattr(b, name), strict=True):
            if x is not None:
                np.testing.assert_allclose(x, y, atol=1e-12)
    assert abs(wake - w_ref) < 1e-9 and abs(sleep - s_ref) < 1e-9


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_online_kernel_matches_reference(fast_backend, xp, dtype):
    X = make_bars(40, random_state=0).astype(dtype)
    fits = {}
    for be, data in (("numpy", X), (fast_backend, xp.asarray(X))):
        hm = HelmholtzMachine((16, 8, 1), batch_size=1, epochs=2, lr=(0.1, 0.05, 0.02),
                              lr_recognition=(0.2, 0.03), init_scale=0.5, dtype=dtype,
                              random_state=0, backend=be)
        fits[be] = hm.fit(data)
    from predcode.backend import to_numpy

    tol = 10 * tolerance(dtype)
    ref, fast = fits["numpy"], fits[fast_backend]
    for name in ("G_", "R_", "c_", "r_"):
        for x, y in zip(getattr(fast, name), getattr(ref, name), strict=True):
            if y is not None:
                np.testing.assert_allclose(to_numpy(x), y, atol=tol, rtol=tol)
    np.testing.assert_allclose(fast.history_["wake_bits"], ref.history_["wake_bits"],
                               rtol=tol)


def test_bench_numpy_wake_sleep_baseline_learns_a_repeated_pattern():
    """The bench's plain-numpy baseline (``bench helmholtz``) is real wake-sleep: trained on
    one 4×4 image over and over, its dreams reproduce that image (each pixel within 0.05)."""
    from predcode.bench.helmholtz import numpy_wake_sleep

    d_star = make_bars(1, random_state=3)[0].astype(float)
    assert 0 < d_star.sum() < 16
    G1, g1, G2, g2, b, *_ = numpy_wake_sleep(np.tile(d_star, (1500, 1)), random_state=0)
    rng = np.random.default_rng(1)
    sig = lambda a: 1.0 / (1.0 + np.exp(-a))  # noqa: E731
    z = (rng.random((4000, 1)) < sig(b)).astype(float)
    y = (rng.random((4000, 8)) < sig(z @ G2.T + g2)).astype(float)
    dream_p = sig(y @ G1.T + g1).mean(axis=0)
    np.testing.assert_allclose(dream_p, d_star, atol=0.05)
