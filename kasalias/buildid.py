"""The identity of this kasalias: a hash of its version and its own files.

Every build output depends on the kasalias that made it, as Kbuild outputs depend on
their commands (``if_changed``): the identity is part of the commands that make and
ninja compare (vmlinux's link command, the gen command, every ninja rule), so another
kasalias, an upgrade or a local change, remakes every output once, and then nothing.
"""

from __future__ import annotations

import hashlib
import os

from kasalias import __version__

ENV = "KASALIAS_BUILD"  # the identity a build file was made with, in its commands


def own_files() -> list[str]:
    """The package's modules, the templates and the Kbuild fragment (a source checkout,
    or the copies a wheel ships inside the package)."""
    pkg = os.path.dirname(os.path.abspath(__file__))
    files = sorted(os.path.join(pkg, n) for n in os.listdir(pkg) if n.endswith(".py"))
    for sub, names in (("templates", ("kasalias.ninja.j2", "kasalias.mk.j2")), ("kbuild", ("Makefile.kasalias",))):
        for top in (os.path.dirname(pkg), pkg):
            if os.path.isfile(os.path.join(top, sub, names[0])):
                files.extend(os.path.join(top, sub, n) for n in names)
                break
    return files


def build_id() -> str:
    h = hashlib.sha256(f"kasalias {__version__}\n".encode())
    for path in own_files():
        with open(path, "rb") as f:
            data = f.read()
        h.update(b"%s %d\n" % (os.path.basename(path).encode(), len(data)))
        h.update(data)
    return h.hexdigest()[:16]
