"""Writing files safely, once for the package: checkpoints, the MNIST cache and the commands.

- ``check_output_dir`` / ``check_output_file``: is this a place this user can write to? Asked
  before any work starts, so a command never trains or executes for minutes and then fails
  to save. Both raise ``OutputPathError`` naming the path and what to do.
- ``check_destinations``: the same for all the files a command will write, and none of them
  one of the command's own inputs. Every command calls it before its work starts.
- ``atomic_write``: write through a unique temporary file in the destination's folder, then
  ``os.replace`` it into place. Readers see the old file or the whole new one, never half a
  file; on any failure (a full disk, Ctrl-C, an exception in the caller's block) the
  temporary file is removed and the old file is untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # Windows: no advisory locks
    fcntl = None  # type: ignore[assignment]


class OutputPathError(ValueError):
    """A destination that cannot be written (checked before any work); the message says why."""


def _nearest_existing(path: Path, hint: str) -> Path:
    """``path`` or its closest existing parent; ``OutputPathError`` if one on the way is a file."""
    for probe in (path, *path.parents):
        try:
            exists = probe.exists()
        except OSError as exc:
            raise OutputPathError(f"{path}: cannot look into {probe.parent} "
                                  f"({exc.strerror}); {hint}") from None
        if exists:
            if not probe.is_dir() and probe != path:
                raise OutputPathError(f"{path}: {probe} is a file, so no folder can be made "
                                      f"under it; {hint}")
            return probe
    return Path(path.anchor or ".")


def check_output_dir(path: str | os.PathLike[str], hint: str = "choose another folder"
                     ) -> Path:
    """``path`` if it is (or can be made as) a folder this user can write files in.

    Raises ``OutputPathError`` saying why not (it is a file, it lies under a file, or the
    folder, or the existing parent it would be made in, is not writable), ending with
    ``hint``: what the caller's user should do. Creates nothing.
    """
    folder = Path(path)
    base = _nearest_existing(folder, hint)
    if base == folder and not folder.is_dir():
        raise OutputPathError(f"{folder} is a file, not a folder; {hint}")
    if not os.access(base, os.W_OK | os.X_OK):
        what = "folder" if base == folder else f"folder {base}, where it would be made,"
        raise OutputPathError(f"{folder}: the {what} is not writable; {hint}")
    return folder


def check_output_file(path: str | os.PathLike[str], hint: str = "choose another path") -> Path:
    """``path`` if a file there can be (re)placed atomically: not a folder, not a read-only
    file, its folder writable. Else ``OutputPathError``."""
    dest = Path(path)
    if dest.is_dir():
        raise OutputPathError(f"{dest} is a folder; it cannot be replaced by a file: {hint}")
    if dest.exists() and not os.access(dest, os.W_OK):
        raise OutputPathError(f"{dest} is read-only; make it writable (chmod u+w) or {hint}")
    check_output_dir(dest.parent, hint)
    return dest


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (through links, ``..`` or another spelling)."""
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def check_destinations(files: Iterable[str | os.PathLike[str]],
                       inputs: Iterable[str | os.PathLike[str]] = (),
                       hint: str = "choose another output folder") -> list[Path]:
    """Every file a command will write, checked before it does any work: each can be
    (re)placed (``check_output_file``) and none is one of the command's own ``inputs`` (the
    result would overwrite what it is made from). Returns the paths; else raises
    ``OutputPathError`` for the first that fails, ending with ``hint``."""
    sources = [Path(p) for p in inputs]
    dests = [Path(p) for p in files]
    for dest in dests:
        source = next((s for s in sources if _same_file(dest, s)), None)
        if source is not None:
            raise OutputPathError(f"{dest} would overwrite the input {source}, which it is made "
                                  f"from; {hint}")
        check_output_file(dest, hint)
    return dests


def _mode_for(dest: Path) -> int:
    """The permissions the new file gets: the old file's, else the umask default."""
    if dest.exists():
        return dest.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, text: bool = False, suffix: str = ".tmp",
                 lock: bool = False) -> Iterator[IO]:
    """Yield a file to write ``path``'s new contents into; moved into place when the block ends.

    text=True: a UTF-8 text file with "\\n" line ends, else binary. The temporary file is
    ``.<name>.<random><suffix>`` beside ``path``; lock=True holds an advisory lock on it while
    it is written (so a sweeper can tell a live download from one a killed process left).
    The data is flushed to disk (fsync) before the rename.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    mode = _mode_for(dest)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=suffix)
    try:
        if lock and fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held until the file is closed
        options = {"encoding": "utf-8", "newline": "\n"} if text else {}
        with os.fdopen(fd, "w" if text else "wb", **options) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:  # Ctrl-C too: never leave the temporary file
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (see ``atomic_write``); permissions kept."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    with atomic_write(path, text=True) as fh:
        fh.write(text)
