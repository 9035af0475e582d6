"""Bad input raises clear errors (class, parameter, expectation) and writes nothing."""

from __future__ import annotations

import importlib.util
import numbers
import re
import sys
import types

import numpy as np
import pytest

import predcode
from predcode import (
    MLP,
    PCN,
    BackendError,
    DivergenceError,
    NotFittedError,
    PredcodeError,
    ValidationError,
)
from predcode import validation as V

HAS_CUPY = importlib.util.find_spec("cupy") is not None

BASE = dict(sizes=(4, 6, 3), epochs=1, batch_size=4, dtype="float64", backend="numpy",
            random_state=0)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 4))
    y = np.arange(12) % 3
    return X, y


def _assert_unfitted(model, X):
    """No learned state after a failed fit."""
    assert not model._is_fitted()
    for attr in ("W_", "b_", "classes_", "history_", "n_features_in_"):
        assert not hasattr(model, attr), f"failed fit left {attr} behind"
    with pytest.raises(NotFittedError, match="not fitted"):
        model.infer(X)


# ---------------------------------------------------------------------------
# exception hierarchy
# ---------------------------------------------------------------------------
def test_exception_hierarchy():
    assert issubclass(ValidationError, PredcodeError)
    assert issubclass(ValidationError, ValueError)
    assert issubclass(BackendError, RuntimeError)
    assert issubclass(NotFittedError, AttributeError)
    assert issubclass(DivergenceError, FloatingPointError)
    for exc in (ValidationError, BackendError, NotFittedError, DivergenceError):
        assert issubclass(exc, PredcodeError)


# ---------------------------------------------------------------------------
# model parameters, validated in fit
# ---------------------------------------------------------------------------
_COMMON = [
    ("lr", -0.1, r"\.lr: must be > 0(\.0)?, got -0\.1"),
    ("lr", 0.0, r"\.lr: must be > 0(\.0)?, got 0\.0"),
    ("lr", True, r"\.lr: expected a number, got the bool True"),
    ("lr", float("nan"), r"\.lr: must be finite"),
    ("epochs", 0, r"\.epochs: must be >= 1, got 0"),
    ("epochs", 1.5, r"\.epochs: expected .*Integral.*got float 1\.5"),
    ("batch_size", 0, r"\.batch_size: must be >= 1, got 0"),
    ("activation", "softplus",
     r"\.activation: unknown option 'softplus'; choose one of 'linear', 'tanh', 'sigmoid', "
     r"'relu'"),
    ("lr_schedule", "step", r"\.lr_schedule: unknown option 'step'; choose one of 'constant', "
                            r"'cosine'"),
    ("dtype", "int32", r"\.dtype: expected 'float32' or 'float64', got 'int32'"),
    ("dtype", "float16", r"\.dtype: expected 'float32' or 'float64', got 'float16'"),
    ("dtype", "banana", r"\.dtype: expected 'float32' or 'float64', got 'banana'"),
    ("sizes", (10,), r"\.sizes: expected at least two layers .*got \(10,\)"),
    ("sizes", (4, 0, 3), r"\.sizes\[1\]: expected a positive integer width, got 0"),
    ("sizes", (4, 2.5, 3), r"\.sizes\[1\]: expected a positive integer width, got 2\.5"),
    ("sizes", "abc", r"\.sizes: expected a sequence of layer widths .*got 'abc'"),
    ("backend", "tpu",
     r"\.backend: unknown backend 'tpu'; choose one of 'auto', 'numpy', 'numba', 'cupy'"),
    ("random_state", 1.5, r"\.random_state: expected None, an int seed or "
                          r"numpy\.random\.Generator, got float"),
    ("verbose", 1, r"\.verbose: expected bool, got int 1"),
]

_PCN_ONLY = [
    ("gamma", 0.0, r"PCN\.gamma: must be > 0(\.0)?, got 0\.0"),
    ("gamma", -0.5, r"PCN\.gamma: must be > 0(\.0)?, got -0\.5"),
    ("gamma", float("inf"), r"PCN\.gamma: must be finite"),
    ("T", 0, r"PCN\.T: must be >= 1, got 0"),
    ("T", 2.5, r"PCN\.T: expected .*Integral.*got float 2\.5"),
    ("T", True, r"PCN\.T: expected a number, got the bool True"),
    ("mode", "supervised",
     r"PCN\.mode: unknown option 'supervised'; choose one of 'discriminative', 'generative'"),
    ("update", "online",
     r"PCN\.update: unknown option 'online'; choose one of 'standard', 'incremental'"),
    ("fixed_prediction", 1, r"PCN\.fixed_prediction: expected bool"),
    ("check_divergence", "yes", r"PCN\.check_divergence: expected bool"),
    ("precisions", (1.0, 1.0), r"PCN\.precisions: expected 3 values .*got 2"),
    ("precisions", (1.0, 1.0, 1.0, 1.0), r"PCN\.precisions: expected 3 values .*got 4"),
    ("precisions", (1.0, 0.0, 1.0), r"PCN\.precisions\[1\]: must be > 0(\.0)?, got 0\.0"),
    ("precisions", (1.0, 1.0, -2.0), r"PCN\.precisions\[2\]: must be > 0(\.0)?, got -2\.0"),
    ("precisions", (1.0, float("nan"), 1.0), r"PCN\.precisions\[1\]: must be finite"),
    ("precisions", "abc", r"PCN\.precisions: expected a sequence of 3 positive numbers"),
]


@pytest.mark.parametrize("cls", [PCN, MLP], ids=["PCN", "MLP"])
@pytest.mark.parametrize("name, value, pattern", _COMMON, ids=[f"{n}={v!r}" for n, v, _ in _COMMON])
def test_common_param_rejected_in_fit(cls, name, value, pattern, data):
    X, y = data
    model = cls(**{**BASE, name: value})  # the constructor only stores
    assert getattr(model, name) is value
    with pytest.raises(ValidationError, match=cls.__name__ + pattern):
        model.fit(X, y)
    _assert_unfitted(model, X)


@pytest.mark.parametrize("name, value, pattern", _PCN_ONLY,
                         ids=[f"{n}={v!r}" for n, v, _ in _PCN_ONLY])
def test_pcn_param_rejected_in_fit(name, value, pattern, data):
    X, y = data
    model = PCN(**{**BASE, name: value})
    with pytest.raises(ValidationError, match=pattern):
        model.fit(X, y)
    _assert_unfitted(model, X)


def test_fixed_prediction_bound_scales_with_hidden_precision(data):
    """Error of layer l relaxes by (1 - gamma pi_l): with pi_1 = 4 the bound is gamma < 0.5."""
    X, y = data
    n_layers = len(BASE["sizes"])
    prec = (1.0, 4.0) + (1.0,) * (n_layers - 2)
    with pytest.raises(ValidationError, match=r"use gamma < 0\.5\b"):
        PCN(**{**BASE, "precisions": prec}, fixed_prediction=True, gamma=0.6).fit(X, y)
    PCN(**{**BASE, "precisions": prec}, fixed_prediction=True, gamma=0.45).fit(X, y)


@pytest.mark.parametrize("gamma", [2.0, 3.5])
def test_fixed_prediction_needs_gamma_below_two(gamma, data):
    X, y = data
    model = PCN(**BASE, fixed_prediction=True, gamma=gamma)
    with pytest.raises(ValidationError, match=r"PCN\.gamma=.*diverges for gamma pi_l >= 2"
                                              r".*use gamma < 2\b"):
        model.fit(X, y)
    # just below the bound is accepted
    PCN(**BASE, fixed_prediction=True, gamma=1.0).fit(X, y)


def test_fixed_prediction_rejects_incremental(data):
    X, y = data
    model = PCN(**BASE, fixed_prediction=True, update="incremental")
    with pytest.raises(ValidationError, match=r"PCN\.fixed_prediction=True cannot be combined "
                                              r"with update='incremental'.*update='standard'"):
        model.fit(X, y)


@pytest.mark.skipif(HAS_CUPY, reason="CuPy is importable here")
@pytest.mark.parametrize("cls", [PCN, MLP], ids=["PCN", "MLP"])
def test_cupy_backend_without_cupy_says_how_to_install(cls, data):
    X, y = data
    model = cls(**{**BASE, "backend": "cupy"})
    with pytest.raises(BackendError, match=rf"{cls.__name__}\.backend='cupy' is not available"
                                           r".*pip install") as info:
        model.fit(X, y)
    assert "cupy" in str(info.value).lower()
    _assert_unfitted(model, X)


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [PCN, MLP], ids=["PCN", "MLP"])
class TestData:
    def test_wrong_width(self, cls, data):
        X, y = data
        with pytest.raises(ValidationError,
                           match=rf"{cls.__name__}\.X: expected shape \(n, 4\), got \(12, 3\)"):
            cls(**BASE).fit(X[:, :3], y)

    def test_wrong_width_after_fit(self, cls, data):
        X, y = data
        model = cls(**BASE).fit(X, y)
        with pytest.raises(ValidationError, match=r"X: expected shape \(n, 4\), got \(12, 5\)"):
            model.predict(np.hstack([X, X[:, :1]]))
        with pytest.raises(ValidationError, match=r"X: expected shape \(n, 4\), got \(12, 3\)"):
            model.infer(X[:, :3])

    def test_one_dimensional_x_suggests_reshape(self, cls, data):
        X, y = data
        with pytest.raises(ValidationError,
                           match=r"X: expected shape \(n, 4\) = \(n_samples, n_features\), "
                                 r"got \(4,\); for a single sample use X\.reshape\(1, -1\)"):
            cls(**BASE).fit(X[0], y[:1])
        model = cls(**BASE).fit(X, y)
        with pytest.raises(ValidationError, match=r"X\.reshape\(1, -1\)"):
            model.predict(X[0])
        # the suggested fix works
        assert model.predict(X[0].reshape(1, -1)).shape == (1,)

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    def test_nonfinite_x(self, cls, bad, data):
        X, y = data
        X = X.copy()
        X[3, 2] = bad
        X[5, 0] = bad
        with pytest.raises(ValidationError,
                           match=rf"{cls.__name__}\.X: contains 2 NaN or infinite value"):
            cls(**BASE).fit(X, y)

    def test_nonfinite_x_after_fit(self, cls, data):
        X, y = data
        model = cls(**BASE).fit(X, y)
        Xb = X.copy()
        Xb[0, 0] = np.nan
        with pytest.raises(ValidationError, match=r"X: contains 1 NaN or infinite"):
            model.predict(Xb)

    def test_string_x(self, cls, data):
        X, y = data
        with pytest.raises(ValidationError,
                           match=r"X: expected numeric data, got dtype <U.*astype\('float64'\)"):
            cls(**BASE).fit(X.astype(str), y)

    def test_ragged_x(self, cls, data):
        _, y = data
        with pytest.raises(ValidationError, match=r"X: could not convert to an array"):
            cls(**BASE).fit([[1.0, 2.0, 3.0, 4.0], [1.0]], y[:2])

    def test_empty_x(self, cls, data):
        X, y = data
        with pytest.raises(ValidationError, match=r"X: got an empty array of shape \(0, 4\)"):
            cls(**BASE).fit(X[:0], y[:0])

    def test_sample_count_mismatch(self, cls, data):
        X, y = data
        with pytest.raises(ValidationError,
                           match=rf"{cls.__name__}: X has 12 samples but y has 10"):
            cls(**BASE).fit(X, y[:10])
        with pytest.raises(ValidationError, match=r"X has 12 samples but y has 13"):
            cls(**BASE).fit(X, np.zeros((13, 3)))

    def test_more_classes_than_outputs(self, cls, data):
        X, _ = data
        y4 = np.arange(12) % 4
        with pytest.raises(ValidationError,
                           match=rf"{cls.__name__}\.fit: y has 4 classes but the output layer "
                                 r"has 3 units; use sizes=\(\.\.\., 4\)"):
            cls(**BASE).fit(X, y4)

    def test_target_matrix_wrong_width(self, cls, data):
        X, _ = data
        with pytest.raises(ValidationError, match=r"y: expected shape \(n, 3\), got \(12, 4\)"):
            cls(**BASE).fit(X, np.zeros((12, 4)))

    def test_labels_unseen_at_fit(self, cls, data):
        X, y = data
        model = cls(**BASE).fit(X, y)
        y_new = y.copy()
        y_new[:2] = [7, 5]
        with pytest.raises(ValidationError, match=r"y has labels \[5, 7\] not seen during fit"):
            model.energy(X, y_new)
        with pytest.raises(ValidationError, match=r"y has labels \[5, 7\] not seen during fit"):
            model.partial_fit(X, y_new)

    def test_labels_after_real_valued_targets(self, cls, data):
        X, y = data
        model = cls(**BASE).fit(X, 0.8 * np.eye(3)[y] + 0.1)  # real-valued, not one-hot
        assert not hasattr(model, "classes_")
        with pytest.raises(ValidationError, match=r"got labels y but the model was trained on "
                                                  r"real-valued targets"):
            model.energy(X, y)

    def test_fit_without_y(self, cls, data):
        X, _ = data
        model = cls(**BASE)
        with pytest.raises(ValidationError, match=rf"{cls.__name__}\.fit: .*needs targets y"):
            model.fit(X, None)
        _assert_unfitted(model, X)


def test_pcn_infer_with_unseen_labels(data):
    X, y = data
    model = PCN(**BASE).fit(X, y)
    with pytest.raises(ValidationError, match=r"y has labels \[3\] not seen during fit"):
        model.infer(X, y + 1)


def test_discriminative_pcn_without_y_suggests_generative(data):
    X, _ = data
    with pytest.raises(ValidationError,
                       match=r"PCN\.fit: discriminative mode needs targets y.*mode='generative'"):
        PCN(**BASE).fit(X)


def test_generative_fit_with_y(data):
    X, y = data
    model = PCN(**{**BASE, "sizes": (2, 5, 4)}, mode="generative")
    with pytest.raises(ValidationError, match=r"PCN: generative mode learns p\(X\) and takes no "
                                              r"y.*mode='discriminative'"):
        model.fit(X, y)
    _assert_unfitted(model, X)
    model.fit(X)  # without y it works
    assert model._is_fitted()


def test_discriminative_energy_needs_y(data):
    X, y = data
    model = PCN(**BASE).fit(X, y)
    with pytest.raises(ValidationError, match=r"PCN\.energy: discriminative mode needs targets y"):
        model.energy(X)


# ---------------------------------------------------------------------------
# not fitted
# ---------------------------------------------------------------------------
_UNFITTED = [
    (PCN, "infer", lambda X, y: (X,)),
    (PCN, "predict", lambda X, y: (X,)),
    (PCN, "energy", lambda X, y: (X, y)),
    (PCN, "forward", lambda X, y: (X,)),
    (PCN, "save", lambda X, y: ("never-written.npz",)),
    (PCN, "settle_trajectory", lambda X, y: (X, y)),
    (PCN, "weight_updates", lambda X, y: (X, y)),
    (MLP, "infer", lambda X, y: (X,)),
    (MLP, "predict", lambda X, y: (X,)),
    (MLP, "energy", lambda X, y: (X, y)),
    (MLP, "forward", lambda X, y: (X,)),
    (MLP, "save", lambda X, y: ("never-written.npz",)),
    (MLP, "gradients", lambda X, y: (X, y)),
]
_UNFITTED_IDS = [f"{c.__name__}.{m}" for c, m, _ in _UNFITTED]


@pytest.mark.parametrize("cls, method, args", _UNFITTED, ids=_UNFITTED_IDS)
def test_not_fitted(cls, method, args, data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X, y = data
    model = cls(**BASE)
    with pytest.raises(NotFittedError,
                       match=rf"{cls.__name__}\.\w+: the model is not fitted yet; call fit"):
        getattr(model, method)(*args(X, y))
    assert list(tmp_path.iterdir()) == []  # save wrote nothing


_NAMES_METHOD = [pytest.param(c, m, a, id=f"{c.__name__}.{m}") for c, m, a in _UNFITTED]


@pytest.mark.parametrize("cls, method, args", _NAMES_METHOD)
def test_not_fitted_names_called_method(cls, method, args, data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X, y = data
    with pytest.raises(NotFittedError, match=rf"^{cls.__name__}\.{method}: "):
        getattr(cls(**BASE), method)(*args(X, y))


# ---------------------------------------------------------------------------
# failed fit leaves nothing half-written
# ---------------------------------------------------------------------------
def _nan_x(X, y):
    X = X.copy()
    X[4, 1] = np.nan
    return X, y


_FAILED_FITS = [
    pytest.param(_nan_x, {}, id="nan-X"),
    pytest.param(lambda X, y: (X[:, :3], y), {}, id="wrong-width"),
    pytest.param(lambda X, y: (X, np.arange(12) % 5), {}, id="too-many-classes"),
    pytest.param(lambda X, y: (X, y), {"lr": 0.0}, id="bad-param"),
    pytest.param(lambda X, y: (X, y[:10]), {}, id="count-mismatch"),
]


@pytest.mark.parametrize("cls", [PCN, MLP], ids=["PCN", "MLP"])
@pytest.mark.parametrize("make_bad, params", _FAILED_FITS)
def test_failed_fit_leaves_model_unfitted(cls, make_bad, params, data):
    X, y = data
    model = cls(**{**BASE, **params})
    with pytest.raises(ValidationError):
        model.fit(*make_bad(X, y))
    _assert_unfitted(model, X)


@pytest.mark.parametrize("cls", [PCN, MLP], ids=["PCN", "MLP"])
def test_partial_fit_after_failed_fit_learns_all_classes(cls, data):
    X, y = data
    model = cls(**BASE)
    with pytest.raises(ValidationError, match="samples but y has"):
        model.fit(X[:4], np.array([0, 1, 0]))  # labels {0, 1} only, count mismatch
    model.partial_fit(X, y)  # labels {0, 1, 2}
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])


@pytest.mark.parametrize("cls", [PCN, MLP], ids=["PCN", "MLP"])
def test_failed_refit_of_fitted_model_is_not_half_fitted(cls, data):
    X, y = data
    model = cls(**BASE).fit(X, y)
    old = model.predict(X)
    with pytest.raises(ValidationError):
        model.fit(*_nan_x(X, y))
    # either the old model survives intact, or it is cleanly unfitted: never a mix
    if model._is_fitted():
        np.testing.assert_array_equal(model.predict(X), old)
        np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    else:
        with pytest.raises(NotFittedError):
            model.predict(X)


# ---------------------------------------------------------------------------
# divergence
# ---------------------------------------------------------------------------
_SUGGESTION = re.compile(r"e\.g\. gamma=(\d+(?:\.\d+)?(?:e[-+]?\d+)?)")


def _divergent_setup(activation="linear", seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((16, 5))
    Y = rng.standard_normal((16, 5))
    kw = dict(sizes=(5, 20, 20, 5), activation=activation, T=20, dtype="float64",
              backend="numpy", epochs=2, batch_size=16, random_state=seed)
    return X, Y, kw


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_divergence_error_names_gamma_step_and_suggestion(backend):
    X, Y, kw = _divergent_setup()
    kw["backend"] = backend
    with pytest.raises(DivergenceError) as info:
        PCN(gamma=5.0, **kw).fit(X, Y)
    msg = str(info.value)
    assert re.search(r"PCN\.gamma=5\b", msg), msg
    m = re.search(r"diverged at inference step (\d+) of 20", msg)
    assert m, msg
    step = int(m.group(1))
    assert 1 <= step <= 20

    # the reported step is where the energy first exceeds twice its start: recompute the
    # trajectory with the same initial weights (lr negligible) and divergence checks off.
    probe = PCN(gamma=0.01, **{**kw, "lr": 1e-300, "epochs": 1}).fit(X, Y)
    probe.set_params(gamma=5.0, check_divergence=False)
    E = probe.settle_trajectory(X, Y)
    assert E.shape == (21,)
    first_bad = int(np.argmax(~np.isfinite(E) | (E > 2 * E[0])))
    assert first_bad == step

    suggestion = _SUGGESTION.search(msg)
    assert suggestion, msg
    gamma = float(suggestion.group(1))
    assert 0 < gamma < 5.0


@pytest.mark.parametrize(
    "activation",
    [
        "linear",
        "tanh",
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_divergence_suggestion_is_stable(activation, seed):
    X, Y, kw = _divergent_setup(activation, seed)
    kw["activation"] = activation
    with pytest.raises(DivergenceError) as info:
        PCN(gamma=5.0, **kw).fit(X, Y)
    gamma = float(_SUGGESTION.search(str(info.value)).group(1))
    assert gamma < 5.0
    model = PCN(gamma=gamma, **kw).fit(X, Y)  # must not raise
    assert np.all(np.isfinite(model.history_["energy"]))
    assert model._is_fitted()


def test_divergence_check_can_be_disabled():
    X, Y, kw = _divergent_setup()
    model = PCN(gamma=5.0, check_divergence=False, **{**kw, "epochs": 1, "T": 3})
    with np.errstate(all="ignore"):
        model.fit(X, Y)  # no DivergenceError
    assert model._is_fitted()


def test_diverged_fit_leaves_model_unfitted():
    X, Y, kw = _divergent_setup()
    model = PCN(gamma=5.0, **kw)
    with pytest.raises(DivergenceError):
        model.fit(X, Y)
    assert not model._is_fitted()
    with pytest.raises(NotFittedError):
        model.predict(X)


# ---------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------
class TestCheckParam:
    def test_returns_value_unchanged(self):
        assert V.check_param(0.5, "lr", "PCN", low=0.0) == 0.5
        v = np.float64(0.25)
        assert V.check_param(v, "lr", low=0.0) is v
        assert V.check_param(np.int64(3), "T", kind=numbers.Integral, low=1) == 3

    @pytest.mark.parametrize("value", [True, False])
    def test_bool_rejected_for_number(self, value):
        with pytest.raises(ValidationError, match=rf"^PCN\.lr: expected a number, got the bool "
                                                  rf"{value}"):
            V.check_param(value, "lr", "PCN")
        with pytest.raises(ValidationError, match=r"PCN\.T: expected a number, got the bool"):
            V.check_param(value, "T", "PCN", kind=numbers.Integral)

    def test_bool_accepted_when_bool_expected(self):
        assert V.check_param(True, "verbose", "PCN", kind=bool) is True
        with pytest.raises(ValidationError, match=r"PCN\.verbose: expected bool, got int 1"):
            V.check_param(1, "verbose", "PCN", kind=bool)

    def test_wrong_type(self):
        with pytest.raises(ValidationError, match=r"^lr: expected Real, got str '0\.1'"):
            V.check_param("0.1", "lr")
        with pytest.raises(ValidationError, match=r"^T: expected Integral, got float 2\.0"):
            V.check_param(2.0, "T", kind=numbers.Integral)

    @pytest.mark.parametrize("value", [float("nan"), float("inf"), -np.inf])
    def test_nonfinite(self, value):
        with pytest.raises(ValidationError, match=r"^PCN\.gamma: must be finite"):
            V.check_param(value, "gamma", "PCN", low=0.0)

    def test_bounds(self):
        # low exclusive by default
        with pytest.raises(ValidationError, match=r"^x: must be > 0, got 0"):
            V.check_param(0, "x", low=0)
        V.check_param(0, "x", low=0, low_inclusive=True)
        with pytest.raises(ValidationError, match=r"^x: must be >= 1, got 0"):
            V.check_param(0, "x", low=1, low_inclusive=True)
        # high inclusive by default
        V.check_param(1.0, "x", high=1.0)
        with pytest.raises(ValidationError, match=r"^x: must be <= 1\.0, got 1\.5"):
            V.check_param(1.5, "x", high=1.0)
        with pytest.raises(ValidationError, match=r"^x: must be < 1\.0, got 1\.0"):
            V.check_param(1.0, "x", high=1.0, high_inclusive=False)


def test_check_choice():
    assert V.check_choice("tanh", "activation", ("tanh", "relu"), "PCN") == "tanh"
    with pytest.raises(ValidationError,
                       match=r"^PCN\.activation: unknown option 'elu'; choose one of 'tanh', "
                             r"'relu'\.$"):
        V.check_choice("elu", "activation", ("tanh", "relu"), "PCN")


class TestCheckArray:
    def test_list_becomes_float_array(self):
        out = V.check_array([[1, 2], [3, 4]], dtype=np.float64)
        assert isinstance(out, np.ndarray)
        assert out.dtype == np.float64
        np.testing.assert_array_equal(out, [[1.0, 2.0], [3.0, 4.0]])

    def test_cast_does_not_touch_input(self):
        X = np.arange(6, dtype=np.float64).reshape(3, 2)
        out = V.check_array(X, dtype=np.dtype(np.float32))
        assert out.dtype == np.float32
        assert X.dtype == np.float64
        # no copy when nothing changes
        assert V.check_array(X, dtype=np.dtype(np.float64)) is X

    def test_ndim_and_reshape_hint(self):
        with pytest.raises(ValidationError,
                           match=r"^PCN\.X: expected shape \(n_samples, n_features\), got \(3,\); "
                                 r"for a single sample use X\.reshape\(1, -1\)\.$"):
            V.check_array(np.zeros(3), "X", "PCN")
        with pytest.raises(ValidationError, match=r"^Z: expected shape with 3 dimensions, "
                                                  r"got \(2, 2\)\.$"):
            V.check_array(np.zeros((2, 2)), "Z", ndim=3)
        assert V.check_array(np.ones(3), ndim=1).shape == (3,)

    def test_shape(self):
        with pytest.raises(ValidationError,
                           match=r"^y: expected shape \(n, 3\), got \(4, 2\) "
                                 r"\(axis 1 has 2, expected 3\)\.$"):
            V.check_array(np.zeros((4, 2)), "y", shape=(None, 3))
        V.check_array(np.ones((7, 3)), shape=(None, 3))

    @pytest.mark.parametrize("shape", [(0, 3), (0,)])
    def test_empty_rejected(self, shape):
        with pytest.raises(ValidationError, match=r"^X: got an empty array of shape"):
            V.check_array(np.zeros(shape), ndim=len(shape))

    @pytest.mark.parametrize("dtype", ["U3", "complex128", "O"])
    def test_non_numeric_rejected(self, dtype):
        X = np.ones((2, 2)).astype(dtype)
        with pytest.raises(ValidationError, match=r"^X: expected numeric data, got dtype "):
            V.check_array(X)

    def test_nonfinite(self):
        X = np.ones((3, 2))
        X[0, 0], X[2, 1] = np.nan, np.inf
        with pytest.raises(ValidationError, match=r"^X: contains 2 NaN or infinite value"):
            V.check_array(X)
        out = V.check_array(X, allow_nonfinite=True)
        assert np.isnan(out[0, 0])

    def test_nonfinite_detected_after_cast(self):
        X = np.full((2, 2), 1e300)
        with pytest.raises(ValidationError, match="contains 4 NaN or infinite"), \
                np.errstate(over="ignore"):
            V.check_array(X, dtype=np.dtype(np.float32))

    def test_fake_cupy_array_on_host_backend(self, monkeypatch):
        class FakeCupyArray:
            __module__ = "cupy._core.core"

        # array_namespace imports cupy for cupy arrays: stand in a dummy module
        monkeypatch.setitem(sys.modules, "cupy", types.ModuleType("cupy"))
        with pytest.raises(BackendError, match=r"^PCN\.X: expected a numpy array for this "
                                               r"backend, got a cupy array; move it explicitly "
                                               r"with predcode\.to_device\(X, 'numpy'\)"):
            V.check_array(FakeCupyArray(), "X", "PCN")


class TestCheckSizes:
    def test_valid(self):
        assert V.check_sizes([4, np.int64(3)]) == (4, 3)
        out = V.check_sizes((5, 6, 2))
        assert out == (5, 6, 2)
        assert all(type(n) is int for n in out)

    @pytest.mark.parametrize(
        "sizes, pattern",
        [
            ("abc", r"^PCN\.sizes: expected a sequence of layer widths"),
            (b"ab", r"^PCN\.sizes: expected a sequence of layer widths"),
            (None, r"^PCN\.sizes: expected a sequence of layer widths"),
            (5, r"^PCN\.sizes: expected a sequence of layer widths"),
            ((), r"^PCN\.sizes: expected at least two layers"),
            ((10,), r"^PCN\.sizes: expected at least two layers .*got \(10,\)"),
            ((10, 0, 3), r"^PCN\.sizes\[1\]: expected a positive integer width, got 0"),
            ((10, -2), r"^PCN\.sizes\[1\]: expected a positive integer width, got -2"),
            ((10, 3.0), r"^PCN\.sizes\[1\]: expected a positive integer width, got 3\.0"),
            ((True, 3), r"^PCN\.sizes\[0\]: expected a positive integer width, got True"),
        ],
    )
    def test_invalid(self, sizes, pattern):
        with pytest.raises(ValidationError, match=pattern):
            V.check_sizes(sizes, owner="PCN")


class TestCheckDtype:
    @pytest.mark.parametrize("dtype, want", [("float32", np.float32), ("float64", np.float64),
                                             (np.float32, np.float32), ("f8", np.float64)])
    def test_valid(self, dtype, want):
        out = V.check_dtype(dtype)
        assert isinstance(out, np.dtype)
        assert out == want

    @pytest.mark.parametrize("dtype", ["int32", "float16", np.int64, "complex128", "bool"])
    def test_non_float_rejected(self, dtype):
        with pytest.raises(ValidationError, match=r"^MLP\.dtype: expected 'float32' or "
                                                  r"'float64', got '\w+'; predcode computes"):
            V.check_dtype(dtype, owner="MLP")

    def test_garbage_rejected(self):
        with pytest.raises(ValidationError, match=r"^dtype: expected 'float32' or 'float64', "
                                                  r"got 'banana'"):
            V.check_dtype("banana")


class TestCheckRandomState:
    def test_none_gives_generator(self):
        assert isinstance(V.check_random_state(None), np.random.Generator)

    @pytest.mark.parametrize("seed", [0, 42, np.int64(7)])
    def test_seed_is_reproducible(self, seed):
        a = V.check_random_state(seed).standard_normal(5)
        b = V.check_random_state(seed).standard_normal(5)
        np.testing.assert_array_equal(a, b)

    def test_different_seeds_differ(self):
        a = V.check_random_state(0).standard_normal(5)
        b = V.check_random_state(1).standard_normal(5)
        assert not np.array_equal(a, b)

    def test_generator_passed_through(self):
        rng = np.random.default_rng(3)
        assert V.check_random_state(rng) is rng

    @pytest.mark.parametrize("value", [True, False])
    def test_bool_rejected(self, value):
        with pytest.raises(ValidationError,
                           match=r"^PCN\.random_state: expected an int seed, got a bool"):
            V.check_random_state(value, owner="PCN")

    @pytest.mark.parametrize("value", [1.5, "0", np.random.RandomState(0)])
    def test_other_types_rejected(self, value):
        with pytest.raises(ValidationError,
                           match=r"^PCN\.random_state: expected None, an int seed or "
                                 r"numpy\.random\.Generator, got " + type(value).__name__):
            V.check_random_state(value, owner="PCN")

    def test_negative_seed_rejected_clearly(self):
        with pytest.raises(ValidationError, match=r"PCN\.random_state: .*-1"):
            V.check_random_state(-1, owner="PCN")


def test_public_api_exports():
    for name in ("ValidationError", "BackendError", "NotFittedError", "DivergenceError",
                 "PredcodeError"):
        assert getattr(predcode, name) is getattr(predcode.exceptions, name)


# ---------------------------------------------------------------------------
# models fail safely and say what to change (issue 13, item 6)
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    from predcode.datasets import load_digits_split

    return load_digits_split(random_state=0)


@pytest.mark.parametrize("kw", [{}, {"update": "incremental"},
                                {"update": "incremental", "dtype": "float64"}],
                         ids=["standard", "incremental", "incremental-float64"])
def test_pcn_huge_lr_on_digits_names_lr(kw, digits):
    """lr=50 breaks learning; the batch settles at gamma=0.1 with the initial weights."""
    Xtr, ytr, _, _ = digits
    model = PCN(lr=50, random_state=0, **kw)
    with pytest.raises(DivergenceError, match=r"^PCN\.lr=50: learning diverged: .*settles at "
                                              r"that gamma with the weights training started "
                                              r"from; use a smaller lr, e\.g\. lr=5\.$"):
        model.fit(Xtr, ytr)
    assert not model._is_fitted()


@pytest.mark.parametrize("kw", [{}, {"update": "incremental"}], ids=["standard", "incremental"])
def test_pcn_huge_gamma_with_sane_lr_names_gamma(kw, digits):
    Xtr, ytr, _, _ = digits
    with pytest.raises(DivergenceError, match=r"^PCN\.gamma=5: settling diverged at inference "
                                              r"step 1 of 20 .*e\.g\. gamma="):
        PCN(gamma=5.0, random_state=0, **kw).fit(Xtr, ytr)


@pytest.mark.parametrize("cls", [MLP, PCN], ids=["MLP", "PCN"])
def test_weights_overflowing_in_the_last_update_raise_and_leave_nothing(cls, tmp_path):
    """The epoch's energy is measured before its last update: the state is checked too."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((16, 4)) * 1e3, np.arange(16) % 2
    model = cls(sizes=(4, 3, 2), activation="linear", lr=1e36, dtype="float32",
                random_state=0, epochs=1, batch_size=16)
    with np.errstate(all="ignore"), pytest.raises(
            DivergenceError, match=rf"^{cls.__name__}\.lr=1e\+36: training diverged in epoch 1 "
                                   r"of 1 \(the learned array\(s\) \['W_1'.* became NaN or inf\); "
                                   r"use a smaller lr, e\.g\. lr=1e\+35"):
        model.fit(X, y)
    assert not model._is_fitted()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_huge_learning_rates_name_lr_mlp_and_helmholtz(dtype, digits):
    from predcode.datasets.bars import make_bars

    Xtr, ytr, _, _ = digits
    with np.errstate(all="ignore"), pytest.raises(DivergenceError, match=r"^MLP\.lr=1e\+06: "):
        MLP(lr=1e6, dtype=dtype, random_state=0, epochs=2).fit(Xtr, ytr)
    bars = make_bars(200, random_state=0)
    for X in (bars, (Xtr > 0.5).astype(float)):
        hm = predcode.HelmholtzMachine((X.shape[1], 8, 2), lr=1e6, dtype=dtype, epochs=2,
                                       random_state=0)
        with np.errstate(all="ignore"), pytest.raises(
                DivergenceError, match=r"^HelmholtzMachine\.lr=1e\+06: "):
            hm.fit(X)
        assert not hm._is_fitted()


@pytest.mark.parametrize("cls", [PCN, MLP], ids=["PCN", "MLP"])
def test_one_hot_targets_score_accuracy_for_labels_and_one_hot(cls, digits, tmp_path):
    Xtr, ytr, Xte, yte = digits
    Ytr, Yte = np.eye(10)[ytr], np.eye(10)[yte]
    model = cls(random_state=0, epochs=3).fit(Xtr, Ytr)
    out = predcode.to_numpy(model.predict(Xte))
    assert out.shape == (len(Xte), 10)  # a one-hot model predicts its outputs
    acc = float(np.mean(np.argmax(out, axis=1) == yte))
    assert acc > 0.5
    assert model.score(Xte, Yte) == acc
    assert model.score(Xte, yte) == acc
    loaded = cls.load(model.save(tmp_path / "m"))
    assert loaded.score(Xte, yte) == acc and loaded.score(Xte, Yte) == acc
    # a model fitted on labels takes one-hot targets as well
    labelled = cls(random_state=0, epochs=1).fit(Xtr, ytr)
    assert labelled.score(Xte, Yte) == labelled.score(Xte, yte)
    with pytest.raises(ValidationError, match=rf"^{cls.__name__}\.score: y must be class labels "
                                              r"of shape \(n,\) or one-hot targets"):
        model.score(Xte, np.full((len(Xte), 10), 0.1))
    with pytest.raises(ValidationError, match=r"X has 450 samples but y has 10"):
        model.score(Xte, yte[:10])


@pytest.mark.parametrize("cls", [PCN, MLP], ids=["PCN", "MLP"])
def test_nan_label_is_reported_as_nan(cls, data):
    X, y = data
    bad = y.astype(float)
    bad[3] = np.nan
    with pytest.raises(ValidationError, match=rf"^{cls.__name__}\.y: contains 1 NaN or infinite "
                                              r"label\(s\); drop those samples"):
        cls(**BASE).fit(X, bad)
    model = cls(**BASE).fit(X, y)
    for method in (model.score, model.energy, model.partial_fit):
        with pytest.raises(ValidationError, match=r"\.y: contains 1 NaN"):
            method(X, bad)


def test_rao_ballard_one_dimensional_input_says_the_shape_it_wants():
    with pytest.raises(ValidationError, match=r"^RaoBallard\.X: expected shape \(n, 416\) = "
                                              r"\(n, 16\*26\) flattened regions \(or \(n, 16, 26\)"
                                              r"\), got \(64,\); each sample has 416 features\.$"):
        predcode.RaoBallard().fit(np.zeros(64))
    with pytest.raises(ValidationError, match=r"got \(416,\); for a single sample use "
                                              r"X\.reshape\(1, -1\)\.$"):
        predcode.RaoBallard().fit(np.zeros(416))


def test_unflattened_images_say_how_to_flatten():
    with pytest.raises(ValidationError, match=r"^IJEPA\.fit\.X: expected shape \(n, 64\) = "
                                              r"\(n, 8\*8\) flattened images, got \(10, 8, 8\); "
                                              r"flatten the trailing axes with "
                                              r"X\.reshape\(len\(X\), -1\)\.$"):
        predcode.IJEPA(image_shape=(8, 8)).fit(np.zeros((10, 8, 8)))
    obs, actions = np.zeros((4, 4, 8, 8)), np.zeros((4, 3, 2))
    with pytest.raises(ValidationError, match=r"^LatentWorldModel\.fit\.obs: expected shape "
                                              r"\(n_traj, T\+1, 64\) = \(n_traj, T\+1, 8\*8\) "
                                              r"flattened frames, got \(4, 4, 8, 8\); flatten the "
                                              r"trailing axes with obs\.reshape\(obs\.shape\[0\], "
                                              r"obs\.shape\[1\], -1\)\.$"):
        predcode.LatentWorldModel(image_shape=(8, 8), action_dim=2).fit(obs, actions)
    m = predcode.PixelWorldModel(image_shape=(8, 8), action_dim=2, epochs=1, channels=2,
                                 random_state=0).fit(np.zeros((2, 3, 64)), np.zeros((2, 2, 2)))
    with pytest.raises(ValidationError, match=r"flatten each frame with "
                                              r"obs\.reshape\(\*obs\.shape\[:-2\], -1\)"):
        m.infer(np.zeros((5, 8, 8)))
