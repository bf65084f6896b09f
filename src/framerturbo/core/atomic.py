"""All-or-nothing writes: a file or folder appears under its final name only when complete.

Write into a temporary sibling, flush it to disk, then ``os.replace`` it onto the final name (an
atomic rename on POSIX file systems). A crash at any moment leaves either the old content or the
new, plus at worst a hidden ``.name.*`` temporary that :func:`remove_stale` cleans up. The result
gets the usual permissions (0666/0777 less the umask), not the temporaries' private 0600/0700.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    """The process umask (read from /proc on Linux; elsewhere set-and-restore)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _usual_mode(path: Path, mask: int | None = None) -> None:
    """mkstemp/mkdtemp create 0600/0700; give ``path`` what open()/mkdir() would under the
    umask ``mask`` (read when not given), keeping any execute bits."""
    mask = _umask() if mask is None else mask
    usual = 0o777 if path.is_dir() else 0o666 | (path.stat().st_mode & 0o111)
    os.chmod(path, usual & ~mask)


def _usual_modes(tree: Path) -> None:
    """The folder and everything in it: libraries that write through their own temporaries
    (safetensors, for one) leave 0600 files inside an atomic folder too."""
    mask = _umask()
    for entry in (tree, *tree.rglob("*")):
        if not entry.is_symlink():
            _usual_mode(entry, mask)


def _fsync_tree(path: Path) -> None:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for f in files:
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())


@contextmanager
def atomic_file(path: str | Path):
    """``with atomic_file(p) as tmp: write(tmp)`` — ``p`` appears only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix,
                               dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        _fsync_tree(tmp)
        _usual_mode(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class ReplaceRefused(FileExistsError):
    """The output would replace something a user made (a file, or a folder of other things)."""


def check_replaceable(path: str | Path, replace_if=None, *, file: bool = False) -> None:
    """Raise :class:`ReplaceRefused` unless ``path`` is missing or ``replace_if(path)``
    recognises it as this writer's own earlier output — or, for a folder output, an empty
    folder. A folder output lands by replacing its folder whole, so without this ``-o
    ~/Desktop`` would replace the desktop and ``export --out photo.png`` the photo; a one-file
    output (``file``) must not replace a user's photo or checkpoint of the same name. Callers
    run it before long work, too."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if file and path.is_dir():
        raise ReplaceRefused(f"{path}: is a folder — give a file name for the output")
    if not file and not path.is_dir():
        raise ReplaceRefused(f"{path}: exists and is not a folder — give a new folder name")
    if not file and not any(path.iterdir()):
        return  # an empty folder
    if replace_if is None or not replace_if(path):
        raise ReplaceRefused(f"{path}: exists and is not an earlier output of this command — "
                             "give a new file name" if file else
                             f"{path}: this folder holds other things, and the output would "
                             "replace it whole — give a new or empty folder")


def anything(folder: Path) -> bool:
    """``replace_if`` for folders only this program writes (a run's own checkpoints)."""
    return True


@contextmanager
def atomic_dir(path: str | Path, replace_if=None):
    """``with atomic_dir(p) as tmp: fill(tmp)`` — the folder ``p`` is replaced only on success,
    and only when :func:`check_replaceable` allows it (``replace_if``: what this writer may
    replace besides an empty folder)."""
    path = Path(path)
    check_replaceable(path, replace_if)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        _fsync_tree(tmp)
        _usual_modes(tmp)
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale(folder: str | Path, name: str) -> None:
    """Delete temporaries a killed writer left for ``name`` in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    old, final = folder / f".{name}.old", folder / name
    if old.exists() and not final.exists():  # killed between the two renames: keep the old one
        os.replace(old, final)
    for p in folder.glob(f".{name}*"):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks (verifies what was written, keys caches)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
