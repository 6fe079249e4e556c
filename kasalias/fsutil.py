"""Reading inputs and writing outputs atomically: a temp file beside the target, then rename.

The temporary name is made here rather than by ``tempfile``: it must sit beside the target
(an atomic rename) and name it (a leftover says whose it was).
"""

from __future__ import annotations

import mmap
import os
import stat
from typing import TYPE_CHECKING

from kasalias.errors import KasaliasError

if TYPE_CHECKING:
    from typing import BinaryIO, Union

    StrPath = Union[str, "os.PathLike[str]"]


def open_input(path: StrPath) -> BinaryIO:
    """``path`` opened for reading, which must be a regular file: a FIFO would block the
    build (opened without waiting, then refused), a directory or a device is not an input."""
    path = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise KasaliasError(f"{path}: cannot read: {e.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise KasaliasError(f"{path}: not a regular file")
    return os.fdopen(fd, "rb")


def read_input(path: StrPath) -> bytes:
    with open_input(path) as f:
        try:
            return f.read()
        except OSError as e:
            raise KasaliasError(f"{os.fspath(path)}: cannot read: {e.strerror}") from None


def read_text_input(path: StrPath) -> str:
    """A text input (modules.order, a Makefile): UTF-8, else an error naming it."""
    try:
        return read_input(path).decode("utf-8")
    except UnicodeDecodeError as e:
        raise KasaliasError(f"{os.fspath(path)}: not UTF-8 text (byte {e.start})") from None


def check_output(path: StrPath, *inputs: StrPath | None) -> None:
    """Refuse an output that is one of the inputs (the same file under any name: it is
    written by rename, and the input would be gone) or that exists and is not a regular file
    (renaming onto /dev/null would replace the device)."""
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise KasaliasError(f"{path}: cannot write: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise KasaliasError(f"{path}: exists and is not a regular file; not an output")
    for i in inputs:
        if i is None:
            continue
        try:
            other = os.stat(i)
        except OSError:
            continue
        if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
            raise KasaliasError(f"{path}: is the input {os.fspath(i)}; an output must be another file")


def create_temp_beside(path: StrPath) -> tuple[int, str]:
    """A new, empty file in ``path``'s directory (so that renaming it onto ``path`` is
    atomic), named after ``path`` as ``.NAME.PID.N.tmp`` (NAME cut so that the temporary
    name stays a valid file name): (open fd, its name)."""
    path = os.fspath(path)
    parent, name = os.path.split(path)
    n = 0
    while True:
        tmp = os.path.join(parent, f".{name[:200]}.{os.getpid()}.{n}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644), tmp
        except FileExistsError:
            n += 1
        except OSError as e:
            raise KasaliasError(f"{path}: cannot write: {e.strerror}") from None


def copy_file(src: StrPath, fd: int) -> None:
    """Copy ``src``'s bytes into the open file ``fd`` (in the kernel where it can)."""
    with open_input(src) as f:
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
            with open_input(path) as f:
                if f.read() == data:
                    return False
        except (OSError, KasaliasError):
            pass
    fd, tmp = create_temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # not the umask's: outputs are the same from any build
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):  # ENOSPC, EROFS, ...: say which output
            raise KasaliasError(f"{os.fspath(path)}: cannot write: {e.strerror}") from None
        raise
    return True


def same_contents(a: StrPath, b: StrPath) -> bool:
    """True if the files ``a`` and ``b`` hold the same bytes (False if ``b`` is missing)."""
    try:
        with open(a, "rb") as fa, open(b, "rb") as fb:
            if os.fstat(fa.fileno()).st_size != os.fstat(fb.fileno()).st_size:
                return False
            while chunk := fa.read(1 << 20):
                if chunk != fb.read(1 << 20):
                    return False
            return True
    except FileNotFoundError:
        return False


def write_text_atomic(path: StrPath, text: str, *, only_if_changed: bool = False) -> bool:
    # surrogateescape: bytes that were not UTF-8 where they were read (DWARF strings) go back as they were
    return write_atomic(path, text.encode("utf-8", "surrogateescape"), only_if_changed=only_if_changed)


def close_mapping(mapped: mmap.mmap | None) -> None:
    """Unmap now if nothing holds a view of the mapping; else it goes with the last view."""
    if mapped is not None:
        try:
            mapped.close()
        except BufferError:
            pass
