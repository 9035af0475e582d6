"""predcode side of the active-inference peer cases (issue 15, item 1; peer: ``worker_pymdp.py``).

The grid is ``predcode/bench/aif.py``'s: ``random_model(S, P)`` there (one hidden
factor of ``S`` states, 4 actions, one modality of ``S`` outcomes, ``T = 3``,
``P`` two-move policies drawn from the 16 sequences, seed 0) for S in 4, 16, 64 and
P in 16, 64, 256, times ``N`` = 1 and 64 agents: 18 cells per variant. Two variants,
two case-name prefixes (``VARIANTS``):

``aif_s{S}_p{P}_n{N}`` -- pymdp semantics, compared with pymdp
    :func:`predcode.models.active_inference.run_trials` with ``scheme="pymdp"`` (pymdp
    1.0's ``Agent(inference_algo="mmp")`` scheme, the semantics of
    :func:`~predcode.models.pymdp_mdp.pymdp_replay_trials`, checked against pymdp in
    ``tests/test_pymdp_parity.py``; one fused ``aif_pymdp_step`` kernel call per step
    for all agents, numba backend) replays one trial of each of the ``N`` agents on
    exported, clamped outcomes and actions (``clamp=dict(o=..., u=...)``): at every step
    ``t`` state inference on the window ``0..t`` (16 MMP sweeps) and, for ``t < T - 1``,
    -G of every policy's remaining moves, q(pi) (gamma = 1) and the deterministic
    action. pymdp does the same with ``infer_states`` + ``infer_policies`` +
    ``sample_action`` on a batched agent (``worker_pymdp.py``). The outcomes are drawn
    from the model's process (``MDPProcess``) under uniformly random actions; the
    actions are clamped (the agents' own choices are computed and checked, not fed
    back), so both sides do the same work on the same data.
``aifspm_s{S}_p{P}_n{N}`` -- predcode's own scheme, time only
    :func:`predcode.models.active_inference.run_trials` exactly as ``predcode bench
    aif`` runs it (``scheme="predcode"``, SPM's family: per-policy marginal message
    passing, ``F(pi)``, precision updates, ``d`` learning, actions sampled, the
    environment stepped; numba backend). It has no peer of the same semantics:
    ``outputs()`` is empty (nothing to compare); ``driver.py`` times it against
    pymdp's ``aif_*`` case of the same cell (``peer_case``), as a different scheme:
    timing only, never a checked comparison.

One ``run()`` is one trial of ``T = 3`` time steps for all ``N`` agents
(``STEPS_PER_RUN``): ms per step = run time / 3. float64 on both sides (the
bench's ``run_trials`` default is float64; pymdp runs with ``jax_enable_x64``).

Check (``aif_s*`` only, float64): ``qs_t{t}`` (N, t+1, S) the state posteriors of
step ``t``'s window, ``q_pi`` (N, T-1, P), ``neg_efe`` (N, T-1, P), ``action``
(N, T-1, 1) (exact). Tolerances ``AIF_TOL`` (1e-9, the parity test's). Measured
over all 18 cells (seed 0): qs 5.0e-16, q(pi) 2.5e-16, -G 4.4e-15 max-abs, actions
identical.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from predcode.bench.aif import random_model
from predcode.models.active_inference import run_trials
from predcode.models.pymdp_mdp import pymdp_replay_trials

__all__ = ["CASES", "VARIANTS", "AIF_TOL", "STEPS_PER_RUN", "STATES", "POLICIES", "AGENTS",
           "peer_case", "export_inputs"]

STATES = (4, 16, 64)
POLICIES = (16, 64, 256)
AGENTS = (1, 64)
T = 3
STEPS_PER_RUN = T
NUM_ITER = 16
GAMMA = 1.0
SEED = 0

VARIANTS = {
    "aif": "pymdp semantics: predcode run_trials(scheme='pymdp') (fused kernel, numba) vs "
           "pymdp 1.0.4 Agent(inference_algo='mmp'), clamped outcomes and actions; checked",
    "aifspm": "predcode run_trials (scheme='predcode', what `predcode bench aif` times); "
              "predcode only, time only; compare with the peers' aif_* of the same cell",
}

# |peer - predcode| <= atol + rtol * |predcode| elementwise (float64 on both sides).
AIF_TOL = {"qs_t*": {"rtol": 0.0, "atol": 1e-9}, "q_pi": {"rtol": 0.0, "atol": 1e-9},
           "neg_efe": {"rtol": 1e-9, "atol": 1e-9}, "action": {"rtol": 0.0, "atol": 0.0}}


def parse(name: str) -> tuple[str, int, int, int]:
    """``"aif_s4_p16_n1"`` -> ``("aif", 4, 16, 1)`` (``"aifspm_..."`` -> ``("aifspm", ...)``)."""
    prefix, s, p, n = name.split("_")
    return prefix, int(s[1:]), int(p[1:]), int(n[1:])


def peer_case(name: str) -> str:
    """The peers' case of the same cell as ``name`` (``aifspm_*`` -> ``aif_*``)."""
    prefix, s, p, n = parse(name)
    return f"aif_s{s}_p{p}_n{n}"


def pymdp_C(model) -> np.ndarray:
    """SPM's meaning of ``model.C`` as pymdp adds it to -G: ``ln(softmax(C) + 1e-16)``."""
    c = np.asarray(model.C[0], float)
    c = c[:, 0] if c.ndim == 2 else c
    e = np.exp(c - c.max())
    return np.log(e / e.sum() + 1e-16)


def export_inputs(S: int, P: int, N: int, seed: int = SEED) -> dict[str, np.ndarray]:
    """Model arrays (as pymdp gets them) and one clamped trial per agent."""
    model, process = random_model(S, P, random_state=seed)
    rng = np.random.default_rng(seed + 1)
    acts = rng.integers(0, model.B[0].shape[2], size=(N, T - 1, 1))
    obs = np.zeros((N, T, 1), dtype=np.int64)
    o, state = process.reset(N, rng)
    obs[:, 0] = o
    for t in range(T - 1):
        o, state = process.step(state, acts[:, t], rng)
        obs[:, t + 1] = o
    A = np.asarray(model.A[0], float)
    return {
        "A0": A / A.sum(axis=0, keepdims=True), "B0": np.asarray(model.B[0], float),
        "C0": pymdp_C(model), "D0": np.asarray(model.D[0], float),
        "E": np.asarray(model.E, float), "policies": np.asarray(model.policies),
        "obs": obs, "actions": acts.astype(np.int64),
        "gamma": np.array(GAMMA), "num_iter": np.array(NUM_ITER),
        "S": np.array(S), "P": np.array(P), "N": np.array(N), "seed": np.array(seed),
        "check_tol": np.array(json.dumps(AIF_TOL)),
    }


def _case_model(inputs: dict[str, np.ndarray]):
    S, P, seed = int(inputs["S"]), int(inputs["P"]), int(inputs["seed"])
    model, process = random_model(S, P, random_state=seed)
    A = np.asarray(model.A[0], float)
    if not (np.array_equal(A / A.sum(0, keepdims=True), inputs["A0"])
            and np.array_equal(np.asarray(model.policies), inputs["policies"])):
        raise ValueError("cases_aif: exported model differs from random_model(S, P, seed)")
    return model, process


class _PymdpSemantics:
    """``run_trials(scheme="pymdp")`` clamped to the exported trials (one run = one trial,
    N agents, one fused kernel call per step)."""

    S = P = N = 0

    @classmethod
    def export(cls, params: dict[str, Any]) -> dict[str, np.ndarray]:
        return export_inputs(cls.S, cls.P, cls.N, int(params.get("seed", SEED)))

    def __init__(self, inputs: dict[str, np.ndarray], params: dict[str, Any]):
        self.model, _ = _case_model(inputs)
        self.obs, self.actions = inputs["obs"], inputs["actions"]
        self.gamma, self.num_iter = float(inputs["gamma"]), int(inputs["num_iter"])

    def run(self) -> None:
        self.res = run_trials(self.model, clamp=dict(o=self.obs, u=self.actions),
                              scheme="pymdp", backend="numba", dtype="float64",
                              n_iter=self.num_iter, beta=1.0 / self.gamma)

    def outputs(self) -> dict[str, np.ndarray]:
        self.run()
        r = self.res
        out = {f"qs_t{t}": r["qs"][(0, t)][0] for t in range(T)}
        out.update(q_pi=r["q_pi"][0], neg_efe=r["neg_efe"][0], action=r["choices"][0])
        # the replay the fast path was built from agrees too (the fused kernel is its
        # semantics): a disagreement here is predcode's own bug, not the peer's
        ref = pymdp_replay_trials(self.model, self.obs, self.actions, gamma=self.gamma,
                                  num_iter=self.num_iter)
        np.testing.assert_allclose(out["q_pi"], ref["q_pi"], atol=1e-9)
        return out


class _RunTrials:
    """``run_trials`` as ``predcode bench aif`` times it (one run = one trial, N agents)."""

    S = P = N = 0

    @classmethod
    def export(cls, params: dict[str, Any]) -> dict[str, np.ndarray]:
        return export_inputs(cls.S, cls.P, cls.N, int(params.get("seed", SEED)))

    def __init__(self, inputs: dict[str, np.ndarray], params: dict[str, Any]):
        self.model, self.process = _case_model(inputs)
        self.seed = int(inputs["seed"])
        self.backend = str(params.get("backend", "numba"))
        self.k = 0
        # the bench's warm-up (numba compile) is part of setup's first run()

    def run(self) -> None:
        self.k += 1
        run_trials(self.model, self.process, n_agents=self.N, backend=self.backend,
                   dtype="float64", random_state=(self.seed + self.k) % 2**32)

    def outputs(self) -> dict[str, np.ndarray]:
        return {}  # a different scheme from pymdp's: nothing to compare


def _make_cases() -> dict[str, type]:
    cases: dict[str, type] = {}
    for S in STATES:
        for P in POLICIES:
            for N in AGENTS:
                for prefix, base in (("aif", _PymdpSemantics), ("aifspm", _RunTrials)):
                    name = f"{prefix}_s{S}_p{P}_n{N}"
                    cases[name] = type(name, (base,), {"S": S, "P": P, "N": N})
    return cases


CASES: dict[str, type] = _make_cases()
