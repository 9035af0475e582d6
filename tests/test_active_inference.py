"""Discrete-state active inference: validation, inference, expected free energy, learning.

Sources of the expected values: hand calculation (two-state example, Bayes'
rule), Da Costa et al. (2020) eqs. 8-12 (risk, ambiguity, novelty, precision),
and the T-maze behaviour of Friston et al. (2015, 2017).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from predcode.backend import to_numpy
from predcode.envs import MDPProcess, cue_chaining, gridworld, tmaze
from predcode.exceptions import ValidationError
from predcode.kernels import get_kernel
from predcode.models import active_inference as aif

from .conftest import tolerance


def _two_state(C=(1.0, 0.0)):
    A = np.array([[0.9, 0.2], [0.1, 0.8]])
    B = np.stack([np.eye(2), np.eye(2)[::-1]], axis=-1)  # stay, switch
    return aif.make_model([A], [B], [np.array(C)], [np.array([0.3, 0.7])], T=2)


# ----------------------------------------------------------------- validation
def test_unnormalised_A_names_modality_and_column():
    A0 = np.full((2, 3), 0.5)
    A1 = np.array([[0.5, 0.2, 1.0], [0.5, 0.7, 0.0]])  # column 1 sums to 0.9
    with pytest.raises(ValidationError, match=r"A\[1\].*index \(1,\).*0\.9.*Normalise"):
        aif.make_model([A0, A1], [np.eye(3)[:, :, None]])


def test_wrong_B_for_number_of_actions():
    A = np.eye(2)
    B = np.stack([np.eye(2), np.eye(2)], axis=-1)  # two actions
    with pytest.raises(ValidationError, match=r"policies\[:, :, 0\].*action 2.*B\[0\] has 2"):
        aif.make_model([A], [B], policies=np.array([[0], [2]]))
    with pytest.raises(ValidationError, match=r"B\[0\].*square"):
        aif.make_model([A], [np.ones((2, 3, 1)) / 2])


def test_mismatched_factors_and_modalities():
    A = np.full((2, 2, 3), 0.5)  # expects factors of sizes (2, 3)
    with pytest.raises(ValidationError, match=r"A\[0\].*sizes \(2,\).*got \(2, 2, 3\)"):
        aif.make_model([A], [np.eye(2)[:, :, None]])
    with pytest.raises(ValidationError, match=r"D: has 1 factors but B has 2"):
        aif.make_model([A], [np.eye(2)[:, :, None], np.eye(3)[:, :, None]], D=[np.ones(2) / 2])
    with pytest.raises(ValidationError, match=r"C: has 2 modalities but A has 1"):
        aif.make_model([A], [np.eye(2)[:, :, None], np.eye(3)[:, :, None]],
                       C=[np.zeros(2), np.zeros(2)])
    with pytest.raises(ValidationError, match=r"D\[0\].*shape \(2,\)"):
        aif.make_model([np.eye(2)], [np.eye(2)[:, :, None]], D=[np.ones(3) / 3])
    with pytest.raises(ValidationError, match=r"D\[0\]: must sum to 1, sums to 0.8"):
        aif.make_model([np.eye(2)], [np.eye(2)[:, :, None]], D=[np.array([0.4, 0.4])])


def test_negative_nan_and_bad_observations():
    with pytest.raises(ValidationError, match=r"A\[0\].*>= 0"):
        aif.make_model([np.array([[1.5, 0.0], [-0.5, 1.0]])], [np.eye(2)[:, :, None]])
    with pytest.raises(ValidationError, match=r"B\[0\].*NaN"):
        aif.make_model([np.eye(2)], [np.full((2, 2, 1), np.nan)])
    m = _two_state()
    with pytest.raises(ValidationError, match=r"obs\[..., 0\].*0..1"):
        aif.infer_states_fpi(m, np.array([2]))
    with pytest.raises(ValidationError, match=r"run_trials.alpha"):
        aif.run_trials(m, MDPProcess(m.A, m.B, m.D), alpha=-1.0)


# ----------------------------------------------------------------- inference
def test_fpi_equals_bayes_rule_and_handles_zero_probabilities():
    """One factor: q(s) = D * A[o] / Z exactly; an impossible state gets ~0, never NaN."""
    A = np.array([[1.0, 0.5, 0.0], [0.0, 0.5, 1.0]])
    D = np.array([0.2, 0.3, 0.5])
    m = aif.make_model([A], [np.eye(3)[:, :, None]], D=[D])
    q = aif.infer_states_fpi(m, np.array([0]))[0]
    exact = D * A[0] / (D * A[0]).sum()
    np.testing.assert_allclose(q, exact, atol=1e-6)
    assert np.all(np.isfinite(q)) and abs(q.sum() - 1) < 1e-12


def test_fpi_two_factors_converges_to_mean_field_fixed_point():
    rng = np.random.default_rng(0)
    A = rng.dirichlet(np.ones(4), size=(3, 2)).transpose(2, 0, 1)  # (4, 3, 2)
    m = aif.make_model([A], [np.eye(3)[:, :, None], np.eye(2)[:, :, None]])
    q1, q2 = aif.infer_states_fpi(m, np.array([1]), n_iter=200, tol=1e-14)
    lnA = np.log(A[1] + aif.LOG_FLOOR)
    np.testing.assert_allclose(q1, aif.softmax(np.log(m.D[0] + aif.LOG_FLOOR) + lnA @ q2),
                               atol=1e-10)
    np.testing.assert_allclose(q2, aif.softmax(np.log(m.D[1] + aif.LOG_FLOOR) + q1 @ lnA),
                               atol=1e-10)


def test_mmp_single_step_is_exact_bayes():
    """T = 1: the message-passing fixed point is ln s = ln D + ln A[o] (Bayes' rule)."""
    A = np.array([[0.7, 0.1], [0.3, 0.9]])
    D = np.array([0.6, 0.4])
    m = aif.make_model([A], [np.eye(2)[:, :, None]], D=[D], T=1)
    st = aif._batched(m, 1, np, np.float64)
    qs = [np.full((1, 1, 1, 2), 0.5)]
    qs, F = aif.marginal_message_passing(m, st, np.array([[[1]]]), 0, qs, n_iter=64)
    post = D * A[1] / (D * A[1]).sum()
    np.testing.assert_allclose(qs[0][0, 0, 0], post, atol=1e-6)
    # at the exact posterior, F = -ln P(o) (the negative log evidence)
    np.testing.assert_allclose(F[0, 0], -np.log((D * A[1]).sum()), atol=1e-5)


# ----------------------------------------------------------------- expected free energy
def test_expected_free_energy_by_hand_two_states():
    """Risk + ambiguity of each policy computed by hand (Da Costa et al. 2020, eq. 8)."""
    m = _two_state(C=(1.0, 0.0))
    A = m.A[0]
    s0 = np.array([0.3, 0.7])
    lnC = np.log(np.exp([1.0, 0.0]) / np.exp([1.0, 0.0]).sum())
    H = -(A * np.log(A)).sum(axis=0)
    st = aif._batched(m, 1, np, np.float64)
    qs = [np.zeros((1, 2, 2, 2))]
    for p, u in enumerate(m.policies[:, 0, 0]):
        qs[0][0, p, 0] = s0
        qs[0][0, p, 1] = m.B[0][:, :, u] @ s0
    G, terms = aif.expected_free_energy(m, st, qs, 0, backend="numpy")
    for p, u in enumerate(m.policies[:, 0, 0]):
        s1 = m.B[0][:, :, u] @ s0
        o = A @ s1
        risk = o @ (np.log(o) - lnC)
        amb = H @ s1
        np.testing.assert_allclose(terms["risk"][0, p], risk, atol=1e-6)
        np.testing.assert_allclose(terms["ambiguity"][0, p], amb, atol=1e-6)  # e^-16 floor
        np.testing.assert_allclose(G[0, p], risk + amb, atol=1e-6)
    # switching to state 0 (more likely to emit the preferred outcome 0) is better
    assert G[0, 1] < G[0, 0]
    # numbers written out: stay: o = (0.41, 0.59); switch: o = (0.69, 0.31)
    np.testing.assert_allclose(A @ s0, [0.41, 0.59], atol=1e-12)


def test_novelty_weights_by_hand_and_attraction():
    a = np.array([[1.0, 10.0, 0.0], [1.0, 10.0, 2.0]])
    W = aif.novelty_weights(a)
    np.testing.assert_allclose(W[:, 0], 0.5 * (1 / 1 - 1 / 2))
    np.testing.assert_allclose(W[:, 1], 0.5 * (1 / 10 - 1 / 20))
    np.testing.assert_allclose(W[:, 2], [0.0, 0.5 * (1 / 2 - 1 / 2)])
    # two places with the same expected likelihood; the one with fewer counts is novel
    A_counts = np.array([[1.0, 50.0], [1.0, 50.0]])
    B = np.stack([np.tile([[1.0], [0.0]], (1, 2)), np.tile([[0.0], [1.0]], (1, 2))], axis=-1)
    m = aif.make_model([np.full((2, 2), 0.5)], [B], a=[A_counts], T=2)
    st = aif._batched(m, 1, np, np.float64)
    qs = [np.zeros((1, 2, 2, 2))]
    qs[0][0, :, 0] = 0.5
    qs[0][0, 0, 1] = [1, 0]
    qs[0][0, 1, 1] = [0, 1]
    G, terms = aif.expected_free_energy(m, st, qs, 0, backend="numpy")
    assert terms["novelty"][0, 0] > terms["novelty"][0, 1] > 0
    assert G[0, 0] < G[0, 1]
    G0, _ = aif.expected_free_energy(m, st, qs, 0, novelty=False, backend="numpy")
    np.testing.assert_allclose(G0[0, 0], G0[0, 1])


# ----------------------------------------------------------------- policies and precision
def test_policy_posterior_and_precision_update():
    G = np.array([[1.0, 2.0, 3.0]])
    lnE = np.log(np.array([0.2, 0.3, 0.5]))
    q, q0, gamma = aif.policy_posterior(G, np.zeros_like(G), lnE, beta=1.0)
    np.testing.assert_allclose(q, aif.softmax(lnE - G), atol=1e-12)
    np.testing.assert_allclose(gamma, 1.0)
    # evidence F favouring the low-G policy raises precision: beta_q = beta + (pi - pi0).G
    F = np.array([[0.0, 3.0, 3.0]])
    q, q0, gamma = aif.policy_posterior(G, F, lnE, beta=1.0, n_iter=200)
    assert gamma[0] > 1.0
    np.testing.assert_allclose(1 / gamma[0], 1.0 + ((q - q0) * G).sum(), atol=1e-8)
    mask = np.array([[False, True, True]])
    q, _, _ = aif.policy_posterior(G, F, lnE, mask=mask)
    assert q[0, 0] == 0 and abs(q.sum() - 1) < 1e-12


def test_select_action_deterministic_and_alpha():
    V = np.array([[[0]], [[1]], [[1]]])
    q = np.array([[0.6, 0.3, 0.1], [0.1, 0.45, 0.45]])
    u, probs = aif.select_action(q, V, 0, (2,), mode="deterministic")
    np.testing.assert_array_equal(u[:, 0], [0, 1])
    # alpha = 512: P(u) = 0.6^512 / (0.6^512 + 0.4^512) = 1 to double precision
    np.testing.assert_allclose(probs[0][0], [1.0, 0.0], atol=1e-12)
    # alpha = 1: P(u) is the policy-marginal itself
    u, probs = aif.select_action(q, V, 0, (2,), alpha=1.0, rng=np.random.default_rng(0))
    np.testing.assert_allclose(probs[0], [[0.6, 0.4], [0.1, 0.9]], atol=1e-6)
    draws = np.concatenate([aif.select_action(np.repeat(q[:1], 2000, 0), V, 0, (2,), alpha=1.0,
                                              rng=np.random.default_rng(1))[0][:, 0]])
    assert abs(draws.mean() - 0.4) < 0.04  # binomial sd 0.011


# ----------------------------------------------------------------- kernels
def test_kernels_match_reference(fast_backend, xp):
    rng = np.random.default_rng(1)
    for dtype in (np.float64, np.float32):
        N, P, S, O = 3, 5, 6, 4
        big = rng.dirichlet(np.ones(20), size=(N, 7))  # BLAS path of the numba kernel
        Bbig = rng.dirichlet(np.ones(20), size=(N, 20, 3)).transpose(0, 3, 1, 2)
        ubig = rng.integers(0, 3, size=7)
        np.testing.assert_allclose(
            to_numpy(get_kernel("aif_propagate", fast_backend)(xp.asarray(Bbig), xp.asarray(big),
                                                               ubig)),
            get_kernel("aif_propagate", "numpy")(Bbig, big, ubig), atol=1e-12)
        qs = rng.dirichlet(np.ones(S), size=(N, P)).astype(dtype)
        A = rng.dirichlet(np.ones(O), size=(N, S)).transpose(0, 2, 1).astype(dtype)
        A[:, :, 0] = 0
        A[:, 0, 0] = 1  # a column with zeros: log 0 handled
        lnC = np.log(rng.dirichlet(np.ones(O), size=N)).astype(dtype)
        H = rng.random((N, S)).astype(dtype)
        W = rng.random((N, O, S)).astype(dtype)
        ref = get_kernel("aif_efe", "numpy")(qs, A, lnC, H, W)
        got = get_kernel("aif_efe", fast_backend)(*(xp.asarray(x) for x in (qs, A, lnC, H, W)))
        assert np.all(np.isfinite(ref))
        np.testing.assert_allclose(to_numpy(got), ref, rtol=tolerance(dtype),
                                   atol=tolerance(dtype))
        Bm = rng.dirichlet(np.ones(S), size=(N, S, 3)).transpose(0, 3, 1, 2).astype(dtype)
        u = rng.integers(0, 3, size=P)
        ref = get_kernel("aif_propagate", "numpy")(Bm, qs, u)
        loop = np.stack([[Bm[n, :, :, u[p]] @ qs[n, p] for p in range(P)] for n in range(N)])
        np.testing.assert_allclose(ref, loop, rtol=tolerance(dtype), atol=tolerance(dtype))
        got = get_kernel("aif_propagate", fast_backend)(xp.asarray(Bm), xp.asarray(qs), u)
        np.testing.assert_allclose(to_numpy(got), ref, rtol=tolerance(dtype),
                                   atol=tolerance(dtype))
        lnq = np.log(rng.dirichlet(np.ones(S), size=(N, P))).astype(dtype)
        v = rng.normal(size=(N, P, S)).astype(dtype)
        ref = get_kernel("aif_belief_step", "numpy")(lnq, v, 4.0)
        got = get_kernel("aif_belief_step", fast_backend)(xp.asarray(lnq), xp.asarray(v), 4.0)
        np.testing.assert_allclose(to_numpy(got), ref, rtol=tolerance(dtype),
                                   atol=tolerance(dtype))


def test_backends_agree_on_trials(fast_backend):
    m, p = tmaze()
    ref = aif.run_trials(m, p, n_agents=8, n_trials=2, backend="numpy", random_state=3)
    got = aif.run_trials(m, p, n_agents=8, n_trials=2, backend=fast_backend, random_state=3)
    np.testing.assert_array_equal(ref["actions"], got["actions"])
    np.testing.assert_allclose(ref["q_pi"], got["q_pi"], atol=1e-8)


# ----------------------------------------------------------------- random models
@st.composite
def random_models(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    F = draw(st.integers(1, 2))
    ns = [draw(st.integers(2, 3)) for _ in range(F)]
    nu = [draw(st.integers(1, 2)) for _ in range(F)]
    M = draw(st.integers(1, 2))
    no = [draw(st.integers(2, 3)) for _ in range(M)]
    sparse = draw(st.booleans())
    A = []
    for o in no:
        a = rng.dirichlet(np.full(o, 0.5), size=tuple(ns))
        if sparse:  # zero-probability entries, renormalised
            a = np.where(rng.random(a.shape) < 0.3, 0.0, a)
            a[..., 0] += (a.sum(-1) == 0)
            a /= a.sum(-1, keepdims=True)
        A.append(np.moveaxis(a, -1, 0))
    B = [np.moveaxis(rng.dirichlet(np.full(s, 0.5), size=(u, s)), (0, 1, 2), (2, 1, 0))
         for s, u in zip(ns, nu, strict=True)]
    C = [rng.normal(size=o) for o in no]
    D = [rng.dirichlet(np.ones(s)) for s in ns]
    return aif.make_model(A, B, C, D, T=3), seed


@given(random_models())
def test_random_models_stay_normalised(case):
    """Posteriors over states and policies sum to one, nothing is NaN, G is finite."""
    m, seed = case
    rng = np.random.default_rng(seed)
    obs = np.array([rng.integers(0, n) for n in m.n_outcomes])
    for q in aif.infer_states_fpi(m, obs):
        assert np.all(np.isfinite(q)) and abs(q.sum() - 1) < 1e-9 and np.all(q >= 0)
    r = aif.run_trials(m, MDPProcess(m.A, m.B, m.D), n_agents=2, backend="numpy",
                       random_state=seed)
    assert np.all(np.isfinite(r["q_pi"])) and np.all(np.isfinite(r["G"]))
    np.testing.assert_allclose(r["q_pi"].sum(-1), 1.0, atol=1e-9)
    for X in r["X"]:
        np.testing.assert_allclose(X.sum(-1), 1.0, atol=1e-9)
    assert np.all(r["gamma"] > 0)


# ----------------------------------------------------------------- learning
def test_dirichlet_counts_accumulate():
    """d grows by eta * (final belief about the initial state) each trial; zeros stay zero."""
    m, p = tmaze(context=0, learn_context=True, d0=0.25)
    r = aif.run_trials(m, p, n_agents=4, n_trials=3, eta=0.5, backend="numpy", random_state=0)
    d_loc, d_ctx = r["d"]
    np.testing.assert_allclose(d_ctx.sum(axis=1), 0.5 + 3 * 0.5)
    np.testing.assert_allclose(d_loc[:, 1:], 0.0)
    np.testing.assert_allclose(d_loc[:, 0], 1.0 + 3 * 0.5)
    expected = 0.25 + 0.5 * r["X"][1][:, :, 0].sum(axis=0)
    np.testing.assert_allclose(d_ctx, expected, atol=1e-10)


def test_learning_a_and_b_counts():
    A = np.array([[0.5, 0.5], [0.5, 0.5]])
    B = np.stack([np.eye(2), np.eye(2)[::-1]], axis=-1)
    a = np.ones((2, 2))
    b = np.ones((2, 2, 2))
    m = aif.make_model([A], [B], a=[a], b=[b], T=3)
    proc = MDPProcess([np.eye(2)], [B], [np.array([1.0, 0.0])])
    r = aif.run_trials(m, proc, n_agents=2, n_trials=2, backend="numpy", random_state=0)
    np.testing.assert_allclose(r["a"][0].sum(axis=(1, 2)), 4 + 2 * 3)  # 3 outcomes per trial
    np.testing.assert_allclose(r["b"][0].sum(axis=(1, 2, 3)), 8 + 2 * 2)  # 2 moves per trial


# ----------------------------------------------------------------- behaviour
def test_tmaze_agent_samples_cue_then_reward():
    """Friston et al. (2015, 2017): the agent first samples the cue, then the baited arm."""
    m, p = tmaze()
    r = aif.run_trials(m, p, n_agents=100, backend="numba", random_state=0)
    cue_first = (r["actions"][0, :, 0, 0] == 3).mean()
    reward = (r["obs"][0, :, 2, 1] == 1).mean()
    assert cue_first >= 0.95
    assert reward >= 0.9  # 0.98 at best
    r0 = aif.run_trials(m, p, n_agents=100, epistemic=False, backend="numba", random_state=0)
    assert (r0["obs"][0, :, 2, 1] == 1).mean() < reward - 0.2
    assert (r0["actions"][0, :, 0, 0] == 3).mean() < 0.7


def test_tmaze_context_learning_stops_cue_visits():
    """With a fixed context the agent learns d and goes straight to the arm (Friston 2016)."""
    m, p = tmaze(context=0, learn_context=True, d0=1.0)
    r = aif.run_trials(m, p, n_agents=5, n_trials=8, backend="numba", random_state=0)
    cue = (r["actions"][:, :, 0, 0] == 3).mean(axis=1)
    assert cue[0] == 1.0 and cue[-1] == 0.0
    assert r["d"][1][:, 0].min() > 5 * r["d"][1][:, 1].max()


def test_gridworld_reaches_goal():
    m, p = gridworld((2, 2), T=3)
    r = aif.run_trials(m, p, n_agents=10, backend="numba", random_state=0)
    assert (r["states"][0, :, -1, 0] == 3).all()


def test_cue_chaining_model_shapes():
    m, _ = cue_chaining(n_cue2=2)
    assert m.n_states == (6, 2, 2) and m.n_outcomes == (6, 5, 3)
    # arms absorbing: only one continuation after entering an arm
    arms = m.names["arms"]
    for v in m.policies[:, :, 0]:
        for i in range(2):
            if v[i] in arms:
                assert v[i + 1] == v[i]


def _bandit(counts_b: float):
    """Start, arm A (well known), arm B (counts ``counts_b``): same expected outcomes."""
    A = np.array([[1.0, 0.5, 0.5], [0.0, 0.5, 0.5]])
    a = np.array([[100.0, 10.0, counts_b], [0.0, 10.0, counts_b]])
    B = np.zeros((3, 3, 3))
    for u in range(3):
        B[u, :, u] = 1.0
    m = aif.make_model([A], [B], a=[a], T=2)
    return m, MDPProcess([A], [B], [np.eye(3)[0]])


def test_novelty_makes_uncertain_parameters_attractive():
    """Da Costa et al. (2020): with equal expected outcomes, the arm with fewer counts wins."""
    m, p = _bandit(1.0)
    r = aif.run_trials(m, p, n_agents=20, backend="numpy", random_state=0)
    assert (r["actions"][0, :, 0, 0] == 2).all()
    r = aif.run_trials(m, p, n_agents=200, novelty=False, backend="numpy", random_state=0)
    # without novelty G is ln 2 for all three moves (risk + ambiguity by hand): indifferent
    frac = np.bincount(r["actions"][0, :, 0, 0], minlength=3) / 200
    np.testing.assert_allclose(frac, 1 / 3, atol=0.1)  # binomial sd 0.033
    # as the counts of arm B grow over trials its novelty falls below arm A's
    r = aif.run_trials(m, p, n_agents=1, n_trials=40, backend="numpy", random_state=0)
    first = r["actions"][:, 0, 0, 0]
    assert first[0] == 2 and (first == 1).any()  # B first; A once B has more counts
    switch = int(np.argmax(first == 1))
    counts = r["a"][0][0].sum(axis=0)
    assert counts[2] > 20 and counts[1] > 20  # both arms' likelihoods were learned
    assert switch >= 10  # B is sampled until its counts approach A's 20


def test_float32_trials_match_float64():
    m, p = tmaze()
    r64 = aif.run_trials(m, p, n_agents=16, backend="numba", random_state=5)
    r32 = aif.run_trials(m, p, n_agents=16, backend="numba", dtype="float32", random_state=5)
    np.testing.assert_array_equal(r64["actions"], r32["actions"])
    np.testing.assert_allclose(r64["q_pi"], r32["q_pi"], atol=1e-4)


# ----------------------------------------------------------------- the Agent (protocol model)
def _agent_from(m, **kw):
    return aif_agent(list(m.A), list(m.B), list(m.C), list(m.D), m.E, m.policies, m.T,
                     backend="numpy", **kw)


def aif_agent(*args, **kw):
    from predcode.models import Agent

    return Agent(*args, **kw)


def test_agent_infer_equals_message_passing_and_bayes():
    """Agent.infer/energy are marginal_message_passing + the policy average, exactly."""
    m, p = tmaze()
    agent = _agent_from(m, learn_A=False, random_state=0)
    r = agent.run(p, 1, n_agents=6)
    O, U = r["obs"][0], r["actions"][0]
    agent.fit(O, U)
    st = aif._batched(m, 6, np, np.float64)
    qs = [np.full((6, m.n_policies, m.T, s), 1.0 / s) for s in m.n_states]
    qs, Fpi = aif.marginal_message_passing(m, st, O, m.T - 1, qs)
    mask = np.all(m.policies[None] == U[:, None], axis=(-1, -2))
    v = np.where(mask, np.log(m.E + aif.LOG_FLOOR) - Fpi, -np.inf)
    q = np.exp(v - v.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    X = np.concatenate([np.einsum("np,npts->nts", q, x) for x in qs], axis=-1)
    np.testing.assert_array_equal(agent.infer(O, U), X)
    F = -np.log(np.sum(np.exp(v), axis=1))
    np.testing.assert_allclose(agent.energy(O, U), F, rtol=1e-12)
    assert agent.score(O, U) == pytest.approx(-F.mean(), rel=1e-12)
    # one step, one factor: Bayes' rule, as infer_states_fpi
    A = np.array([[0.7, 0.1], [0.3, 0.9]])
    D = np.array([0.6, 0.4])
    m1 = aif.make_model([A], [np.eye(2)[:, :, None]], D=[D], T=1)
    a1 = aif_agent([A], [np.eye(2)[:, :, None]], D=[D], T=1, n_iter=64, learn_A=False,
                   backend="numpy").fit(np.array([[1], [0]]))
    fpi = aif.infer_states_fpi(m1, np.array([[1], [0]]))[0]
    np.testing.assert_allclose(a1.infer(np.array([[1], [0]]))[:, 0], fpi, atol=1e-6)
    # and the free energy is then minus the log evidence
    np.testing.assert_allclose(a1.energy(np.array([[1], [0]])),
                               -np.log([(D * A[1]).sum(), (D * A[0]).sum()]), atol=1e-5)


def test_agent_learning_accumulates_dirichlet_counts():
    """fit adds lr * sum_n,t o (x) s_bar to pA and lr * sum_n s_bar_0 to pD, per pass."""
    rng = np.random.default_rng(1)
    A = rng.dirichlet(np.ones(3), size=2).T  # (3 outcomes, 2 states)
    B = np.eye(2)[:, :, None]
    pA = np.full((3, 2), 2.0)
    O = rng.integers(0, 3, size=(7, 3))
    agent = aif_agent([A], [B], T=3, pA=[pA], pD=[np.ones(2)], lr=0.5, backend="numpy")
    agent.partial_fit(O)
    # the posterior under the prior counts (a second agent that learns nothing)
    ref = aif_agent([pA / pA.sum(0)], [B], T=3, learn_A=False, backend="numpy").fit(O)
    s = ref.infer(O)  # (7, 3, 2)
    onehot = np.eye(3)[O]  # (7, 3, 3)
    np.testing.assert_allclose(agent.a_[0], pA + 0.5 * np.einsum("nto,nts->os", onehot, s),
                               rtol=1e-12)
    np.testing.assert_allclose(agent.d_[0], 1.0 + 0.5 * s[:, 0].sum(0), rtol=1e-12)
    # batch_size=1 is trial-by-trial (SPM): each trial sees the counts of the previous ones
    seq = aif_agent([A], [B], T=3, pA=[pA], lr=0.5, batch_size=1, backend="numpy").fit(O)
    a = pA.copy()
    for n in range(len(O)):
        s_n = aif_agent([a / a.sum(0)], [B], T=3, learn_A=False, backend="numpy"
                        ).fit(O[n:n + 1]).infer(O[n:n + 1])[0]
        a = a + 0.5 * np.eye(3)[O[n]].T @ s_n
    np.testing.assert_allclose(seq.a_[0], a, rtol=1e-10)
    # learning lowers the free energy of the data it saw
    more = aif_agent([A], [B], T=3, pA=[pA], epochs=5, backend="numpy").fit(O)
    assert more.history_["energy"][-1] < more.history_["energy"][0]


def test_agent_learns_B_with_actions_and_run_matches_run_trials():
    m, p = tmaze(learn_context=True, context=0, d0=4.0)
    agent = aif_agent(list(m.A), list(m.B), list(m.C), list(m.D), m.E, m.policies, m.T,
                      pD=list(m.d), learn_A=False, backend="numpy", random_state=2)
    r = agent.run(p, 3, n_agents=4)
    ref = aif.run_trials(m, p, n_agents=4, n_trials=3, backend="numpy", random_state=2)
    for k in ("obs", "actions", "q_pi"):
        np.testing.assert_array_equal(r[k], ref[k])
    with pytest.raises(ValidationError, match=r"Agent.fit: learning B .*actions"):
        aif_agent(list(m.A), list(m.B), T=m.T, policies=m.policies,
                  pB=[np.ones_like(b) for b in m.B], backend="numpy").fit(r["obs"][0])
    with pytest.raises(ValidationError, match=r"Agent.fit: O\[..., 1\] must lie in 0..2"):
        agent.fit(np.full((2, 3, 3), 3))
    acts = np.zeros((4, 2, 2), dtype=np.int64)
    acts[0, :, 0] = (1, 0)  # into the left arm, then back: no policy does that
    with pytest.raises(ValidationError, match=r"actions\[0\] is not one of the agent's"):
        agent.fit(r["obs"][0], acts)
    # given the actions, B's counts grow only for the action taken
    pB = [np.ones_like(b) * (b > 0) + 0.0 for b in m.B]
    ab = aif_agent(list(m.A), list(m.B), T=m.T, policies=m.policies, pB=pB, learn_A=False,
                   backend="numpy").fit(r["obs"][0], r["actions"][0])
    X = ab.infer(r["obs"][0], r["actions"][0], split=True)[0]  # location factor
    want = pB[0].copy()
    for n in range(4):
        for t in range(1, m.T):
            u = r["actions"][0][n, t - 1, 0]
            want[:, :, u] += np.outer(X[n, t], X[n, t - 1]) * (pB[0][:, :, u] > 0)
    np.testing.assert_allclose(ab.b_[0], want, rtol=1e-12)
