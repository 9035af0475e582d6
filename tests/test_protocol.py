"""The model protocol: fit/partial_fit, history, save/load, infer/energy, params, determinism."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import predcode
from predcode import MLP, PCN, NotFittedError, ValidationError, load_model
from predcode.models import init_weights

from .conftest import rewrite_saved

KW = dict(epochs=2, batch_size=8, dtype="float64", backend="numpy", random_state=3)


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20, 5))
    y = np.arange(20) % 3
    return X, y


def disc_pcn(**kw):
    return PCN(sizes=(5, 7, 6, 3), **{**KW, **kw})


def gen_pcn(**kw):
    return PCN(sizes=(3, 6, 5), mode="generative", **{**KW, **kw})


def mlp(**kw):
    return MLP(sizes=(5, 7, 6, 3), **{**KW, **kw})


# (factory, supervised?) for the three kinds of model
KINDS = {
    "pcn-disc": (disc_pcn, True),
    "pcn-gen": (gen_pcn, False),
    "mlp": (mlp, True),
}


def _fit(kind, X, y, **kw):
    make, supervised = KINDS[kind]
    model = make(**kw)
    return model.fit(X, y) if supervised else model.fit(X)


def _weights(model):
    return [w.copy() for w in model.W_[1:]] + [b.copy() for b in model.b_]


# ---------------------------------------------------------------------------
# fit / partial_fit / history
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(KINDS))
def test_fit_returns_self_and_records_energy_per_epoch(kind, data):
    X, y = data
    make, supervised = KINDS[kind]
    model = make(epochs=3)
    out = model.fit(X, y) if supervised else model.fit(X)
    assert out is model
    assert model._is_fitted()
    energy = model.history_["energy"]
    assert isinstance(energy, list)
    assert len(energy) == 3
    assert all(type(e) is float and np.isfinite(e) and e >= 0 for e in energy)
    assert set(model.history_) == {"energy", "wall_time_s"}


@pytest.mark.parametrize("kind", ["pcn-disc", "mlp"])
def test_history_energy_falls_on_learnable_task(kind, data):
    X, _ = data
    y = (X[:, 0] > 0).astype(int)  # a linearly separable task
    model = _fit(kind, X, y, epochs=8, lr=0.1)
    energy = model.history_["energy"]
    assert energy[-1] < energy[0]


@pytest.mark.parametrize("kind", ["pcn-disc", "mlp"])
def test_validation_data_records_val_accuracy(kind, data):
    X, y = data
    Xv, yv = X[:9], y[:9]
    make, _ = KINDS[kind]
    model = make(epochs=3).fit(X, y, validation_data=(Xv, yv))
    acc = model.history_["val_accuracy"]
    assert len(acc) == 3 == len(model.history_["energy"])
    assert all(type(a) is float and 0.0 <= a <= 1.0 for a in acc)
    # the last entry is the accuracy of the final model
    assert acc[-1] == model.score(Xv, yv)
    assert acc[-1] == np.mean(model.predict(Xv) == yv)


@pytest.mark.parametrize("kind", list(KINDS))
def test_partial_fit_continues_from_current_weights(kind, data):
    X, y = data
    make, supervised = KINDS[kind]
    args = (X, y) if supervised else (X,)
    model = make(epochs=1).fit(*args)
    before = _weights(model)
    assert len(model.history_["energy"]) == 1

    out = model.partial_fit(*args)
    assert out is model
    assert len(model.history_["energy"]) == 2
    after = _weights(model)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))

    # fit(epochs=1) + partial_fit == fit(epochs=2): same rng stream, constant lr,
    # so partial_fit really continued from the weights fit left behind
    ref = make(epochs=2).fit(*args)
    for a, b in zip(_weights(ref), after, strict=True):
        np.testing.assert_array_equal(a, b)
    assert ref.history_["energy"] == model.history_["energy"]


@pytest.mark.parametrize("kind", list(KINDS))
def test_partial_fit_on_fresh_model_initialises(kind, data):
    X, y = data
    make, supervised = KINDS[kind]
    args = (X, y) if supervised else (X,)
    model = make()
    assert model.partial_fit(*args) is model
    assert model._is_fitted()
    assert len(model.history_["energy"]) == 1
    ref = make(epochs=1).fit(*args)
    for a, b in zip(_weights(ref), _weights(model), strict=True):
        np.testing.assert_array_equal(a, b)


def test_refit_starts_from_scratch(data):
    X, y = data
    model = disc_pcn()
    w1 = _weights(model.fit(X, y))
    w2 = _weights(model.fit(X, y))
    for a, b in zip(w1, w2, strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(model.history_["energy"]) == 2


def test_refit_forgets_classes(data):
    X, y = data
    model = mlp().fit(X, y)
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    model.fit(X, np.array([7, 5, 9])[y])
    np.testing.assert_array_equal(model.classes_, [5, 7, 9])
    assert set(model.predict(X)) <= {5, 7, 9}


@pytest.mark.parametrize("kind", ["pcn-disc", "mlp"])
def test_fewer_classes_than_outputs(kind, data):
    X, y = data
    labels = np.where(y == 0, 5, 9)  # 2 classes, 3 output units
    model = _fit(kind, X, labels)
    np.testing.assert_array_equal(model.classes_, [5, 9])
    pred = model.predict(X)
    assert pred.shape == (20,)
    assert set(pred.tolist()) <= {5, 9}
    assert 0.0 <= model.score(X, labels) <= 1.0


# ---------------------------------------------------------------------------
# save / load
# ---------------------------------------------------------------------------
def _same_outputs(a, b, kind, X, y):
    if kind == "pcn-gen":
        np.testing.assert_array_equal(a.infer(X), b.infer(X))
        np.testing.assert_array_equal(a.energy(X), b.energy(X))
        np.testing.assert_array_equal(a.reconstruct(X), b.reconstruct(X))
    else:
        np.testing.assert_array_equal(a.predict(X), b.predict(X))
        np.testing.assert_array_equal(a.infer(X), b.infer(X))
        np.testing.assert_array_equal(a.energy(X, y), b.energy(X, y))
        np.testing.assert_array_equal(a.forward(X), b.forward(X))
    for u, v in zip(a.infer(X, return_all=True), b.infer(X, return_all=True), strict=True):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("kind", list(KINDS))
def test_save_load_round_trip(kind, data, tmp_path):
    X, y = data
    extra = {"precisions": (1.0, 2.0, 0.5)} if kind == "pcn-gen" else {}
    model = _fit(kind, X, y, **extra)
    path = model.save(tmp_path / "model.npz")
    assert path == tmp_path / "model.npz"
    assert path.is_file()

    cls = type(model)
    loaded = cls.load(path)
    assert type(loaded) is cls
    assert loaded is not model
    assert loaded.get_params() == model.get_params()
    assert loaded.saved_version_ == predcode.__version__
    assert loaded.history_ == model.history_
    assert loaded._is_fitted()
    assert loaded.n_features_in_ == model.n_features_in_
    for a, b in zip(_weights(model), _weights(loaded), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    if kind == "pcn-gen":
        assert not hasattr(loaded, "classes_")
    else:
        np.testing.assert_array_equal(loaded.classes_, model.classes_)
    _same_outputs(model, loaded, kind, X, y)

    # predcode.load_model finds the class itself
    again = load_model(path)
    assert type(again) is cls
    _same_outputs(model, again, kind, X, y)


def test_loaded_model_continues_training(data, tmp_path):
    X, y = data
    model = disc_pcn().fit(X, y)
    loaded = PCN.load(model.save(tmp_path / "m"))
    before = _weights(loaded)
    assert loaded.partial_fit(X, y) is loaded
    # the restored history grows; training starts from the restored weights
    assert loaded.history_["energy"][:2] == model.history_["energy"]
    assert len(loaded.history_["energy"]) == 3
    after = _weights(loaded)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert max(np.abs(a - b).max() for a, b in zip(before, after, strict=True)) < 0.5


def test_save_load_string_labels(data, tmp_path):
    X, y = data
    labels = np.array(["cat", "dog", "eel"])[y]
    model = mlp().fit(X, labels)
    loaded = MLP.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.classes_, ["cat", "dog", "eel"])
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_save_load_float32(data, tmp_path):
    X, y = data
    model = disc_pcn(dtype="float32").fit(X, y)
    loaded = PCN.load(model.save(tmp_path / "m"))
    assert loaded.W_[1].dtype == np.float32
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.energy(X, y), model.energy(X, y))


@pytest.mark.parametrize("name, expected", [("model", "model.npz"),
                                            ("model.bin", "model.bin.npz"),
                                            ("sub/dir/model", "sub/dir/model.npz")])
def test_save_appends_npz(name, expected, data, tmp_path):
    X, y = data
    model = mlp().fit(X, y)
    path = model.save(tmp_path / name)
    assert path == tmp_path / expected
    assert path.is_file()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert MLP.load(path).get_params() == model.get_params()


def test_saved_file_is_plain_npz(data, tmp_path):
    X, y = data
    model = disc_pcn().fit(X, y)
    path = model.save(tmp_path / "m")
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}  # every array loads without pickle
    assert str(arrays["__format__"]) == "predcode-model/1"
    assert str(arrays["__class__"]) == "PCN"
    assert str(arrays["__version__"]) == predcode.__version__
    params = json.loads(str(arrays["__params__"]))
    assert params["sizes"] == [5, 7, 6, 3]
    assert params["mode"] == "discriminative"
    assert json.loads(str(arrays["__history__"])) == model.history_
    for l in (1, 2, 3):
        np.testing.assert_array_equal(arrays[f"state/W_{l}"], model.W_[l])
    np.testing.assert_array_equal(arrays["state/classes_"], [0, 1, 2])
    assert all(a.dtype != object for a in arrays.values())


def test_save_with_generator_random_state(data, tmp_path):
    X, y = data
    model = mlp(random_state=np.random.default_rng(0)).fit(X, y)
    loaded = MLP.load(model.save(tmp_path / "m"))
    assert loaded.random_state is None
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize("saver, loader", [(disc_pcn, MLP), (gen_pcn, MLP), (mlp, PCN)])
def test_load_wrong_class(saver, loader, data, tmp_path):
    X, y = data
    model = saver()
    model = model.fit(X, y) if model.get_params().get("mode") != "generative" else model.fit(X)
    path = model.save(tmp_path / "m")
    name = type(model).__name__
    with pytest.raises(ValidationError,
                       match=rf"holds a {name}, not a {loader.__name__}; use {name}\.load"):
        loader.load(path)


def test_load_tampered_shape(data, tmp_path):
    X, y = data
    path = disc_pcn().fit(X, y).save(tmp_path / "m")
    rewrite_saved(path, **{"state/W_2": np.zeros((6, 8))})
    with pytest.raises(ValidationError,
                       match=r"array 'W_2' .* has shape \(6, 8\), but the saved parameters imply "
                             r"\(6, 7\)"):
        PCN.load(path)


def test_load_tampered_params(data, tmp_path):
    X, y = data
    path = mlp().fit(X, y).save(tmp_path / "m")
    params = mlp().get_params()
    params["sizes"] = [5, 9, 6, 3]
    rewrite_saved(path, __params__=np.array(json.dumps(params)))
    with pytest.raises(ValidationError, match=r"array 'W_1' .* has shape \(7, 5\), but the "
                                              r"saved parameters imply \(9, 5\)"):
        MLP.load(path)


def test_load_missing_array(data, tmp_path):
    X, y = data
    path = disc_pcn().fit(X, y).save(tmp_path / "m")
    rewrite_saved(path, **{"state/b_3": None})
    with pytest.raises(ValidationError, match=r"lacks arrays \['b_3'\]"):
        PCN.load(path)


def test_load_nonfinite_array(data, tmp_path):
    X, y = data
    path = disc_pcn().fit(X, y).save(tmp_path / "m")
    W = np.zeros((7, 5))
    W[1, 1] = np.nan
    rewrite_saved(path, **{"state/W_1": W})
    with pytest.raises(ValidationError, match=r"array 'W_1' .* has NaN or inf"):
        PCN.load(path)


def test_load_unknown_class(data, tmp_path):
    X, y = data
    path = mlp().fit(X, y).save(tmp_path / "m")
    rewrite_saved(path, __class__=np.array("Transformer"))
    with pytest.raises(ValidationError, match=r"unknown model class 'Transformer'"):
        load_model(path)


def test_load_non_predcode_npz(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, a=np.arange(3))
    with pytest.raises(ValidationError, match=r"is not a predcode model file"):
        PCN.load(path)
    with pytest.raises(ValidationError, match=r"is not a predcode model file"):
        load_model(path)


def test_load_not_an_npz(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("hello")
    with pytest.raises(ValidationError, match=r"is damaged or not a predcode model file"):
        PCN.load(path)


def test_load_missing_file(tmp_path):
    with pytest.raises(ValidationError, match=r"load: no such file .*nope\.npz"):
        MLP.load(tmp_path / "nope.npz")


def test_save_is_atomic(data, tmp_path, monkeypatch):
    X, y = data
    first = mlp().fit(X, y)
    path = first.save(tmp_path / "model.npz")
    original = path.read_bytes()

    second = mlp(random_state=99).fit(X, y)
    real_savez = np.savez

    def broken_savez(file, **arrays):
        file.write(b"PK\x03\x04 half a zip file")  # some bytes reach the temp file
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        second.save(path)
    monkeypatch.setattr(np, "savez", real_savez)

    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temp file left
    np.testing.assert_array_equal(MLP.load(path).predict(X), first.predict(X))

    # and a successful save replaces the file
    second.save(path)
    assert path.read_bytes() != original
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]
    np.testing.assert_array_equal(MLP.load(path).W_[1], second.W_[1])


@pytest.mark.parametrize("params", [
    {"dtype": np.float32},
    {"dtype": np.dtype("float64")},
    {"sizes": (np.int64(5), 7, 6, 3)},
    {"precisions": np.array([1.0, 2.0, 1.0, 1.0])},
], ids=["dtype-type", "dtype-object", "numpy-int-sizes", "ndarray-precisions"])
def test_save_accepts_what_fit_accepts(params, data, tmp_path):
    X, y = data
    model = PCN(**{"sizes": (5, 7, 6, 3), **KW, **params}).fit(X, y)
    loaded = PCN.load(model.save(tmp_path / "m"))
    assert loaded.dtype_ == model.dtype_
    assert loaded.sizes_ == model.sizes_
    np.testing.assert_array_equal(loaded.energy(X, y), model.energy(X, y))


def test_save_rejects_unserialisable_params(data, tmp_path):
    X, y = data
    model = mlp().fit(X, y)
    model.activation = object()  # set after fit, not JSON-serialisable
    with pytest.raises(ValidationError, match=r"MLP\.save: parameters must be JSON-serialisable"):
        model.save(tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# infer / energy
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_infer_shapes_generative(backend, data):
    X, _ = data
    model = gen_pcn(backend=backend).fit(X)
    z = model.infer(X)
    assert z.shape == (20, 3)
    layers = model.infer(X, return_all=True)
    assert len(layers) == 3
    assert [a.shape for a in layers] == [(20, 3), (20, 6), (20, 5)]
    np.testing.assert_array_equal(layers[0], z)
    np.testing.assert_array_equal(layers[-1], X)  # the data stay clamped at the bottom
    # infer over several batches equals infer sample by sample
    np.testing.assert_allclose(model.infer(X[5:6]), z[5:6], rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["pcn-disc", "mlp"])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_infer_shapes_discriminative(kind, backend, data):
    X, y = data
    model = _fit(kind, X, y, backend=backend)
    h = model.infer(X)
    assert h.shape == (20, 6)  # sizes[-2]
    layers = model.infer(X, return_all=True)
    assert len(layers) == 4
    assert [a.shape for a in layers] == [(20, 5), (20, 7), (20, 6), (20, 3)]
    np.testing.assert_array_equal(layers[0], X)  # input clamped
    np.testing.assert_array_equal(layers[-2], h)
    # without targets the settled state is the feed-forward pass
    np.testing.assert_allclose(layers[-1], model.forward(X), rtol=0, atol=1e-12)


def test_pcn_infer_with_targets_moves_hidden_layers(data):
    X, y = data
    model = disc_pcn().fit(X, y)
    free = model.infer(X)
    clamped = model.infer(X, y, return_all=True)
    np.testing.assert_array_equal(clamped[-1], np.eye(3)[y])  # output clamped to targets
    assert not np.allclose(clamped[-2], free)


@pytest.mark.parametrize("kind", list(KINDS))
def test_energy_per_sample_nonnegative(kind, data):
    X, y = data
    model = _fit(kind, X, y)
    e = model.energy(X) if kind == "pcn-gen" else model.energy(X, y)
    assert isinstance(e, np.ndarray)
    assert e.shape == (20,)
    assert e.dtype == np.float64
    assert np.all(np.isfinite(e)) and np.all(e >= 0)
    assert np.any(e > 0)
    # per-sample: energy of a slice is the slice of the energies
    sub = model.energy(X[3:7]) if kind == "pcn-gen" else model.energy(X[3:7], y[3:7])
    np.testing.assert_allclose(sub, e[3:7], rtol=1e-10, atol=1e-12)


def test_mlp_energy_is_half_squared_error(data):
    X, y = data
    model = mlp().fit(X, y)
    expected = 0.5 * ((np.eye(3)[y] - model.forward(X)) ** 2).sum(axis=1)
    np.testing.assert_allclose(model.energy(X, y), expected, rtol=1e-12)


def test_predict_returns_known_labels(data):
    X, y = data
    model = disc_pcn().fit(X, np.array([10, 20, 30])[y])
    pred = model.predict(X)
    assert pred.shape == (20,)
    assert set(pred.tolist()) <= {10, 20, 30}


# ---------------------------------------------------------------------------
# parameters and repr
# ---------------------------------------------------------------------------
def test_get_params():
    model = PCN(sizes=(4, 3), gamma=0.2, T=7)
    params = model.get_params()
    assert params["sizes"] == (4, 3)
    assert params["gamma"] == 0.2
    assert params["T"] == 7
    assert set(params) == {
        "sizes", "mode", "activation", "T", "gamma", "lr", "lr_schedule", "update",
        "fixed_prediction", "precisions", "epochs", "batch_size", "dtype", "backend",
        "random_state", "check_divergence", "n_jobs", "verbose",
    }
    assert set(MLP().get_params()) == {
        "sizes", "activation", "lr", "lr_schedule", "epochs", "batch_size", "dtype",
        "backend", "random_state", "verbose",
    }
    # a copy built from get_params has the same parameters
    assert PCN(**params).get_params() == params


def test_set_params(data):
    X, y = data
    model = disc_pcn(epochs=1)
    assert model.set_params(epochs=3, lr=0.01) is model
    assert model.epochs == 3 and model.lr == 0.01
    model.fit(X, y)
    assert len(model.history_["energy"]) == 3


def test_set_params_unknown():
    model = MLP()
    with pytest.raises(ValidationError,
                       match=r"MLP\.set_params: unknown parameter 'gamma'; valid parameters are "
                             r"\[.*'lr'.*\]"):
        model.set_params(gamma=0.1)
    assert not hasattr(model, "gamma")
    with pytest.raises(ValidationError, match=r"PCN\.set_params: unknown parameter 'W_'"):
        PCN().set_params(W_=None)


def test_repr():
    assert repr(PCN()) == "PCN()"
    assert repr(MLP()) == "MLP()"
    r = repr(PCN(sizes=(4, 3), gamma=0.2, mode="generative"))
    assert r == "PCN(sizes=(4, 3), mode='generative', gamma=0.2)"
    assert repr(MLP(activation="relu")) == "MLP(activation='relu')"
    # arrays as parameters do not break repr
    assert "precisions=" in repr(PCN(sizes=(4, 3), precisions=np.array([1.0, 2.0])))


def test_unfitted_model_has_no_state():
    model = PCN()
    assert not model._is_fitted()
    with pytest.raises(NotFittedError):
        model.infer(np.zeros((1, 64)))
    with pytest.raises(AttributeError):  # NotFittedError is an AttributeError too
        model.energy(np.zeros((1, 64)), np.zeros(1))


# ---------------------------------------------------------------------------
# reproducibility and backends
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(KINDS))
def test_same_seed_same_weights(kind, data):
    X, y = data
    a = _fit(kind, X, y, random_state=11)
    b = _fit(kind, X, y, random_state=11)
    for u, v in zip(_weights(a), _weights(b), strict=True):
        np.testing.assert_array_equal(u, v)
    assert a.history_["energy"] == b.history_["energy"]  # wall_time_s is a clock
    c = _fit(kind, X, y, random_state=12)
    assert not np.array_equal(a.W_[-1], c.W_[-1])


def test_initial_weights_come_from_init_weights(data):
    X, y = data
    # with lr tiny, the weights after fit are (almost) the seeded Glorot draws
    model = disc_pcn(lr=1e-300, epochs=1).fit(X, y)
    W, b = init_weights((5, 7, 6, 3), 3, np.float64)
    for l in (1, 2, 3):
        np.testing.assert_array_equal(model.W_[l], W[l])
        limit = np.sqrt(6.0 / (W[l].shape[0] + W[l].shape[1]))
        assert np.abs(W[l]).max() <= limit


_CROSS = [
    pytest.param(disc_pcn, dict(activation="tanh"), True, id="pcn-tanh"),
    pytest.param(disc_pcn, dict(activation="relu", update="incremental"), True,
                 id="pcn-relu-incremental"),
    pytest.param(disc_pcn, dict(activation="sigmoid", fixed_prediction=True, gamma=0.5), True,
                 id="pcn-sigmoid-fixed-prediction"),
    pytest.param(disc_pcn, dict(activation="linear", precisions=(1.0, 2.0, 0.5, 1.5),
                                lr_schedule="cosine"), True, id="pcn-linear-precisions-cosine"),
    pytest.param(gen_pcn, dict(activation="tanh"), False, id="pcn-generative"),
    pytest.param(gen_pcn, dict(activation="tanh", update="incremental"), False,
                 id="pcn-generative-incremental"),
    pytest.param(mlp, dict(activation="tanh"), True, id="mlp-tanh"),
    pytest.param(mlp, dict(activation="relu"), True, id="mlp-relu"),
]


@pytest.mark.parametrize("make, kw, supervised", _CROSS)
def test_numpy_and_numba_backends_agree(make, kw, supervised, data):
    X, y = data
    args = (X, y) if supervised else (X,)
    ref = make(backend="numpy", **kw).fit(*args)
    fast = make(backend="numba", **kw).fit(*args)
    assert ref.backend_ == "numpy" and fast.backend_ == "numba"
    init = init_weights(ref.sizes_, KW["random_state"], np.float64)[0]
    # the comparison is not vacuous: training moved the weights
    assert max(np.abs(w - w0).max() for w, w0 in zip(ref.W_[1:], init[1:], strict=True)) > 1e-4
    for u, v in zip(_weights(ref), _weights(fast), strict=True):
        np.testing.assert_allclose(v, u, rtol=0, atol=1e-10)
    np.testing.assert_allclose(fast.history_["energy"], ref.history_["energy"], rtol=1e-10)


def test_auto_backend_resolves(data):
    X, y = data
    model = mlp(backend="auto").fit(X, y)
    assert model.backend_ == predcode.resolve_backend("auto")
    assert model.backend == "auto"


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_of_learned_state_and_outputs(kind, dtype, data):
    X, y = data
    model = _fit(kind, X, y, dtype=dtype, backend="numba")
    want = np.dtype(dtype)
    assert model.dtype_ == want
    assert all(w.dtype == want for w in model.W_[1:])
    assert all(b.dtype == want for b in model.b_)
    assert model.infer(X).dtype == want
    e = model.energy(X) if kind == "pcn-gen" else model.energy(X, y)
    assert e.dtype == want


def test_float32_close_to_float64(data):
    X, y = data
    a = disc_pcn(dtype="float32").fit(X, y)
    b = disc_pcn(dtype="float64").fit(X, y)
    np.testing.assert_allclose(a.W_[2], b.W_[2], rtol=0, atol=1e-4)


def test_save_creates_no_stray_files(data, tmp_path):
    X, y = data
    mlp().fit(X, y).save(tmp_path / "a")
    disc_pcn().fit(X, y).save(tmp_path / "b.npz")
    assert sorted(os.listdir(tmp_path)) == ["a.npz", "b.npz"]
