"""Natural images, retinal prefiltering and patch sampling (nothing is downloaded).

Built for Rao & Ballard (1999): three 16x16 patches, offset by 5 pixels
horizontally, tile a 16x26 image region; :class:`PatchSampler` draws such
regions from preprocessed images and :func:`split_modules` cuts them into the
three overlapping module patches.

Bundled images
--------------
Every image below ships inside an installed wheel and is read from disk; no
network access and no download cache is involved (scikit-image's
``skimage/data/`` folder holds a small subset that loads without ``pooch``;
scikit-learn's ``sklearn/datasets/images/`` holds two JPEGs).

The default set, :data:`NATURAL_IMAGES`, keeps photographs with natural-scene
statistics (foliage, ground textures, fur, landscape):

=========  ==========  ===================  ===========================================
name       size (h,w)  source               content
=========  ==========  ===================  ===========================================
grass      512 x 512   scikit-image, gray   grass blades, close up (CC0)
gravel     512 x 512   scikit-image, gray   gravel ground texture (CC0)
camera     512 x 512   scikit-image, gray   cameraman on a lawn, sky, buildings (CC0)
chelsea    300 x 451   scikit-image, RGB    a tabby cat's face, fur texture (CC0)
china      427 x 640   scikit-learn, RGB    pagoda among trees, lake (CC BY 2.0)
flower     427 x 640   scikit-learn, RGB    dahlia flowers, foliage (CC BY 2.0)
=========  ==========  ===================  ===========================================

Also bundled and loadable by name, but left out of the default because they are
dominated by man-made objects, flat backgrounds or low contrast: ``astronaut``
(512 x 512, studio portrait), ``coffee`` (400 x 600, cup on a table), ``rocket``
(427 x 640, night launch, large black areas), ``brick`` (512 x 512, periodic
brick wall) and ``moon`` (512 x 512, low-contrast lunar surface). Text, page,
synthetic and microscopy images of scikit-image are not offered.

Your own images: ``load_natural_images(folder=...)`` reads every PNG, JPEG and
TIFF file in a folder (e.g. the van Hateren or Olshausen image sets, converted).

Preprocessing
-------------
* :func:`dog_filter`: circularly symmetric difference of Gaussians, the retinal /
  LGN centre-surround prefiltering Rao & Ballard apply to their images.
* :func:`whiten`: Olshausen & Field (1996) whitening, ``|f| exp(-(f/f0)^4)``.
* :func:`preprocess`: either filter on a list of images, then per-image
  standardisation.

References
----------
Rao, R. P. N. & Ballard, D. H. (1999). Predictive coding in the visual cortex: a
functional interpretation of some extra-classical receptive-field effects.
*Nature Neuroscience* 2, 79-87.

Olshausen, B. A. & Field, D. J. (1996). Emergence of simple-cell receptive field
properties by learning a sparse code for natural images. *Nature* 381, 607-609.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ValidationError
from ..validation import check_choice, check_int, check_pair, check_param, check_random_state

__all__ = [
    "NATURAL_IMAGES",
    "BUNDLED_IMAGES",
    "IMAGE_EXTENSIONS",
    "load_natural_images",
    "dog_filter",
    "whiten",
    "preprocess",
    "PREPROCESS_METHODS",
    "gaussian_window",
    "PatchSampler",
    "split_modules",
]

#: Default image names used by :func:`load_natural_images` (natural photographs).
NATURAL_IMAGES: tuple[str, ...] = ("grass", "gravel", "camera", "chelsea", "china", "flower")

#: Every bundled image name -> (package, loader), the default set first.
BUNDLED_IMAGES: dict[str, tuple[str, str]] = {
    "grass": ("skimage", "grass"),
    "gravel": ("skimage", "gravel"),
    "camera": ("skimage", "camera"),
    "chelsea": ("skimage", "chelsea"),
    "china": ("sklearn", "china.jpg"),
    "flower": ("sklearn", "flower.jpg"),
    "astronaut": ("skimage", "astronaut"),
    "coffee": ("skimage", "coffee"),
    "rocket": ("skimage", "rocket"),
    "brick": ("skimage", "brick"),
    "moon": ("skimage", "moon"),
}

#: File extensions read from a user folder (case-insensitive).
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff")

# Rec. 709 / sRGB luma weights (those of skimage.color.rgb2gray), applied to the
# stored (gamma-encoded) values.
_LUMA = np.array([0.2125, 0.7154, 0.0721])


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _check_sigma(value: Any, name: str, owner: str) -> tuple[float, float]:
    """A positive float, or a (sigma_rows, sigma_cols) pair of them."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        if len(value) != 2:
            raise ValidationError(
                f"{owner}.{name}: expected a positive number or a (rows, cols) pair, got {value!r}."
            )
        a = check_param(value[0], f"{name}[0]", owner, low=0.0)
        b = check_param(value[1], f"{name}[1]", owner, low=0.0)
        return float(a), float(b)
    s = float(check_param(value, name, owner, low=0.0))
    return s, s


def _check_image(image: Any, name: str, owner: str, *, float_only: bool = False) -> np.ndarray:
    """A finite, non-empty 2-D real image, returned as an ndarray (dtype kept)."""
    try:
        arr = np.asarray(image)
    except Exception as exc:  # ragged lists etc.
        raise ValidationError(f"{owner}.{name}: could not convert to an array ({exc}).") from exc
    kinds = "f" if float_only else "biuf"
    if arr.dtype.kind not in kinds:
        want = "a floating-point image" if float_only else "a real-valued image"
        hint = (
            f"; scale it to [0, 1] first, e.g. {name}.astype(np.float64) / 255, or load it "
            "with load_natural_images / preprocess"
            if float_only and arr.dtype.kind in "biu"
            else ""
        )
        raise ValidationError(f"{owner}.{name}: expected {want}, got dtype {arr.dtype}{hint}.")
    if arr.ndim != 2:
        raise ValidationError(
            f"{owner}.{name}: expected a 2-D grayscale image (height, width), got shape "
            f"{tuple(arr.shape)}; convert colour images with load_natural_images."
        )
    if arr.size == 0:
        raise ValidationError(f"{owner}.{name}: got an empty image of shape {tuple(arr.shape)}.")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        n_bad = int((~np.isfinite(arr)).sum())
        raise ValidationError(
            f"{owner}.{name}: contains {n_bad} NaN or infinite value(s); clean or impute "
            "them first."
        )
    return arr


def _image_list(images: Any, name: str, owner: str) -> list[Any]:
    """A list of images from a sequence, a 3-D stack or one 2-D array."""
    if isinstance(images, np.ndarray):
        if images.ndim == 2:
            return [images]
        if images.ndim == 3:
            return list(images)
        raise ValidationError(
            f"{owner}.{name}: expected a list of 2-D images or a 3-D stack "
            f"(n_images, height, width), got an array of shape {tuple(images.shape)}."
        )
    if isinstance(images, (str, bytes)) or not isinstance(images, Sequence):
        raise ValidationError(
            f"{owner}.{name}: expected a list of 2-D images, got {type(images).__name__}."
        )
    if len(images) == 0:
        raise ValidationError(
            f"{owner}.{name}: got an empty list; load images with load_natural_images()."
        )
    return list(images)


def _to_gray_unit(raw: Any, source: str) -> np.ndarray:
    """Colour -> luma, integer -> [0, 1] float64; ``source`` names the image in errors."""
    arr = np.asarray(raw)
    owner = "load_natural_images"
    if arr.dtype.kind not in "biuf":
        raise ValidationError(
            f"{owner}: {source} has unsupported pixel type {arr.dtype}; save it as 8- or "
            "16-bit PNG/TIFF or as float TIFF."
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        n_bad = int((~np.isfinite(arr)).sum())
        raise ValidationError(
            f"{owner}: {source} contains {n_bad} NaN or infinite pixel value(s); fix or "
            "remove the file."
        )
    if arr.ndim == 3 and arr.shape[-1] in (1, 2, 3, 4):
        if arr.shape[-1] in (1, 2):  # gray (+ alpha)
            arr = arr[..., 0]
        else:  # RGB (+ alpha)
            arr = arr[..., :3].astype(np.float64) @ _LUMA
    if arr.ndim != 2:
        raise ValidationError(
            f"{owner}: {source} has shape {tuple(arr.shape)}; expected a 2-D grayscale or an "
            "(h, w, 3|4) colour image (multi-page files and volumes are not supported)."
        )
    if min(arr.shape) < 2:
        raise ValidationError(f"{owner}: {source} is too small ({tuple(arr.shape)}).")
    dtype = np.asarray(raw).dtype
    out = arr.astype(np.float64)
    if dtype.kind == "b":
        pass
    elif dtype.kind == "u":
        out /= np.iinfo(dtype).max
    else:  # signed ints and floats: keep [0, 1] data, otherwise min-max rescale
        lo, hi = float(out.min()), float(out.max())
        if lo < 0.0 or hi > 1.0:
            out = (out - lo) / (hi - lo) if hi > lo else np.zeros_like(out)
    return np.clip(out, 0.0, 1.0)


def _load_bundled(name: str) -> np.ndarray:
    package, key = BUNDLED_IMAGES[name]
    if package == "sklearn":
        from sklearn.datasets import load_sample_image

        return load_sample_image(key)
    import skimage.data

    return getattr(skimage.data, key)()


def _decode_error(path: Path, exc: Exception) -> Exception:
    """Pillow's own reason for a PNG/JPEG failure (imageio's message is generic)."""
    if path.suffix.lower() in (".tif", ".tiff"):
        return exc
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
    except Exception as pil_exc:
        return pil_exc
    return exc


def _read_folder(folder: Any) -> list[tuple[str, np.ndarray]]:
    owner = "load_natural_images.folder"
    try:
        path = Path(folder).expanduser()
    except TypeError as exc:
        raise ValidationError(
            f"{owner}: expected a path to a folder of images, got {type(folder).__name__}."
        ) from exc
    if not path.is_dir():
        raise ValidationError(f"{owner}: {str(path)!r} is not an existing folder.")
    files = sorted(
        (p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
        key=lambda p: p.name,
    )
    if not files:
        raise ValidationError(
            f"{owner}: no image files in {str(path)!r}; expected files ending in "
            + ", ".join(IMAGE_EXTENSIONS)
            + "."
        )
    import imageio.v3 as iio
    import tifffile

    out = []
    for p in files:
        try:
            if p.suffix.lower() in (".tif", ".tiff"):
                raw = tifffile.imread(p)
            else:
                raw = iio.imread(p, plugin="pillow")
        except Exception as exc:
            exc = _decode_error(p, exc)
            raise ValidationError(
                f"{owner}: could not read {p.name!r} ({type(exc).__name__}: {exc}); remove "
                "or re-save that file as PNG, JPEG or TIFF."
            ) from exc
        out.append((f"file {p.name!r}", raw))
    return out


def _shrink(image: np.ndarray, max_size: int) -> np.ndarray:
    h, w = image.shape
    scale = max_size / max(h, w)
    if scale >= 1.0:
        return image
    from skimage.transform import resize

    shape = (max(1, round(h * scale)), max(1, round(w * scale)))
    small = resize(image, shape, order=1, mode="reflect", anti_aliasing=True, preserve_range=True)
    return np.clip(small, 0.0, 1.0)


# ---------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------
def load_natural_images(
    names: str | Sequence[str] | None = None,
    folder: str | Path | None = None,
    max_size: int | None = None,
) -> list[np.ndarray]:
    """Grayscale natural images with values in [0, 1].

    Parameters
    ----------
    names : str or sequence of str, optional
        Bundled images to load, by name (see :data:`BUNDLED_IMAGES` and the module
        docstring). Default: :data:`NATURAL_IMAGES`. Not allowed with ``folder``.
    folder : str or Path, optional
        Load every ``.png``, ``.jpg``/``.jpeg`` and ``.tif``/``.tiff`` file in this
        folder instead (not recursive; sorted by file name; other files are ignored).
    max_size : int, optional
        If given, images whose longer side exceeds ``max_size`` are shrunk (bilinear,
        with Gaussian anti-aliasing) so that it equals ``max_size``.

    Returns
    -------
    list of ndarray
        One float64 array of shape (height, width) per image, values in [0, 1].
        Colour images become luma ``0.2125 R + 0.7154 G + 0.0721 B`` of the stored
        (gamma-encoded) values; unsigned-integer pixels are divided by their type's
        maximum (255, 65535); float images already in [0, 1] are kept, other
        float or signed-integer images are min-max rescaled to [0, 1].

    Raises
    ------
    ValidationError
        Unknown name (the message lists the known ones), both ``names`` and
        ``folder`` given, missing or empty folder, unreadable file, an image that is
        not 2-D grayscale or RGB(A), or NaN/inf pixels.

    Examples
    --------
    >>> imgs = load_natural_images(["grass", "china"])
    >>> [im.shape for im in imgs]
    [(512, 512), (427, 640)]
    """
    owner = "load_natural_images"
    if max_size is not None:
        max_size = check_int(max_size, "max_size", owner, low=8)
    if folder is not None:
        if names is not None:
            raise ValidationError(
                f"{owner}: pass either names (bundled images) or folder (your own images), "
                "not both."
            )
        raw = _read_folder(folder)
    else:
        if names is None:
            names = NATURAL_IMAGES
        elif isinstance(names, str):
            names = (names,)
        if not isinstance(names, Sequence) or len(names) == 0:
            raise ValidationError(
                f"{owner}.names: expected a non-empty sequence of image names, got {names!r}."
            )
        for i, n in enumerate(names):
            if n not in BUNDLED_IMAGES:
                raise ValidationError(
                    f"{owner}.names[{i}]: unknown image {n!r}; bundled images are "
                    + ", ".join(repr(k) for k in BUNDLED_IMAGES)
                    + " (or pass folder= to load your own)."
                )
        raw = [(f"bundled image {n!r}", _load_bundled(n)) for n in names]
    images = [_to_gray_unit(im, source) for source, im in raw]
    if max_size is not None:
        images = [_shrink(im, max_size) for im in images]
    return images


# ---------------------------------------------------------------------------
# preprocessing
# ---------------------------------------------------------------------------
def dog_filter(
    image: Any, sigma_center: float = 1.0, sigma_surround: float | None = None
) -> np.ndarray:
    """Difference-of-Gaussians (centre-surround) filtering, as in Rao & Ballard (1999).

    ``G(sigma_center) * image - G(sigma_surround) * image`` with unit-sum Gaussian
    kernels (``scipy.ndimage.gaussian_filter``, reflected borders), so the
    filter's weights sum to zero: a uniform image gives zero and only local
    contrast passes, like a retinal ganglion / LGN cell's balanced centre-surround
    receptive field. The result is then shifted to exactly zero mean (removing the
    small residue that border reflection leaves).

    Parameters
    ----------
    image : array_like, shape (height, width)
        Real-valued, finite 2-D image.
    sigma_center : float, default 1.0
        Centre Gaussian's standard deviation in pixels. One pixel keeps the
        pass band (peak gain at 0.17 cycles/pixel, a period of about 6 pixels)
        well inside a 16x16 module patch: oriented structure a few pixels wide
        passes, while illumination gradients and uniform regions are removed.
    sigma_surround : float, optional
        Surround standard deviation; must exceed ``sigma_center``. Default
        ``1.6 * sigma_center``, Marr & Hildreth's (1980) ratio at which the DoG best
        approximates a Laplacian of Gaussian; with ``sigma_center=1`` the
        gain is above half its peak from 0.08 to 0.30 cycles/pixel.

    Returns
    -------
    ndarray, shape (height, width), float64
        The filtered, zero-mean image.

    Raises
    ------
    ValidationError
        Non-2-D, non-real or non-finite image; non-positive sigmas; surround not
        wider than the centre.
    """
    from scipy.ndimage import gaussian_filter

    owner = "dog_filter"
    img = _check_image(image, "image", owner).astype(np.float64)
    sc = float(check_param(sigma_center, "sigma_center", owner, low=0.0))
    if sigma_surround is None:
        ss = 1.6 * sc
    else:
        ss = float(check_param(sigma_surround, "sigma_surround", owner, low=0.0))
        if ss <= sc:
            raise ValidationError(
                f"{owner}.sigma_surround: must be larger than sigma_center={sc}, got {ss}; "
                "the surround is the wider Gaussian (default 1.6 * sigma_center)."
            )
    out = gaussian_filter(img, sc, mode="reflect") - gaussian_filter(img, ss, mode="reflect")
    return out - out.mean()


def whiten(image: Any, f0: float = 0.4) -> np.ndarray:
    """Olshausen & Field (1996) whitening with a low-pass rolloff.

    The image's Fourier transform is multiplied by ``R(f) = f exp(-(f/f0)^4)``,
    where ``f`` is the radial spatial frequency in cycles per pixel (Nyquist is 0.5
    along an axis). The ``f`` ramp flattens the ``1/f`` amplitude spectrum of
    natural images; the ``exp(-(f/f0)^4)`` term removes the highest frequencies,
    where noise and the anisotropic corners of the square sampling lattice dominate.
    The DC term is removed, so the output has zero mean. The transform treats the
    image as periodic, so a few pixels along the borders may carry wrap-around
    artifacts.

    Parameters
    ----------
    image : array_like, shape (height, width)
        Real-valued, finite 2-D image.
    f0 : float, default 0.4
        Rolloff frequency in cycles per pixel. 0.4 is Olshausen & Field's
        ``f0 = 200`` cycles per picture for their 512 x 512 images (``0.4 N``).

    Returns
    -------
    ndarray, shape (height, width), float64
        The whitened image (zero mean; its overall scale is arbitrary, see
        :func:`preprocess` to standardise it).

    Raises
    ------
    ValidationError
        Non-2-D, non-real or non-finite image, or ``f0 <= 0``.
    """
    owner = "whiten"
    img = _check_image(image, "image", owner).astype(np.float64)
    f0 = float(check_param(f0, "f0", owner, low=0.0))
    fy = np.fft.fftfreq(img.shape[0])[:, None]
    fx = np.fft.rfftfreq(img.shape[1])[None, :]
    f = np.sqrt(fx**2 + fy**2)
    filt = f * np.exp(-((f / f0) ** 4))
    return np.fft.irfft2(np.fft.rfft2(img) * filt, s=img.shape)


#: Preprocessing methods understood by :func:`preprocess`.
PREPROCESS_METHODS = ("dog", "whiten", "none")


def preprocess(
    images: Any,
    method: str = "dog",
    normalize: bool = True,
    *,
    sigma_center: float = 1.0,
    sigma_surround: float | None = None,
    f0: float = 0.4,
) -> list[np.ndarray]:
    """Filter each image, then standardise it.

    Parameters
    ----------
    images : sequence of array_like, or ndarray
        2-D images (e.g. from :func:`load_natural_images`), a 3-D stack
        (n_images, height, width), or one 2-D image.
    method : {"dog", "whiten", "none"}, default "dog"
        ``"dog"``: :func:`dog_filter` (Rao & Ballard 1999); ``"whiten"``:
        :func:`whiten` (Olshausen & Field 1996); ``"none"``: no filtering.
    normalize : bool, default True
        Centre each image to zero mean and divide it by its standard deviation, so
        every image has unit variance and contributes patches of comparable
        contrast whatever its exposure (Olshausen & Field likewise give all their
        whitened images one common variance). Without it, ``"dog"`` and
        ``"whiten"`` outputs are zero-mean at the filter's arbitrary scale and
        ``"none"`` returns float64 copies.
    sigma_center, sigma_surround : float, optional
        Passed to :func:`dog_filter` (``method="dog"`` only).
    f0 : float, default 0.4
        Passed to :func:`whiten` (``method="whiten"`` only).

    Returns
    -------
    list of ndarray
        One float64 image per input, same shapes.

    Raises
    ------
    ValidationError
        Unknown method, invalid images, or (with ``normalize``) an image with zero
        variance after filtering (a constant image); the message names its index.
    """
    owner = "preprocess"
    check_choice(method, "method", PREPROCESS_METHODS, owner)
    if not isinstance(normalize, (bool, np.bool_)):
        raise ValidationError(f"{owner}.normalize: expected a bool, got {normalize!r}.")
    out = []
    for i, im in enumerate(_image_list(images, "images", owner)):
        img = _check_image(im, f"images[{i}]", owner).astype(np.float64)
        if method == "dog":
            img = dog_filter(img, sigma_center, sigma_surround)
        elif method == "whiten":
            img = whiten(img, f0)
        if normalize:
            img = img - img.mean()
            sd = float(img.std())
            if not sd > 1e-12 * max(1.0, float(np.abs(im).max())):
                raise ValidationError(
                    f"{owner}.images[{i}]: has zero variance after method={method!r} (a "
                    "constant image?); remove it or pass normalize=False."
                )
            img = img / sd
        out.append(img)
    return out


def gaussian_window(shape: tuple[int, int], sigma: float | tuple[float, float]) -> np.ndarray:
    """A 2-D Gaussian window with peak value 1, to taper patches towards their edges.

    Rao & Ballard weight their image patches with a Gaussian window so that the
    abrupt patch borders do not dominate the learned receptive fields.

    Parameters
    ----------
    shape : (int, int)
        (height, width) of the window.
    sigma : float or (float, float)
        Standard deviation in pixels, one for both axes or (rows, columns).

    Returns
    -------
    ndarray, shape ``shape``, float64
        ``exp(-dr^2 / (2 sigma_r^2) - dc^2 / (2 sigma_c^2))`` with ``dr``, ``dc``
        measured from the geometric centre ``((h-1)/2, (w-1)/2)``, divided by its
        largest sample so that the peak is exactly 1 (with an even side the centre
        falls between pixels; the four central samples then equal 1). Symmetric
        under flips of either axis.

    Raises
    ------
    ValidationError
        Invalid shape or non-positive sigma.
    """
    owner = "gaussian_window"
    h, w = check_pair(shape, "shape", owner)
    sr, sc = _check_sigma(sigma, "sigma", owner)
    r = (np.arange(h) - (h - 1) / 2.0) / sr
    c = (np.arange(w) - (w - 1) / 2.0) / sc
    win = np.exp(-0.5 * (r[:, None] ** 2 + c[None, :] ** 2))
    return win / win.max()


# ---------------------------------------------------------------------------
# patches
# ---------------------------------------------------------------------------
class PatchSampler:
    """Draw image patches at uniformly random positions (seeded, reproducible).

    Every valid patch position of every image is equally likely: an image is
    chosen with probability proportional to its number of positions
    ``(H - h + 1) * (W - w + 1)``, then a position uniformly within it.

    Parameters
    ----------
    images : sequence of ndarray, or ndarray
        Floating-point 2-D images (e.g. ``preprocess(load_natural_images())``), a
        3-D stack (n_images, height, width), or one 2-D image. Each must be at
        least as large as ``patch_shape``.
    patch_shape : (int, int), default (16, 26)
        (height, width) of a patch. The default is Rao & Ballard's region covered
        by three 16x16 module patches offset by 5 pixels; cut it with
        :func:`split_modules`.
    window_sigma : float or (float, float), optional
        If given, every patch is multiplied by
        ``gaussian_window(patch_shape, window_sigma)``.
    random_state : None, int or numpy.random.Generator
        Seed; the same seed gives the same sequence of :meth:`sample` results.

    Attributes
    ----------
    images : list of ndarray
        The validated images (not copied).
    patch_shape : (int, int)
        Patch size.
    window : ndarray or None
        The Gaussian window applied to each patch, if any.
    n_positions : ndarray of int
        Number of valid patch positions in each image.

    Raises
    ------
    ValidationError
        Non-floating images, NaN/inf pixels, non-2-D images, a patch larger than an
        image (the message names the image's index and both shapes), bad
        ``patch_shape``, ``window_sigma`` or ``random_state``.

    Examples
    --------
    >>> imgs = preprocess(load_natural_images(["grass"]))
    >>> regions = PatchSampler(imgs, random_state=0).sample(100)
    >>> split_modules(regions).shape
    (100, 3, 256)
    """

    def __init__(
        self,
        images: Any,
        patch_shape: tuple[int, int] = (16, 26),
        window_sigma: float | tuple[float, float] | None = None,
        random_state: Any = None,
    ) -> None:
        owner = "PatchSampler"
        self.patch_shape = check_pair(patch_shape, "patch_shape", owner)
        ph, pw = self.patch_shape
        imgs = _image_list(images, "images", owner)
        self.images = [
            _check_image(im, f"images[{i}]", owner, float_only=True) for i, im in enumerate(imgs)
        ]
        for i, im in enumerate(self.images):
            if im.shape[0] < ph or im.shape[1] < pw:
                raise ValidationError(
                    f"{owner}.patch_shape: patch {self.patch_shape} is larger than images[{i}] "
                    f"of shape {tuple(im.shape)}; use a smaller patch_shape, or drop or "
                    "enlarge that image."
                )
        self.window = (
            None if window_sigma is None else gaussian_window(self.patch_shape, window_sigma)
        )
        self.n_positions = np.array(
            [(im.shape[0] - ph + 1) * (im.shape[1] - pw + 1) for im in self.images], dtype=np.int64
        )
        self._cum = np.cumsum(self.n_positions)
        self._rng = check_random_state(random_state, "random_state", owner)

    def sample(self, n: int, return_positions: bool = False):
        """Draw ``n`` patches.

        Parameters
        ----------
        n : int
            Number of patches, >= 1.
        return_positions : bool, default False
            Also return where each patch came from.

        Returns
        -------
        patches : ndarray, shape (n, height, width), float64
            The crops ``images[i][r:r+height, c:c+width]``, times the window if one
            was set.
        positions : ndarray, shape (n, 3), int64
            Only with ``return_positions``: rows ``(image_index, top_row, left_col)``.

        Raises
        ------
        ValidationError
            If ``n`` is not a positive int.
        """
        n = check_int(n, "n", "PatchSampler.sample", low=1)
        ph, pw = self.patch_shape
        flat = self._rng.integers(0, self._cum[-1], size=n)
        idx = np.searchsorted(self._cum, flat, side="right")
        local = flat - np.concatenate(([0], self._cum[:-1]))[idx]
        ncols = np.array([im.shape[1] - pw + 1 for im in self.images], dtype=np.int64)[idx]
        rows, cols = np.divmod(local, ncols)
        out = np.empty((n, ph, pw), dtype=np.float64)
        for i in np.unique(idx):
            sel = idx == i
            view = np.lib.stride_tricks.sliding_window_view(self.images[i], (ph, pw))
            out[sel] = view[rows[sel], cols[sel]]
        if self.window is not None:
            out *= self.window
        if return_positions:
            return out, np.stack([idx, rows, cols], axis=1).astype(np.int64)
        return out


def split_modules(
    patches: Any, n_modules: int = 3, module_size: int = 16, offset: int = 5
) -> np.ndarray:
    """Cut image regions into horizontally overlapping square module patches.

    Module ``k`` covers columns ``k*offset`` to ``k*offset + module_size - 1``; with
    the defaults a 16x26 region gives Rao & Ballard's three 16x16 patches at
    columns 0-15, 5-20 and 10-25.

    Parameters
    ----------
    patches : array_like, shape (n, module_size, module_size + (n_modules - 1) * offset)
        Regions, e.g. from :meth:`PatchSampler.sample`.
    n_modules : int, default 3
        Number of module patches per region.
    module_size : int, default 16
        Side of each square module patch.
    offset : int, default 5
        Horizontal shift between neighbouring modules (0 allowed; an offset larger
        than ``module_size`` leaves gaps).

    Returns
    -------
    ndarray, shape (n, n_modules, module_size**2)
        Each module patch flattened row by row (C order); floating input keeps its
        dtype, other real input becomes float64. To window each module separately
        multiply by ``gaussian_window((module_size, module_size), sigma).ravel()``.

    Raises
    ------
    ValidationError
        Non-3-D, non-real or non-finite ``patches``, non-positive ``n_modules`` or
        ``module_size``, negative ``offset``, or region shape not matching the
        geometry (the message gives the expected shape).
    """
    owner = "split_modules"
    n_modules = check_int(n_modules, "n_modules", owner, low=1)
    module_size = check_int(module_size, "module_size", owner, low=1)
    offset = check_int(offset, "offset", owner, low=0)
    arr = np.asarray(patches)
    if arr.dtype.kind not in "biuf":
        raise ValidationError(f"{owner}.patches: expected real numbers, got dtype {arr.dtype}.")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    width = module_size + (n_modules - 1) * offset
    if arr.ndim != 3:
        hint = "; for a single region use patches[None]" if arr.ndim == 2 else ""
        raise ValidationError(
            f"{owner}.patches: expected shape (n, {module_size}, {width}), got "
            f"{tuple(arr.shape)}{hint}."
        )
    if arr.shape[1:] != (module_size, width):
        raise ValidationError(
            f"{owner}.patches: expected regions of shape ({module_size}, {width}) = "
            f"(module_size, module_size + (n_modules - 1) * offset) for n_modules={n_modules}, "
            f"module_size={module_size}, offset={offset}; got {tuple(arr.shape[1:])}. Sample "
            f"with patch_shape=({module_size}, {width}) or change the geometry."
        )
    if arr.shape[0] == 0:
        raise ValidationError(f"{owner}.patches: got no regions (shape {tuple(arr.shape)}).")
    if not np.isfinite(arr).all():
        raise ValidationError(f"{owner}.patches: contains NaN or infinite values.")
    n = arr.shape[0]
    mods = [
        arr[:, :, k * offset : k * offset + module_size].reshape(n, module_size * module_size)
        for k in range(n_modules)
    ]
    return np.ascontiguousarray(np.stack(mods, axis=1))
