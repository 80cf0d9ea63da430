"""MNIST: find or download the four original files, check them, parse IDX into torch tensors.

Where the files live (first match wins): the ``data_dir`` argument, the environment variable
``VAELAB_DATA_DIR``, else a per-user cache, ``$XDG_CACHE_HOME/vaelab/mnist`` (that is
``~/.cache/vaelab/mnist`` when ``XDG_CACHE_HOME`` is unset).

- A folder that already holds valid files is read in place and nothing is written to it
  (CI points ``VAELAB_DATA_DIR`` at a read-only copy).
- A missing file is downloaded from ``MIRRORS`` in order, checked against its md5 in ``MD5``
  and moved into place atomically (temporary file in the same folder, then ``os.replace``).
  Any failure (HTTP error, timeout, truncated transfer, checksum mismatch) moves on to the
  next mirror, so a partial or corrupt file is never left behind or used. The temporary file
  has a unique name (two runs at once each write their own) and is removed on any exit:
  errors, Ctrl-C, and SIGTERM or SIGHUP, which raise during a download instead of killing
  the process at once, then end it as before. A temporary file a killed run (SIGKILL, power
  loss) left behind is removed by the next download, once no process holds its lock.
- A folder that cannot be used (under a file, files without read permission, not writable
  when something must be downloaded) stops the call with ``MnistError`` before any download.
- The ``.gz`` files are read directly; the IDX parser checks magic numbers and sizes.

``python -m vaelab.mnist [FOLDER]`` downloads and checks the four files ahead of time.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import http.client
import logging
import os
import re
import signal
import stat
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so stale temporary files are not swept
    fcntl = None  # type: ignore[assignment]

from vaelab.binarization import binarize
from vaelab.files import OutputPathError, atomic_write, check_output_dir
from vaelab.progress import progress_bar
from vaelab.validation import InputTypeError, require_int, require_positive

__all__ = [
    "ENV_VAR",
    "IMAGE_MAGIC",
    "LABEL_MAGIC",
    "MD5",
    "MIRRORS",
    "SPLIT_FILES",
    "IdxFormatError",
    "MnistCorruptFileError",
    "MnistError",
    "MnistNotFoundError",
    "binarized_test_set",
    "default_data_dir",
    "download_mnist",
    "load_mnist",
    "parse_idx",
    "read_idx_gz",
    "resolve_data_dir",
    "to_unit_float",
]

_log = logging.getLogger(__name__)

ENV_VAR = "VAELAB_DATA_DIR"

# torchvision's mirror list in its current order: the PyTorch CI mirror first, then the
# original site (which has often answered 403 to scripts since 2024). Tests pass their own
# list through the ``mirrors`` argument of the functions below.
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# md5 of each .gz exactly as the mirrors serve it (../shared/data/README.md, torchvision).
MD5: Mapping[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

# split -> (images file, labels file)
SPLIT_FILES: Mapping[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

IMAGE_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (N, rows, cols)
LABEL_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (N,)
IMAGE_SIDE = 28
N_CLASSES = 10
DOWNLOAD_TIMEOUT_S = 30.0

_CHUNK = 1 << 16
# A temporary file untouched this long and not locked by a live download is a killed run's.
_STALE_PART_S = 60.0
_USER_AGENT = "vaelab-mnist/0.1 (+python urllib)"
_IDX_UBYTE = 0x08


class MnistError(RuntimeError):
    """Base class for every MNIST data problem raised by this module."""


class MnistNotFoundError(MnistError):
    """The MNIST files are missing and could not be downloaded (offline, read-only, ...)."""


class MnistCorruptFileError(MnistError):
    """A cached file fails its md5 check and cannot be replaced (read-only folder, no download)."""


class IdxFormatError(MnistError, ValueError):
    """Bytes that are not a well-formed IDX file (bad magic number, sizes that do not match)."""


# ---------------------------------------------------------------------------------------------
# Folder resolution


def default_data_dir() -> Path:
    """The per-user cache folder: ``$XDG_CACHE_HOME/vaelab/mnist`` or ``~/.cache/vaelab/mnist``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "vaelab" / "mnist"


def _resolve(data_dir: str | os.PathLike[str] | None) -> tuple[Path, str]:
    """Folder to use and a few words saying where that choice came from (for messages)."""
    if data_dir is not None:
        if not isinstance(data_dir, str | os.PathLike) or not str(data_dir).strip():
            raise ValueError(f"data_dir must be a folder path (str or Path), got {data_dir!r}")
        return Path(data_dir).expanduser(), "the data_dir argument"
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser(), f"the environment variable {ENV_VAR}"
    return default_data_dir(), f"the default per-user cache; {ENV_VAR} is not set"


def _check_folder(folder: Path, source: str) -> None:
    """Raise ``MnistError`` if ``folder`` is a file or lies under one, or cannot be looked into."""
    for probe in (folder, *folder.parents):
        try:
            if not probe.exists():
                continue
        except OSError as exc:
            raise MnistError(f"cannot look into {probe.parent} ({exc.strerror}) to find the "
                             f"MNIST folder {folder} (from {source}); give your user access "
                             f"to it or set {ENV_VAR} to another folder") from None
        if probe.is_dir():
            return
        where = "is a file" if probe == folder else f"is under {probe}, which is a file"
        raise MnistError(f"the MNIST folder {folder} (from {source}) {where}, not a folder; "
                         f"point {ENV_VAR} (or data_dir) at the folder that holds the MNIST "
                         ".gz files, or at a new folder to download them into")


def _readable_md5(path: Path) -> str | None:
    """``_md5_of`` with a clear ``MnistError`` for a file that cannot be read."""
    try:
        return _md5_of(path)
    except MnistError:
        raise
    except OSError as exc:
        raise MnistError(f"cannot read {path} ({exc.strerror}); give your user read "
                         f"permission (chmod a+r {path}) or set {ENV_VAR} to a folder whose "
                         "files you can read") from None


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder ``load_mnist`` reads: ``data_dir``, else ``$VAELAB_DATA_DIR``, else the cache."""
    return _resolve(data_dir)[0]


# ---------------------------------------------------------------------------------------------
# Checksums (the result is remembered per process, keyed by the file's identity on disk)

_MD5_SEEN: dict[tuple[str, int, int, int], str] = {}


def _stat_key(path: Path) -> tuple[str, int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise MnistError(f"{path} exists but is not a regular file; remove it or choose another "
                         f"folder with {ENV_VAR}")
    # A replaced or rewritten file gets a new inode, size or mtime, so it is hashed again.
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)


def _md5_of(path: Path) -> str | None:
    """md5 hex digest of ``path`` (None if it does not exist), computed once per file version."""
    key = _stat_key(path)
    if key is None:
        return None
    digest = _MD5_SEEN.get(key)
    if digest is None:
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "md5").hexdigest()
        _MD5_SEEN[key] = digest
    return digest


def _remember(path: Path, digest: str) -> None:
    key = _stat_key(path)
    if key is not None:
        _MD5_SEEN[key] = digest


# ---------------------------------------------------------------------------------------------
# Download


class _MirrorFailure(Exception):
    """One mirror gave a bad file (truncated, wrong checksum); the next one is tried."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect ({exc.reason})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, _MirrorFailure) else f"{type(exc).__name__}: {text}"


class _Signalled(BaseException):
    """SIGTERM or SIGHUP arrived during a download (BaseException: no handler swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


def _raise_signalled(signum: int, frame: object) -> None:
    raise _Signalled(signum)


@contextlib.contextmanager
def _signals_unwind():
    """Make SIGTERM and SIGHUP unwind the stack (so ``finally`` removes temporary files), then
    end the process by the same signal as its default action would have.

    Only signals left at their default action are taken over (a caller's own handler stays in
    charge), and only in the main thread, the one Python delivers signals to.
    """
    taken: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGHUP"):
            signum = getattr(signal, name, None)
            if signum is not None and signal.getsignal(signum) == signal.SIG_DFL:
                taken[signum] = signal.signal(signum, _raise_signalled)
    try:
        yield
    except _Signalled as exc:
        for signum, old in taken.items():
            signal.signal(signum, old)
        taken.clear()
        signal.raise_signal(exc.signum)  # default action: the process ends here
        raise
    finally:
        for signum, old in taken.items():
            signal.signal(signum, old)


def _sweep_stale_parts(folder: Path, name: str) -> None:
    """Remove temporary files of ``name`` that a killed download left (no live lock, old)."""
    if fcntl is None:
        return
    for part in folder.glob(f".{name}.*.part"):
        try:
            if time.time() - part.stat().st_mtime < _STALE_PART_S:
                continue  # perhaps a download that has only just created it
            with open(part, "rb") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails while its owner lives
                part.unlink()
        except OSError:
            continue


def _fetch(url: str, folder: Path, name: str, md5: str, timeout: float, progress: bool) -> str:
    """Download ``url`` to ``folder/name`` atomically; return its md5 or raise on any failure."""
    digest = hashlib.md5()
    received = 0
    # The lock on the temporary file says "still alive" to _sweep_stale_parts.
    with atomic_write(folder / name, suffix=".part", lock=True) as out:
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            header = response.headers.get("Content-Length", "")
            expected = int(header) if header.strip().isdigit() else None
            with progress_bar(enabled=progress, total=expected, desc=name, unit="B",
                              unit_scale=True, unit_divisor=1024, leave=False) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        # http.client returns b"" (no error) when a server closes early, so count bytes.
        if expected is not None and received != expected:
            raise _MirrorFailure(f"truncated transfer: received {received} of {expected} bytes")
        got = digest.hexdigest()
        if got != md5:
            raise _MirrorFailure(f"checksum mismatch: md5 {got}, expected {md5}")
    return got


def _writable(folder: Path) -> bool:
    """True if files can be created in ``folder`` (or in the nearest existing parent)."""
    try:
        check_output_dir(folder)
    except OutputPathError:
        return False
    return True


def _url(mirror: str, name: str) -> str:
    return mirror if mirror.endswith(name) else mirror.rstrip("/") + "/" + name


def _file_table(folder: Path, checksums: Mapping[str, str]) -> str:
    lines = []
    for name in MD5:
        md5 = checksums[name]
        try:
            got = _md5_of(folder / name)
        except OSError:
            got = None
        state = "missing" if got is None else ("ok" if got == md5 else f"corrupt, md5 {got}")
        lines.append(f"    {name:<28} md5 {md5}   ({state})")
    return "\n".join(lines)


def _unavailable(
    folder: Path,
    source: str,
    checksums: Mapping[str, str],
    name: str,
    reason: str,
    failures: Sequence[tuple[str, str]],
    mirrors: Sequence[str],
) -> MnistNotFoundError:
    if failures:
        tried = "\n".join(f"    {url}: {why}" for url, why in failures)
    else:
        tried = "    none (" + ("no mirrors given" if not mirrors else reason) + ")"
    return MnistNotFoundError(
        f"MNIST file {name} is not available: {reason}.\n"
        f"Folder searched: {folder} (from {source})\n"
        f"Mirrors tried:\n{tried}\n"
        "To use MNIST offline, put these four files (the original .gz files, unchanged; "
        "md5 checksums below) in one folder:\n"
        f"{_file_table(folder, checksums)}\n"
        f"then set the environment variable {ENV_VAR} to that folder (or pass data_dir=...), "
        f"or copy them into {folder}.\n"
        "On a machine with internet access, `python -m vaelab.mnist FOLDER` downloads and "
        f"checks them; the mirrors are {', '.join(mirrors) or MIRRORS[0]}."
    )


def _ensure(
    names: Sequence[str],
    data_dir: str | os.PathLike[str] | None,
    *,
    download: bool,
    mirrors: Sequence[str],
    checksums: Mapping[str, str],
    timeout: float,
    progress: bool,
) -> list[Path]:
    """Paths of valid copies of ``names``, downloading what is missing or corrupt if allowed.

    Every file is checked before anything is downloaded, so an unusable folder (under a file,
    unreadable files, not writable) is reported before any work.
    """
    folder, source = _resolve(data_dir)
    _check_folder(folder, source)
    actual = {name: _readable_md5(folder / name) for name in names}
    needed = [name for name in names if actual[name] != checksums[name]]
    if not needed:
        return [folder / name for name in names]  # valid: read in place, nothing written
    writable = _writable(folder)
    for name in needed:
        path, expected = folder / name, checksums[name]
        if actual[name] is not None and not (download and writable):
            why = "the folder is not writable" if not writable else "download=False"
            raise MnistCorruptFileError(
                f"{path} is corrupt: md5 {actual[name]}, expected {expected}. It cannot be "
                f"replaced here ({why}). Delete it and load again with download=True in a "
                f"writable folder, or copy a good {name} (md5 {expected}) there, or set "
                f"{ENV_VAR} to a folder that holds valid files.")
    name = needed[0]
    if not download:
        raise _unavailable(folder, source, checksums, name,
                           "it is missing and download=False", [], mirrors)
    if not writable:
        raise _unavailable(folder, source, checksums, name,
                           "it is missing and the folder is not writable, so nothing was "
                           "downloaded", [], mirrors)
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unavailable(folder, source, checksums, name,
                           f"the folder cannot be created ({exc})", [], mirrors) from exc
    placed = False
    try:
        with _signals_unwind():
            for name in needed:
                _download_one(folder, source, name, actual[name], checksums, mirrors,
                              timeout, progress)
                placed = True
    finally:
        if not placed:  # leave no empty folders behind (rmdir refuses non-empty ones)
            for empty in created:
                with contextlib.suppress(OSError):
                    empty.rmdir()
    return [folder / name for name in names]


def _download_one(
    folder: Path,
    source: str,
    name: str,
    actual: str | None,
    checksums: Mapping[str, str],
    mirrors: Sequence[str],
    timeout: float,
    progress: bool,
) -> None:
    """Put a valid copy of ``name`` into ``folder`` from the first mirror that gives one."""
    path, expected = folder / name, checksums[name]
    if actual is not None:
        _log.warning("%s is corrupt (md5 %s, expected %s); downloading a fresh copy",
                     path, actual, expected)
    _sweep_stale_parts(folder, name)
    failures: list[tuple[str, str]] = []
    for i, mirror in enumerate(mirrors):
        url = _url(mirror, name)
        try:
            digest = _fetch(url, folder, name, expected, timeout, progress)
        except (_MirrorFailure, OSError, http.client.HTTPException, ValueError) as exc:
            if isinstance(exc, urllib.error.HTTPError):
                exc.close()  # release the error response's connection
            failures.append((url, _describe(exc)))
            if i + 1 < len(mirrors):  # the last failure is reported by the error below
                _log.warning("MNIST download from %s failed (%s); trying the next mirror",
                             url, failures[-1][1])
            continue
        _remember(path, digest)
        return
    raise _unavailable(folder, source, checksums, name,
                       "no mirror could provide a valid copy", failures, mirrors)


def _check_mirrors(mirrors: Sequence[str] | str | None) -> tuple[str, ...]:
    if mirrors is None:
        return MIRRORS
    if isinstance(mirrors, str):
        mirrors = (mirrors,)
    out = tuple(mirrors)
    if not all(isinstance(m, str) and m.strip() for m in out):
        raise ValueError(f"mirrors must be a sequence of base URLs (str), got {mirrors!r}")
    return out


def _check_checksums(checksums: Mapping[str, str] | None) -> dict[str, str]:
    merged = dict(MD5)
    if checksums is not None:
        unknown = set(checksums) - set(MD5)
        if unknown:
            raise ValueError(f"checksums has unknown file names {sorted(unknown)}; "
                             f"use names from {list(MD5)}")
        for name, value in checksums.items():
            # A malformed md5 matches no file: every valid copy would count as corrupt and
            # be downloaded again over the good one.
            if not (isinstance(value, str) and re.fullmatch(r"[0-9a-fA-F]{32}", value)):
                raise ValueError(f"checksums[{name!r}] must be an md5: 32 hexadecimal digits, "
                                 f"got {value!r}")
            merged[name] = value.lower()
    return merged


def download_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    checksums: Mapping[str, str] | None = None,
    timeout: float = DOWNLOAD_TIMEOUT_S,
    progress: bool = True,
) -> Path:
    """Make sure the four MNIST files are in the folder (downloading if needed); return it."""
    timeout = require_positive(timeout, "timeout")
    _ensure(list(MD5), data_dir, download=True, mirrors=_check_mirrors(mirrors),
            checksums=_check_checksums(checksums), timeout=timeout, progress=progress)
    return resolve_data_dir(data_dir)


# ---------------------------------------------------------------------------------------------
# IDX parsing


def parse_idx(
    data: bytes | bytearray | memoryview, expected_magic: int | None = None, source: str = "data"
) -> np.ndarray:
    """Parse uncompressed IDX bytes into a uint8 array of the header's shape.

    Checks the magic number (``expected_magic``, e.g. 2051 images or 2049 labels), that the
    element type is unsigned byte, and that the payload length equals the product of the
    header dimensions. Raises ``IdxFormatError`` (a ``ValueError``) naming ``source``.
    The result shares memory with ``data`` (read-only when ``data`` is ``bytes``).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InputTypeError(f"{source}: parse_idx needs the file's bytes (bytes, bytearray or "
                             f"memoryview), got {type(data).__name__}")
    buf = memoryview(data).cast("B")
    if len(buf) < 4:
        raise IdxFormatError(f"{source}: only {len(buf)} bytes, too short for an IDX header")
    magic = int.from_bytes(buf[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise IdxFormatError(
            f"{source}: bad magic number {magic} (expected {expected_magic}: "
            f"{'images' if expected_magic == IMAGE_MAGIC else 'labels'}); the file is "
            "corrupt or is not an MNIST IDX file")
    if buf[0] != 0 or buf[1] != 0:
        raise IdxFormatError(f"{source}: bad magic number {magic}; an IDX file starts with "
                             "two zero bytes")
    if buf[2] != _IDX_UBYTE:
        raise IdxFormatError(f"{source}: element type 0x{buf[2]:02x} is not unsigned byte "
                             "(0x08), the only type MNIST uses")
    ndim = buf[3]
    if ndim == 0:
        raise IdxFormatError(f"{source}: header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise IdxFormatError(f"{source}: header needs {header} bytes for {ndim} dimensions, "
                             f"the data has {len(buf)}")
    shape = tuple(int.from_bytes(buf[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(shape, dtype=np.int64))
    payload = len(buf) - header
    if payload != count:
        raise IdxFormatError(
            f"{source}: header shape {shape} needs {count} bytes of data, found {payload} "
            f"({'truncated' if payload < count else 'trailing bytes'})")
    return np.frombuffer(buf, dtype=np.uint8, offset=header).reshape(shape)


def read_idx_gz(path: str | os.PathLike[str], expected_magic: int | None = None) -> np.ndarray:
    """Read a gzip-compressed IDX file into a writable uint8 array (see ``parse_idx``)."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes())
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise IdxFormatError(
            f"{path}: not a valid gzip file ({exc}); delete it and load again to download a "
            "fresh copy") from exc
    # bytearray makes the array writable, so torch.from_numpy neither copies nor warns.
    return parse_idx(bytearray(raw), expected_magic, source=str(path))


# ---------------------------------------------------------------------------------------------
# Public loaders and helpers


def _check_split(split: str) -> str:
    if not isinstance(split, str) or split not in SPLIT_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split


def load_mnist(
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    *,
    mirrors: Sequence[str] | None = None,
    checksums: Mapping[str, str] | None = None,
    timeout: float = DOWNLOAD_TIMEOUT_S,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One MNIST split as tensors: images uint8 (N, 784), labels int64 (N,).

    ``split`` is "train" (N = 60000) or "test" (N = 10000). Folder: ``data_dir``, else
    ``$VAELAB_DATA_DIR``, else ``default_data_dir()``. Missing files are downloaded when
    ``download`` is true (from ``mirrors``, default ``MIRRORS``; ``checksums`` overrides
    entries of ``MD5``, for tests). Raises ``MnistNotFoundError`` when the files are
    missing and cannot be fetched, ``MnistCorruptFileError`` for a bad file that cannot be
    replaced and ``IdxFormatError`` for malformed contents.
    """
    split = _check_split(split)
    timeout = require_positive(timeout, "timeout")
    # "no" or 0.0 would count as True and False: a bool only.
    for name, flag in (("download", download), ("progress", progress)):
        if not isinstance(flag, bool | np.bool_):
            raise InputTypeError(f"{name} must be True or False, got {flag!r}")
    img_path, lab_path = _ensure(
        SPLIT_FILES[split], data_dir, download=bool(download), mirrors=_check_mirrors(mirrors),
        checksums=_check_checksums(checksums), timeout=timeout, progress=progress)
    images = read_idx_gz(img_path, IMAGE_MAGIC)
    labels = read_idx_gz(lab_path, LABEL_MAGIC)
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise IdxFormatError(f"{img_path}: images are {images.shape[1]}x{images.shape[2]}, "
                             f"MNIST images are {IMAGE_SIDE}x{IMAGE_SIDE}")
    if images.shape[0] != labels.shape[0]:
        raise IdxFormatError(f"{img_path} holds {images.shape[0]} images but {lab_path} holds "
                             f"{labels.shape[0]} labels; one of them is corrupt")
    if labels.size and int(labels.max()) >= N_CLASSES:
        raise IdxFormatError(f"{lab_path}: label {int(labels.max())} is not a digit 0-9")
    return (torch.from_numpy(images.reshape(images.shape[0], IMAGE_SIDE * IMAGE_SIDE)),
            torch.from_numpy(labels.astype(np.int64)))


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 784) -> float32 (N, 784) in [0, 1] (pixel / 255)."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        got = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"to_unit_float expects a torch.uint8 tensor of images (N, 784) as "
                         f"load_mnist returns, got {got}")
    return images.to(torch.float32).div_(255.0)


def binarized_test_set(
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    checksums: Mapping[str, str] | None = None,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The test split binarized once with ``seed``: float32 (10000, 784) in {0, 1}, int64 (N,).

    The same seed gives an identical tensor, so test-set likelihoods are comparable across runs.
    """
    seed = require_int(seed, "seed", 0)
    if seed >= 2**64:  # torch.Generator's limit
        raise ValueError(f"seed must be below 2**64, got {seed}; use a smaller seed")
    images, labels = load_mnist("test", data_dir, download, mirrors=mirrors,
                                checksums=checksums, progress=progress)
    generator = torch.Generator().manual_seed(int(seed))
    return binarize(images, generator=generator), labels


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vaelab.mnist [FOLDER]``: download and check the four files."""
    parser = argparse.ArgumentParser(
        prog="python -m vaelab.mnist",
        description="Download the four MNIST .gz files (if missing) and check their md5.")
    parser.add_argument("folder", nargs="?", default=None,
                        help=f"target folder (default: ${ENV_VAR}, else {default_data_dir()})")
    args = parser.parse_args(argv)
    try:
        folder = download_mnist(args.folder)
    except (MnistError, ValueError, OSError) as exc:  # a message, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; nothing partial was left behind, run again to resume",
              file=sys.stderr)
        return 130
    print(f"MNIST files ready in {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
