"""Peer worker for the active-inference cases: pymdp 1.0.4's JAX ``Agent`` (``aif_*``).

Runs under the JAX virtual environment (``/work/venv-jax``: jax, inferactively-pymdp;
never predcode), float64 (``jax_enable_x64``, as predcode's side). Serves the 18
``aif_s{S}_p{P}_n{N}`` cells of ``cases_aif.py`` over ``protocol.py``'s JSON lines,
from the model and the clamped trials that the predcode worker exports.

The agent is pymdp's, as ``tests/fixtures/pymdp/make_tmaze.py`` drives it for the
parity fixture, batched: ``Agent(A, B, C, D, E, policies=V[:, t:], gamma=1,
inference_algo="mmp", num_iter=16, action_selection="deterministic",
sampling_mode="full", use_utility=True, use_states_info_gain=True,
use_param_info_gain=False, batch_size=N)`` (one agent object per step ``t``: the
policies' remaining moves, SPM's horizon, which ``pymdp_replay_trials`` follows).
pymdp vmaps over the ``N`` agents itself (its methods ``vmap`` over the batch axis).
One ``run()`` is one trial, ``T = 3`` steps, under one ``equinox.filter_jit``: at
each step ``t`` ``infer_states`` on the outcomes ``0..t`` with the clamped actions
``0..t-1`` as ``past_actions``, and for ``t < T - 1`` ``infer_policies`` and
``sample_action``. ms per step = run time / 3.

``--threads N`` (optional): CPU affinity and XLA thread flags, as ``worker_jax.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax_info  # noqa: E402

STATES = (4, 16, 64)
POLICIES = (16, 64, 256)
AGENTS = (1, 64)
T = 3


def make_case() -> type:
    import jax

    jax.config.update("jax_enable_x64", True)
    import equinox as eqx
    import jax.numpy as jnp
    from pymdp.agent import Agent

    @eqx.filter_jit
    def trial(agents, obs, acts):
        """One clamped trial; ``obs`` (N, T) ints (one modality), ``acts`` (N, T-1, 1)."""
        qs_all, q_pi, neg_efe, action = [], [], [], []
        for t in range(T):
            ag = agents[min(t, T - 2)]
            past = None if t == 0 else acts[:, :t]
            qs = ag.infer_states([obs[:, : t + 1]], ag.D, past_actions=past)
            qs_all.append(qs[0])
            if t < T - 1:
                qp, G = ag.infer_policies(qs)
                q_pi.append(qp)
                neg_efe.append(G)
                action.append(ag.sample_action(qp))
        return qs_all, jnp.stack(q_pi, 1), jnp.stack(neg_efe, 1), jnp.stack(action, 1)

    class PymdpTrial:
        def __init__(self, inputs: dict[str, np.ndarray], params: dict[str, Any]):
            N = int(inputs["N"])
            V = np.asarray(inputs["policies"])

            def agent_for(t: int) -> Agent:
                return Agent(
                    [jnp.asarray(inputs["A0"])], [jnp.asarray(inputs["B0"])],
                    C=[jnp.asarray(inputs["C0"])], D=[jnp.asarray(inputs["D0"])],
                    E=jnp.asarray(inputs["E"]), policies=jnp.asarray(V[:, t:, :]),
                    gamma=float(inputs["gamma"]), inference_algo="mmp",
                    num_iter=int(inputs["num_iter"]), action_selection="deterministic",
                    sampling_mode="full", use_utility=True, use_states_info_gain=True,
                    use_param_info_gain=False, batch_size=N,
                )

            self.agents = [agent_for(t) for t in range(T - 1)]
            self.obs = jnp.asarray(inputs["obs"][:, :, 0])
            self.acts = jnp.asarray(inputs["actions"])

        def run(self) -> None:
            self.res = jax.block_until_ready(trial(self.agents, self.obs, self.acts))

        def outputs(self) -> dict[str, np.ndarray]:
            self.run()
            qs, q_pi, neg_efe, action = self.res
            out = {f"qs_t{t}": np.asarray(q) for t, q in enumerate(qs)}
            out.update(q_pi=np.asarray(q_pi), neg_efe=np.asarray(neg_efe),
                       action=np.asarray(action))
            return out

    return PymdpTrial


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    flags = jax_info.set_xla_threads(args.threads)
    import protocol

    case = make_case()
    cases = {f"aif_s{S}_p{P}_n{N}": case for S in STATES for P in POLICIES for N in AGENTS}
    protocol.serve("pymdp", cases,
                   lambda: jax_info.versions(("pymdp", "jax", "jaxlib", "equinox", "numpy")),
                   lambda: jax_info.threads(args.threads, flags))


if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    main()
