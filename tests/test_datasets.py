"""Dataset loaders: small synthetic files in each standard on-disk format, written into ``tmp_path``.

Pixel values are checked at known positions so that channel-order and transposition mistakes (CIFAR's
R/G/B planes, STL-10's column-major images) are caught.  Offline and fast; the real Fashion-MNIST test is
skipped when the Debian package is not installed.
"""
from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from linksim.data import datasets as D
from linksim.errors import UserError

N = {"train": 7, "test": 3}


@pytest.fixture(autouse=True)
def _fresh_cache():
    D.clear_cache()
    yield
    D.clear_cache()


def _images(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def _labels(n: int, num_classes: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed + 100).integers(0, num_classes, size=n).astype(np.uint8)


# --------------------------------------------------------------------------------------------- IDX


def _idx_bytes(arr: np.ndarray, magic: int) -> bytes:
    return struct.pack(f">I{arr.ndim}I", magic, *arr.shape) + arr.astype(np.uint8).tobytes()


def _write_idx(root: Path, compress: bool, n=N) -> dict:
    truth = {}
    for seed, (split, (img_name, lab_name)) in enumerate(D._IDX_FILES.items()):
        x, y = _images(n[split], (28, 28), seed), _labels(n[split], 10, seed)
        truth[split] = (x, y)
        for name, data in ((img_name, _idx_bytes(x, 2051)), (lab_name, _idx_bytes(y, 2049))):
            if compress:
                (root / (name + ".gz")).write_bytes(gzip.compress(data))
            else:
                (root / name).write_bytes(data)
    return truth


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
def test_mnist_idx(tmp_path, compress):
    truth = _write_idx(tmp_path, compress)
    for split in ("train", "test"):
        x, y = D.load_split("mnist", split, str(tmp_path))
        assert x.shape == (N[split], 1, 28, 28) and x.dtype == np.uint8
        assert y.shape == (N[split],) and y.dtype == np.int64
        tx, ty = truth[split]
        assert x[1, 0, 3, 20] == tx[1, 3, 20] and x[2, 0, 27, 0] == tx[2, 27, 0]
        np.testing.assert_array_equal(x[:, 0], tx)
        np.testing.assert_array_equal(y, ty)
    assert D.dataset_info("mnist").class_names == tuple("0123456789")
    files = D.dataset_files("mnist", tmp_path)
    assert len(files) == 4 and all(f.exists() for f in files)
    assert all(f.name.endswith(".gz") == compress for f in files)


def test_fashion_mnist_with_root_and_torchvision_layout(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    truth = _write_idx(raw, compress=False)
    x, y = D.load_split("fashion_mnist", "test", tmp_path)
    np.testing.assert_array_equal(x[:, 0], truth["test"][0])
    np.testing.assert_array_equal(y, truth["test"][1])
    info = D.dataset_info("fashion_mnist")
    assert info.shape == (1, 28, 28) and info.num_classes == 10 and info.splits == ("train", "test")
    assert info.class_names[0] == "T-shirt/top" and info.class_names[9] == "Ankle boot"


def test_load_split_is_memoised(tmp_path):
    _write_idx(tmp_path, compress=True)
    a = D.load_split("mnist", "train", str(tmp_path))
    assert D.load_split("mnist", "train", tmp_path) is a  # same root as str or Path
    assert D.load_split("mnist", "test", tmp_path) is not a


def test_idx_bad_magic(tmp_path):
    _write_idx(tmp_path, compress=True)
    bad = tmp_path / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(_idx_bytes(np.zeros(7, np.uint8), 2051)))
    with pytest.raises(UserError, match="magic number 2051, expected 2049") as e:
        D.load_split("mnist", "train", tmp_path)
    assert str(bad) in str(e.value)


def test_idx_truncated_and_count_mismatch(tmp_path):
    _write_idx(tmp_path, compress=False)
    img = tmp_path / "t10k-images-idx3-ubyte"
    img.write_bytes(img.read_bytes()[:-5])
    with pytest.raises(UserError, match="truncated") as e:
        D.load_split("mnist", "test", tmp_path)
    assert str(img) in str(e.value)

    _write_idx(tmp_path, compress=False)
    lab = tmp_path / "t10k-labels-idx1-ubyte"
    lab.write_bytes(_idx_bytes(np.zeros(2, np.uint8), 2049))
    with pytest.raises(UserError, match="2 labels but 3 images") as e:
        D.load_split("mnist", "test", tmp_path)
    assert str(lab) in str(e.value)


def test_idx_corrupt_gzip(tmp_path):
    _write_idx(tmp_path, compress=True)
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:30])
    with pytest.raises(UserError) as e:
        D.load_split("mnist", "train", tmp_path)
    assert str(bad) in str(e.value)


def test_missing_files_message(tmp_path):
    with pytest.raises(UserError) as e:
        D.load_split("mnist", "train", tmp_path)
    msg = str(e.value)
    assert "mnist" in msg and str(tmp_path / "train-images-idx3-ubyte.gz") in msg and "data.root" in msg
    assert [f for f in D.dataset_files("mnist", tmp_path) if not f.exists()]

    with pytest.raises(UserError) as e:
        D.load_split("fashion_mnist", "test", tmp_path / "nowhere")
    msg = str(e.value)
    assert str(tmp_path / "nowhere" / "t10k-images-idx3-ubyte.gz") in msg
    assert "apt-get install dataset-fashion-mnist" in msg

    with pytest.raises(UserError) as e:
        D.load_split("cifar10", "test", tmp_path)
    assert str(tmp_path / "test_batch") in str(e.value) and "cifar-10-python.tar.gz" in str(e.value)

    with pytest.raises(UserError) as e:
        D.load_split("stl10", "train", tmp_path)
    assert str(tmp_path / "train_X.bin") in str(e.value) and "stl10_binary.tar.gz" in str(e.value)


@pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar100", "stl10"])
def test_root_required(name):
    with pytest.raises(UserError, match="data.root"):
        D.load_split(name, "train")
    with pytest.raises(UserError, match="data.root"):
        D.dataset_files(name, None)


def test_unknown_dataset_and_split():
    with pytest.raises(UserError, match="unknown dataset 'cifar11'.*cifar10") as e:
        D.dataset_info("cifar11")
    for name in D.DATASETS:
        assert name in str(e.value)
    with pytest.raises(UserError, match="unknown dataset"):
        D.load_split("imagenet", "train", "/tmp")
    with pytest.raises(UserError, match="no split 'val'"):
        D.load_split("digits", "val")
    assert D.dataset_info("Fashion-MNIST").name == "fashion_mnist"


# --------------------------------------------------------------------------------------------- CIFAR


def _cifar_truth(n: int, seed: int, num_classes: int):
    return _images(n, (3, 32, 32), seed), _labels(n, num_classes, seed).astype(int).tolist()


def _dump(path: Path, obj: dict) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


def test_cifar10(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    xs, ys = [], []
    for i in range(1, 6):  # batches of different sizes: 1+1+2+1+2 = 7 train images
        x, y = _cifar_truth([1, 1, 2, 1, 2][i - 1], i, 10)
        xs.append(x), ys.extend(y)
        _dump(root / f"data_batch_{i}", {b"batch_label": b"x", b"data": x.reshape(len(x), -1), b"labels": y})
    xt, yt = _cifar_truth(3, 9, 10)
    # the row layout by hand: 1024 red bytes, 1024 green, 1024 blue, each plane row-major
    rows = xt.reshape(3, -1).copy()
    rows[0, 0] = 11                      # red (0, 0)
    rows[0, 1024 + 5 * 32 + 7] = 22      # green, row 5, column 7
    rows[2, 2048 + 31 * 32 + 1] = 33     # blue, row 31, column 1
    _dump(root / "test_batch", {b"data": rows, b"labels": yt})
    names = [f"c{i}".encode() for i in range(10)]
    _dump(root / "batches.meta", {b"label_names": names, b"num_vis": 3072})

    x, y = D.load_split("cifar10", "train", tmp_path)
    assert x.shape == (7, 3, 32, 32) and x.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(x, np.concatenate(xs))
    np.testing.assert_array_equal(y, ys)
    x, y = D.load_split("cifar10", "test", root)  # root itself works too
    assert x[0, 0, 0, 0] == 11 and x[0, 1, 5, 7] == 22 and x[2, 2, 31, 1] == 33
    np.testing.assert_array_equal(x.reshape(3, -1), rows)
    np.testing.assert_array_equal(y, yt)
    assert D.load_info("cifar10", tmp_path).class_names == tuple(f"c{i}" for i in range(10))
    assert D.dataset_info("cifar10").class_names[1] == "automobile"
    (root / "batches.meta").unlink()
    D.clear_cache()
    assert D.load_info("cifar10", tmp_path).class_names == D.CIFAR10_CLASSES


def test_cifar100(tmp_path):
    truth = {}
    for seed, split in enumerate(("train", "test")):
        x, y = _cifar_truth(N[split], seed, 100)
        y[0] = 99
        truth[split] = (x, y)
        _dump(tmp_path / split, {b"data": x.reshape(len(x), -1), b"fine_labels": y,
                                 b"coarse_labels": [0] * len(y)})
    _dump(tmp_path / "meta", {b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                              b"coarse_label_names": [b"c"] * 20})
    for split in ("train", "test"):
        x, y = D.load_split("cifar100", split, tmp_path)
        assert x.shape == (N[split], 3, 32, 32) and y.dtype == np.int64
        np.testing.assert_array_equal(x, truth[split][0])
        np.testing.assert_array_equal(y, truth[split][1])
    assert x[1, 2, 4, 9] == truth["test"][0][1, 2, 4, 9]
    info = D.load_info("cifar100", tmp_path)
    assert info.num_classes == 100 and info.class_names[99] == "f99"
    assert len(set(D.CIFAR100_CLASSES)) == 100


def test_cifar_bad_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    _dump(tmp_path / "test", {b"data": Evil()})
    _dump(tmp_path / "train", {b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [1, 2]})
    with pytest.raises(UserError, match=r"refusing to load (__builtin__|builtins)\.print") as e:
        D.load_split("cifar100", "test", tmp_path)
    assert str(tmp_path / "test") in str(e.value)
    _dump(tmp_path / "test", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2]})
    with pytest.raises(UserError, match="no key 'fine_labels'"):
        D.load_split("cifar100", "test", tmp_path)
    _dump(tmp_path / "test", {b"data": np.zeros((2, 100), np.uint8), b"fine_labels": [1, 2]})
    with pytest.raises(UserError, match=r"expected uint8 \(N, 3072\)"):
        D.load_split("cifar100", "test", tmp_path)
    (tmp_path / "test").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="not a CIFAR python pickle"):
        D.load_split("cifar100", "test", tmp_path)


# --------------------------------------------------------------------------------------------- STL-10


def test_stl10(tmp_path):
    root = tmp_path / "stl10_binary"
    root.mkdir()
    truth = {}
    for seed, split in enumerate(("train", "test")):
        x = _images(N[split], (3, 96, 96), seed)  # (N, C, H, W)
        y = _labels(N[split], 10, seed)
        y[0] = 9
        truth[split] = (x, y)
        # on disk: per image, per channel, column-major (width index outermost)
        (root / f"{split}_X.bin").write_bytes(np.transpose(x, (0, 1, 3, 2)).tobytes())
        (root / f"{split}_y.bin").write_bytes((y + 1).astype(np.uint8).tobytes())
    raw = (root / "train_X.bin").read_bytes()
    x, y = D.load_split("stl10", "train", tmp_path)
    assert x.shape == (7, 3, 96, 96) and x.dtype == np.uint8 and y.dtype == np.int64
    # pixel (image 1, channel 2, row h=5, column w=40) sits at byte offset n*27648 + c*9216 + w*96 + h
    assert x[1, 2, 5, 40] == raw[1 * 27648 + 2 * 9216 + 40 * 96 + 5]
    assert x[0, 0, 95, 0] == raw[0 * 27648 + 0 * 9216 + 0 * 96 + 95]
    np.testing.assert_array_equal(x, truth["train"][0])
    np.testing.assert_array_equal(y, truth["train"][1])
    assert y[0] == 9 and y.min() >= 0
    x, y = D.load_split("stl10", "test", root)
    np.testing.assert_array_equal(x, truth["test"][0])
    assert D.load_info("stl10", tmp_path).class_names == D.STL10_CLASSES
    (root / "class_names.txt").write_text("\n".join(f"s{i}" for i in range(10)) + "\n")
    D.clear_cache()
    assert D.load_info("stl10", tmp_path).class_names[3] == "s3"


def test_stl10_bad_files(tmp_path):
    (tmp_path / "test_X.bin").write_bytes(bytes(27648 * 2 + 1))
    (tmp_path / "test_y.bin").write_bytes(bytes([1, 2]))
    with pytest.raises(UserError, match="not a multiple") as e:
        D.load_split("stl10", "test", tmp_path)
    assert str(tmp_path / "test_X.bin") in str(e.value)
    (tmp_path / "test_X.bin").write_bytes(bytes(27648 * 2))
    (tmp_path / "test_y.bin").write_bytes(bytes([0, 2]))  # labels are 1..10 on disk
    with pytest.raises(UserError, match="expected 1..10"):
        D.load_split("stl10", "test", tmp_path)


# --------------------------------------------------------------------------------------------- digits


def test_digits_split():
    xtr, ytr = D.load_split("digits", "train")
    xte, yte = D.load_split("digits", "test", root="/ignored")
    assert len(ytr) + len(yte) == 1797 and len(ytr) == int(0.8 * 1797)
    assert xtr.shape[1:] == (1, 8, 8) and xtr.dtype == np.uint8 and ytr.dtype == np.int64
    assert xtr.max() == 255 and xtr.min() == 0 and set(np.unique(ytr)) == set(range(10))
    # disjoint: together the two splits are exactly the bundled images (no duplicates lost or added)
    from sklearn.datasets import load_digits

    ref = np.rint(load_digits().images * 255 / 16).astype(np.uint8)
    both = np.concatenate([xtr, xte])[:, 0]
    key = lambda a: sorted(map(bytes, a))  # noqa: E731
    assert key(both) == key(ref)
    D.clear_cache()
    xtr2, ytr2 = D.load_split("digits", "train")
    np.testing.assert_array_equal(xtr2, xtr)
    np.testing.assert_array_equal(ytr2, ytr)
    assert D.dataset_files("digits", None) == []


# --------------------------------------------------------------------------------------------- real data

_REAL = Path(D.FASHION_MNIST_ROOT) / "train-labels-idx1-ubyte.gz"


@pytest.mark.skipif(not _REAL.exists(), reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist():
    assert all(f.exists() for f in D.dataset_files("fashion_mnist", None))
    for split, n in (("train", 60000), ("test", 10000)):
        x, y = D.load_split("fashion_mnist", split)
        assert x.shape == (n, 1, 28, 28) and x.dtype == np.uint8
        assert y.shape == (n,) and y.min() == 0 and y.max() == 9
        assert np.bincount(y).tolist() == [n // 10] * 10  # Fashion-MNIST is exactly balanced
