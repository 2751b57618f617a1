"""Image-classification datasets read from their standard on-disk formats, offline.

Known datasets (``DATASETS``):

=================  ===========  =========================================================================
name               shape        files (in ``root``, or the sub-folder in brackets)
=================  ===========  =========================================================================
``fashion_mnist``  1 x 28 x 28  IDX files ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
                                ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``;
                                default root ``/usr/share/datasets/fashion-mnist`` (Debian package
                                ``dataset-fashion-mnist``)  [``FashionMNIST/raw``]
``mnist``          1 x 28 x 28  the same IDX file names; ``root`` required  [``MNIST/raw``]
``cifar10``        3 x 32 x 32  python pickles ``data_batch_1`` .. ``data_batch_5``, ``test_batch``,
                                optional ``batches.meta``  [``cifar-10-batches-py``]
``cifar100``       3 x 32 x 32  python pickles ``train``, ``test``, optional ``meta`` (fine labels)
                                [``cifar-100-python``]
``stl10``          3 x 96 x 96  ``train_X.bin``, ``train_y.bin``, ``test_X.bin``, ``test_y.bin``, optional
                                ``class_names.txt``  [``stl10_binary``]
``digits``         1 x 8 x 8    scikit-learn's bundled 8x8 digits (1797 images, values scaled 0..16 ->
                                0..255); fixed split: seed-0 permutation, first 80 % train, rest test
=================  ===========  =========================================================================

Public API:

* :func:`dataset_info` -- name, shape, classes, splits; no file is read.
* :func:`load_info` -- like :func:`dataset_info` but takes the class names from the dataset's meta file
  (``batches.meta``, ``meta``, ``class_names.txt``) when that file exists.
* :func:`load_split` -- ``(images, labels)``: ``uint8 [N, C, H, W]`` and ``int64 [N]``.  Results are
  memoised per ``(name, split, root)``; the returned arrays are shared between callers, so copy them
  before modifying in place.  :func:`clear_cache` drops the memo.
* :func:`dataset_files` -- the files :func:`load_split` reads for a dataset (both splits), so callers can
  check early that they exist.

Every problem with the data (unknown dataset or split, missing, truncated or malformed files) raises
:class:`linksim.errors.UserError` saying which dataset and which file(s), and for missing data how to get
it.  Nothing is ever downloaded.  CIFAR pickles are read with a restricted unpickler that only
reconstructs numpy arrays, so a data file cannot run code.
"""
from __future__ import annotations

import dataclasses
import difflib
import gzip
import io
import pickle
import struct
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import UserError

SPLITS = ("train", "test")

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DIGIT_CLASSES = tuple(str(i) for i in range(10))
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger",
    "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)
STL10_CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"

_IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
_IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
_IDX_LIST = ", ".join(f + ".gz" for s in SPLITS for f in _IDX_FILES[s])


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a dataset looks like: image shape ``(C, H, W)``, classes and splits."""

    name: str
    shape: tuple[int, int, int]
    num_classes: int
    class_names: tuple[str, ...]
    splits: tuple[str, ...] = SPLITS


@dataclasses.dataclass(frozen=True)
class _Spec:
    info: DatasetInfo
    files: dict[str, tuple[str, ...]]  # split -> required file names (without ".gz" for IDX)
    reader: Callable[["_Spec", str, list[Path]], tuple[np.ndarray, np.ndarray]] | None
    hint: str  # how to get the data
    subdirs: tuple[str, ...] = ()  # sub-folders of root also searched
    default_root: str | None = None
    gz: bool = False  # each file may also be stored gzip-compressed as NAME.gz (preferred)
    meta: str | None = None  # optional file holding the class names


# --------------------------------------------------------------------------------------------- helpers


def _read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic bytes."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise UserError(f"cannot read file: {e}", where=str(path)) from None
    return raw


def _parse_idx(path: Path, magic: int, tail: tuple[int, ...]) -> np.ndarray:
    """An IDX file of unsigned bytes as an array ``[N, *tail]``, checking magic number, dims and size."""
    data = _read_bytes(path)
    kind = "images" if magic == _IDX_IMAGES_MAGIC else "labels"
    ndim = 1 + len(tail)
    head = 4 + 4 * ndim
    if len(data) < head:
        raise UserError(f"not an IDX {kind} file: only {len(data)} bytes", where=str(path))
    (got,) = struct.unpack(">I", data[:4])
    if got != magic:
        raise UserError(f"not an IDX {kind} file: magic number {got}, expected {magic}", where=str(path))
    dims = struct.unpack(f">{ndim}I", data[4:head])
    if tuple(dims[1:]) != tail:
        raise UserError(f"IDX {kind} of size {'x'.join(map(str, dims[1:]))}, expected "
                        f"{'x'.join(map(str, tail))}", where=str(path))
    n_bytes = int(np.prod(dims))
    if len(data) - head != n_bytes:
        raise UserError(f"IDX header says {dims[0]} {kind} ({n_bytes} bytes) but the file holds "
                        f"{len(data) - head} data bytes (truncated or corrupt)", where=str(path))
    return np.frombuffer(data, np.uint8, count=n_bytes, offset=head).reshape(dims).copy()


def _check_labels(labels: np.ndarray, n_images: int, num_classes: int, path: Path, images: Path) -> np.ndarray:
    try:
        labels = np.asarray(labels).astype(np.int64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise UserError(f"labels are not integers: {e}", where=str(path)) from None
    if len(labels) != n_images:
        raise UserError(f"{len(labels)} labels but {n_images} images in {images}", where=str(path))
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(f"labels range {labels.min()}..{labels.max()}, expected 0..{num_classes - 1}",
                        where=str(path))
    return labels


_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only (the CIFAR batch format); anything else is refused."""

    def find_class(self, module, name):
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays are allowed)")
        if module.startswith("numpy.core."):  # numpy 1.x pickles; numpy 2 renamed the package
            try:
                import numpy._core  # noqa: F401

                module = "numpy._core." + module[len("numpy.core."):]
            except ImportError:
                pass
        return super().find_class(module, name)


def _load_pickle(path: Path) -> dict:
    try:
        obj = _ArrayUnpickler(io.BytesIO(_read_bytes(path)), encoding="bytes").load()
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 -- any unpickling failure means a bad file
        raise UserError(f"not a CIFAR python pickle: {type(e).__name__}: {e}", where=str(path)) from None
    if not isinstance(obj, dict):
        raise UserError(f"not a CIFAR python pickle: holds a {type(obj).__name__}, expected a dict",
                        where=str(path))
    return obj


def _key(d: dict, key: str, path: Path, required: bool = True) -> Any:
    """``d[b"key"]`` (python-2 pickles) or ``d["key"]`` (re-pickled by python 3)."""
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    if required:
        raise UserError(f"CIFAR pickle has no key {key!r} (keys: {sorted(map(str, d))})", where=str(path))
    return None


def _names(values: Any, n: int, path: Path) -> tuple[str, ...]:
    try:
        names = tuple(v.decode() if isinstance(v, bytes) else str(v) for v in values)
    except (TypeError, UnicodeDecodeError) as e:
        raise UserError(f"bad class names: {e}", where=str(path)) from None
    if len(names) != n:
        raise UserError(f"{len(names)} class names, expected {n}", where=str(path))
    return names


# --------------------------------------------------------------------------------------------- readers


def _read_idx(spec: _Spec, split: str, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    c, h, w = spec.info.shape
    images = _parse_idx(paths[0], _IDX_IMAGES_MAGIC, (h, w)).reshape(-1, c, h, w)
    labels = _parse_idx(paths[1], _IDX_LABELS_MAGIC, ())
    return images, _check_labels(labels, len(images), spec.info.num_classes, paths[1], paths[0])


def _read_cifar(label_key: str) -> Callable:
    def read(spec: _Spec, split: str, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
        c, h, w = spec.info.shape
        xs, ys = [], []
        for path in paths:
            d = _load_pickle(path)
            data = np.asarray(_key(d, "data", path))
            if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != c * h * w:
                raise UserError(f"'data' is {data.dtype} {data.shape}, expected uint8 (N, {c * h * w})",
                                where=str(path))
            # each row: 1024 red, 1024 green, 1024 blue bytes, each plane row-major 32x32
            xs.append(data.reshape(-1, c, h, w))
            ys.append(_check_labels(np.asarray(_key(d, label_key, path)), len(data), spec.info.num_classes,
                                    path, path))
        return np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys)

    return read


def _read_stl10(spec: _Spec, split: str, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    c, h, w = spec.info.shape
    xpath, ypath = paths
    x = np.frombuffer(_read_bytes(xpath), np.uint8)
    if x.size % (c * h * w):
        raise UserError(f"size {x.size} bytes is not a multiple of one image ({c * h * w} bytes)",
                        where=str(xpath))
    # images are stored channel by channel, each channel column-major (as in the STL-10 reference code)
    images = np.ascontiguousarray(np.transpose(x.reshape(-1, c, w, h), (0, 1, 3, 2)))
    y = np.frombuffer(_read_bytes(ypath), np.uint8).astype(np.int64)
    if len(y) and (y.min() < 1 or y.max() > spec.info.num_classes):
        raise UserError(f"labels range {y.min()}..{y.max()}, expected 1..{spec.info.num_classes}",
                        where=str(ypath))
    return images, _check_labels(y - 1, len(images), spec.info.num_classes, ypath, xpath)


def _load_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.rint(np.asarray(d.images, np.float64) * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    images = images.reshape(-1, 1, 8, 8)
    labels = np.asarray(d.target, np.int64)
    perm = np.random.default_rng(0).permutation(len(labels))
    n_train = int(0.8 * len(labels))
    idx = perm[:n_train] if split == "train" else perm[n_train:]
    return np.ascontiguousarray(images[idx]), labels[idx]


# --------------------------------------------------------------------------------------------- registry

_IDX_HINT = ("set data.root to a folder with the four IDX files (" + _IDX_LIST + ", or the same without .gz)")

_SPECS: dict[str, _Spec] = {
    "fashion_mnist": _Spec(
        DatasetInfo("fashion_mnist", (1, 28, 28), 10, FASHION_MNIST_CLASSES), _IDX_FILES, _read_idx,
        "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist), or "
        + _IDX_HINT, subdirs=("FashionMNIST/raw",), default_root=FASHION_MNIST_ROOT, gz=True),
    "mnist": _Spec(
        DatasetInfo("mnist", (1, 28, 28), 10, DIGIT_CLASSES), _IDX_FILES, _read_idx,
        "download the MNIST IDX files (e.g. from a mirror of http://yann.lecun.com/exdb/mnist/) and "
        + _IDX_HINT, subdirs=("MNIST/raw",), gz=True),
    "cifar10": _Spec(
        DatasetInfo("cifar10", (3, 32, 32), 10, CIFAR10_CLASSES),
        {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}, _read_cifar("labels"),
        "download cifar-10-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) and extract it into "
        "data.root", subdirs=("cifar-10-batches-py",), meta="batches.meta"),
    "cifar100": _Spec(
        DatasetInfo("cifar100", (3, 32, 32), 100, CIFAR100_CLASSES),
        {"train": ("train",), "test": ("test",)}, _read_cifar("fine_labels"),
        "download cifar-100-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) and extract it into "
        "data.root", subdirs=("cifar-100-python",), meta="meta"),
    "stl10": _Spec(
        DatasetInfo("stl10", (3, 96, 96), 10, STL10_CLASSES),
        {"train": ("train_X.bin", "train_y.bin"), "test": ("test_X.bin", "test_y.bin")}, _read_stl10,
        "download stl10_binary.tar.gz (https://cs.stanford.edu/~acoates/stl10/) and extract it into data.root",
        subdirs=("stl10_binary",), meta="class_names.txt"),
    "digits": _Spec(DatasetInfo("digits", (1, 8, 8), 10, DIGIT_CLASSES), {"train": (), "test": ()}, None,
                    "it ships with scikit-learn (pip install scikit-learn)"),
}

DATASETS: tuple[str, ...] = tuple(_SPECS)

_CACHE: dict[tuple[str, str, str | None], tuple[np.ndarray, np.ndarray]] = {}
_INFO_CACHE: dict[tuple[str, str | None], DatasetInfo] = {}


def _spec(name: str) -> _Spec:
    key = name.strip().lower().replace("-", "_") if isinstance(name, str) else name
    if key not in _SPECS:
        close = difflib.get_close_matches(str(key), DATASETS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserError(f"unknown dataset {name!r}{hint}; known datasets: {', '.join(DATASETS)}")
    return _SPECS[key]


def _root_key(root: str | Path | None) -> str | None:
    return str(Path(root).expanduser()) if root not in (None, "") else None


def _dirs(spec: _Spec, root: str | Path | None) -> list[Path]:
    """Folders searched, in order: root (or the default root) and its known sub-folders."""
    rk = _root_key(root)
    if rk is None:
        if spec.default_root is None:
            raise UserError(f"dataset {spec.info.name!r} needs data.root (the folder holding its files): "
                            f"{spec.hint}")
        rk = spec.default_root
    base = Path(rk)
    return [base] + [base / s for s in spec.subdirs]


def _variants(spec: _Spec, name: str) -> tuple[str, ...]:
    return (name + ".gz", name) if spec.gz else (name,)


def _resolve(spec: _Spec, dirs: list[Path], names: tuple[str, ...]) -> list[Path]:
    """The paths to read for ``names``: in the first folder holding all of them (else the first holding
    any, else the first folder), each file's existing variant (else its preferred one)."""
    def found(d: Path, n: str) -> Path | None:
        return next((d / v for v in _variants(spec, n) if (d / v).is_file()), None)

    folder = (next((d for d in dirs if all(found(d, n) for n in names)), None)
              or next((d for d in dirs if any(found(d, n) for n in names)), None)
              or dirs[0])
    return [found(folder, n) or folder / _variants(spec, n)[0] for n in names]


def _missing_error(spec: _Spec, split: str, dirs: list[Path], missing: list[Path]) -> UserError:
    msg = f"dataset {spec.info.name!r} ({split} split): file(s) not found: {', '.join(map(str, missing))}"
    if spec.gz:
        msg += " (also tried without .gz)"
    if len(dirs) > 1:
        msg += f"; also looked in {', '.join(map(str, dirs[1:]))}"
    if not dirs[0].is_dir():
        msg += f"; folder {dirs[0]} does not exist"
    return UserError(f"{msg}. To get the data: {spec.hint}")


def _check_split(spec: _Spec, split: str) -> None:
    if split not in spec.info.splits:
        raise UserError(f"dataset {spec.info.name!r} has no split {split!r}; splits: {', '.join(spec.info.splits)}")


# --------------------------------------------------------------------------------------------- public API


def dataset_info(name: str) -> DatasetInfo:
    """Shape, classes and splits of dataset ``name`` (standard class names; no file is read)."""
    return _spec(name).info


def dataset_files(name: str, root: str | Path | None = None) -> list[Path]:
    """The files :func:`load_split` reads for ``name`` (both splits) given ``root``.

    Existing files are returned where found (``.gz`` or not, ``root`` or a known sub-folder), otherwise the
    preferred path, so ``[f for f in dataset_files(...) if not f.exists()]`` lists what is missing.
    Empty for ``digits``; raises :class:`UserError` when the dataset needs ``root`` and none is given.
    """
    spec = _spec(name)
    if spec.reader is None:
        return []
    dirs = _dirs(spec, root)
    return [p for s in spec.info.splits for p in _resolve(spec, dirs, spec.files[s])]


def load_split(name: str, split: str, root: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8 [N, C, H, W]`` and labels ``int64 [N]`` of one split, memoised per (name, split, root).

    The memoised arrays are shared: copy before modifying them in place.
    """
    spec = _spec(name)
    _check_split(spec, split)
    info = spec.info
    key = (info.name, split, _root_key(root) if spec.reader is not None else None)
    if key not in _CACHE:
        if spec.reader is None:
            images, labels = _load_digits(split)
        else:
            dirs = _dirs(spec, root)
            paths = _resolve(spec, dirs, spec.files[split])
            missing = [p for p in paths if not p.is_file()]
            if missing:
                raise _missing_error(spec, split, dirs, missing)
            images, labels = spec.reader(spec, split, paths)
        assert images.dtype == np.uint8 and images.shape[1:] == info.shape, (images.dtype, images.shape)
        assert labels.dtype == np.int64 and labels.shape == (len(images),), (labels.dtype, labels.shape)
        _CACHE[key] = (images, labels)
    return _CACHE[key]


def load_info(name: str, root: str | Path | None = None) -> DatasetInfo:
    """:func:`dataset_info`, with the class names read from the dataset's meta file when it exists
    (``batches.meta`` for cifar10, ``meta`` for cifar100, ``class_names.txt`` for stl10)."""
    spec = _spec(name)
    if spec.meta is None:
        return spec.info
    key = (spec.info.name, _root_key(root))
    if key not in _INFO_CACHE:
        dirs = _dirs(spec, root)
        folder = _resolve(spec, dirs, spec.files["train"] + spec.files["test"])[0].parent
        path = folder / spec.meta
        names = spec.info.class_names
        if path.is_file():
            n = spec.info.num_classes
            if spec.meta == "class_names.txt":
                try:
                    text = _read_bytes(path).decode()
                except UnicodeDecodeError as e:
                    raise UserError(f"bad class names: {e}", where=str(path)) from None
                names = _names([ln.strip() for ln in text.splitlines() if ln.strip()], n, path)
            else:
                field = "label_names" if spec.meta == "batches.meta" else "fine_label_names"
                names = _names(_key(_load_pickle(path), field, path), n, path)
        _INFO_CACHE[key] = dataclasses.replace(spec.info, class_names=names)
    return _INFO_CACHE[key]


def clear_cache() -> None:
    """Forget memoised splits and class names (e.g. after the files on disk changed)."""
    _CACHE.clear()
    _INFO_CACHE.clear()
