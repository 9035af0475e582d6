"""Natural images: offline loading, DoG / whitening, patch sampling, module split."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from predcode import ValidationError
from predcode.datasets import natural
from predcode.datasets.natural import (
    BUNDLED_IMAGES,
    NATURAL_IMAGES,
    PatchSampler,
    dog_filter,
    gaussian_window,
    load_natural_images,
    preprocess,
    split_modules,
    whiten,
)

EXPECTED_SHAPES = {
    "grass": (512, 512),
    "gravel": (512, 512),
    "camera": (512, 512),
    "chelsea": (300, 451),
    "china": (427, 640),
    "flower": (427, 640),
    "astronaut": (512, 512),
    "coffee": (400, 600),
    "rocket": (427, 640),
    "brick": (512, 512),
    "moon": (512, 512),
}


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(scope="module")
def images():
    return load_natural_images()


# ---------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------
def test_every_bundled_image_loads_offline(no_network):
    imgs = load_natural_images(list(BUNDLED_IMAGES))
    assert set(BUNDLED_IMAGES) == set(EXPECTED_SHAPES)
    for name, im in zip(BUNDLED_IMAGES, imgs, strict=True):
        assert im.dtype == np.float64 and im.ndim == 2
        assert im.shape == EXPECTED_SHAPES[name]
        assert 0.0 <= im.min() and im.max() <= 1.0
        assert im.std() > 0.03, f"{name} is nearly blank"


def test_default_set_and_docstring(images):
    assert set(NATURAL_IMAGES) <= set(BUNDLED_IMAGES)
    assert len(images) == len(NATURAL_IMAGES)
    for name in BUNDLED_IMAGES:  # each image named in the module docstring
        assert name in natural.__doc__
    for name, im in zip(NATURAL_IMAGES, images, strict=True):
        assert im.shape == EXPECTED_SHAPES[name]


def test_colour_becomes_luma_and_gray_is_scaled():
    import skimage.data
    from sklearn.datasets import load_sample_image

    china = load_natural_images("china")[0]
    rgb = load_sample_image("china.jpg").astype(np.float64) / 255
    np.testing.assert_allclose(china, rgb @ [0.2125, 0.7154, 0.0721], atol=1e-12)
    grass = load_natural_images(["grass"])[0]
    np.testing.assert_array_equal(grass, skimage.data.grass() / 255.0)


def test_max_size_shrinks_keeping_aspect():
    (im,) = load_natural_images(["china"], max_size=128)
    assert im.shape == (85, 128)
    assert 0.0 <= im.min() and im.max() <= 1.0
    (small,) = load_natural_images(["grass"], max_size=1000)  # never enlarged
    assert small.shape == (512, 512)


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValidationError, match=r"names\[1\].*'lena'.*'grass'.*'china'"):
        load_natural_images(["grass", "lena"])


def test_folder_reads_png_jpeg_tiff(tmp_path, no_network):
    from PIL import Image

    rng = np.random.default_rng(0)
    gray8 = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    gray16 = rng.integers(0, 65536, (24, 18), dtype=np.uint16)
    rgb = rng.integers(0, 256, (16, 40, 3), dtype=np.uint8)
    Image.fromarray(gray8).save(tmp_path / "a.png")
    Image.fromarray(rgb).save(tmp_path / "b.JPG", quality=95)
    import tifffile

    tifffile.imwrite(tmp_path / "c.tif", gray16)
    (tmp_path / "notes.txt").write_text("ignored")
    a, b, c = load_natural_images(folder=tmp_path)
    np.testing.assert_array_equal(a, gray8 / 255.0)
    assert b.shape == (16, 40) and 0 <= b.min() and b.max() <= 1
    decoded = np.asarray(Image.open(tmp_path / "b.JPG"), dtype=np.float64) / 255.0
    np.testing.assert_allclose(b, decoded @ [0.2125, 0.7154, 0.0721], atol=1e-12)
    np.testing.assert_array_equal(c, gray16 / 65535.0)


def test_folder_errors(tmp_path):
    with pytest.raises(ValidationError, match="folder.*not an existing folder"):
        load_natural_images(folder=tmp_path / "missing")
    with pytest.raises(ValidationError, match=r"folder.*no image files.*\.png"):
        load_natural_images(folder=tmp_path)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValidationError, match="could not read 'broken.png'"):
        load_natural_images(folder=tmp_path)
    with pytest.raises(ValidationError, match="not both"):
        load_natural_images(["grass"], folder=tmp_path)


def test_nan_image_in_folder_rejected(tmp_path):
    import tifffile

    img = np.full((10, 10), 0.5, dtype=np.float32)
    img[3, 4] = np.nan
    tifffile.imwrite(tmp_path / "nan.tiff", img)
    with pytest.raises(ValidationError, match="'nan.tiff' contains 1 NaN"):
        load_natural_images(folder=tmp_path)


# ---------------------------------------------------------------------------
# DoG and whitening
# ---------------------------------------------------------------------------
def test_dog_of_constant_is_zero():
    out = dog_filter(np.full((40, 50), 0.7))
    assert np.abs(out).max() < 1e-12


def test_dog_impulse_response_is_balanced_centre_surround():
    img = np.zeros((61, 61))
    img[30, 30] = 1.0
    out = dog_filter(img, sigma_center=1.5)
    # the kernel's weights sum to zero, so no mean correction was needed:
    # far from the impulse the response is exactly zero
    assert abs(out.sum()) < 1e-12
    assert np.abs(out[:5, :5]).max() < 1e-12
    assert out[30, 30] > 0  # excitatory centre ...
    ring = out[30, 33:36]  # ... inhibitory surround about 2-3 sigma_center out
    assert (ring < 0).all()
    np.testing.assert_allclose(out, out.T, atol=1e-15)  # circular symmetry


def test_dog_bad_sigmas():
    img = np.zeros((8, 8))
    with pytest.raises(ValidationError, match="dog_filter.sigma_surround"):
        dog_filter(img, sigma_center=2.0, sigma_surround=1.0)
    with pytest.raises(ValidationError, match="dog_filter.sigma_center"):
        dog_filter(img, sigma_center=0)
    with pytest.raises(ValidationError, match="dog_filter.image.*2-D"):
        dog_filter(np.zeros((2, 3, 4)))


def _one_over_f(n=256, seed=0):
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.fftfreq(n)[None, :]
    f = np.hypot(fx, fy)
    f[0, 0] = np.inf
    return np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, n))) / f))


def _radial_slope(img, lo=0.02, hi=0.2):
    """Slope of log(radially averaged amplitude) against log(frequency)."""
    n = img.shape[0]
    amp = np.abs(np.fft.fft2(img))
    f = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])
    edges = np.geomspace(lo, hi, 15)
    centres, means = [], []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        sel = (f >= a) & (f < b)
        centres.append(np.sqrt(a * b))
        means.append(amp[sel].mean())
    return np.polyfit(np.log(centres), np.log(means), 1)[0]


def test_whitening_flattens_one_over_f_spectrum():
    img = _one_over_f()
    before = _radial_slope(img)
    white = whiten(img, f0=0.4)
    after = _radial_slope(white)
    assert -1.1 < before < -0.9
    assert abs(after) < 0.15
    assert abs(white.mean()) < 1e-12
    # and the exp(-(f/f0)^4) rolloff removes the highest frequencies
    amp = np.abs(np.fft.fft2(white))
    f = np.hypot(np.fft.fftfreq(256)[:, None], np.fft.fftfreq(256)[None, :])
    assert amp[f > 0.6].mean() < 0.2 * amp[(f > 0.1) & (f < 0.2)].mean()


def test_whiten_bad_f0():
    with pytest.raises(ValidationError, match="whiten.f0"):
        whiten(np.zeros((8, 8)), f0=-1)


@pytest.mark.parametrize("method", ["dog", "whiten", "none"])
def test_preprocess_unit_variance(images, method):
    out = preprocess(images[:3], method=method)
    assert len(out) == 3
    for im, src in zip(out, images, strict=False):
        assert im.shape == src.shape and im.dtype == np.float64
        assert abs(im.mean()) < 1e-10
        assert abs(im.std() - 1.0) < 1e-10


def test_preprocess_without_normalize_and_errors(images):
    (raw,) = preprocess(images[:1], method="none", normalize=False)
    np.testing.assert_array_equal(raw, images[0])
    (d,) = preprocess(images[:1], method="dog", normalize=False)
    np.testing.assert_allclose(d, dog_filter(images[0]))
    with pytest.raises(ValidationError, match="preprocess.method.*'dog'"):
        preprocess(images[:1], method="gabor")
    with pytest.raises(ValidationError, match=r"preprocess.images\[1\].*zero variance"):
        preprocess([images[0], np.ones((20, 20))])
    with pytest.raises(ValidationError, match=r"preprocess.images\[0\].*NaN"):
        preprocess([np.full((5, 5), np.nan)])


def test_gaussian_window():
    w = gaussian_window((15, 15), 3.0)
    assert w[7, 7] == 1.0 and w.max() == 1.0
    np.testing.assert_allclose(w[7, 10], np.exp(-0.5))
    w2 = gaussian_window((16, 26), (4.0, 6.0))
    assert w2.shape == (16, 26) and w2.max() == pytest.approx(1.0)
    np.testing.assert_allclose(w2, w2[::-1, ::-1])
    r, c = np.mgrid[:16, :26]
    expected = np.exp(-((r - 7.5) ** 2) / (2 * 4.0**2) - (c - 12.5) ** 2 / (2 * 6.0**2))
    np.testing.assert_allclose(w2, expected / expected.max(), rtol=1e-12)
    assert w2[7, 12] == w2[8, 13] == 1.0  # the four central samples are the peak
    with pytest.raises(ValidationError, match="gaussian_window.sigma"):
        gaussian_window((4, 4), 0.0)
    with pytest.raises(ValidationError, match="gaussian_window.shape"):
        gaussian_window((4,), 1.0)


# ---------------------------------------------------------------------------
# patches
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_images():
    rng = np.random.default_rng(1)
    return [rng.standard_normal((40, 50)), rng.standard_normal((30, 60)), rng.random((18, 28))]


def test_sampler_reproducible_and_seed_dependent(small_images):
    a = PatchSampler(small_images, random_state=3).sample(50)
    b = PatchSampler(small_images, random_state=3).sample(50)
    c = PatchSampler(small_images, random_state=4).sample(50)
    assert a.shape == (50, 16, 26) and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    s = PatchSampler(small_images, random_state=np.random.default_rng(3))
    np.testing.assert_array_equal(s.sample(50), a)


def test_sampled_patches_are_crops_at_reported_positions(small_images):
    sampler = PatchSampler(small_images, patch_shape=(16, 26), random_state=0)
    patches, pos = sampler.sample(2000, return_positions=True)
    assert pos.shape == (2000, 3) and pos.dtype == np.int64
    for p, (i, r, c) in zip(patches, pos, strict=True):
        img = small_images[i]
        assert 0 <= r <= img.shape[0] - 16 and 0 <= c <= img.shape[1] - 26
        np.testing.assert_array_equal(p, img[r : r + 16, c : c + 26])
    # every image is drawn, the 18x28 one (3 x 3 positions) rarely
    assert set(pos[:, 0]) == {0, 1, 2}
    assert (pos[pos[:, 0] == 2, 1:] <= 2).all()


def test_sampling_is_uniform_over_positions(small_images):
    sampler = PatchSampler(small_images, random_state=0)
    _, pos = sampler.sample(20000, return_positions=True)
    share = np.bincount(pos[:, 0], minlength=3) / 20000
    np.testing.assert_allclose(share, sampler.n_positions / sampler.n_positions.sum(), atol=0.015)


def test_window_applied(small_images):
    plain, pos = PatchSampler(small_images, random_state=5).sample(20, return_positions=True)
    sampler = PatchSampler(small_images, window_sigma=4.0, random_state=5)
    win, pos_w = sampler.sample(20, return_positions=True)
    np.testing.assert_array_equal(pos, pos_w)
    np.testing.assert_allclose(win, plain * gaussian_window((16, 26), 4.0))
    np.testing.assert_array_equal(sampler.window, gaussian_window((16, 26), 4.0))


def test_sampler_errors(small_images):
    with pytest.raises(
        ValidationError,
        match=r"images\[1\] of shape \(30, 60\).*\(32, 26\)|"
        r"\(32, 26\).*images\[1\] of shape \(30, 60\)",
    ):
        PatchSampler(small_images[:2], patch_shape=(32, 26))
    with pytest.raises(ValidationError, match=r"PatchSampler.images\[0\].*dtype uint8"):
        PatchSampler([np.zeros((20, 30), dtype=np.uint8)])
    bad = small_images[0].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValidationError, match=r"PatchSampler.images\[1\].*NaN"):
        PatchSampler([small_images[0], bad])
    with pytest.raises(ValidationError, match="PatchSampler.images: .*empty"):
        PatchSampler([])
    with pytest.raises(ValidationError, match="PatchSampler.patch_shape"):
        PatchSampler(small_images, patch_shape=(0, 5))
    with pytest.raises(ValidationError, match="PatchSampler.random_state"):
        PatchSampler(small_images, random_state="seed")
    sampler = PatchSampler(small_images, random_state=0)
    with pytest.raises(ValidationError, match=r"PatchSampler.sample.n: must be >= 1"):
        sampler.sample(0)
    with pytest.raises(ValidationError, match=r"PatchSampler.sample.n: expected an int"):
        sampler.sample(2.5)


def test_real_images_pipeline(images):
    pre = preprocess(images[:2], method="dog")
    regions = PatchSampler(pre, random_state=0).sample(64)
    mods = split_modules(regions)
    assert mods.shape == (64, 3, 256)
    assert np.isfinite(mods).all() and mods.std() > 0.1


# ---------------------------------------------------------------------------
# split_modules
# ---------------------------------------------------------------------------
def test_split_modules_rao_ballard_geometry():
    region = np.random.default_rng(0).standard_normal((7, 16, 26))
    mods = split_modules(region)
    assert mods.shape == (7, 3, 256)
    for k, (lo, hi) in enumerate([(0, 16), (5, 21), (10, 26)]):
        np.testing.assert_array_equal(mods[:, k], region[:, :, lo:hi].reshape(7, 256))
    # overlap: columns 5..15 of module 0 are columns 0..10 of module 1
    m = mods.reshape(7, 3, 16, 16)
    np.testing.assert_array_equal(m[:, 0, :, 5:], m[:, 1, :, :11])


@pytest.mark.parametrize("n_modules,size,offset", [(4, 8, 3), (1, 5, 7), (2, 6, 0), (3, 4, 6)])
def test_split_modules_general(n_modules, size, offset):
    width = size + (n_modules - 1) * offset
    region = np.arange(5 * size * width, dtype=np.float32).reshape(5, size, width)
    mods = split_modules(region, n_modules=n_modules, module_size=size, offset=offset)
    assert mods.shape == (5, n_modules, size * size) and mods.dtype == np.float32
    for k in range(n_modules):
        np.testing.assert_array_equal(
            mods[:, k], region[:, :, k * offset : k * offset + size].reshape(5, -1)
        )


def test_split_modules_errors():
    with pytest.raises(
        ValidationError,
        match=r"split_modules.patches: expected regions of shape "
        r"\(16, 26\).*got \(16, 25\)",
    ):
        split_modules(np.zeros((2, 16, 25)))
    with pytest.raises(ValidationError, match=r"split_modules.patches.*patches\[None\]"):
        split_modules(np.zeros((16, 26)))
    with pytest.raises(ValidationError, match="split_modules.n_modules"):
        split_modules(np.zeros((2, 16, 26)), n_modules=0)
    with pytest.raises(ValidationError, match="split_modules.offset"):
        split_modules(np.zeros((2, 16, 26)), offset=-1)
    with pytest.raises(ValidationError, match="split_modules.patches: contains NaN"):
        split_modules(np.full((1, 16, 26), np.nan))
