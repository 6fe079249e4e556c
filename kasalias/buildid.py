"""The identity of this kasalias: a hash of its version and its own files.

Every build output depends on the kasalias that made it, as Kbuild outputs depend on
their commands (``if_changed``): the identity is part of the commands that make and
ninja compare (vmlinux's link command, the gen command, every ninja rule), so another
kasalias, an upgrade or a local change, remakes every output once, and then nothing.
"""

from __future__ import annotations

import hashlib

from kasalias import __version__
from kasalias.resources import own_files

ENV = "KASALIAS_BUILD"  # the identity a build file was made with, in its commands


def build_id() -> str:
    """The hash of the version and of every file kasalias runs (resources.own_files), each by
    its name and bytes, not its directory: an installed wheel has the ID of the checkout it
    was built from."""
    h = hashlib.sha256(f"kasalias {__version__}\n".encode())
    for path in own_files():
        data = path.read_bytes()
        h.update(b"%s %d\n" % (path.name.encode(), len(data)))
        h.update(data)
    return h.hexdigest()[:16]
