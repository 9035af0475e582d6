"""Saving and loading fail safely, for every family that can be saved.

A damaged or hand-edited model file gives one line naming the file and what is
wrong (never a ``BadZipFile``, ``JSONDecodeError``, ``TypeError``, ``KeyError`` or
numpy's advice to unpickle); a save never leaves a temporary behind for good,
gives the file the usual permissions, keeps the user's suffix, refuses a
directory as target and refuses a model whose learned state is not finite.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

import predcode
from predcode import ValidationError, load_model

from .conftest import rewrite_saved, saved_entries
from .test_contract import CASES

#: one case per class (the contract's variants of a class save the same way)
FAMILIES = [name for name in CASES if "-" not in name]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """``name -> (path, model)``: each family fitted once (numpy) and saved."""
    root = tmp_path_factory.mktemp("saved")
    out = {}
    for name in FAMILIES:
        case = CASES[name]
        model = case.make("numpy").fit(*case.data(np.random.default_rng(0))["fit"])
        out[name] = (model.save(root / f"{name}.npz"), model)
    return out


def _copy(saved, name, tmp_path):
    src, model = saved[name]
    dst = tmp_path / f"{name}.npz"
    shutil.copy(src, dst)
    return dst, model


def _load_error(path, match):
    """Load ``path``, expect one line naming the file and matching ``match``."""
    with pytest.raises(ValidationError, match=match) as info:
        load_model(path)
    msg = str(info.value)
    assert "\n" not in msg, msg
    assert str(path) in msg, msg
    assert "allow_pickle" not in msg, msg
    return msg


# ---------------------------------------------------------------------------
# damaged or edited files
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", FAMILIES)
def test_flipped_bytes(name, saved, tmp_path):
    path, _ = _copy(saved, name, tmp_path)
    raw = bytearray(path.read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 64] = bytes(b ^ 0xFF for b in raw[mid:mid + 64])
    path.write_bytes(bytes(raw))
    _load_error(path, r"is damaged or not a predcode model file")


@pytest.mark.parametrize("name", FAMILIES)
def test_truncated_file(name, saved, tmp_path):
    path, _ = _copy(saved, name, tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _load_error(path, r"is damaged or not a predcode model file")


@pytest.mark.parametrize("name", FAMILIES)
def test_broken_parameter_json(name, saved, tmp_path):
    path, _ = _copy(saved, name, tmp_path)
    text = str(saved_entries(path)["__params__"])
    rewrite_saved(path, __params__=np.array(text[: len(text) // 2]))
    _load_error(path, r"the entry '__params__' in .* is not valid JSON")


@pytest.mark.parametrize("name", FAMILIES)
def test_parameters_not_an_object(name, saved, tmp_path):
    path, _ = _copy(saved, name, tmp_path)
    rewrite_saved(path, __params__=np.array("[1, 2]"))
    _load_error(path, r"'__params__' .* should be a JSON object, got list")


@pytest.mark.parametrize("name", FAMILIES)
def test_unknown_parameter(name, saved, tmp_path):
    path, _ = _copy(saved, name, tmp_path)
    params = json.loads(str(saved_entries(path)["__params__"]))
    params["no_such_parameter"] = 1
    rewrite_saved(path, __params__=np.array(json.dumps(params)))
    _load_error(path, rf"gives {name} unknown parameter\(s\) \['no_such_parameter'\]")


def test_invalid_parameter_value(saved, tmp_path):
    path, _ = _copy(saved, "PCN", tmp_path)
    params = json.loads(str(saved_entries(path)["__params__"]))
    params["sizes"] = [6]
    rewrite_saved(path, __params__=np.array(json.dumps(params)))
    _load_error(path, r"the saved parameters are invalid: PCN\.sizes: expected at least two "
                      r"layers")


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("entry", ["__params__", "__class__"])
def test_missing_entry(name, entry, saved, tmp_path):
    path, _ = _copy(saved, name, tmp_path)
    rewrite_saved(path, **{entry: None})
    _load_error(path, rf"lacks the entry '{entry}'")


@pytest.mark.parametrize("name", FAMILIES)
def test_missing_array(name, saved, tmp_path):
    path, model = _copy(saved, name, tmp_path)
    key = sorted(model._expected_shapes())[0]
    rewrite_saved(path, **{f"state/{key}": None})
    _load_error(path, rf"lacks arrays \['{key}'\]")


@pytest.mark.parametrize("name", FAMILIES)
def test_newer_format_version(name, saved, tmp_path):
    path, _ = _copy(saved, name, tmp_path)
    rewrite_saved(path, __format__=np.array("predcode-model/2"), __version__=np.array("99.0"))
    msg = _load_error(path, r"model format 2 \(written by predcode 99\.0\), newer than this "
                            r"predcode")
    assert "upgrade predcode" in msg


@pytest.mark.parametrize("name", FAMILIES)
def test_file_without_format_entry_still_loads(name, saved, tmp_path):
    """Files are read as format 1 when the entry is missing (and format 1 is current)."""
    path, model = _copy(saved, name, tmp_path)
    assert str(saved_entries(path)["__format__"]) == "predcode-model/1"
    rewrite_saved(path, __format__=None)
    assert type(load_model(path)) is type(model)


@pytest.mark.parametrize("name", FAMILIES)
def test_integer_array_where_floats_belong(name, saved, tmp_path):
    path, model = _copy(saved, name, tmp_path)
    arrays = saved_entries(path)
    kinds = type(model)._STATE_KINDS
    key = next(k for k in sorted(model._expected_shapes())
               if k not in kinds and arrays[f"state/{k}"].dtype.kind == "f")
    rewrite_saved(path, **{f"state/{key}": np.round(arrays[f"state/{key}"]).astype(np.int64)})
    _load_error(path, rf"array '{key}' in .* has dtype int64, but {name} stores "
                      r"floating-point values there")


@pytest.mark.parametrize("name", FAMILIES)
def test_object_array_is_refused_without_unpickling_advice(name, saved, tmp_path):
    path, model = _copy(saved, name, tmp_path)
    key = sorted(model._expected_shapes())[0]
    arrays = saved_entries(path)
    arrays[f"state/{key}"] = np.array([{"evil": 1}, None], dtype=object)
    np.savez(path, **arrays)  # numpy pickles the object array
    _load_error(path, rf"holds the entry 'state/{key}' as an object array .* will not unpickle")


def test_not_a_file_and_text_file(tmp_path):
    (tmp_path / "d.npz").mkdir()
    _load_error(tmp_path / "d.npz", r"is a directory, not a model file")
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    _load_error(text, r"is damaged or not a predcode model file \(not a \.npz archive\)")
    npy = tmp_path / "array.npz"
    with open(npy, "wb") as fh:
        np.save(fh, np.arange(3))
    _load_error(npy, r"a single \.npy array, not a \.npz archive")


# ---------------------------------------------------------------------------
# saving
# ---------------------------------------------------------------------------
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("name", FAMILIES)
def test_predcode_load_dispatches_on_the_stored_class(name, saved):
    path, model = saved[name]
    loaded = predcode.load(path)
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()


@pytest.mark.parametrize("name", FAMILIES)
def test_nonfinite_state_is_never_saved(name, saved, tmp_path, monkeypatch):
    _, model = saved[name]
    state = {k: np.array(v, copy=True) for k, v in
             ((k, predcode.to_numpy(v)) for k, v in model._state().items())}
    key = next(k for k, v in state.items() if v.dtype.kind == "f" and v.size)
    state[key].flat[0] = np.nan
    monkeypatch.setattr(model, "_state", lambda: state)
    with pytest.raises(ValidationError, match=rf"{name}\.save: the learned array\(s\) "
                                              rf"\['{key}'\] hold NaN or inf") as info:
        model.save(tmp_path / "m.npz")
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left


def test_stale_temporaries_of_killed_saves_are_removed(saved, tmp_path):
    _, model = saved["MLP"]
    target = tmp_path / "model.npz"
    dead = tmp_path / f".model.npz.{_dead_pid()}-abc123.tmp"  # a save that was killed
    legacy = tmp_path / ".model.npz.k2j4h5g6.tmp"  # older predcode, no pid, an hour old
    live = tmp_path / f".model.npz.{os.getppid()}-def456.tmp"  # a save still running
    other = tmp_path / f".other.npz.{_dead_pid()}-abc123.tmp"  # another target's
    longer = tmp_path / ".model.npz.x.npz.k2j4h5g6.tmp"  # of the target "model.npz.x.npz"
    for p in (dead, legacy, live, other, longer):
        p.write_bytes(b"PK half a file")
    old = time.time() - 3600
    os.utime(legacy, (old, old))
    os.utime(longer, (old, old))
    model.save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [target.name, live.name, other.name, longer.name])


def test_interrupted_save_leaves_nothing(saved, tmp_path, monkeypatch):
    _, model = saved["MLP"]

    def interrupted(*_, **__):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.save(tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_file_gets_the_usual_permissions(umask, mode, saved, tmp_path):
    _, model = saved["MLP"]
    old = os.umask(umask)
    try:
        path = model.save(tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_overwritten_file_keeps_its_permissions(saved, tmp_path):
    _, model = saved["MLP"]
    path = model.save(tmp_path / "m.npz")
    os.chmod(path, 0o640)
    model.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


@pytest.mark.parametrize("name, expected", [("x.NPZ", "x.NPZ"), ("x.Npz", "x.Npz"),
                                            ("x.npz", "x.npz"), ("x", "x.npz"),
                                            ("x.bin", "x.bin.npz")])
def test_suffix_case_is_kept(name, expected, saved, tmp_path):
    _, model = saved["MLP"]
    path = model.save(tmp_path / name)
    assert path == tmp_path / expected
    assert [p.name for p in tmp_path.iterdir()] == [expected]
    assert type(predcode.load(path)) is type(model)


@pytest.mark.parametrize("name", ["runs", "runs.npz"])
def test_existing_directory_as_target_is_refused(name, saved, tmp_path):
    _, model = saved["MLP"]
    (tmp_path / name).mkdir()
    with pytest.raises(ValidationError, match=r"MLP\.save: .* is a directory") as info:
        model.save(tmp_path / name)
    assert "\n" not in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert list((tmp_path / name).iterdir()) == []


def test_folder_under_a_file_is_refused(saved, tmp_path):
    _, model = saved["MLP"]
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValidationError, match=r"MLP\.save: cannot create the folder"):
        model.save(tmp_path / "afile" / "m.npz")
