"""Writing outputs atomically: a temp file beside the target, then rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, *, only_if_changed: bool = False) -> bool:
    """Write ``data`` to ``path`` via temp file + rename; return False if nothing was written.

    With ``only_if_changed`` an identical existing file keeps its mtime, so that
    build tools with ``restat`` see no change.
    """
    if only_if_changed:
        try:
            if path.read_bytes() == data:
                return False
        except OSError:
            pass
    parent = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return True


def write_text_atomic(path: Path, text: str, *, only_if_changed: bool = False) -> bool:
    return write_atomic(path, text.encode(), only_if_changed=only_if_changed)
