"""Tests for vaelab.mnist: the real download path against a loopback HTTP server, no internet.

The server (http.server on 127.0.0.1, port 0) serves small synthetic IDX .gz files built
here, passed to the loader with their own md5s, and, where cheap, the real files.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vaelab import mnist
from vaelab.mnist import (
    IMAGE_MAGIC,
    LABEL_MAGIC,
    MD5,
    IdxFormatError,
    MnistCorruptFileError,
    MnistError,
    MnistNotFoundError,
    binarized_test_set,
    load_mnist,
    parse_idx,
    read_idx_gz,
    to_unit_float,
)

TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"

# The project's read-only copy (CI): $VAELAB_DATA_DIR as set when the tests start, else
# ../shared/data/mnist next to the checkout.
_CANDIDATES = [os.environ.get("VAELAB_DATA_DIR", ""),
               str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist")]
REAL_DIR = next((Path(c) for c in _CANDIDATES
                 if c and all((Path(c) / name).is_file() for name in MD5)), None)
needs_real = pytest.mark.skipif(REAL_DIR is None, reason="real MNIST files not found; set "
                                "VAELAB_DATA_DIR to the folder holding the four .gz files")


# ---------------------------------------------------------------------------------------------
# Synthetic IDX files (written independently of the parser under test)


def idx_bytes(arr: np.ndarray, magic: int | None = None) -> bytes:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    magic = (0x0800 | arr.ndim) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.tobytes()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class Synthetic:
    """A tiny split: n random 28x28 images and labels, as .gz bytes with their md5s."""

    def __init__(self, n: int = 5, seed: int = 0, prefix: str = "t10k") -> None:
        rng = np.random.default_rng(seed)
        self.images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        self.labels = (np.arange(n) % 10).astype(np.uint8)
        self.files = {
            f"{prefix}-images-idx3-ubyte.gz": gz(idx_bytes(self.images)),
            f"{prefix}-labels-idx1-ubyte.gz": gz(idx_bytes(self.labels)),
        }
        self.checksums = {name: md5(data) for name, data in self.files.items()}

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in self.files.items():
            (folder / name).write_bytes(data)

    def check(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64
        assert images.shape == (len(self.labels), 784)
        np.testing.assert_array_equal(images.numpy(), self.images.reshape(-1, 784))
        np.testing.assert_array_equal(labels.numpy(), self.labels)


# ---------------------------------------------------------------------------------------------
# Loopback server


class Server:
    """Routes: path -> (kind, body). kinds: ok, truncate, nolength_truncate, status, slow,
    stall (half the body, then nothing until the server closes)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[str, object]] = {}
        self.requests: list[str] = []
        self.release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                owner.requests.append(self.path)
                kind, body = owner.routes.get(self.path, ("status", 404))
                if kind == "status":
                    self.send_error(int(body))
                    return
                if kind == "slow":
                    time.sleep(1.5)
                    kind = "ok"
                data = bytes(body)
                self.send_response(200)
                if kind != "nolength_truncate":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if kind == "ok":
                    self.wfile.write(data)
                elif kind == "stall":
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    owner.release.wait(30)
                else:  # send half the body, then close the connection
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def mirror(self, prefix: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{prefix}/"

    def serve(self, prefix: str, files: dict[str, bytes], kind: str = "ok") -> str:
        for name, data in files.items():
            self.routes[f"/{prefix}/{name}"] = (kind, data)
        return self.mirror(prefix)

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture
def refused_url() -> str:
    """A loopback URL where nothing listens: connection refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    """No test sees the caller's VAELAB_DATA_DIR or writes into the real home cache."""
    monkeypatch.delenv("VAELAB_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


@pytest.fixture
def not_writable(monkeypatch):
    """Make os.access report folders as not writable (tests run as root, chmod is ignored)."""
    real_access = os.access

    def fake_access(path, mode, *args, **kwargs):
        if mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", fake_access)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Listing with sizes and mtimes, plus the folder's own mtime (changes on create/delete)."""
    out = {name.name: (name.stat().st_size, name.stat().st_mtime_ns) for name in folder.iterdir()}
    out["."] = (0, folder.stat().st_mtime_ns)
    return out


def load(split: str, folder: Path, mirrors: list[str], syn: Synthetic, **kw):
    return load_mnist(split, folder, mirrors=mirrors, checksums=syn.checksums, progress=False,
                      **kw)


# ---------------------------------------------------------------------------------------------
# Constants and folder choice


def test_mirrors_follow_torchvision_order_and_md5_match_the_readme():
    assert mnist.MIRRORS[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert mnist.MIRRORS[1] == "http://yann.lecun.com/exdb/mnist/"
    assert MD5 == {
        TRAIN_IMAGES: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        TRAIN_LABELS: "d53e105ee54ea40749a09fcbcd1e9432",
        TEST_IMAGES: "9fb629c4189551a2d022fa330f9573f3",
        TEST_LABELS: "ec29112dd5afa0611ce80d1b7f02629c",
    }


def test_folder_order_argument_then_env_then_xdg_then_home(monkeypatch, tmp_path):
    assert mnist.resolve_data_dir() == tmp_path / "xdg" / "vaelab" / "mnist"
    monkeypatch.setenv("VAELAB_DATA_DIR", str(tmp_path / "env"))
    assert mnist.resolve_data_dir() == tmp_path / "env"
    assert mnist.resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.setenv("VAELAB_DATA_DIR", "")  # empty means unset
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert mnist.default_data_dir() == tmp_path / "home" / ".cache" / "vaelab" / "mnist"


# ---------------------------------------------------------------------------------------------
# Downloads


def test_download_success_then_cached_without_requests(server, tmp_path):
    syn = Synthetic()
    m1 = server.serve("m1", syn.files)
    folder = tmp_path / "new" / "cache"  # created on demand
    syn.check(*load("test", folder, [m1], syn))
    assert sorted(p.name for p in folder.iterdir()) == sorted(syn.files)  # no temp files left
    for name, data in syn.files.items():
        assert (folder / name).read_bytes() == data
    n = len(server.requests)
    syn.check(*load("test", folder, [m1], syn))
    assert len(server.requests) == n  # second load read the cache


def test_download_goes_to_env_folder_then_default_cache(server, tmp_path, monkeypatch):
    syn = Synthetic()
    m1 = server.serve("m1", syn.files)
    monkeypatch.setenv("VAELAB_DATA_DIR", str(tmp_path / "env"))
    load("test", None, [m1], syn)
    assert (tmp_path / "env" / TEST_IMAGES).is_file()
    monkeypatch.delenv("VAELAB_DATA_DIR")
    syn.check(*load_mnist("test", mirrors=[m1], checksums=syn.checksums, progress=True))
    assert (tmp_path / "xdg" / "vaelab" / "mnist" / TEST_LABELS).is_file()


@needs_real
def test_real_files_download_over_loopback_with_default_checksums(server, tmp_path):
    files = {name: (REAL_DIR / name).read_bytes() for name in (TEST_IMAGES, TEST_LABELS)}
    m1 = server.serve("mnist", files)
    images, labels = load_mnist("test", tmp_path / "dl", mirrors=[m1], progress=False)
    ref_images, ref_labels = load_mnist("test", REAL_DIR, download=False)
    assert torch.equal(images, ref_images) and torch.equal(labels, ref_labels)


def test_download_mnist_fetches_all_four(server, tmp_path):
    test, train = Synthetic(), Synthetic(n=3, seed=1, prefix="train")
    m1 = server.serve("m1", {**test.files, **train.files})
    folder = mnist.download_mnist(tmp_path / "all", mirrors=[m1],
                                  checksums={**test.checksums, **train.checksums},
                                  progress=False)
    assert sorted(p.name for p in folder.iterdir()) == sorted(MD5)
    train.check(*load_mnist("train", folder, download=False, checksums=train.checksums))


def test_checksum_mismatch_is_rejected_and_nothing_left(server, tmp_path):
    syn = Synthetic()
    bad = {name: data[:-1] + bytes([data[-1] ^ 0xFF]) for name, data in syn.files.items()}
    m1 = server.serve("m1", bad)
    folder = tmp_path / "cache"
    folder.mkdir()  # an existing cache folder keeps no partial file
    with pytest.raises(MnistNotFoundError, match="checksum mismatch"):
        load("test", folder, [m1], syn)
    assert list(folder.iterdir()) == []


def test_checksum_mismatch_moves_to_next_mirror(server, tmp_path):
    syn = Synthetic()
    bad = {name: b"not the file" for name in syn.files}
    m1, m2 = server.serve("m1", bad), server.serve("m2", syn.files)
    syn.check(*load("test", tmp_path / "c", [m1, m2], syn))
    assert server.requests == [f"/m1/{TEST_IMAGES}", f"/m2/{TEST_IMAGES}",
                               f"/m1/{TEST_LABELS}", f"/m2/{TEST_LABELS}"]


def test_truncated_transfer_is_rejected_and_nothing_left(server, tmp_path):
    syn = Synthetic()
    m1 = server.serve("m1", syn.files, kind="truncate")
    folder = tmp_path / "cache"
    folder.mkdir()  # an existing cache folder keeps no partial file
    with pytest.raises(MnistNotFoundError, match="truncated transfer"):
        load("test", folder, [m1], syn)
    assert list(folder.iterdir()) == []


def test_truncated_transfer_moves_to_next_mirror(server, tmp_path):
    syn = Synthetic()
    m1 = server.serve("m1", syn.files, kind="truncate")
    m2 = server.serve("m2", syn.files)
    folder = tmp_path / "cache"
    syn.check(*load("test", folder, [m1, m2], syn))
    assert sorted(p.name for p in folder.iterdir()) == sorted(syn.files)


def test_early_close_without_content_length_fails_the_checksum(server, tmp_path):
    syn = Synthetic()
    m1 = server.serve("m1", syn.files, kind="nolength_truncate")
    folder = tmp_path / "cache"
    folder.mkdir()  # an existing cache folder keeps no partial file
    with pytest.raises(MnistNotFoundError, match="checksum mismatch"):
        load("test", folder, [m1], syn)
    assert list(folder.iterdir()) == []


def test_first_mirror_404_so_second_is_used(server, tmp_path):
    syn = Synthetic()
    m1 = server.mirror("gone")  # no routes: 404
    m2 = server.serve("m2", syn.files)
    syn.check(*load("test", tmp_path / "c", [m1, m2], syn))
    assert server.requests[:2] == [f"/gone/{TEST_IMAGES}", f"/m2/{TEST_IMAGES}"]


def test_first_mirror_refused_so_second_is_used(server, refused_url, tmp_path):
    syn = Synthetic()
    m2 = server.serve("m2", syn.files)
    syn.check(*load("test", tmp_path / "c", [refused_url, m2], syn))
    assert server.requests == [f"/m2/{TEST_IMAGES}", f"/m2/{TEST_LABELS}"]


def test_timeout_moves_to_next_mirror(server, tmp_path):
    syn = Synthetic()
    m1 = server.serve("m1", syn.files, kind="slow")
    m2 = server.serve("m2", syn.files)
    syn.check(*load("test", tmp_path / "c", [m1, m2], syn, timeout=0.3))
    assert f"/m2/{TEST_IMAGES}" in server.requests


def test_corrupt_cached_file_is_detected_and_fetched_again(server, tmp_path):
    syn = Synthetic()
    folder = tmp_path / "cache"
    syn.write(folder)
    (folder / TEST_IMAGES).write_bytes(b"garbage of the wrong size")
    m1 = server.serve("m1", syn.files)
    syn.check(*load("test", folder, [m1], syn))
    assert server.requests == [f"/m1/{TEST_IMAGES}"]  # the valid labels file was kept
    assert (folder / TEST_IMAGES).read_bytes() == syn.files[TEST_IMAGES]
    assert sorted(p.name for p in folder.iterdir()) == sorted(syn.files)


def test_corrupt_cached_file_same_size_and_mtime_is_detected(server, tmp_path):
    syn = Synthetic()
    folder = tmp_path / "cache"
    syn.write(folder)
    m1 = server.serve("m1", syn.files)
    load("test", folder, [m1], syn)  # verified and remembered
    path = folder / TEST_IMAGES
    st_before = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tmp = folder / "rewrite"
    tmp.write_bytes(bytes(data))
    os.utime(tmp, ns=(st_before.st_atime_ns, st_before.st_mtime_ns))
    os.replace(tmp, path)  # same size and mtime, new inode
    syn.check(*load("test", folder, [m1], syn))
    assert server.requests == [f"/m1/{TEST_IMAGES}"]


# ---------------------------------------------------------------------------------------------
# Read-only folders: read in place, nothing written


def test_valid_folder_is_read_in_place_without_writes(refused_url, tmp_path):
    syn = Synthetic()
    folder = tmp_path / "ro"
    syn.write(folder)
    folder.chmod(0o555)
    try:
        before, parent_before = snapshot(folder), snapshot(tmp_path)
        syn.check(*load("test", folder, [refused_url], syn))
        syn.check(*load("test", folder, [refused_url], syn))
        assert snapshot(folder) == before and snapshot(tmp_path) == parent_before
    finally:
        folder.chmod(0o755)


@needs_real
def test_real_shared_folder_loads_in_place(refused_url):
    before = snapshot(REAL_DIR)
    train_x, train_y = load_mnist("train", REAL_DIR, mirrors=[refused_url], progress=False)
    test_x, test_y = load_mnist("test", REAL_DIR, mirrors=[refused_url], progress=False)
    assert snapshot(REAL_DIR) == before
    assert train_x.shape == (60000, 784) and test_x.shape == (10000, 784)
    assert train_x.dtype == test_x.dtype == torch.uint8
    assert train_y.dtype == test_y.dtype == torch.int64
    assert train_y.shape == (60000,) and test_y.shape == (10000,)
    assert int(train_x.min()) == 0 and int(train_x.max()) == 255
    assert abs(train_x.numpy().mean() / 255 - 0.1307) < 1e-3  # the usual MNIST mean
    assert torch.bincount(train_y).tolist() == [5923, 6742, 5958, 6131, 5842,
                                                5421, 5918, 6265, 5851, 5949]
    assert torch.bincount(test_y).tolist() == [980, 1135, 1032, 1010, 982,
                                               892, 958, 1028, 974, 1009]
    assert test_y[:5].tolist() == [7, 2, 1, 0, 4]


@needs_real
def test_env_var_points_at_real_folder(monkeypatch):
    monkeypatch.setenv("VAELAB_DATA_DIR", str(REAL_DIR))
    images, labels = load_mnist("test", download=False)
    assert images.shape == (10000, 784) and labels.shape == (10000,)


@needs_real
def test_cli_checks_existing_folder_without_writing(capsys):
    before = snapshot(REAL_DIR)
    assert mnist.main([str(REAL_DIR)]) == 0
    assert "MNIST files ready" in capsys.readouterr().out
    assert snapshot(REAL_DIR) == before


def test_corrupt_file_in_read_only_folder_is_a_clear_error(server, tmp_path, not_writable):
    syn = Synthetic()
    folder = tmp_path / "ro"
    syn.write(folder)
    (folder / TEST_LABELS).write_bytes(b"bad")
    m1 = server.serve("m1", syn.files)
    before = snapshot(folder)
    with pytest.raises(MnistCorruptFileError) as info:
        load("test", folder, [m1], syn)
    message = str(info.value)
    assert str(folder / TEST_LABELS) in message and syn.checksums[TEST_LABELS] in message
    assert "not writable" in message and "VAELAB_DATA_DIR" in message and "Delete it" in message
    assert server.requests == [] and snapshot(folder) == before


def test_corrupt_file_with_download_false_is_a_clear_error(tmp_path):
    syn = Synthetic()
    syn.write(tmp_path / "c")
    (tmp_path / "c" / TEST_IMAGES).write_bytes(b"bad")
    with pytest.raises(MnistCorruptFileError, match="download=False"):
        load("test", tmp_path / "c", [], syn, download=False)


def test_missing_files_in_read_only_folder_download_nothing(server, tmp_path, not_writable):
    syn = Synthetic()
    folder = tmp_path / "ro"
    folder.mkdir()
    m1 = server.serve("m1", syn.files)
    before = snapshot(folder)
    with pytest.raises(MnistNotFoundError, match="not writable"):
        load("test", folder, [m1], syn)
    assert server.requests == [] and snapshot(folder) == before


# ---------------------------------------------------------------------------------------------
# Interrupted and concurrent downloads, unusable folders

_DOWNLOAD = """
import json, sys
from vaelab.mnist import download_mnist
folder, mirror, checksums = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
download_mnist(folder, mirrors=[mirror], checksums=checksums, progress=False)
"""


def _default_signals() -> None:
    """In the child: SIGTERM and SIGHUP at their default action, as in a shell started from a
    terminal. A test run under ``nohup`` ignores SIGHUP, and the child would inherit that (the
    download rightly leaves an ignored signal ignored)."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def _start_download(folder: Path, mirror: str, syn: Synthetic) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _DOWNLOAD, str(folder), mirror,
                             json.dumps(syn.checksums)], preexec_fn=_default_signals,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _all_four(seed: int = 0) -> Synthetic:
    """Synthetic train and test files under the four real names (download_mnist wants all)."""
    syn = Synthetic(seed=seed)
    train = Synthetic(seed=seed + 1, prefix="train")
    syn.files.update(train.files)
    syn.checksums.update(train.checksums)
    return syn


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_download_killed_by_signal_leaves_no_temporary_file(server, tmp_path, signum):
    syn = _all_four()
    mirror = server.serve("m1", syn.files, kind="stall")
    folder = tmp_path / "dl"
    proc = _start_download(folder, mirror, syn)
    deadline = time.monotonic() + 30
    while not (folder.is_dir() and list(folder.glob(".*.part"))):  # mid-transfer
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the download never started"
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signum, err  # still ends by the signal, as its default does
    assert list(folder.iterdir()) == [], "a temporary file was left behind"


def test_stale_temporary_file_of_a_killed_run_is_removed_live_one_kept(server, tmp_path):
    syn = Synthetic()
    folder = tmp_path / "dl"
    folder.mkdir()
    stale = folder / f".{TEST_IMAGES}.killed.part"  # as a SIGKILLed run would leave it
    stale.write_bytes(b"partial")
    live = folder / f".{TEST_LABELS}.running.part"  # another run, still downloading
    live.write_bytes(b"partial")
    old = time.time() - 3600
    for part in (stale, live):
        os.utime(part, (old, old))
    m1 = server.serve("m1", syn.files)
    with open(live, "rb") as held:
        import fcntl

        fcntl.flock(held, fcntl.LOCK_EX)
        syn.check(*load("test", folder, [m1], syn))
    assert not stale.exists() and live.exists()


def test_two_downloads_at_once_both_succeed_and_leave_only_the_files(server, tmp_path):
    syn = _all_four()
    mirror = server.serve("m1", syn.files, kind="slow")
    folder = tmp_path / "dl"
    procs = [_start_download(folder, mirror, syn) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert sorted(p.name for p in folder.iterdir()) == sorted(MD5)
    assert all(md5((folder / name).read_bytes()) == syn.checksums[name] for name in MD5)


@pytest.mark.parametrize("under", ["afile/sub", "afile/sub/deeper", "afile"])
def test_folder_under_a_file_is_a_clear_error_before_any_request(server, tmp_path, monkeypatch,
                                                                 under):
    (tmp_path / "afile").write_text("not a folder")
    monkeypatch.setenv("VAELAB_DATA_DIR", str(tmp_path / under))
    syn = Synthetic()
    m1 = server.serve("m1", syn.files)
    with pytest.raises(MnistError, match="VAELAB_DATA_DIR") as info:
        load_mnist("test", mirrors=[m1], checksums=syn.checksums, progress=False)
    assert "is a file" in str(info.value) or "which is a file" in str(info.value)
    assert str(tmp_path / "afile") in str(info.value)
    assert server.requests == []


_LOAD = """
import sys
from vaelab.mnist import MnistError, load_mnist
try:
    load_mnist("test", sys.argv[1], mirrors=[sys.argv[2]], progress=False)
except MnistError as exc:
    print(type(exc).__name__, exc)
"""


def test_unreadable_data_file_is_a_clear_error(tmp_path, refused_url, unprivileged):
    syn = Synthetic()
    syn.write(tmp_path / "d")
    (tmp_path / "d" / TEST_IMAGES).chmod(0)
    out = subprocess.run([*unprivileged, sys.executable, "-c", _LOAD, str(tmp_path / "d"),
                          refused_url], capture_output=True, text=True, timeout=60)
    assert out.stderr == ""  # no traceback
    assert f"cannot read {tmp_path / 'd' / TEST_IMAGES} (Permission denied)" in out.stdout
    assert "chmod a+r" in out.stdout and "VAELAB_DATA_DIR" in out.stdout


@pytest.mark.parametrize("where", ["ro", "ro/missing/deeper"])
def test_read_only_or_missing_destination_is_a_clear_error(server, tmp_path, unprivileged,
                                                           where):
    syn = Synthetic()
    m1 = server.serve("m1", syn.files)
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    out = subprocess.run([*unprivileged, sys.executable, "-c", _LOAD, str(tmp_path / where),
                          m1], capture_output=True, text=True, timeout=60)
    assert out.stderr == ""
    assert out.stdout.startswith("MnistNotFoundError")
    assert "not writable, so nothing was downloaded" in out.stdout
    assert server.requests == [] and list((tmp_path / "ro").iterdir()) == []


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        (lambda d: (d / "afile").write_text("x") and str(d / "afile" / "sub"), "which is a file"),
        (lambda d: "", "data_dir must be a folder path"),
        (lambda d: str(d / "nothing-here"), "no mirror could provide"),
    ],
    ids=["under-a-file", "empty", "offline"],
)
def test_cli_errors_are_one_message_and_non_zero_status(tmp_path, refused_url,
                                                        setup, match):
    code = ("import sys, vaelab.mnist as m; m.MIRRORS = (sys.argv[2],); "
            "sys.exit(m.main([sys.argv[1]]))")
    out = subprocess.run([sys.executable, "-c", code, setup(tmp_path), refused_url],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and match in out.stderr
    assert "Traceback" not in out.stderr


# ---------------------------------------------------------------------------------------------
# Offline


def test_offline_message_names_files_checksums_folder_variable_and_mirrors(tmp_path, server,
                                                                          refused_url):
    folder = tmp_path / "empty"
    mirrors = [refused_url, server.mirror("nothing")]
    with pytest.raises(MnistNotFoundError) as info:
        load_mnist("train", folder, mirrors=mirrors, progress=False)
    assert isinstance(info.value, RuntimeError)
    message = str(info.value)
    for name, checksum in MD5.items():
        assert name in message and checksum in message
    assert str(folder) in message and "VAELAB_DATA_DIR" in message
    for m in mirrors:
        assert m + TRAIN_IMAGES in message
    assert "HTTP 404" in message and "cannot connect" in message
    assert not folder.exists()  # the folder it created for the download is removed again


def test_offline_message_from_env_folder(tmp_path, monkeypatch, refused_url):
    monkeypatch.setenv("VAELAB_DATA_DIR", str(tmp_path / "envdir"))
    with pytest.raises(MnistNotFoundError, match="from the environment variable VAELAB_DATA_DIR"):
        load_mnist("test", mirrors=[refused_url], progress=False)


def test_download_false_with_missing_files_makes_no_request(server, tmp_path):
    syn = Synthetic()
    m1 = server.serve("m1", syn.files)
    with pytest.raises(MnistNotFoundError, match="download=False") as info:
        load("test", tmp_path / "none", [m1], syn, download=False)
    assert server.requests == [] and not (tmp_path / "none").exists()
    assert all(name in str(info.value) for name in MD5)


# ---------------------------------------------------------------------------------------------
# IDX parsing


def test_parse_idx_round_trip():
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(parse_idx(idx_bytes(arr), IMAGE_MAGIC), arr)
    labels = np.array([3, 1, 4], dtype=np.uint8)
    np.testing.assert_array_equal(parse_idx(idx_bytes(labels), LABEL_MAGIC), labels)


@pytest.mark.parametrize(
    ("data", "expected", "match"),
    [
        (idx_bytes(np.zeros(3, np.uint8)), IMAGE_MAGIC, "bad magic number 2049"),
        (idx_bytes(np.zeros((1, 2, 2), np.uint8)), LABEL_MAGIC, "bad magic number 2051"),
        (b"\x01\x00\x08\x01" + (1).to_bytes(4, "big") + b"\x00", None, "two zero bytes"),
        (b"\x00\x00\x0d\x01" + (1).to_bytes(4, "big") + b"\x00" * 4, None, "not unsigned byte"),
        (b"\x00\x00\x08\x00", None, "0 dimensions"),
        (b"\x00\x00", None, "too short"),
        (b"\x00\x00\x08\x03" + (1).to_bytes(4, "big"), None, "header needs 16 bytes"),
        (idx_bytes(np.zeros((2, 2, 2), np.uint8))[:-1], IMAGE_MAGIC, "found 7 .*truncated"),
        (idx_bytes(np.zeros((2, 2, 2), np.uint8)) + b"\x00", IMAGE_MAGIC, "trailing bytes"),
    ],
)
def test_parse_idx_rejects_malformed_data(data, expected, match):
    with pytest.raises(IdxFormatError, match=match):
        parse_idx(data, expected)


@settings(max_examples=50, deadline=None)
@given(shape=st.lists(st.integers(0, 5), min_size=1, max_size=3), data=st.data())
def test_parse_idx_round_trips_and_rejects_every_truncation(shape, data):
    arr = np.arange(int(np.prod(shape)), dtype=np.int64).astype(np.uint8).reshape(shape)
    raw = idx_bytes(arr)
    np.testing.assert_array_equal(parse_idx(raw), arr)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(IdxFormatError):
        parse_idx(raw[:cut])


def test_read_idx_gz_rejects_non_gzip_and_returns_writable(tmp_path):
    (tmp_path / "x.gz").write_bytes(b"plain bytes, not gzip")
    with pytest.raises(IdxFormatError, match="not a valid gzip"):
        read_idx_gz(tmp_path / "x.gz")
    (tmp_path / "y.gz").write_bytes(gz(idx_bytes(np.ones((2, 2), np.uint8)))[:-6])
    with pytest.raises(IdxFormatError, match="not a valid gzip"):
        read_idx_gz(tmp_path / "y.gz")
    (tmp_path / "z.gz").write_bytes(gz(idx_bytes(np.ones((2, 2), np.uint8))))
    assert read_idx_gz(tmp_path / "z.gz").flags.writeable


@pytest.mark.parametrize(
    ("images", "labels", "match"),
    [
        (np.zeros((5, 28, 28)), np.zeros(4), "5 images but .* 4 labels"),
        (np.zeros((5, 27, 27)), np.zeros(5), "27x27"),
        (np.zeros((2, 28, 28)), np.array([1, 10]), "label 10"),
        (np.zeros(5), np.zeros(5), "bad magic number 2049"),
    ],
)
def test_load_mnist_rejects_inconsistent_files(tmp_path, images, labels, match):
    files = {TEST_IMAGES: gz(idx_bytes(images)), TEST_LABELS: gz(idx_bytes(labels))}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    with pytest.raises(IdxFormatError, match=match):
        load_mnist("test", tmp_path, download=False,
                   checksums={name: md5(data) for name, data in files.items()})


# ---------------------------------------------------------------------------------------------
# Tensor helpers


def test_to_unit_float_range_and_dtype():
    x = torch.tensor([[0, 51, 255]], dtype=torch.uint8)
    y = to_unit_float(x)
    assert y.dtype == torch.float32
    assert torch.allclose(y, torch.tensor([[0.0, 0.2, 1.0]]))
    assert x.tolist() == [[0, 51, 255]]  # input untouched
    with pytest.raises(ValueError, match="uint8"):
        to_unit_float(y)
    with pytest.raises(ValueError, match="uint8"):
        to_unit_float(np.zeros((1, 784), np.uint8))


def test_binarized_test_set_is_fixed_by_seed(tmp_path):
    syn = Synthetic(n=50)
    syn.write(tmp_path)
    kw = {"checksums": syn.checksums, "download": False}
    a, labels = binarized_test_set(0, tmp_path, **kw)
    b, _ = binarized_test_set(0, tmp_path, **kw)
    c, _ = binarized_test_set(1, tmp_path, **kw)
    assert a.dtype == torch.float32 and a.shape == (50, 784)
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(a, b) and not torch.equal(a, c)
    np.testing.assert_array_equal(labels.numpy(), syn.labels)
    # Pixel 255 is always on, pixel 0 always off.
    flat = syn.images.reshape(50, 784)
    assert torch.all(a[torch.from_numpy(flat == 255)] == 1)
    assert torch.all(a[torch.from_numpy(flat == 0)] == 0)


@needs_real
def test_binarized_real_test_set():
    x, y = binarized_test_set(0, REAL_DIR, download=False)
    assert x.shape == (10000, 784) and x.dtype == torch.float32 and y.shape == (10000,)
    assert abs(x.mean().item() - 0.1325) < 2e-3
    assert torch.equal(x, binarized_test_set(0, REAL_DIR, download=False)[0])


# ---------------------------------------------------------------------------------------------
# Argument validation


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"split": "validation"}, "split must be 'train' or 'test'"),
        ({"split": None}, "split must be"),
        ({"mirrors": [3]}, "mirrors must be"),
        ({"checksums": {"other.gz": "0"}}, "unknown file names"),
        ({"timeout": 0}, "timeout must be a positive"),
        ({"data_dir": ""}, "data_dir must be a folder"),
    ],
)
def test_load_mnist_validates_arguments(kwargs, match, tmp_path):
    kwargs = {"data_dir": tmp_path, **kwargs}
    with pytest.raises(ValueError, match=match):
        load_mnist(**kwargs)


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_binarized_test_set_validates_seed(seed):
    with pytest.raises(ValueError, match="seed must be"):
        binarized_test_set(seed)


def test_folder_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(mnist.MnistError, match="not a folder"):
        load_mnist("test", tmp_path / "f", download=False)



@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        # "no" counted as True and downloaded.
        (lambda f, m: load_mnist("test", f, download="no", mirrors=[m], progress=False),
         TypeError, "download must be True or False"),
        (lambda f, m: load_mnist("test", f, mirrors=[m], progress="no"), TypeError,
         "progress must be True or False"),
        # A malformed md5 made every good file "corrupt", to be downloaded over.
        (lambda f, m: load_mnist("test", f, mirrors=[m], checksums={TEST_IMAGES: 5}),
         ValueError, "must be an md5: 32 hexadecimal digits"),
        (lambda f, m: binarized_test_set(2**70, f, mirrors=[m]), ValueError, "below 2\\*\\*64"),
        (lambda f, m: binarized_test_set(True, f, mirrors=[m]), TypeError, "seed must be"),
        (lambda f, m: parse_idx("abc"), TypeError, "needs the file's bytes"),
    ],
)
def test_arguments_are_checked_before_any_request(server, tmp_path, call, error, message):
    syn = Synthetic()
    syn.write(tmp_path / "d")
    m1 = server.serve("m1", syn.files)
    before = snapshot(tmp_path / "d")
    with pytest.raises(error, match=message):
        call(tmp_path / "d", m1)
    assert server.requests == [] and snapshot(tmp_path / "d") == before
