"""Peer worker for the PC-network case in JAX: ``--impl pcx`` (pcx 0.6.3) or ``--impl jax``.

Runs under the JAX virtual environment (``/work/venv-jax``: jax, pcx, optax, equinox;
never predcode). Serves ``pc_step`` and ``pc_step_2core`` (the same workload; the
driver gives the 2-core one two cores) over ``protocol.py``'s JSON lines. The
workload is ``cases_pc.py``'s (``predcode bench pcn``): PCN 784-300-300-10, batch 64,
``T = 20`` inference steps of rate ``gamma = 0.1``, tanh, float32, then one SGD
weight step with ``lr = 1e-4`` on the batch-mean energy, from the weights and batch
that the predcode worker exports.

``--impl pcx``: pcx's idiomatic API, as in its examples: a ``pxc.EnergyModule`` of
``pxnn.Linear`` layers and ``pxc.Vode`` value nodes (Gaussian ``se_energy``, the
output vode frozen to the target), ``STATUS.INIT`` forward initialisation under
``pxf.vmap``, ``T`` inference steps of ``pxf.value_and_grad`` over the unfrozen
``VodeParam`` with ``pxu.Optim(optax.sgd(gamma))``, then one over ``pxnn.LayerParam``
with ``pxu.Optim(optax.sgd(lr))`` and ``scale_by=1/B`` (predcode's update is on the
batch-mean energy), the whole step under ``pxf.jit`` (the Python loop over ``T``
is unrolled, as in pcx's examples). A vode holds ``x_l``; the layer above
predicts from ``tanh(x_l)``: ``u_{l+1} = W_{l+1} tanh(x_l) + b_{l+1}``, predcode's
parameterisation (the input layer is ``tanh(X)``, as predcode's ``f(x_0)``).

``--impl jax``: raw JAX, one ``jax.jit`` of the whole step: feed-forward, a
``lax.fori_loop`` of ``T`` Euler steps ``x -= gamma dF/dx`` (``jax.grad`` of the
batch-summed energy; the clamped input's prediction ``mu_1`` is computed once,
outside the loop, as predcode does), then ``W -= lr dF/dW / B``.

``--threads N`` (optional, before JAX is imported): the process's CPU affinity is
narrowed to ``N`` of its allowed cores (XLA sizes its thread pools from them) and,
for ``N = 1``, ``--xla_cpu_multi_thread_eigen=false`` is appended to ``XLA_FLAGS``
(``jax_info.set_xla_threads``). Without it XLA uses its defaults (all cores the
process may run on). The setting is per process: a driver starts one worker for
``pc_step`` (1 thread) and another for ``pc_step_2core`` (2). ``info`` reports the
flags and the CPU affinity.

Check (``outputs``, compared by the driver with predcode's, same exported inputs):
``x1``, ``x2`` after the ``T`` steps, ``energy`` at that state, ``W1..W3``,
``b1..b3`` after the update; tolerances and measured differences: ``cases_pc.PC_TOL``
(exported to the driver as ``check_tol``).
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

SIZES = (784, 300, 300, 10)
BATCH = 64
T = 20
GAMMA = 0.1
LR = 1e-4

def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--impl", choices=("pcx", "jax"), required=True)
    p.add_argument("--threads", type=int, default=None)
    return p.parse_args()


def _weights(inputs: dict[str, np.ndarray]) -> tuple[list, list]:
    L = len(SIZES) - 1
    W = [np.asarray(inputs[f"W{l}"], np.float32) for l in range(1, L + 1)]
    b = [np.asarray(inputs[f"b{l}"], np.float32) for l in range(1, L + 1)]
    return W, b


def make_raw_jax_case() -> type:
    import jax
    import jax.numpy as jnp

    def energy_free(xs, mu1, W, b, Y):
        """Batch-summed energy as a function of the free layers (mu_1 given)."""
        x1, x2 = xs
        e1 = x1 - mu1
        e2 = x2 - (jnp.tanh(x1) @ W[1].T + b[1])
        e3 = Y - (jnp.tanh(x2) @ W[2].T + b[2])
        return 0.5 * (jnp.sum(e1 * e1) + jnp.sum(e2 * e2) + jnp.sum(e3 * e3))

    def energy_params(params, xs, X, Y):
        W, b = params
        x1, x2 = xs
        mu1 = jnp.tanh(X) @ W[0].T + b[0]
        return energy_free(xs, mu1, W, b, Y)

    @jax.jit
    def step(params, X, Y):
        W, b = params
        mu1 = jnp.tanh(X) @ W[0].T + b[0]
        x2 = jnp.tanh(mu1) @ W[1].T + b[1]
        grad_x = jax.grad(energy_free)

        def body(_, xs):
            g = grad_x(xs, mu1, W, b, Y)
            return (xs[0] - GAMMA * g[0], xs[1] - GAMMA * g[1])

        xs = jax.lax.fori_loop(0, T, body, (mu1, x2))
        E, g = jax.value_and_grad(energy_params)(params, xs, X, Y)
        new = jax.tree_util.tree_map(lambda p, d: p - (LR / X.shape[0]) * d, params, g)
        return new, xs, E

    class RawJaxStep:
        def __init__(self, inputs: dict[str, np.ndarray], params: dict[str, Any]):
            W, b = _weights(inputs)
            self.init = ([jnp.asarray(w) for w in W], [jnp.asarray(v) for v in b])
            self.X = jnp.asarray(inputs["X"], jnp.float32)
            self.Y = jnp.asarray(inputs["Y"], jnp.float32)
            self.params = self.init

        def run(self) -> None:
            self.params, self.xs, self.E = step(self.params, self.X, self.Y)
            jax.block_until_ready(self.params)

        def outputs(self) -> dict[str, np.ndarray]:
            self.params = self.init
            self.run()
            W, b = self.params
            out = {"x1": np.asarray(self.xs[0]), "x2": np.asarray(self.xs[1]),
                   "energy": np.asarray(self.E, np.float64)}
            for l in range(3):
                out[f"W{l + 1}"], out[f"b{l + 1}"] = np.asarray(W[l]), np.asarray(b[l])
            return out

    return RawJaxStep


def make_pcx_case() -> type:
    import jax
    import jax.numpy as jnp
    import optax
    import pcx as px
    import pcx.functional as pxf
    import pcx.nn as pxnn
    import pcx.predictive_coding as pxc
    import pcx.utils as pxu

    class Model(pxc.EnergyModule):
        def __init__(self, sizes, act_fn) -> None:
            super().__init__()
            self.act_fn = px.static(act_fn)
            self.layers = [pxnn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
            self.vodes = [pxc.Vode() for _ in sizes[1:]]
            self.vodes[-1].h.frozen = True

        def __call__(self, x, y=None):
            for v, layer in zip(self.vodes[:-1], self.layers[:-1], strict=True):
                x = v(layer(self.act_fn(x)))
            x = self.vodes[-1](self.layers[-1](self.act_fn(x)))
            if y is not None:
                self.vodes[-1].set("h", y)
            return self.vodes[-1].get("u")

    @pxf.vmap(pxu.M(pxc.VodeParam | pxc.VodeParam.Cache).to((None, 0)), in_axes=(0, 0),
              out_axes=0)
    def forward(x, y, *, model: Model):
        return model(x, y)

    @pxf.vmap(pxu.M(pxc.VodeParam | pxc.VodeParam.Cache).to((None, 0)), in_axes=(0,),
              out_axes=(None, 0), axis_name="batch")
    def energy(x, *, model: Model):
        y_ = model(x, None)
        return jax.lax.psum(model.energy(), "batch"), y_

    @pxf.jit(static_argnums=0)
    def train_on_batch(T_: int, x, y, *, model: Model, optim_w: pxu.Optim, optim_h: pxu.Optim):
        model.train()
        with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
            forward(x, y, model=model)
        optim_h.init(pxu.M_hasnot(pxc.VodeParam, frozen=True)(model))
        for _ in range(T_):
            with pxu.step(model, clear_params=pxc.VodeParam.Cache):
                _, g = pxf.value_and_grad(
                    pxu.M_hasnot(pxc.VodeParam, frozen=True).to([False, True]), has_aux=True
                )(energy)(x, model=model)
            optim_h.step(model, g["model"])
        optim_h.clear()
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):
            (e, _), g = pxf.value_and_grad(
                pxu.M(pxnn.LayerParam).to([False, True]), has_aux=True
            )(energy)(x, model=model)
        optim_w.step(model, g["model"], scale_by=1.0 / x.shape[0])
        return e

    class PcxStep:
        def __init__(self, inputs: dict[str, np.ndarray], params: dict[str, Any]):
            self.W, self.b = _weights(inputs)
            self.X = jnp.asarray(inputs["X"], jnp.float32)
            self.Y = jnp.asarray(inputs["Y"], jnp.float32)
            self.model = Model(SIZES, jax.nn.tanh)
            self._reset()
            with pxu.step(self.model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
                forward(self.X, self.Y, model=self.model)  # vode shapes before the optimiser
            self.optim_h = pxu.Optim(lambda: optax.sgd(GAMMA))
            self.optim_w = pxu.Optim(lambda: optax.sgd(LR), pxu.M(pxnn.LayerParam)(self.model))

        def _reset(self) -> None:
            for layer, w, v in zip(self.model.layers, self.W, self.b, strict=True):
                layer.nn.weight.set(jnp.asarray(w))
                layer.nn.bias.set(jnp.asarray(v))

        def run(self) -> None:
            self.E = train_on_batch(T, self.X, self.Y, model=self.model,
                                    optim_w=self.optim_w, optim_h=self.optim_h)
            jax.block_until_ready((self.E, self.model.layers[-1].nn.weight.get()))

        def outputs(self) -> dict[str, np.ndarray]:
            self._reset()
            self.run()
            out = {f"x{l + 1}": np.asarray(self.model.vodes[l].h.get()) for l in range(2)}
            out["energy"] = np.asarray(self.E, np.float64)
            for l, layer in enumerate(self.model.layers):
                out[f"W{l + 1}"] = np.asarray(layer.nn.weight.get())
                out[f"b{l + 1}"] = np.asarray(layer.nn.bias.get())
            return out

    return PcxStep


def main() -> None:
    args = _parse()
    flags = jax_info.set_xla_threads(args.threads)
    import protocol

    case = make_pcx_case() if args.impl == "pcx" else make_raw_jax_case()
    cases = {"pc_step": case, "pc_step_2core": case}
    pkgs = ("jax", "jaxlib", "numpy") + (("pcx", "optax", "equinox") if args.impl == "pcx" else ())
    protocol.serve(args.impl, cases, lambda: jax_info.versions(pkgs),
                   lambda: jax_info.threads(args.threads, flags))


if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    main()
