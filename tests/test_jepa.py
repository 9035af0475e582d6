"""I-JEPA-style model and multi-block masking.

* Masks follow I-JEPA's collator (Assran et al. 2023, configs: 4 targets at scale
  0.15–0.2, aspect 0.75–1.5, context 0.85–1.0): block sizes from the formula,
  targets never overlap the context.
* The whole training gradient (encoder + predictor, every collapse option) equals
  finite differences of the loss (float64).
* The EMA target encoder never receives gradients and follows
  θ̄ ← m θ̄ + (1 − m) θ exactly.
* Without a regulariser the shared-encoder JEPA shrinks its embeddings (collapse
  in scale); SIGReg holds them near unit variance (LeJEPA).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from predcode.datasets import block_size, load_digits_split, multiblock_masks
from predcode.exceptions import BackendError, NotFittedError, ValidationError
from predcode.models.jepa import IJEPA, sincos_2d
from predcode.nn import named_params, zero_grad

from .conftest import check_param_gradients


@pytest.mark.parametrize("grid", [(14, 14), (8, 8)])
def test_masks_scales_and_no_overlap(grid):
    rng = np.random.default_rng(0)
    P = grid[0] * grid[1]
    fracs = []
    for _ in range(40):
        ctx, tgt = multiblock_masks(8, grid, random_state=rng)
        assert ctx.shape == (8, P) and tgt.shape == (8, 4, P)
        assert not (ctx[:, None, :] & tgt).any(), "context overlaps a target"
        assert (ctx.sum(axis=1) >= 4).all()
        sizes = tgt.sum(axis=2)
        assert (sizes == sizes[0, 0]).all(), "target sizes differ within a batch"
        for b in range(8):  # every target is a filled rectangle
            for k in range(4):
                r, c = np.nonzero(tgt[b, k].reshape(grid))
                assert (r.max() - r.min() + 1) * (c.max() - c.min() + 1) == len(r)
        fracs.append(sizes[0, 0] / P)
    # sizes follow round(sqrt(s P a)) x round(sqrt(s P / a)) with s in [0.15, 0.2]:
    areas = [np.prod(block_size(s, a, grid)) / P for s in np.linspace(0.15, 0.2, 41)
             for a in np.geomspace(0.75, 1.5, 41)]
    lo, hi = min(areas), max(areas)
    assert lo - 1e-9 <= min(fracs) and max(fracs) <= hi + 1e-9
    if grid == (14, 14):
        assert 0.13 < np.mean(fracs) < 0.21


def test_block_size_formula():
    """I-JEPA: h = round(sqrt(s P a)), w = round(sqrt(s P / a)) on a 14x14 grid."""
    assert block_size(0.15, 1.0, (14, 14)) == (5, 5)  # sqrt(29.4) = 5.4
    assert block_size(0.2, 1.5, (14, 14)) == (8, 5)  # sqrt(58.8) = 7.7, sqrt(26.1) = 5.1
    assert block_size(1.0, 1.0, (14, 14)) == (14, 14)


def test_masks_bad_parameters():
    with pytest.raises(ValidationError, match="target_scale"):
        multiblock_masks(2, (8, 8), target_scale=(0.3, 0.2))
    with pytest.raises(ValidationError, match="min_keep"):
        multiblock_masks(2, (4, 4), target_scale=(0.6, 0.7), min_keep=10, random_state=0)
    with pytest.raises(ValidationError, match="grid"):
        multiblock_masks(2, (8,))


def test_sincos_embeddings():
    E = sincos_2d((3, 4), 8)
    assert E.shape == (12, 8)
    assert len({tuple(np.round(r, 9)) for r in E}) == 12  # all positions distinct
    np.testing.assert_allclose(E[0], [0, 0, 1, 1, 0, 0, 1, 1], atol=1e-12)


def _tiny(**kw):
    base = dict(image_shape=(4, 4), patch=1, channels=3, embed_dim=4, pred_hidden=6, pos_dim=4,
                n_targets=2, target_scale=(0.15, 0.2), context_scale=(0.9, 1.0), epochs=1,
                batch_size=4, dtype="float64", backend="numpy", random_state=0)
    base.update(kw)
    return IJEPA(**base)


@pytest.mark.parametrize("kw", [dict(collapse="ema"), dict(collapse="sigreg"),
                                dict(collapse="vicreg"), dict(collapse="none"),
                                dict(predict="pixels"),
                                dict(collapse="sigreg", patch=2, image_shape=(8, 8)),
                                dict(collapse="ema", depth=3),
                                dict(collapse="ema", pred_depth=3),
                                dict(collapse="sigreg", depth=2, patch=2, image_shape=(8, 8)),
                                dict(collapse="sigreg", reg_on="pooled"),
                                dict(collapse="vicreg", reg_on="pooled", reg_samples=2),
                                dict(collapse="ema", pos_embed=True, channels=4, depth=2),
                                dict(collapse="sigreg", pos_embed=True, channels=4, patch=2,
                                     image_shape=(8, 8))],
                         ids=["ema", "sigreg", "vicreg", "none", "pixels", "sigreg-patch2",
                              "ema-depth3", "ema-pred-depth3", "sigreg-patch2-depth2",
                              "sigreg-pooled", "vicreg-pooled", "ema-pos", "sigreg-pos-patch2"])
def test_training_gradient_matches_finite_differences(kw):
    """∂(loss + λ reg)/∂θ by the hand-written backward equals central differences (1e-5)."""
    rng = np.random.default_rng(1)
    hw = kw.get("image_shape", (4, 4))
    X = rng.standard_normal((6, hw[0] * hw[1]))
    m = _tiny(**kw).fit(X)
    x = m._check_X(X[:3], "test")
    ctx, tw = m._masks(3, np.random.default_rng(2))

    def total():
        zero_grad(m.encoder_)
        zero_grad(m.predictor_)
        loss, reg, _ = m._loss(x, ctx, tw, learn=True, rng=np.random.default_rng(5))
        return loss + m.reg_weight_ * reg

    entries = list(named_params(m.encoder_)) + list(named_params(m.predictor_))
    check_param_gradients(entries, total, seed=3, abs_tol=1e-8)


def test_pos_embed_breaks_translation_equivariance():
    """Without positional embeddings a constant image gives the same feature at every
    interior patch (the encoder is a convolution); with them every patch differs,
    by the sin–cos map added after the patchify convolution."""
    X = np.ones((1, 36))
    for pos, distinct in ((False, 1), (True, 16)):
        m = _tiny(image_shape=(6, 6), pos_embed=pos, channels=4, lr=1e-12).fit(
            np.zeros((2, 36)))
        h = m.infer(X).reshape(6, 6, 4)[1:5, 1:5].reshape(16, 4)  # off the zero padding
        assert len({tuple(np.round(r, 9)) for r in h}) == distinct, pos
    with pytest.raises(ValidationError, match="IJEPA.channels"):
        _tiny(pos_embed=True, channels=3).fit(np.zeros((4, 16)))


def test_ema_target_gets_no_gradient_and_follows_momentum():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 16))
    m = _tiny(collapse="ema", batch_size=8, ema=(0.9, 0.9), lr=1e-2).fit(X)  # one step
    init = _tiny(collapse="ema")
    init._validate()
    init._build(np.random.default_rng(0), backend="numpy")  # the same first draws as fit's
    for (name, lt, kt), (_, lo, ko), (_, li, ki) in zip(
            named_params(m.target_encoder_), named_params(m.encoder_),
            named_params(init.encoder_), strict=True):
        assert not lt.grads[kt].any(), f"target {name} received a gradient"
        expect = 0.9 * li.params[ki] + 0.1 * lo.params[ko]
        np.testing.assert_allclose(lt.params[kt], expect, atol=1e-12, err_msg=name)
        assert not np.allclose(lo.params[ko], li.params[ki]), "online encoder did not learn"
    assert m.target_encoder_ is not m.encoder_


def test_momentum_schedule_reaches_one():
    X = np.random.default_rng(0).standard_normal((16, 16))
    m = _tiny(collapse="ema", epochs=4, batch_size=4).fit(X)
    assert m.history_["ema"][0] == pytest.approx(0.996 + 0.004 * 4 / 16)
    assert m.history_["ema"][-1] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def digits():
    Xtr, ytr, Xte, yte = load_digits_split(random_state=0)
    mu, sd = Xtr.mean(), Xtr.std()
    return (Xtr[:400] - mu) / sd, ytr[:400], (Xte - mu) / sd, yte


def test_sigreg_prevents_scale_collapse(digits):
    """Shared encoder, no regulariser: embeddings shrink; with SIGReg they approach unit std."""
    Xtr = digits[0]
    stds = {}
    for collapse in ("none", "sigreg"):
        m = IJEPA(collapse=collapse, epochs=6, random_state=0).fit(Xtr)
        stds[collapse] = float(m.infer(digits[2][:200]).reshape(-1, 16).std(axis=0).mean())
        if collapse == "sigreg":
            assert m.history_["reg"][-1] < 0.8 * m.history_["reg"][0], m.history_["reg"]
    assert stds["none"] < 0.15, stds
    assert stds["sigreg"] > max(0.4, 3 * stds["none"]), stds


def test_pixel_baseline_learns_and_energy(digits):
    Xtr = digits[0]
    m = IJEPA(predict="pixels", epochs=4, random_state=0).fit(Xtr)
    assert m.history_["loss"][-1] < 0.9 * m.history_["loss"][0]
    e = m.energy(Xtr[:10])
    assert e.shape == (10,) and np.all(e >= 0)
    np.testing.assert_allclose(e, m.energy(Xtr[:10]))  # fixed mask seed: deterministic
    assert m.infer(Xtr[:5], pool="mean").shape == (5, 16)


def test_save_load_roundtrip(tmp_path):
    X = np.random.default_rng(0).standard_normal((8, 16))
    m = _tiny(collapse="sigreg").fit(X)
    path = m.save(tmp_path / "jepa")
    m2 = IJEPA.load(path)
    np.testing.assert_allclose(m2.infer(X), m.infer(X))
    m2.partial_fit(X)  # continues training at the constant rate lr
    assert len(m2.history_["loss"]) == 2
    assert not np.allclose(m2.infer(X), m.infer(X))
    m3 = IJEPA.load(_tiny(collapse="ema").fit(X).save(tmp_path / "ema"))
    assert m3.target_encoder_ is not m3.encoder_


def test_bad_inputs_raise():
    X = np.zeros((4, 16))
    with pytest.raises(ValidationError, match=r"IJEPA.fit: X: expected shape \(n, 16\)|X"):
        _tiny().fit(np.zeros((4, 15)))
    with pytest.raises(ValidationError, match="IJEPA.collapse: unknown option 'bogus'"):
        _tiny(collapse="bogus").fit(X)
    with pytest.raises(ValidationError, match="divisible"):
        _tiny(patch=3).fit(X)
    with pytest.raises(ValidationError, match="IJEPA.ema"):
        _tiny(ema=(1.0, 0.5)).fit(X)
    with pytest.raises(ValidationError, match="NaN"):
        _tiny().fit(np.full((4, 16), math.nan))
    with pytest.raises(NotFittedError):
        _tiny().infer(X)
    with pytest.raises((ValidationError, BackendError)):
        _tiny(backend="tpu").fit(X)


@pytest.mark.parametrize("collapse", ["ema", "sigreg"])
def test_backends_agree(backend, collapse):
    """Training on every backend (numba kernels, CuPy on a GPU) matches numpy (float64)."""
    from predcode.backend import get_namespace, to_numpy

    X = np.random.default_rng(0).standard_normal((12, 16))
    ref = _tiny(collapse=collapse, epochs=2).fit(X)
    m = _tiny(collapse=collapse, epochs=2, backend=backend).fit(
        get_namespace(backend).asarray(X))
    np.testing.assert_allclose(to_numpy(m.infer(get_namespace(backend).asarray(X))),
                               ref.infer(X), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(m.history_["loss"], ref.history_["loss"], rtol=1e-8)
