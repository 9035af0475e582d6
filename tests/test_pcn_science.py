"""Science checks of the PC networks: descent, gradients, and the link to backprop.

Sources: Whittington & Bogacz (2017, Neural Computation 29:1229) for the model
and the convergence of PC to backprop for a large output variance; Millidge,
Tschantz & Buckley (2022, Neural Computation 34:1329) for the exact equality
under the fixed-prediction assumption.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predcode import MLP, PCN
from predcode.activations import apply as f_apply
from predcode.backend import to_numpy
from predcode.exceptions import ValidationError


def _fitted(sizes, activation="tanh", backend="numpy", seed=0, **kw):
    """A float64 network with its initial (Glorot) weights, ready for inspection."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((8, sizes[0]))
    Y = rng.standard_normal((8, sizes[-1]))
    net = PCN(sizes=sizes, activation=activation, dtype="float64", backend=backend,
              random_state=seed, epochs=1, lr=1e-12, batch_size=64, **kw)
    return net.fit(X, Y)


def _energy(net, layers):
    """F = sum_l pi_l/2 ||x_l - W_l f(x_{l-1}) - b_l||^2 summed over the batch (test oracle)."""
    E = 0.0
    for l in range(1, len(layers)):
        mu = f_apply(net.activation, layers[l - 1], np) @ to_numpy(net.W_[l]).T + to_numpy(
            net.b_[l])
        E += 0.5 * net.precisions_[l] * np.sum((layers[l] - mu) ** 2)
    return E


def _lipschitz_bound(net, F0_sample):
    """Upper bound on the curvature of F in the free activities (per sample).

    The Hessian is block tridiagonal: diagonal blocks
    pi_l I + pi_{l+1} D W^T W D - pi_{l+1} diag(f'' . W^T eps), off-diagonal
    blocks pi_l W_l D_{l-1}. Its norm is at most the largest block-row sum of
    block norms; |eps_{l+1}| <= sqrt(2 pi F) while the energy falls.
    """
    c1, c2 = {"linear": (1.0, 0.0), "tanh": (1.0, 0.77), "sigmoid": (0.25, 0.1)}[net.activation]
    W = [None] + [np.linalg.norm(to_numpy(w), 2) for w in net.W_[1:]]
    pis, L = net.precisions_, len(net.sizes_) - 1
    bound = 0.0
    for l in range(1, L):
        diag = pis[l] + pis[l + 1] * W[l + 1] ** 2 * c1 ** 2
        diag += c2 * W[l + 1] * math.sqrt(2 * pis[l + 1] * F0_sample)
        off = pis[l + 1] * W[l + 1] * c1 + (pis[l] * W[l] * c1 if l > 1 else 0.0)
        bound = max(bound, diag + off)
    return bound


@settings(max_examples=30, deadline=None)
@given(
    widths=st.lists(st.integers(1, 12), min_size=1, max_size=3),
    n_in=st.integers(1, 10),
    n_out=st.integers(1, 6),
    activation=st.sampled_from(["linear", "tanh", "sigmoid"]),
    seed=st.integers(0, 10_000),
)
def test_energy_never_increases_while_settling(widths, n_in, n_out, activation, seed):
    """At a step size below 2/Lipschitz, every Euler step lowers F (descent lemma)."""
    sizes = (n_in, *widths, n_out)
    net = _fitted(sizes, activation, seed=seed)
    rng = np.random.default_rng(seed + 1)
    X = rng.standard_normal((5, n_in))
    Y = rng.standard_normal((5, n_out))
    F0 = 0.5 * np.max(np.sum((Y - to_numpy(net.forward(X))) ** 2, axis=1))
    gamma = 1.0 / _lipschitz_bound(net, F0)
    net.set_params(T=40, gamma=gamma)
    E = net.settle_trajectory(X, Y)
    assert np.all(np.diff(E) <= 1e-12 * E[0]), E
    assert E[-1] < E[0] or E[0] == 0.0


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "linear"])
def test_inference_step_is_gradient_descent_on_F(activation):
    """One inference step moves x_l by -gamma dF/dx_l (central finite differences)."""
    net = _fitted((4, 6, 5, 3), activation, seed=3)
    rng = np.random.default_rng(7)
    X, Y = rng.standard_normal((2, 4)), rng.standard_normal((2, 3))
    x0 = net.infer(X, Y, return_all=True)  # T=20 settled: a generic, off-equilibrium start
    gamma = 0.05
    net.set_params(T=1, gamma=gamma)
    # one step from x0: re-run from the feed-forward start is not x0, so compute by hand
    layers = [to_numpy(v).copy() for v in x0]
    grads = []
    h = 1e-6
    for l in (1, 2):
        g = np.zeros_like(layers[l])
        for idx in np.ndindex(*layers[l].shape):
            layers[l][idx] += h
            a = _energy(net, layers)
            layers[l][idx] -= 2 * h
            b = _energy(net, layers)
            layers[l][idx] += h
            g[idx] = (a - b) / (2 * h)
        grads.append(g)
    # the kernel's update from the same state
    from predcode.kernels import get_kernel
    from predcode.models.pcn import _Buffers

    buf = _Buffers(np, net.sizes_, 2, np.float64)
    for l, v in enumerate(layers):
        buf.x[l][...] = v
        get_kernel("pc_activate", "numpy")(buf.x[l], buf.fx[l], buf.dfx[l], activation)
    for l in (1, 2, 3):
        buf.z[l][...] = buf.fx[l - 1] @ to_numpy(net.W_[l]).T
    buf.eps[3][...] = layers[3] - buf.z[3] - to_numpy(net.b_[3])
    for l in (2, 1):
        buf.bu[l][...] = buf.eps[l + 1] @ to_numpy(net.W_[l + 1])
        get_kernel("pc_settle_step", "numba")(
            buf.x[l], buf.z[l], to_numpy(net.b_[l]), buf.bu[l], buf.fx[l], buf.dfx[l],
            buf.eps[l], gamma, 1.0, activation, True)
    for l, g in zip((1, 2), grads, strict=True):
        np.testing.assert_allclose(buf.x[l] - layers[l], -gamma * g, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("mode", ["discriminative", "generative"])
def test_weight_updates_equal_minus_dF_dW(mode, backend):
    """Hebbian updates eps_l f(x_{l-1})^T / n equal -dF/dW_l (finite differences, float64)."""
    if backend == "cupy":
        pytest.skip("finite differences run on the host")
    rng = np.random.default_rng(11)
    sizes = (3, 5, 4, 6)
    X = rng.standard_normal((4, sizes[-1] if mode == "generative" else sizes[0]))
    Y = None if mode == "generative" else rng.standard_normal((4, sizes[-1]))
    net = PCN(sizes=sizes, mode=mode, dtype="float64", backend=backend, random_state=2,
              epochs=1, lr=1e-12, precisions=(0.5, 1.0, 2.0, 1.5)).fit(X, Y)
    layers = [to_numpy(v) for v in net.infer(X, Y, return_all=True)]
    upd = net.weight_updates(X, Y)
    n, h = X.shape[0], 1e-6
    for l in range(1, len(sizes)):
        W = to_numpy(net.W_[l])
        num = np.zeros_like(W)
        for idx in np.ndindex(*W.shape):
            W[idx] += h
            a = _energy(net, layers)
            W[idx] -= 2 * h
            b = _energy(net, layers)
            W[idx] += h
            num[idx] = -(a - b) / (2 * h) / n
        np.testing.assert_allclose(to_numpy(upd[l]), num, rtol=1e-6, atol=1e-9)


def _cos(a, b):
    a, b = np.ravel(to_numpy(a)), np.ravel(to_numpy(b))
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _pair(sizes, activation, seed, **kw):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((16, sizes[0]))
    Y = rng.standard_normal((16, sizes[-1]))
    pcn = PCN(sizes=sizes, activation=activation, dtype="float64", random_state=seed,
              epochs=1, lr=1e-12, **kw).fit(X, Y)
    mlp = MLP(sizes=sizes, activation=activation, dtype="float64", random_state=seed,
              epochs=1, lr=1e-12).fit(X, Y)
    for l in range(1, len(sizes)):  # identical weights (also after the tiny first step)
        mlp.W_[l][...] = pcn.W_[l]
        mlp.b_[l][...] = pcn.b_[l]
    return pcn, mlp, X, Y


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "linear"])
def test_fixed_prediction_updates_equal_backprop(activation, backend):
    """Fixed predictions: PC updates are backprop's gradients (cosine >= 0.999; here ~1e-12)."""
    sizes = (6, 8, 7, 5, 3)
    pcn, mlp, X, Y = _pair(sizes, activation, seed=5, fixed_prediction=True, gamma=0.1, T=200,
                           backend=backend)
    bp = mlp.gradients(X, Y)
    pc = pcn.weight_updates(X, Y)
    for l in range(1, len(sizes)):
        assert _cos(pc[l], bp[l]) >= 0.999
        np.testing.assert_allclose(to_numpy(pc[l]), to_numpy(bp[l]), rtol=1e-6, atol=1e-8)
    # with gamma = 1 the errors are exact after L-1 steps
    pcn.set_params(gamma=1.0, T=len(sizes) - 2)
    pc = pcn.weight_updates(X, Y)
    for l in range(1, len(sizes)):
        np.testing.assert_allclose(to_numpy(pc[l]), to_numpy(bp[l]), rtol=1e-10, atol=1e-12)


def test_standard_pc_approaches_backprop_as_output_error_shrinks():
    """W&B 2017: with a large output variance (precision pi_L -> 0, so the precision-
    weighted output error eps_L = pi_L (t - mu_L) shrinks relative to the hidden
    errors), PC's weight updates / pi_L converge to backprop's."""
    sizes = (6, 10, 8, 4)
    cosines, rel_errors = [], []
    for pi_L in (1.0, 0.1, 0.01, 0.001):
        pcn, mlp, X, Y = _pair(sizes, "tanh", seed=1, T=400, gamma=0.2,
                               precisions=(1.0, 1.0, 1.0, pi_L))
        bp = mlp.gradients(X, Y)
        pc = pcn.weight_updates(X, Y)
        cosines.append(min(_cos(pc[l], bp[l]) for l in range(1, len(sizes))))
        rel_errors.append(max(
            np.linalg.norm(to_numpy(pc[l]) / pi_L - to_numpy(bp[l])) / np.linalg.norm(
                to_numpy(bp[l])) for l in range(1, len(sizes))))
    assert all(np.diff(cosines) > 0), cosines
    assert all(np.diff(rel_errors) < 0), rel_errors
    assert cosines[0] < 0.99  # the approximation is not exact at pi_L = 1 ...
    assert cosines[-1] >= 0.999  # ... and becomes so as the output error shrinks
    assert rel_errors[-1] < 0.01


def test_linear_pc_output_error_matches_closed_form():
    """Linear network, one hidden layer: at equilibrium eps_2 = (I + W2 W2^T)^{-1} (t - W2 h1),
    so scaling the target error alone does not make PC equal to backprop (the angle is
    independent of the error's size) — the analytic reason the test above shrinks pi_L."""
    sizes = (3, 5, 4)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 3))
    Y = rng.standard_normal((6, 4))
    net = PCN(sizes=sizes, activation="linear", dtype="float64", random_state=0, epochs=1,
              lr=1e-12, T=2000, gamma=0.1).fit(X, Y)
    layers = net.infer(X, Y, return_all=True)
    W2 = to_numpy(net.W_[2])
    ff = to_numpy(net.forward(X))
    want = (Y - ff) @ np.linalg.inv(np.eye(4) + W2 @ W2.T).T
    got = Y - layers[1] @ W2.T - to_numpy(net.b_[2])
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)


def test_incremental_pc_learns_and_lowers_energy():
    """iPC (weights move every inference step) reduces the training energy over epochs."""
    from predcode.datasets import load_digits_split

    Xtr, ytr, Xte, yte = load_digits_split(random_state=0)
    net = PCN(sizes=(64, 32, 10), update="incremental", epochs=8, lr=0.02, random_state=0,
              dtype="float64", backend="numba").fit(Xtr, ytr)
    E = net.history_["energy"]
    assert E[-1] < 0.5 * E[0]
    assert net.score(Xte, yte) > 0.85


def test_generative_pc_infers_latents_of_a_linear_model():
    """Generative, linear: settled latents are the MAP estimate of a Gaussian model.

    With x_1 = W x_0 + b + noise(pi_1) and x_0 ~ N(b_0, 1/pi_0), the posterior mode is
    (pi_0 I + pi_1 W^T W)^{-1} (pi_0 b_0 + pi_1 W^T (x_1 - b)).
    """
    rng = np.random.default_rng(4)
    X = rng.standard_normal((7, 6))
    net = PCN(sizes=(3, 6), mode="generative", activation="linear", dtype="float64",
              precisions=(0.5, 2.0), T=3000, gamma=0.05, random_state=0, epochs=1,
              lr=1e-12).fit(X)
    W, b, b0 = (to_numpy(v) for v in (net.W_[1], net.b_[1], net.b_[0]))
    A = 0.5 * np.eye(3) + 2.0 * W.T @ W
    want = np.linalg.solve(A, (0.5 * b0[:, None] + 2.0 * W.T @ (X - b).T)).T
    np.testing.assert_allclose(to_numpy(net.infer(X)), want, rtol=1e-8, atol=1e-10)


def test_generative_pc_learns_a_low_rank_dataset():
    """A 2-latent generative PCN fitted to rank-2 data explains nearly all its variance.

    The noise precision pi_1 = 10 is near the data's (true noise variance 0.0025): with
    pi_1 = 1 the MAP latents are shrunk toward the prior, as the Gaussian posterior says,
    and half the variance stays unexplained. pi_1 = 10 needs gamma ~ 0.01 (0.02 diverges).
    """
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((400, 2))
    A = rng.standard_normal((2, 8))
    X = Z @ A + 0.05 * rng.standard_normal((400, 8))
    net = PCN(sizes=(2, 8), mode="generative", activation="linear", dtype="float64",
              precisions=(1.0, 10.0), epochs=40, lr=0.01, T=200, gamma=0.01,
              random_state=0).fit(X)
    R = to_numpy(net.reconstruct(X))
    unexplained = np.sum((X - R) ** 2) / np.sum((X - X.mean(0)) ** 2)
    assert unexplained < 0.05
    assert net.history_["energy"][-1] < 0.2 * net.history_["energy"][0]


def test_backends_agree_on_training(backend):
    """numpy, numba (and cupy) give the same weights after training, float64."""
    from predcode.datasets import load_digits_split

    Xtr, ytr, _, _ = load_digits_split(random_state=0)
    Xtr, ytr = Xtr[:200], ytr[:200]
    if backend == "cupy":
        import cupy

        Xtr = cupy.asarray(Xtr)
    ref = PCN(sizes=(64, 16, 10), dtype="float64", backend="numpy", epochs=2,
              random_state=0).fit(to_numpy(Xtr), ytr)
    net = PCN(sizes=(64, 16, 10), dtype="float64", backend=backend, epochs=2,
              random_state=0).fit(Xtr, ytr)
    for l in (1, 2):
        np.testing.assert_allclose(to_numpy(net.W_[l]), to_numpy(ref.W_[l]), atol=1e-10)


@pytest.mark.parametrize("mode", ["discriminative", "generative"])
def test_threaded_settling_equals_one_thread(mode):
    """Issue 15 item 4: ``n_jobs=2`` settles the batch's two row blocks in threads and gives
    the one-thread fit (weights to 1e-6 of their scale in float32, energies to 1e-5):
    settling is per sample given the weights, the update runs on the whole batch."""
    from predcode.datasets import load_digits_split

    split = load_digits_split(random_state=0)
    X, y = split[0][:96], split[1][:96]
    kw = dict(sizes=(64, 32, 10), T=8, gamma=0.1, lr=0.01, epochs=2, batch_size=33,
              backend="numba", random_state=0)
    if mode == "generative":
        kw["sizes"] = (8, 32, 64)
        nets = [PCN(mode=mode, n_jobs=j, **kw).fit(X) for j in (1, 2)]
    else:
        nets = [PCN(n_jobs=j, **kw).fit(X, y) for j in (1, 2)]
    one, two = nets
    for a, b in zip(one.W_[1:] + one.b_, two.W_[1:] + two.b_, strict=True):
        np.testing.assert_allclose(b, a, atol=1e-6 * max(np.abs(a).max(), 1e-3), rtol=0)
    np.testing.assert_allclose(two.history_["energy"], one.history_["energy"], rtol=1e-5)
    assert two._row_blocks(33, learn=True) == [slice(0, 16), slice(16, 33)]
    if mode == "discriminative":
        inc = PCN(update="incremental", n_jobs=2, **kw).fit(X, y)
        assert inc._row_blocks(33, learn=True) == [slice(0, 33)]  # weights move: one thread
        with pytest.raises(ValidationError, match=r"^PCN.n_jobs"):
            PCN(n_jobs=0, **kw).fit(X, y)
