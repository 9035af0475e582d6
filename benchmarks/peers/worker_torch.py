"""PyTorch peer worker of the neural-network cases (see ``cases_nn.py``).

Run under a PyTorch venv (not predcode's): ``python worker_torch.py --mode eager``
or ``--mode compile``. It imports neither predcode nor numba: every case is
rebuilt from the arrays predcode's worker exported (weights in predcode's layout,
the batch, the check's random draws) and re-implemented in ``torch.nn``:

* the same architectures (Conv2d / Linear / GELU in its tanh form, the same
  strides and paddings, Flatten in (C, H, W) order), float32;
* the same losses: the latent model's next-latent MSE + λ·SIGReg (Epps–Pulley on
  17 trapezoid knots over [0, 3], directions drawn afresh per step), the pixel
  model's next-image MSE;
* the same optimizer: ``torch.optim.AdamW`` (β = (0.9, 0.999), ε = 1e-8, lr 1e-4,
  weight decay 1e-3 on the weights with two or more axes only, as predcode's);
* I-JEPA (patch 1, depth 1, no positional embedding in the encoder, the
  bench's defaults): the masked-context conv encoder, the positional MLP
  predictor, the weighted masked-prediction loss against the layer-normalised
  EMA target (``ema``, EMA update at 0.999 after AdamW) or against the shared
  encoder's full-image embedding plus λ·SIGReg on a random subset of 1024 patch
  embeddings (``sigreg``); the timed steps cycle through predcode's exported
  mask sets (no mask sampling in the peer's step);
* the same CEM (mean/std refit to the elites, std floor, clipping to [-1, 1]) with
  the cost summed over the horizon.

In ``compile`` mode the loss function (training steps) or the cost function
(CEM: the batched rollout and its horizon cost) goes through ``torch.compile``;
its compilation is in the first call, which the protocol reports as ``warmup_s``.
The CEM loop itself (argsort, elite statistics, 3 iterations) stays eager.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from protocol import serve  # noqa: E402

MODE = "eager"


def _maybe_compile(fn: Any) -> Any:
    return torch.compile(fn) if MODE == "compile" else fn


class _GELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate="tanh")


def _latent_nets(inputs: dict[str, np.ndarray]) -> dict[str, nn.Sequential]:
    C = inputs["w/encoder/0.W"].shape[0]
    d = inputs["w/encoder/5.W"].shape[1]
    h = inputs["w/predictor/2.W"].shape[0]
    n_in = inputs["w/predictor/0.W"].shape[0]
    n_flat = inputs["w/encoder/5.W"].shape[0]
    enc = nn.Sequential(nn.Conv2d(1, C, 3, stride=2, padding=1), _GELU(),
                        nn.Conv2d(C, C, 3, stride=2, padding=1), _GELU(),
                        nn.Flatten(), nn.Linear(n_flat, d))
    pred = nn.Sequential(nn.Linear(n_in, h), _GELU(), nn.Linear(h, h), _GELU(), nn.Linear(h, d))
    return {"encoder": enc, "predictor": pred}


def _pixel_nets(inputs: dict[str, np.ndarray]) -> dict[str, nn.Sequential]:
    C = inputs["w/predictor/0.W"].shape[0]
    c_in = inputs["w/predictor/0.W"].shape[1]
    net = nn.Sequential(nn.Conv2d(c_in, C, 3, padding=1), _GELU(),
                        nn.Conv2d(C, C, 3, padding=1), _GELU(), nn.Conv2d(C, 1, 3, padding=1))
    return {"predictor": net}


def _load(nets: dict[str, nn.Sequential], inputs: dict[str, np.ndarray]) -> None:
    """predcode's parameters into the torch modules (Linear W (n_in, n_out) -> weight.T)."""
    with torch.no_grad():
        for k, net in nets.items():
            for i, layer in enumerate(net):
                if isinstance(layer, (nn.Linear, nn.Conv2d)):
                    W = inputs[f"w/{k}/{i}.W"]
                    W = W.T if isinstance(layer, nn.Linear) else W
                    layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(W)))
                    layer.bias.copy_(torch.from_numpy(inputs[f"w/{k}/{i}.b"]))


def _grads(nets: dict[str, nn.Sequential]) -> dict[str, np.ndarray]:
    """The parameter gradients in predcode's names and layout."""
    out = {}
    for k, net in nets.items():
        for i, layer in enumerate(net):
            if isinstance(layer, (nn.Linear, nn.Conv2d)):
                g = layer.weight.grad.detach().numpy()
                out[f"grad/{k}/{i}.W"] = g.T if isinstance(layer, nn.Linear) else g
                out[f"grad/{k}/{i}.b"] = layer.bias.grad.detach().numpy()
    return out


def _adamw(nets: dict[str, nn.Sequential], lr: float, wd: float) -> torch.optim.AdamW:
    params = [p for net in nets.values() for p in net.parameters()]
    return torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": wd},
                              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.999), eps=1e-8)


class _WMStep:
    kind = "latent"

    def __init__(self, inputs: dict[str, np.ndarray], params: dict[str, Any]):
        self.inputs = inputs
        self.nets = (_latent_nets if self.kind == "latent" else _pixel_nets)(inputs)
        _load(self.nets, inputs)
        self.O = torch.from_numpy(inputs["O"])
        self.A = torch.from_numpy(inputs["A"])
        self.opt = _adamw(self.nets, float(inputs["lr"]), float(inputs["weight_decay"]))
        if self.kind == "latent":
            self.t = torch.from_numpy(inputs["sigreg_t"])
            self.w = torch.from_numpy(inputs["sigreg_w"])
            self.lam = float(inputs["sigreg_weight"])
            self.d, self.M = inputs["sigreg_dirs"].shape
        self.loss = _maybe_compile(self._loss)

    def _loss(self, O: torch.Tensor, A: torch.Tensor, dirs: torch.Tensor | None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B = O.shape[0]
        side = int(round(O.shape[2] ** 0.5))
        if self.kind == "latent":
            enc, pred = self.nets["encoder"], self.nets["predictor"]
            Z = enc(O.reshape(B * 2, 1, side, side)).reshape(B, 2, -1)
            zh = Z[:, 0] + pred(torch.cat([Z[:, 0], A[:, 0]], dim=1))
            mse = ((zh - Z[:, 1]) ** 2).mean()
            # SIGReg: Epps-Pulley statistic of the projections, averaged over directions
            x = Z.reshape(B * 2, -1) @ dirs
            tx = x[:, :, None] * self.t
            Cm = torch.cos(tx).mean(dim=0) - torch.exp(-0.5 * self.t * self.t)
            Sm = torch.sin(tx).mean(dim=0)
            stat = x.shape[0] * ((Cm * Cm + Sm * Sm) * self.w).sum(dim=1)
            reg = stat.mean()
            return mse + self.lam * reg, mse, reg
        net = self.nets["predictor"]
        o0, a, o1 = O[:, 0], A[:, 0], O[:, 1]
        img = o0.reshape(B, 1, side, side)
        x = torch.cat([img, a[:, :, None, None].expand(B, a.shape[1], side, side)], dim=1)
        mse = ((o0 + net(x).reshape(o0.shape) - o1) ** 2).mean()
        return mse, mse, torch.zeros(())

    def _dirs(self) -> torch.Tensor | None:
        if self.kind != "latent":
            return None
        a = torch.randn(self.d, self.M)
        return a / torch.linalg.vector_norm(a, dim=0, keepdim=True)

    def run(self) -> None:
        self.opt.zero_grad(set_to_none=False)
        total, _, _ = self.loss(self.O, self.A, self._dirs())
        total.backward()
        self.opt.step()

    def outputs(self) -> dict[str, np.ndarray]:
        # the exported weights, the same (possibly compiled) loss; the timed state is restored
        saved = {id(p): p.detach().clone() for net in self.nets.values() for p in net.parameters()}
        _load(self.nets, self.inputs)
        for net in self.nets.values():
            net.zero_grad(set_to_none=False)
        dirs = torch.from_numpy(self.inputs["sigreg_dirs"]) if self.kind == "latent" else None
        total, mse, reg = self.loss(self.O, self.A, dirs)
        total.backward()
        mse, reg = mse.detach(), reg.detach()
        out = {"loss": np.array(mse.item()), "reg": np.array(reg.item()), **_grads(self.nets)}
        out = {k: np.array(v, copy=True) for k, v in out.items()}
        with torch.no_grad():
            for net in self.nets.values():
                net.zero_grad(set_to_none=False)
                for p in net.parameters():
                    p.copy_(saved[id(p)])
        return out


class LatentWMStep(_WMStep):
    kind = "latent"


class PixelWMStep(_WMStep):
    kind = "pixel"


class _CEMDecision:
    kind = "latent"

    def __init__(self, inputs: dict[str, np.ndarray], params: dict[str, Any]):
        self.inputs = inputs
        self.nets = (_latent_nets if self.kind == "latent" else _pixel_nets)(inputs)
        _load(self.nets, inputs)
        for net in self.nets.values():
            net.requires_grad_(False)
        self.z0 = torch.from_numpy(inputs["z0"])
        self.zg = torch.from_numpy(inputs["zg"])
        g = {k[4:]: inputs[k] for k in inputs if k.startswith("cem_")}
        self.H, self.S = int(g["horizon"]), int(g["samples"])
        self.iters, self.E = int(g["iterations"]), int(g["elites"])
        self.init_std, self.min_std = float(g["init_std"]), float(g["min_std"])
        self.da = int(g["action_dim"])
        if str(inputs["cost_form"]) != "sum":
            raise ValueError(f"cost form {inputs['cost_form']} not implemented")
        self.cost = _maybe_compile(self._cost)

    def _cost(self, A: torch.Tensor) -> torch.Tensor:
        """Costs (S,) of action sequences A (S, H, d_a): squared distances summed over H."""
        S = A.shape[0]
        z = self.z0.expand(S, -1)
        total = torch.zeros(S, dtype=z.dtype)
        if self.kind == "latent":
            pred = self.nets["predictor"]
            for h in range(A.shape[1]):
                z = z + pred(torch.cat([z, A[:, h]], dim=1))
                total = total + ((z - self.zg) ** 2).sum(dim=1)
            return total
        net = self.nets["predictor"]
        side = int(round(z.shape[1] ** 0.5))
        for h in range(A.shape[1]):
            a = A[:, h]
            x = torch.cat([z.reshape(S, 1, side, side),
                           a[:, :, None, None].expand(S, a.shape[1], side, side)], dim=1)
            z = z + net(x).reshape(S, -1)
            total = total + ((z - self.zg) ** 2).sum(dim=1)
        return total

    def _plan(self, noise: Any) -> tuple[torch.Tensor, float, list[torch.Tensor]]:
        mu = torch.zeros(self.H, self.da, dtype=torch.float64)
        sd = torch.full((self.H, self.da), self.init_std, dtype=torch.float64)
        best, seen = float("inf"), []
        for i in range(self.iters):
            A = torch.clamp(mu + sd * noise(i), -1.0, 1.0)
            c = self.cost(A.to(self.z0.dtype)).to(torch.float64)
            seen.append(c)
            idx = torch.argsort(c)[:self.E]
            elite = A[idx]
            mu = elite.mean(dim=0)
            sd = torch.clamp(elite.std(dim=0, correction=0), min=self.min_std)
            best = min(best, float(c[idx[0]]))
        return mu, best, seen

    def run(self) -> None:
        with torch.inference_mode():
            self._plan(lambda i: torch.randn(self.S, self.H, self.da, dtype=torch.float64))

    def outputs(self) -> dict[str, np.ndarray]:
        noise = torch.from_numpy(self.inputs["noise"])
        with torch.inference_mode():
            mu, best, seen = self._plan(lambda i: noise[i])
        return {"costs_iter0": seen[0].numpy().copy(), "mean": mu.numpy().copy(),
                "best": np.array(best)}


class LatentCEMDecision(_CEMDecision):
    kind = "latent"


class PixelCEMDecision(_CEMDecision):
    kind = "pixel"


class _IJEPAEncoder(nn.Module):
    """Conv 3x3 (mask channel in), GELU, patchify conv, GELU, 1x1 conv; out (n, P, D)."""

    def __init__(self, c_in: int, C: int, D: int, patch: int):
        super().__init__()
        k = 2 * patch - 1
        self.net = nn.Sequential(nn.Conv2d(c_in, C, 3, padding=1), _GELU(),
                                 nn.Conv2d(C, C, k, stride=patch, padding=patch - 1), _GELU(),
                                 nn.Conv2d(C, D, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)
        return y.reshape(y.shape[0], y.shape[1], -1).transpose(1, 2)


class _IJEPAPredictor(nn.Module):
    """c = GELU(W1 vec(h*m) + b1); s_j = W3 GELU(W_c c + W_p pos_j + b2) + b3."""

    def __init__(self, P: int, D: int, H: int, pos: torch.Tensor, d_out: int):
        super().__init__()
        self.lin1, self.lin_c = nn.Linear(P * D, H), nn.Linear(H, H)
        self.lin_p, self.lin3 = nn.Linear(pos.shape[1], H, bias=False), nn.Linear(H, d_out)
        self.register_buffer("pos", pos)

    def forward(self, h: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        c = F.gelu(self.lin1((h * m[:, :, None]).reshape(h.shape[0], -1)), approximate="tanh")
        z = self.lin_c(c)[:, None, :] + self.lin_p(self.pos)[None]
        return self.lin3(F.gelu(z, approximate="tanh"))


def _ijepa_layers(enc: _IJEPAEncoder, pred: _IJEPAPredictor) -> dict[str, nn.Module]:
    """predcode's parameter names -> torch layers."""
    out: dict[str, nn.Module] = {f"0.{i}": enc.net[i] for i in (0, 2, 4)}
    return {"enc": out, "pred": {"0": pred.lin1, "1": pred.lin_c, "2": pred.lin_p,
                                 "3": pred.lin3}}


class _IJEPAStep:
    def __init__(self, inputs: dict[str, np.ndarray], params: dict[str, Any]):
        self.inputs = inputs
        self.collapse = str(inputs["collapse"])
        W0 = inputs["w/encoder/0.0.W"]
        C, c_in = W0.shape[:2]
        D = inputs["w/encoder/0.4.W"].shape[0]
        Hh = inputs["w/predictor/1.W"].shape[0]
        self.x = torch.from_numpy(inputs["x"])
        n, _, gh, gw = self.x.shape
        self.grid, self.D = (gh, gw), D
        pos = torch.from_numpy(inputs["pos"])
        self.enc = _IJEPAEncoder(c_in, C, D, 1)
        self.pred = _IJEPAPredictor(gh * gw, D, Hh, pos, inputs["w/predictor/3.W"].shape[1])
        self.mods = {"encoder": self.enc, "predictor": self.pred}
        if self.collapse == "ema":
            self.target = _IJEPAEncoder(c_in, C, D, 1)
            self.target.requires_grad_(False)
            self.mods_all = {**self.mods, "target": self.target}
        else:
            self.mods_all = dict(self.mods)
        self._load()
        params_ = [p for m in self.mods.values() for p in m.parameters()]
        wd = float(inputs["weight_decay"])
        self.opt = torch.optim.AdamW(
            [{"params": [p for p in params_ if p.ndim >= 2], "weight_decay": wd},
             {"params": [p for p in params_ if p.ndim < 2], "weight_decay": 0.0}],
            lr=float(inputs["lr"]), betas=(0.9, 0.999), eps=1e-8)
        self.ctx = torch.from_numpy(inputs["ctx"])
        self.tw = torch.from_numpy(inputs["tw"])
        self.i = 0
        self.momentum = float(inputs["ema_momentum"])
        self.eps = float(inputs["ln_eps"])
        if self.collapse == "sigreg":
            self.t = torch.from_numpy(inputs["sigreg_t"])
            self.w = torch.from_numpy(inputs["sigreg_w"])
            self.lam = float(inputs["sigreg_weight"])
            self.n_reg = int(inputs["reg_samples"])
            self.d_dirs, self.M = inputs["sigreg_dirs"].shape
        self.loss = _maybe_compile(self._loss)

    def _layers(self, name: str) -> dict[str, nn.Module]:
        mod = self.mods_all[name]
        if name == "predictor":
            return _ijepa_layers(self.enc, mod)["pred"]
        return {f"0.{i}": mod.net[i] for i in (0, 2, 4)}

    def _load(self) -> None:
        with torch.no_grad():
            for name in self.mods_all:
                for key, layer in self._layers(name).items():
                    W = self.inputs[f"w/{name}/{key}.W"]
                    W = W.T if isinstance(layer, nn.Linear) else W
                    layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(W)))
                    if layer.bias is not None:
                        layer.bias.copy_(torch.from_numpy(self.inputs[f"w/{name}/{key}.b"]))

    def _loss(self, x: torch.Tensor, ctx: torch.Tensor, tw: torch.Tensor,
              rows: torch.Tensor | None, dirs: torch.Tensor | None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        pm = ctx.reshape(n, 1, *self.grid)  # patch 1: the patch mask is the pixel mask
        ctx_in = torch.cat([x * pm, pm.expand_as(x)], dim=1)
        full_in = torch.cat([x, torch.ones_like(x)], dim=1)
        reg = torch.zeros((), dtype=x.dtype)
        if self.collapse == "ema":
            pred = self.pred(self.enc(ctx_in), ctx)
            with torch.no_grad():
                target = F.layer_norm(self.target(full_in), (self.D,), eps=self.eps)
        else:
            h = self.enc(torch.cat([ctx_in, full_in]))
            h_ctx, target = h[:n], h[n:]
            pred = self.pred(h_ctx, ctx)
        diff = pred - target
        loss = (tw[:, :, None] * diff * diff).sum() / (tw.sum() * self.D)
        if self.collapse != "sigreg":
            return loss, loss, reg
        z = target.reshape(-1, self.D)
        if rows is not None:
            z = z[rows]
        xz = z @ dirs
        tx = xz[:, :, None] * self.t
        Cm = torch.cos(tx).mean(dim=0) - torch.exp(-0.5 * self.t * self.t)
        Sm = torch.sin(tx).mean(dim=0)
        reg = (xz.shape[0] * ((Cm * Cm + Sm * Sm) * self.w).sum(dim=1)).mean()
        return loss + self.lam * reg, loss, reg

    def _draws(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if self.collapse != "sigreg":
            return None, None
        n_rows = self.x.shape[0] * self.grid[0] * self.grid[1]
        rows = (torch.sort(torch.randperm(n_rows)[:self.n_reg]).values
                if n_rows > self.n_reg else None)
        a = torch.randn(self.d_dirs, self.M)
        return rows, a / torch.linalg.vector_norm(a, dim=0, keepdim=True)

    def run(self) -> None:
        k = self.i % self.ctx.shape[0]
        self.i += 1
        self.opt.zero_grad(set_to_none=False)
        total, _, _ = self.loss(self.x, self.ctx[k], self.tw[k], *self._draws())
        total.backward()
        self.opt.step()
        if self.collapse == "ema":
            m = self.momentum
            with torch.no_grad():
                for pt, po in zip(self.target.parameters(), self.enc.parameters(), strict=True):
                    pt.mul_(m).add_(po, alpha=1.0 - m)

    def outputs(self) -> dict[str, np.ndarray]:
        mods = list(self.mods_all.values())
        saved = [p.detach().clone() for m in mods for p in m.parameters()]
        self._load()
        for m in self.mods.values():
            m.zero_grad(set_to_none=False)
        rows = dirs = None
        if self.collapse == "sigreg":
            rows = torch.from_numpy(self.inputs["reg_rows"])
            dirs = torch.from_numpy(self.inputs["sigreg_dirs"])
        total, loss, reg = self.loss(self.x, self.ctx[0], self.tw[0], rows, dirs)
        total.backward()
        out = {"loss": np.array(loss.item()), "reg": np.array(reg.item())}
        for name in self.mods:
            for key, layer in self._layers(name).items():
                g = layer.weight.grad.detach().numpy()
                out[f"grad/{name}/{key}.W"] = np.array(g.T if isinstance(layer, nn.Linear) else g)
                if layer.bias is not None:
                    out[f"grad/{name}/{key}.b"] = np.array(layer.bias.grad.detach().numpy())
        with torch.no_grad():
            for m in self.mods.values():
                m.zero_grad(set_to_none=False)
            for p, s in zip([p for m in mods for p in m.parameters()], saved, strict=True):
                p.copy_(s)
        return out


CASES: dict[str, type] = {
    "ijepa_step_ema": _IJEPAStep,
    "ijepa_step_sigreg": _IJEPAStep,
    "latent_wm_step": LatentWMStep,
    "pixel_wm_step": PixelWMStep,
    "latent_cem_decision": LatentCEMDecision,
    "pixel_cem_decision": PixelCEMDecision,
}


def _versions() -> dict[str, str]:
    return {"python": sys.version.split()[0], "torch": torch.__version__,
            "numpy": np.__version__, "mode": MODE,
            "mkl": str(torch.backends.mkl.is_available()),
            "mkldnn": str(torch.backends.mkldnn.is_available())}


def _threads() -> dict[str, Any]:
    # torch's own MKL / oneDNN / OpenMP are linked into libtorch and do not all show in
    # threadpoolctl's list (``blas``): parallel_info() is torch's view of its thread pools
    return {"torch.get_num_threads": torch.get_num_threads(),
            "torch.get_num_interop_threads": torch.get_num_interop_threads(),
            "affinity": sorted(os.sched_getaffinity(0)),
            "parallel_info": torch.__config__.parallel_info()}


def main() -> None:
    global MODE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("eager", "compile"), default="eager")
    MODE = ap.parse_args().mode
    n = int(os.environ.get("OMP_NUM_THREADS", "1"))  # the driver sets it to the cores given
    torch.set_num_threads(n)
    torch.set_num_interop_threads(1)
    serve(f"torch-{MODE}", CASES, _versions, _threads)


if __name__ == "__main__":
    main()
