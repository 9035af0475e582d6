"""The one contract every learned model of the lineage keeps, on every installed backend.

In the spirit of scikit-learn's ``parametrize_with_checks``: each family joins
with one line in :data:`CASES` (a factory of small models and the data they
fit), and every check below runs over every case x backend:

* ``fit`` with one epoch equals one ``partial_fit`` from scratch, and two
  ``partial_fit`` calls equal ``fit`` with two epochs (same seed);
* ``history_`` holds ``energy`` and ``wall_time_s``, one value per epoch;
* an unfitted model raises :class:`NotFittedError` from ``infer``, ``energy``,
  ``score`` and ``save``;
* bad input (NaN, wrong number of dimensions) raises a one-line
  :class:`ValidationError` and leaves a fitted model as it was;
* ``energy`` gives one finite float per sample, on the data's device;
* save -> load, ``pickle`` and ``copy.deepcopy`` give a model whose ``infer``
  and ``energy`` are identical;
* the same ``random_state`` gives the same learned state;
* ``get_params``/``set_params`` round-trip; ``ENERGY_UNIT`` is documented.
"""

from __future__ import annotations

import copy
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import predcode
from predcode import NotFittedError, ValidationError, load_model, to_device, to_numpy
from predcode.backend import array_namespace

from .conftest import _backend_params


@dataclass
class Case:
    """One model family in the contract.

    ``make(backend, **params)`` builds a small, fast model; ``data(rng)`` returns
    host arrays as ``{"fit": args, "infer": args, "energy": args, "score": args}``
    (argument tuples; the first array of each is the one with samples on axis 0).
    """

    make: Callable[..., Any]
    data: Callable[[np.random.Generator], dict[str, tuple]]
    #: two partial_fit calls equal fit(epochs=2) (False where fit schedules over epochs)
    partial_equals_epochs: bool = True
    #: extra keyword arguments of the backend a case supports (None: every backend)
    backends: tuple[str, ...] | None = None
    #: parameters that make training diverge, and the parameter the error must name
    diverge: tuple[dict, str] | None = None
    #: the fit arguments the divergence check trains on (default: the inputs times 3)
    diverge_data: Callable[[tuple], tuple] | None = None


def _tabular(rng, n=24, d=6, k=3):
    X = rng.standard_normal((n, d))
    y = np.arange(n) % k
    return {"fit": (X, y), "infer": (X,), "energy": (X, y), "score": (X, y)}


def _unsupervised(rng, n=24, d=6):
    X = rng.standard_normal((n, d))
    return {"fit": (X,), "infer": (X,), "energy": (X,), "score": (X,)}


def _dem_series(rng, n=16):
    """16 time bins of the zoo's convolution model (4 outputs); DEM has no randomness."""
    from predcode.models.dem import simulate
    from predcode.models.hdm_zoo import conv_cause, convolution_model

    Y = simulate(convolution_model(n=3), conv_cause(n), random_state=0)["Y"]
    return {"fit": (Y,), "infer": (Y,), "energy": (Y,), "score": (Y,)}


def _dem(backend, epochs=2, **kw):
    from predcode.models.hdm_zoo import convolution_model

    return predcode.DEM(convolution_model(n=3), n_iter=epochs, backend=backend,
                        **{"learn_theta": (2,), "learn_h": (("v", 0),), **kw})


def _binary(rng, n=24, d=6):
    X = (rng.random((n, d)) < 0.3).astype(float)
    return {"fit": (X,), "infer": (X,), "energy": (X,), "score": (X,)}


def _images(rng, n=12, side=4):
    X = rng.standard_normal((n, side * side))
    return {"fit": (X,), "infer": (X,), "energy": (X,), "score": (X,)}


def _trajectories(rng, n=4, T=3, side=8, d_a=2):
    """World-model data: trajectories are the samples (obs (n, T+1, side**2), actions)."""
    obs = rng.uniform(0.0, 1.0, (n, T + 1, side * side))
    actions = rng.uniform(-1.0, 1.0, (n, T, d_a))
    return {"fit": (obs, actions), "infer": (obs,), "energy": (obs, actions),
            "score": (obs, actions)}


_COMMON = dict(batch_size=8, dtype="float64", random_state=3)
_IJEPA = dict(image_shape=(4, 4), channels=4, embed_dim=4, pred_hidden=8, pos_dim=4,
              n_targets=2, context_scale=(0.9, 1.0), batch_size=4)
_WM = dict(image_shape=(8, 8), channels=2, action_dim=2)


def _pomdp(backend, **kw):
    """A random 3-state, 2-action POMDP agent with T = 3 (Agent's contract case)."""
    rng = np.random.default_rng(5)
    A = rng.dirichlet(np.ones(3), size=3).T
    B = rng.dirichlet(np.ones(3), size=(2, 3)).transpose(2, 1, 0)
    return predcode.models.Agent(A, B, T=3, pD=np.ones(3), backend=backend,
                                 **{"epochs": 2, "batch_size": 8, "random_state": 3, **kw})


def _outcomes(rng, n=20, T=3, k=3):
    O = rng.integers(0, k, size=(n, T))
    return {"fit": (O,), "infer": (O,), "energy": (O,), "score": (O,)}

#: name -> Case: a new family joins with one line here.
CASES: dict[str, Case] = {
    "PCN": Case(lambda backend, **kw: predcode.PCN(
        sizes=(6, 7, 3), T=5, backend=backend, **{**_COMMON, "epochs": 2, **kw}), _tabular,
        diverge=({"lr": 1e3, "epochs": 5}, "lr")),
    "PCN-gamma": Case(lambda backend, **kw: predcode.PCN(
        sizes=(6, 7, 3), T=5, backend=backend, **{**_COMMON, "epochs": 2, **kw}), _tabular,
        diverge=({"gamma": 5.0}, "gamma")),
    "PCN-generative": Case(lambda backend, **kw: predcode.PCN(
        sizes=(3, 5, 6), mode="generative", T=5, backend=backend,
        **{**_COMMON, "epochs": 2, **kw}), _unsupervised),
    "MLP": Case(lambda backend, **kw: predcode.MLP(
        sizes=(6, 7, 3), backend=backend, **{**_COMMON, "epochs": 2, **kw}), _tabular,
        diverge=({"lr": 1e3, "epochs": 5}, "lr")),
    # an HDM of the zoo (saved by name); host only (no cupy version); the divergence
    # check (h_precision, on data the model explains exactly) is in tests/test_dem.py
    "DEM": Case(_dem, _dem_series, backends=("numpy", "numba")),
    # spm_LAP on the zoo's convolution model (host only, no backend parameter)
    "LAP": Case(lambda backend, epochs=2, **kw: predcode.LAP(
        "convolution", n_iter=epochs, **{"learn_theta": (2,), "learn_h": (("v", 0),), **kw}),
        _dem_series, backends=("numpy",)),
    "RaoBallard": Case(lambda backend, **kw: predcode.RaoBallard(
        1, (2, 3), 1, (4, 3), T=5, backend=backend, **{**_COMMON, "epochs": 2, **kw}),
        _unsupervised, diverge=({"k2": 50.0, "k1": 0.1}, "k2")),
    "RaoBallard-k1": Case(lambda backend, **kw: predcode.RaoBallard(
        1, (2, 3), 1, (4, 3), T=5, backend=backend, **{**_COMMON, "epochs": 2, **kw}),
        _unsupervised, diverge=({"k1": 2.0}, "k1")),
    "HelmholtzMachine": Case(lambda backend, **kw: predcode.HelmholtzMachine(
        (6, 4, 2), backend=backend, **{**_COMMON, "epochs": 2, **kw}), _binary,
        diverge=({"lr": 1e3}, "lr"), diverge_data=lambda args: args),
    "IJEPA": Case(lambda backend, **kw: predcode.models.IJEPA(
        backend=backend, **{**_COMMON, **_IJEPA, "epochs": 2, **kw}), _images,
        diverge=({"lr": 1e200, "epochs": 3}, "lr")),
    "LatentWorldModel": Case(lambda backend, **kw: predcode.models.LatentWorldModel(
        latent_dim=4, hidden=8, sigreg_directions=4, backend=backend,
        **{**_COMMON, **_WM, "epochs": 2, **kw}), _trajectories,
        diverge=({"lr": 1e200, "epochs": 3}, "lr")),
    "PixelWorldModel": Case(lambda backend, **kw: predcode.models.PixelWorldModel(
        backend=backend, **{**_COMMON, **_WM, "epochs": 2, **kw}), _trajectories,
        diverge=({"lr": 1e200, "epochs": 3}, "lr")),
    "Agent": Case(_pomdp, _outcomes),
}


def _params():
    out = []
    for name, case in CASES.items():
        for p in _backend_params():
            backend = p.values[0]
            if case.backends is not None and backend not in case.backends:
                continue
            out.append(pytest.param(name, backend, marks=p.marks, id=f"{name}-{backend}"))
    return out


PARAMS = _params()


def _on(backend, args):
    dev = "cupy" if backend == "cupy" else "numpy"
    return tuple(to_device(a, dev) if isinstance(a, np.ndarray) else a for a in args)


def _setup(name, backend, **params):
    case = CASES[name]
    data = {k: _on(backend, v) for k, v in case.data(np.random.default_rng(0)).items()}
    return case, case.make(backend, **params), data


def _state(model):
    return {k: to_numpy(v) for k, v in model._state().items()}


def _assert_same_state(a, b):
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


def _assert_same_outputs(a, b, data):
    ia, ib = a.infer(*data["infer"]), b.infer(*data["infer"])
    np.testing.assert_array_equal(to_numpy(ia), to_numpy(ib))
    np.testing.assert_array_equal(to_numpy(a.energy(*data["energy"])),
                                  to_numpy(b.energy(*data["energy"])))


@pytest.mark.parametrize("name,backend", PARAMS)
def test_fit_once_equals_one_partial_fit(name, backend):
    case, model, data = _setup(name, backend, epochs=1)
    fitted = model.fit(*data["fit"])
    assert fitted is model
    _, fresh, _ = _setup(name, backend, epochs=1)
    assert fresh.partial_fit(*data["fit"]) is fresh
    _assert_same_state(model, fresh)
    assert len(fresh.history_["energy"]) == 1


@pytest.mark.parametrize("name,backend", PARAMS)
def test_two_partial_fits_equal_two_epochs(name, backend):
    case, model, data = _setup(name, backend, epochs=2)
    if not case.partial_equals_epochs:
        pytest.skip(f"{name}.fit schedules over its epochs; partial_fit is one pass of it")
    model.fit(*data["fit"])
    _, other, _ = _setup(name, backend, epochs=2)
    other.partial_fit(*data["fit"]).partial_fit(*data["fit"])
    _assert_same_state(model, other)
    np.testing.assert_allclose(model.history_["energy"], other.history_["energy"], rtol=0)


@pytest.mark.parametrize("name,backend", PARAMS)
def test_history_has_common_keys(name, backend):
    _, model, data = _setup(name, backend, epochs=2)
    model.fit(*data["fit"])
    for key in ("energy", "wall_time_s"):
        assert len(model.history_[key]) == 2, key
        assert all(type(v) is float and np.isfinite(v) for v in model.history_[key])
    assert all(t > 0 for t in model.history_["wall_time_s"])


@pytest.mark.parametrize("name,backend", PARAMS)
def test_unfitted_model_raises_not_fitted(name, backend, tmp_path):
    _, model, data = _setup(name, backend)
    for method, args in (("infer", data["infer"]), ("energy", data["energy"]),
                         ("score", data["score"])):
        with pytest.raises(NotFittedError,
                           match=rf"{type(model).__name__}\.{method}: .*not fitted"):
            getattr(model, method)(*args)
    with pytest.raises(NotFittedError):
        model.save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def _with_nan(args):
    X = to_numpy(args[0]).astype(float).copy()
    X.reshape(-1)[1] = np.nan
    xp = array_namespace(args[0])
    return (xp.asarray(X), *args[1:])


def _flattened(args):
    return (args[0].reshape(-1), *args[1:])


@pytest.mark.parametrize("name,backend", PARAMS)
def test_bad_input_is_one_clear_line_and_changes_nothing(name, backend):
    _, model, data = _setup(name, backend)
    for bad in (_with_nan(data["fit"]), _flattened(data["fit"])):
        with pytest.raises(ValidationError) as err:
            model.fit(*bad)
        assert "\n" not in str(err.value)
        assert not model._is_fitted()
    model.fit(*data["fit"])
    before = _state(model)
    history = copy.deepcopy(model.history_)
    for bad in (_with_nan(data["fit"]), _flattened(data["fit"])):
        with pytest.raises(ValidationError):
            model.partial_fit(*bad)
    after = _state(model)
    for k in before:
        np.testing.assert_array_equal(before[k], after[k], err_msg=k)
    assert model.history_ == history
    with pytest.raises(ValidationError):
        model.infer(*_with_nan(data["infer"]))
    with pytest.raises(ValidationError):
        model.set_params(no_such_parameter=1)


@pytest.mark.parametrize("name", list(CASES))
def test_one_sample_without_its_axis_says_the_shape_and_the_fix(name):
    """A single sample passed without the sample axis: one line with the wanted shape and
    the reshape that adds the axis (``reshape(1, ...)`` or ``[None]``)."""
    case = CASES[name]
    args = case.data(np.random.default_rng(0))["fit"]
    model = case.make("numpy")
    with pytest.raises(ValidationError) as err:
        model.fit(args[0][0], *args[1:])
    msg = str(err.value)
    assert "\n" not in msg
    assert str(tuple(args[0][0].shape)) in msg, msg
    assert re.search(r"reshape\(1, |\[None\]", msg), msg
    assert not model._is_fitted()


@pytest.mark.parametrize("name,backend", PARAMS)
def test_energy_is_one_finite_value_per_sample_on_the_data_device(name, backend):
    _, model, data = _setup(name, backend)
    model.fit(*data["fit"])
    X = data["energy"][0]
    e = model.energy(*data["energy"])
    assert array_namespace(e) is array_namespace(X)
    assert e.shape == (X.shape[0],)
    assert e.dtype.kind == "f"
    assert np.all(np.isfinite(to_numpy(e)))
    assert isinstance(model.score(*data["score"]), float)
    assert type(model).ENERGY_UNIT, f"{type(model).__name__}.ENERGY_UNIT is not documented"


@pytest.mark.parametrize("name,backend", PARAMS)
def test_save_load_gives_identical_outputs(name, backend, tmp_path):
    _, model, data = _setup(name, backend)
    model.fit(*data["fit"])
    path = model.save(tmp_path / "model.npz")
    for loaded in (type(model).load(path), load_model(path)):
        assert type(loaded) is type(model)
        assert loaded.get_params() == model.get_params()
        _assert_same_outputs(model, loaded, data)
        assert loaded.history_ == model.history_


@pytest.mark.parametrize("name,backend", PARAMS)
def test_pickle_and_deepcopy_of_a_fitted_model(name, backend):
    _, model, data = _setup(name, backend)
    model.fit(*data["fit"])
    for other in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert type(other) is type(model)
        _assert_same_state(model, other)
        _assert_same_outputs(model, other, data)
        other.partial_fit(*data["fit"])  # the copy trains on
    # and the unfitted model too
    fresh = CASES[name].make(backend)
    assert pickle.loads(pickle.dumps(fresh)).get_params() == fresh.get_params()


@pytest.mark.parametrize("name,backend", PARAMS)
def test_divergence_names_the_step_size_and_leaves_nothing(name, backend):
    case = CASES[name]
    if case.diverge is None:
        pytest.skip(f"{name} has no diverging step size")
    params, culprit = case.diverge
    _, model, data = _setup(name, backend, **params)
    args = ((data["fit"][0] * 3.0, *data["fit"][1:]) if case.diverge_data is None
            else case.diverge_data(data["fit"]))
    with pytest.raises(predcode.DivergenceError, match=rf"^{type(model).__name__}\.{culprit}="):
        model.fit(*args)
    assert not model._is_fitted()


@pytest.mark.parametrize("name,backend", PARAMS)
def test_same_seed_same_state(name, backend):
    _, a, data = _setup(name, backend)
    _, b, _ = _setup(name, backend)
    a.fit(*data["fit"])
    b.fit(*data["fit"])
    _assert_same_state(a, b)


@pytest.mark.parametrize("name,backend", PARAMS)
def test_params_round_trip(name, backend):
    _, model, _ = _setup(name, backend)
    params = model.get_params()
    clone = type(model)(**params)
    assert clone.get_params() == params
    assert model.set_params(**params) is model
    assert model.get_params() == params
    assert repr(model).startswith(type(model).__name__ + "(")


def test_every_family_is_in_the_contract_and_exported():
    """Every concrete model class is covered here and exported from predcode."""
    from predcode.base import _MODEL_CLASSES

    concrete = {n for n, c in _MODEL_CLASSES.items()
                if not n.startswith("_") and not getattr(c, "__abstractmethods__", None)}
    covered = {type(case.make("numpy")).__name__ for case in CASES.values()}
    assert concrete <= covered, f"models missing from CASES: {sorted(concrete - covered)}"
    assert concrete <= set(predcode.__all__), sorted(concrete - set(predcode.__all__))
