"""Writing outputs atomically: a temp file beside the target, then rename.

Only ``os``: the per-module step imports this once per module, and ``tempfile``
(with the ``random`` and ``hashlib`` it imports) costs as much start-up time as
objcopy takes to rewrite a small module (NOTES.md, "start-up").
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # mypy treats this name as typing.TYPE_CHECKING; typing is not imported
if TYPE_CHECKING:
    from typing import Union

    StrPath = Union[str, "os.PathLike[str]"]


def create_temp_beside(path: StrPath) -> tuple[int, str]:
    """A new, empty file in ``path``'s directory (so that renaming it onto ``path`` is
    atomic), named after ``path`` as ``.NAME.PID.N.tmp``: (open fd, its name)."""
    path = os.fspath(path)
    parent, name = os.path.split(path)
    n = 0
    while True:
        tmp = os.path.join(parent, f".{name}.{os.getpid()}.{n}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644), tmp
        except FileExistsError:
            n += 1


def copy_file(src: StrPath, fd: int) -> None:
    """Copy ``src``'s bytes into the open file ``fd`` (in the kernel where it can)."""
    with open(src, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        offset = 0
        try:
            while offset < size:
                sent = os.sendfile(fd, f.fileno(), offset, size - offset)
                if sent == 0:
                    break
                offset += sent
        except OSError:
            f.seek(offset)
            os.lseek(fd, offset, os.SEEK_SET)
            while chunk := f.read(1 << 20):
                os.write(fd, chunk)


def write_atomic(path: StrPath, data: bytes, *, only_if_changed: bool = False) -> bool:
    """Write ``data`` to ``path`` via temp file + rename; return False if nothing was written.

    With ``only_if_changed`` an identical existing file keeps its mtime, so that
    build tools with ``restat`` see no change.
    """
    if only_if_changed:
        try:
            with open(path, "rb") as f:
                if f.read() == data:
                    return False
        except OSError:
            pass
    fd, tmp = create_temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # not the umask's: outputs are the same from any build
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return True


def write_text_atomic(path: StrPath, text: str, *, only_if_changed: bool = False) -> bool:
    return write_atomic(path, text.encode(), only_if_changed=only_if_changed)
