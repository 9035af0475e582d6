"""predcode side of the neural-network peer cases (PyTorch peers: ``worker_torch.py``).

The cases are those of :mod:`predcode.bench.jepa`, same models, same data, same
settings (batch 64, float32, numba backend):

``ijepa_step_ema`` / ``ijepa_step_sigreg``
    one I-JEPA training step on 64 standardised 8x8 digits from the weights of
    the bench's 1-epoch fit: multi-block masks, forward, backward, AdamW at lr
    1e-4, and (``ema``) the EMA update of the target encoder at momentum 0.999.
    predcode draws the masks in its timed step, as the bench does (about 2 ms of
    a 75-105 ms step here); the peers cycle through ``N_MASK_SETS`` exported mask
    sets instead (the mask sampler is predcode's own), which favours the peers.
    Check: loss, regulariser and the gradient of every encoder and predictor
    parameter for mask set 0, with the regulariser's row subset and SIGReg
    directions exported.

``latent_wm_step`` / ``pixel_wm_step``
    one world-model training step (zero the gradients, forward, backward,
    AdamW at lr 1e-4) on a batch of 64 two-room transitions, from the weights of
    the bench's 1-epoch fit. Check: the loss (and SIGReg term) and the gradient
    of every parameter on one step from the exported weights, before any
    optimizer update (the check rebuilds the model from the export; the timed
    state is not used). SIGReg's random directions for the check are exported.
``latent_cem_decision`` / ``pixel_cem_decision``
    one CEM planning decision (``TWO_ROOMS_CEM``: horizon 20, 128 samples, 3
    iterations, 16 elites; cost ``"sum"``, as in the bench) from state (0.2, 0.2)
    to goal (0.8, 0.8) through the model's rollouts. The start and goal states
    (the encodings of the rendered positions) are exported with the weights.
    Check: the costs of the 128 sampled sequences of the first iteration and the
    final planned mean, with the Gaussian noise of every iteration exported.

Exported names: ``w/<net>/<layer>.<W|b>`` are predcode's parameters in
predcode's layout (Linear ``W`` is (n_in, n_out); Conv2d ``W`` is
(C_out, C_in, k, k)); gradients come back as ``grad/<net>/<layer>.<W|b>`` in the
same layout. ``check_tol`` (a JSON string) gives the driver the check's tolerances.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from predcode.datasets import load_digits_split
from predcode.envs import TwoRooms, generate_trajectories
from predcode.models.jepa import IJEPA
from predcode.models.world_model import LatentWorldModel, PixelWorldModel
from predcode.nn import epps_pulley_grid, named_params, zero_grad
from predcode.planning import (
    CEM,
    TWO_ROOMS_CEM,
    _encode_states,  # the bench's own encoding of env states
    state_cost,
)

__all__ = ["CASES"]

SEED = 0
BATCH = 64
LR_STEP = 1e-4  # predcode.bench.jepa: m.optimizer_.step(1e-4)
EMA_STEP = 0.999  # predcode.bench.jepa: m._ema_update(0.999)
START, GOAL = np.array([0.2, 0.2]), np.array([0.8, 0.8])
COST_FORM = "sum"  # predcode.bench.jepa calls latent_cost(m, env, goal) with its default form
CEM_DEFAULTS = {"init_std": CEM.init_std, "min_std": CEM.min_std, "action_dim": CEM.action_dim}

# |peer - predcode| <= atol + rtol * |predcode| elementwise; atol_rel: atol times max|predcode|
WM_TOL = {"loss": {"rtol": 1e-4, "atol": 0.0}, "reg": {"rtol": 1e-4, "atol": 0.0},
          "grad/*": {"rtol": 1e-3, "atol": 1e-4, "atol_rel": True}}
CEM_TOL = {"costs_iter0": {"rtol": 1e-4, "atol": 0.0},
           "mean": {"rtol": 0.0, "atol": 1e-5}, "best": {"rtol": 1e-4, "atol": 0.0}}


def _models(seed: int, batch: int) -> dict[str, Any]:
    return {"latent": LatentWorldModel(latent_dim=8, epochs=1, batch_size=batch, backend="numba",
                                       random_state=seed),
            "pixel": PixelWorldModel(epochs=1, batch_size=batch, backend="numba",
                                     random_state=seed)}


def _data(seed: int, batch: int) -> tuple[Any, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The bench's data: trajectories, and the timed batch O (B, 2, H·W), A (B, 1, 2)."""
    env = TwoRooms()
    data = generate_trajectories(max(batch // 20, 2) + 1, 20, env=env, random_state=seed)
    O = np.stack([data["obs"][:, :-1].reshape(-1, env.n_pixels),
                  data["obs"][:, 1:].reshape(-1, env.n_pixels)], axis=1)[:batch]
    A = data["actions"].reshape(-1, 1, 2)[:batch]
    return env, data, O, A


def _fitted(kind: str, seed: int, batch: int) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    env, data, O, A = _data(seed, batch)
    m = _models(seed, batch)[kind]
    m.fit(data["obs"], data["actions"])
    return m, env, O.astype(m.dtype_), A.astype(m.dtype_)


def _rebuild(kind: str, inputs: dict[str, np.ndarray]) -> Any:
    """A model of the exported weights (fresh AdamW state), on the numba backend."""
    seed, batch = int(inputs["seed"]), int(inputs["batch"])
    m = _models(seed, batch)[kind]
    m._set_state({k[2:]: v for k, v in inputs.items() if k.startswith("w/")})
    return m


def _weights(m: Any) -> dict[str, np.ndarray]:
    return {f"w/{k}": v for k, v in m._state().items()}


def _common(seed: int, batch: int, tol: dict[str, Any]) -> dict[str, np.ndarray]:
    return {"seed": np.array(seed), "batch": np.array(batch),
            "check_tol": np.array(json.dumps(tol))}


class _WMStep:
    kind = "latent"

    @classmethod
    def export(cls, params: dict[str, Any]) -> dict[str, np.ndarray]:
        seed, batch = int(params.get("seed", SEED)), int(params.get("batch", BATCH))
        m, _, O, A = _fitted(cls.kind, seed, batch)
        out = {**_common(seed, batch, WM_TOL), **_weights(m), "O": O, "A": A,
               "lr": np.array(LR_STEP), "weight_decay": np.array(m.weight_decay)}
        if cls.kind == "latent":
            # the check's SIGReg directions: sigreg() draws standard_normal((d, M)) from the
            # model's generator, normalises the columns and casts to the latents' dtype
            dseed = seed + 1000
            raw = np.random.default_rng(dseed).standard_normal((m.latent_dim, m.sigreg_directions))
            raw /= np.linalg.norm(raw, axis=0, keepdims=True)
            t, w = epps_pulley_grid()
            out.update({"sigreg_seed": np.array(dseed), "sigreg_dirs": raw.astype(m.dtype_),
                        "sigreg_t": t.astype(m.dtype_), "sigreg_w": w.astype(m.dtype_),
                        "sigreg_weight": np.array(m.sigreg_weight)})
        return out

    def __init__(self, inputs: dict[str, np.ndarray], params: dict[str, Any]):
        self.inputs = inputs
        self.m = _rebuild(self.kind, inputs)
        self.O, self.A = inputs["O"], inputs["A"]

    def run(self) -> None:
        m = self.m
        for net in m.nets_.values():
            zero_grad(net)
        m._step_loss(self.O, self.A, learn=True)
        m.optimizer_.step(LR_STEP)

    def outputs(self) -> dict[str, np.ndarray]:
        m = _rebuild(self.kind, self.inputs)  # the exported weights, not the timed state
        if "sigreg_seed" in self.inputs:
            m._rng = np.random.default_rng(int(self.inputs["sigreg_seed"]))
        for net in m.nets_.values():
            zero_grad(net)
        loss, reg = m._step_loss(self.O, self.A, learn=True)

        out = {"loss": np.array(loss), "reg": np.array(reg)}
        for k, net in m.nets_.items():
            for name, layer, key in named_params(net):
                out[f"grad/{k}/{name}"] = np.array(layer.grads[key])
        return out


class LatentWMStep(_WMStep):
    kind = "latent"


class PixelWMStep(_WMStep):
    kind = "pixel"


class _Replay:
    """Stands in for CEM's generator: returns the exported noise, iteration by iteration."""

    def __init__(self, noise: np.ndarray):
        self.noise, self.i = noise, 0

    def standard_normal(self, shape: tuple[int, ...]) -> np.ndarray:
        x = self.noise[self.i]
        assert x.shape == tuple(shape), (x.shape, shape)
        self.i += 1
        return x


class _CEMDecision:
    kind = "latent"

    @classmethod
    def export(cls, params: dict[str, Any]) -> dict[str, np.ndarray]:
        seed, batch = int(params.get("seed", SEED)), int(params.get("batch", BATCH))
        m, env, _, _ = _fitted(cls.kind, seed, batch)
        z0 = _encode_states(m, env, START[None])
        zg = _encode_states(m, env, GOAL[None])
        p = CEM(random_state=seed, **TWO_ROOMS_CEM)
        shape = (p.samples, p.horizon, p.action_dim)
        noise = np.stack([p.rng.standard_normal(shape) for _ in range(p.iterations)])
        cem = {**TWO_ROOMS_CEM, **CEM_DEFAULTS}
        return {**_common(seed, batch, CEM_TOL), **_weights(m),
                "z0": np.asarray(z0), "zg": np.asarray(zg), "noise": noise,
                **{f"cem_{k}": np.array(v) for k, v in cem.items()},
                "cost_form": np.array(COST_FORM)}

    def __init__(self, inputs: dict[str, np.ndarray], params: dict[str, Any]):
        self.inputs = inputs
        self.m = _rebuild(self.kind, inputs)
        self.cost = state_cost(self.m, inputs["z0"], inputs["zg"], COST_FORM)
        self.planner = CEM(random_state=int(inputs["seed"]), **TWO_ROOMS_CEM)

    def run(self) -> None:
        self.planner.plan(self.cost)

    def outputs(self) -> dict[str, np.ndarray]:
        p = CEM(**TWO_ROOMS_CEM)
        p.rng = _Replay(self.inputs["noise"])
        seen: list[np.ndarray] = []

        def cost(A: np.ndarray) -> np.ndarray:
            c = self.cost(A)
            seen.append(np.asarray(c, dtype=float))
            return c

        mu, best = p.plan(cost)
        return {"costs_iter0": seen[0], "mean": mu, "best": np.array(best)}


class LatentCEMDecision(_CEMDecision):
    kind = "latent"


class PixelCEMDecision(_CEMDecision):
    kind = "pixel"


class _IJEPAStep:
    collapse = "ema"
    N_MASK_SETS = 8  # masks the peers cycle through in their timed steps

    @classmethod
    def _model(cls, seed: int, batch: int) -> Any:
        return IJEPA(collapse=cls.collapse, epochs=1, batch_size=batch, backend="numba",
                     random_state=seed)

    @classmethod
    def export(cls, params: dict[str, Any]) -> dict[str, np.ndarray]:
        seed, batch = int(params.get("seed", SEED)), int(params.get("batch", BATCH))
        Xtr = load_digits_split(random_state=seed)[0][:batch]
        Xtr = (Xtr - Xtr.mean()) / Xtr.std()
        m = cls._model(seed, batch).fit(Xtr)
        if m.patch != 1 or m.depth != 1 or m.pos_embed or m.pred_depth != 1:
            raise ValueError("the torch peer implements patch=1, depth=1, pos_embed=False, "
                             "pred_depth=1 (the bench's defaults)")
        x = np.asarray(m._check_X(Xtr, "bench"))
        mrng = np.random.default_rng(seed + 2000)
        masks = [m._masks(x.shape[0], mrng) for _ in range(cls.N_MASK_SETS)]
        out = {**_common(seed, batch, WM_TOL), **_weights(m), "x": x,
               "ctx": np.stack([np.asarray(c) for c, _ in masks]),
               "tw": np.stack([np.asarray(t) for _, t in masks]),
               "pos": np.asarray(m.predictor_.pos), "lr": np.array(LR_STEP),
               "weight_decay": np.array(m.weight_decay), "ema_momentum": np.array(EMA_STEP),
               "ln_eps": np.array(m._norm.eps), "collapse": np.array(cls.collapse)}
        if cls.collapse == "sigreg":
            # the check's random draws, in _loss's order: the subset of the patch
            # embeddings, then sigreg()'s directions
            rseed = seed + 1000
            g = np.random.default_rng(rseed)
            n_rows = x.shape[0] * m.grid_[0] * m.grid_[1]
            rows = (np.sort(g.choice(n_rows, m.reg_samples, replace=False))
                    if n_rows > m.reg_samples else np.arange(n_rows))
            raw = g.standard_normal((m.embed_dim, m.sigreg_directions))
            raw /= np.linalg.norm(raw, axis=0, keepdims=True)
            t, w = epps_pulley_grid()
            out.update({"rng_seed": np.array(rseed), "reg_rows": rows,
                        "reg_samples": np.array(m.reg_samples),
                        "sigreg_dirs": raw.astype(m.dtype_), "sigreg_t": t.astype(m.dtype_),
                        "sigreg_w": w.astype(m.dtype_), "sigreg_weight": np.array(m.reg_weight_)})
        return out

    def _rebuilt(self) -> Any:
        m = self._model(int(self.inputs["seed"]), int(self.inputs["batch"]))
        m._set_state({k[2:]: v for k, v in self.inputs.items() if k.startswith("w/")})
        return m

    def __init__(self, inputs: dict[str, np.ndarray], params: dict[str, Any]):
        self.inputs = inputs
        self.m = self._rebuilt()
        self.x = inputs["x"]
        self.rng = np.random.default_rng(int(inputs["seed"]))

    def run(self) -> None:  # predcode.bench.jepa's step, masks drawn in it
        m, x, rng = self.m, self.x, self.rng
        ctx, tw = m._masks(x.shape[0], rng)
        zero_grad(m.encoder_)
        zero_grad(m.predictor_)
        m._loss(x, ctx, tw, learn=True, rng=rng)
        m.optimizer_.step(LR_STEP)
        if m.uses_ema:
            m._ema_update(EMA_STEP)

    def outputs(self) -> dict[str, np.ndarray]:
        m = self._rebuilt()
        zero_grad(m.encoder_)
        zero_grad(m.predictor_)
        rng = np.random.default_rng(int(self.inputs.get("rng_seed", 0)))
        loss, reg, _ = m._loss(self.x, self.inputs["ctx"][0], self.inputs["tw"][0], learn=True,
                               rng=rng)
        out = {"loss": np.array(loss), "reg": np.array(reg)}
        for k, mod in (("encoder", m.encoder_), ("predictor", m.predictor_)):
            for name, layer, key in named_params(mod):
                out[f"grad/{k}/{name}"] = np.array(layer.grads[key])
        return out


class IJEPAStepEMA(_IJEPAStep):
    collapse = "ema"


class IJEPAStepSIGReg(_IJEPAStep):
    collapse = "sigreg"


CASES: dict[str, type] = {
    "ijepa_step_ema": IJEPAStepEMA,
    "ijepa_step_sigreg": IJEPAStepSIGReg,
    "latent_wm_step": LatentWMStep,
    "pixel_wm_step": PixelWMStep,
    "latent_cem_decision": LatentCEMDecision,
    "pixel_cem_decision": PixelCEMDecision,
}
