"""predcode side of the PC-network peer case (issue 15, item 1): ``pc_step``, ``pc_step_2core``.

The workload is exactly ``predcode/bench/pcn.py`` (``predcode bench pcn``): a
discriminative PCN 784-300-300-10, batch 64, ``T = 20`` inference steps, tanh,
float32, inference rate ``gamma = 0.1``, ``lr = 1e-4``, unit precisions. One
*step* (one ``run()``) is ``PCN._train_batch`` on one mini-batch: feed-forward
initialisation, ``T`` inference steps with the target clamped, one Hebbian
weight update (``W_l += lr/B eps_l^T f(x_{l-1})``, ``b_l += lr/B sum eps_l``).
Successive ``run()`` calls keep training on the same batch (weights move by
``lr``; the cost does not depend on their values).

Exported inputs (``export``): ``X`` (B, 784) ~ U(0, 1), ``Y`` (B, 10) one-hot,
``W1..W3`` (n_l, n_{l-1}) Glorot-uniform and ``b1..b3`` zeros, float32, drawn as
the bench draws them (seed 0).

Outputs (``outputs``): the weights are reset to the exported ones and one step
is run, then ``x1``, ``x2`` (the free layers' states after the ``T`` inference
steps, before the weight update), ``energy`` (the batch's total energy
``sum_l 1/2 ||x_l - mu_l||^2`` at that state) and ``W1..W3``, ``b1..b3`` (after
the update). Peers compare at float32 tolerances: ``PC_TOL``, exported as ``check_tol``
(a JSON string, the convention of ``cases_nn.py``).

``params``: ``threads`` (BLAS threads, default 1 as in the bench), ``jobs``
(``PCN(n_jobs=...)``, threads settling the batch's row blocks: 1, and 2 for
``pc_step_2core``; two-thread BLAS on these small GEMMs was slower than one), ``seed``
(default 0). ``run()`` holds ``predcode.blas_threads(threads)``
(free when the worker already set that limit; ~15 µs of threadpoolctl otherwise).
``pc_step`` is meant for a one-core worker and ``pc_step_2core`` for a two-core one
(the driver's ``cores_for``); the JAX workers take the core count from their affinity.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from predcode.backend import blas_threads
from predcode.models.pcn import PCN, init_weights

__all__ = ["CASES", "PCStep", "PCStep2Core", "PC_TOL", "SIZES", "BATCH", "T", "GAMMA", "LR"]

SIZES = (784, 300, 300, 10)
BATCH = 64
T = 20
GAMMA = 0.1
LR = 1e-4
ACTIVATION = "tanh"
DTYPE = "float32"

# |peer - predcode| <= atol + rtol * |predcode| elementwise (float32 on both sides).
# States: |x| up to ~9. Weights: 2 float32 spacings at |W| < 0.14 (one update moves W
# by only ~1e-5, so a looser tolerance would not test it); biases are ~1e-5 after one
# update. Measured (seed 0, pcx and raw JAX alike): x1 3.3e-6, x2 7.2e-7, energy 9.5e-7
# (1.5e-8 relative), W 7.5e-9, b 6.8e-12 max-abs. One inference step more or fewer
# (T = 19 or 21) misses every tolerance: x 4e-3, energy 0.27 (4e-3 rel), W 9e-8, b 2e-7.
PC_TOL = {"x*": {"rtol": 0.0, "atol": 2e-5}, "energy": {"rtol": 1e-5, "atol": 0.0},
          "W*": {"rtol": 0.0, "atol": 3e-8}, "b*": {"rtol": 0.0, "atol": 1e-10}}


def make_inputs(seed: int = 0) -> dict[str, np.ndarray]:
    """The bench's batch and initial weights (``predcode/bench/pcn.py``), as named arrays."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (BATCH, SIZES[0])).astype(np.float32)
    labels = rng.integers(0, SIZES[-1], BATCH)
    Y = np.zeros((BATCH, SIZES[-1]), dtype=np.float32)
    Y[np.arange(BATCH), labels] = 1.0
    W, b = init_weights(SIZES, np.random.default_rng(seed), np.float32)
    out = {"X": X, "Y": Y, "check_tol": np.array(json.dumps(PC_TOL))}
    for l in range(1, len(SIZES)):
        out[f"W{l}"] = W[l]
        out[f"b{l}"] = b[l]
    return out


class PCStep:
    """One PCN training step (``PCN._train_batch``) on the numba backend."""

    default_threads = 1
    default_jobs = 1

    @staticmethod
    def export(params: dict[str, Any]) -> dict[str, np.ndarray]:
        return make_inputs(int(params.get("seed", 0)))

    def __init__(self, inputs: dict[str, np.ndarray], params: dict[str, Any]):
        self.threads = int(params.get("threads", self.default_threads))
        self.jobs = int(params.get("jobs", self.default_jobs))
        self.inputs = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in inputs.items()
                       if k != "check_tol"}
        self.X, self.Y = self.inputs["X"], self.inputs["Y"]
        self.L = len(SIZES) - 1
        self.net = PCN(sizes=SIZES, activation=ACTIVATION, T=T, gamma=GAMMA, lr=LR,
                       dtype=DTYPE, backend="numba", batch_size=BATCH, epochs=1,
                       random_state=0, n_jobs=self.jobs)
        with blas_threads(self.threads):
            self.net.fit(self.X, self.Y)  # validation, runtime, buffers, numba compile
        self._reset()

    def _reset(self) -> None:
        """Weights back to the exported ones (in place: same contiguous buffers)."""
        for l in range(1, self.L + 1):
            self.net.W_[l][...] = self.inputs[f"W{l}"]
            self.net.b_[l][...] = self.inputs[f"b{l}"]

    def run(self) -> None:
        with blas_threads(self.threads):
            self._energy = self.net._train_batch(self.X, self.Y)

    def outputs(self) -> dict[str, np.ndarray]:
        self._reset()
        self.run()
        buf = self.net._buf(BATCH)
        out = {f"x{l}": buf.x[l].copy() for l in range(1, self.L)}
        out["energy"] = np.asarray(self._energy, dtype=np.float64)
        for l in range(1, self.L + 1):
            out[f"W{l}"] = self.net.W_[l].copy()
            out[f"b{l}"] = self.net.b_[l].copy()
        return out


class PCStep2Core(PCStep):
    """Same workload; the driver gives the worker 2 cores, predcode settles in 2 threads."""

    default_jobs = 2


CASES: dict[str, type] = {"pc_step": PCStep, "pc_step_2core": PCStep2Core}
