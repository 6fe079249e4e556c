"""The index of a kernel built without the aliases (a distribution's), made from its debug
info fetched by build ID from debuginfod servers and kept in a cache: ``lookup``,
``kallsyms`` and ``probe`` without ``--index`` (kasalias/cli.py).

The servers are ``$DEBUGINFOD_URLS`` (space-separated), asked in order with debuginfod's
HTTP protocol, ``GET URL/buildid/HEX/debuginfo``, through urllib: one GET per file is all
it takes. libdebuginfod through ctypes would add a C library that may be missing (Debian's
libdebuginfod1 is a package of its own, and no PyPI dependency brings it), and one native
call for the minutes a vmlinux takes to download, during which Python runs no signal
handler: Ctrl-C or SIGTERM would wait for the download to end; here they stop it
and the partial file is removed.

What is fetched: the vmlinux (always: every alias's frequency and vmlinux's link
addresses), and the loaded modules that hold a name the aliases asked for (an alias is
``NAME@...``: the modules whose kallsyms lines list NAME; a pattern whose NAME part is
itself a pattern asks for every loaded module, as ``kallsyms`` does). For those names the
index has every loaded copy, so their aliases are those of an index over vmlinux and all
loaded modules. An index over the whole debug package (``kasalias index``) can differ
where a module that is not loaded holds another copy of a name: it aliases a name that is
unique among the loaded images, and names a copy at a further level where the other copy
has the same declaration line.

The cache, by build ID (``$DEBUGINFOD_CACHE_PATH``, else ``$XDG_CACHE_HOME/kasalias``, else
``~/.cache/kasalias``), in libdebuginfod's layout, so that a cache shared with gdb or perf
(``DEBUGINFOD_CACHE_PATH`` set to theirs) serves both ways::

    BUILD-ID/debuginfo                      a fetched debug file (vmlinux or a module)
    VMLINUX-ID/kasalias-K.index             the index: vmlinux + the modules in its "# image:" lines
    VMLINUX-ID/kasalias-K.unavailable       modules no server had ("NAME BUILD-ID TIME"), for a day

K is kasalias' own build ID (buildid.py): another kasalias makes its index again. The
debug files are kept: a later call that names another loaded module extends the index,
which reads vmlinux's DWARF again, and a vmlinux's debug info (hundreds of MB) would
otherwise be downloaded again each time. Every file is written beside its name and renamed
into place once complete and checked (size, ELF, build ID): no partial file is ever there.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kasalias.aliastable import VMLINUX
from kasalias.errors import KasaliasError
from kasalias.fsutil import create_temp_beside, write_atomic

if TYPE_CHECKING:
    from kasalias.index import Index, Kernel

URLS_ENV = "DEBUGINFOD_URLS"
CACHE_ENV = "DEBUGINFOD_CACHE_PATH"
TIMEOUT_ENV = "DEBUGINFOD_TIMEOUT"  # libdebuginfod's: seconds to wait for a server to answer
DEFAULT_TIMEOUT = 90.0  # libdebuginfod's default
DEBUGINFO = "debuginfo"
UNAVAILABLE_SECONDS = 86400  # how long a module no server had is not asked for again
_CHUNK = 1 << 20
_HEX = re.compile(r"[0-9a-f]{2,128}")  # debuginfod's build IDs: hex, at most 64 bytes
_MODULE = re.compile(r"[A-Za-z0-9_]{1,64}")  # KBUILD_MODNAME: a C identifier ('-' is '_')
log = logging.getLogger(__name__)


def cache_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # the XDG spec: a relative path in the variable is invalid and ignored
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "kasalias"


def server_urls() -> list[str]:
    urls = []
    for word in os.environ.get(URLS_ENV, "").split():
        if word.lower().startswith(("http://", "https://")):
            urls.append(word.rstrip("/"))
        else:  # libdebuginfod also takes file:// and "ima:" words
            log.warning("%s: %s is not an http:// or https:// URL; left out", URLS_ENV, word)
    return urls


def check_build_id(text: str, what: str) -> str:
    """A build ID as debuginfod takes it (lowercase hex): it becomes part of a URL and of a
    cache path."""
    bid = text.lower()
    if not _HEX.fullmatch(bid) or len(bid) % 2:
        raise KasaliasError(f"{what}: {text!r} is not a build ID (an even number of hex digits, as "
                            "/sys/kernel/notes holds it)")
    return bid


# ---------------------------------------------------------------------------
# Which images


def wanted_modules(kernel: Kernel, patterns: list[str] | None) -> list[str]:
    """The loaded modules whose debug info the aliases ``patterns`` need (None: every alias):
    those whose kallsyms lines list the NAME of a ``NAME@...`` pattern; every loaded module
    where NAME is a pattern itself (the module of a copy is not known before the index)."""
    from kasalias.symbfreq import name_key

    loaded: dict[str, set[str]] = {}
    for line in kernel.lines:
        if line.module:
            loaded.setdefault(line.module, set()).add(name_key(line.name))
    names: set[str] = set()
    for p in patterns if patterns is not None else ["*"]:
        base, at, _rest = p.partition("@")
        if not at or any(c in base for c in "*?["):  # a wildcard may stand for NAME and an '@'
            return sorted(loaded)
        names.add(base)
    return sorted(m for m, listed in loaded.items() if names & listed)


def module_build_ids(kernel: Kernel, modules: list[str]) -> tuple[dict[str, str], list[str]]:
    """The build ID of each module that has one (the running kernel's /sys/module, or
    --module-build-id), and the modules of a saved kallsyms that were given none."""
    out: dict[str, str] = {}
    unknown = []
    for m in modules:
        if not _MODULE.fullmatch(m):  # a saved kallsyms's [name] becomes a file name: no '/'
            log.warning("%s: module name %r is not a C identifier; its aliases are left out", kernel.where, m)
            continue
        bid = kernel.module_build_id(m)
        if bid:
            out[m] = check_build_id(bid, f"module {m}'s build ID")
        elif m == "bpf" or m.startswith("__builtin__"):
            continue  # BPF programs and ftrace/kprobe trampolines: no module, nothing to index
        elif kernel.live:  # a built-in "module" has no notes
            log.info("module %s: no build ID in /sys/module/%s/notes; its aliases are left out", m, m)
        else:
            unknown.append(m)
    return out, unknown


# ---------------------------------------------------------------------------
# The index, from the cache or made


def index_for(kernel: Kernel, patterns: list[str] | None) -> Index:
    """The index that names the copies of ``kernel`` (built without the aliases) that the
    aliases ``patterns`` ask for (None: every alias): from the cache, or made from debug
    info fetched by build ID (see the module's docstring)."""
    raw = kernel.build_id
    if raw is None:  # a saved kallsyms without --build-id
        raise KasaliasError(f"{kernel.where} lists no aliases (a kernel built without 'make KAS_ALIAS=1'): give "
                            "--build-id HEX (that kernel's, from /sys/kernel/notes) to fetch its debug info by build "
                            "ID, or --index FILE")
    if not raw:
        raise KasaliasError(f"{kernel.where}: the kernel has no GNU build ID note (/sys/kernel/notes): its debug "
                            "info cannot be fetched by build ID; give --index FILE")
    vmlinux = check_build_id(raw, "--build-id" if not kernel.live else "/sys/kernel/notes")
    modules, unknown = module_build_ids(kernel, wanted_modules(kernel, patterns))
    index = _index(vmlinux, modules)
    # Without a build ID a module is not fetched; one the index has (from the cache) is
    # resolved unchecked, as with --index
    unknown = [m for m in unknown if m not in index.build_ids]
    if unknown:
        log.warning("no build ID given for module%s %s (--module-build-id NAME=HEX, from that system's "
                    "/sys/module/NAME/notes/.note.gnu.build-id): %s aliases are left out",
                    "s" if len(unknown) > 1 else "", ", ".join(unknown), "their" if len(unknown) > 1 else "its")
    return index


def _index(vmlinux: str, modules: dict[str, str]) -> Index:
    """The index of vmlinux ``vmlinux`` and at least ``modules`` (name -> build ID): the
    cached one if it has them, else one made (fetching what the cache lacks) and cached."""
    from kasalias.index import Index

    store = cache_root() / vmlinux
    tag = _kasalias_tag()
    index_path, unavailable_path = store / f"kasalias-{tag}.index", store / f"kasalias-{tag}.unavailable"
    cached = _read_cached(index_path)
    unavailable = _read_unavailable(unavailable_path)
    gone = {m: b for m, (b, _when) in unavailable.items()}  # asked for lately, on no server
    if cached is not None and cached.build_ids.get(VMLINUX) == vmlinux:
        if all(cached.build_ids.get(m) == b or gone.get(m) == b for m, b in modules.items()):
            log.info("the index of build ID %s from the cache: %s", vmlinux, index_path)
            for m in sorted(m for m, b in modules.items() if cached.build_ids.get(m) != b):
                log.info("module %s: no server had its debug info (build ID %s) in the last day; its aliases are "
                         "left out", m, modules[m])
            return cached
        # Extend it: the modules it has stay in (their files are in the cache), so that what
        # it named before it names the same way.
        for m, b in cached.build_ids.items():
            if m != VMLINUX and m not in modules and b and _cached_file(b) is not None:
                modules[m] = b
    log.info("making the index of build ID %s: vmlinux and %d module%s", vmlinux, len(modules),
             "" if len(modules) == 1 else "s")
    todo = [(VMLINUX, vmlinux)] + [(m, b) for m, b in sorted(modules.items()) if gone.get(m) != b]
    files = Fetcher(cache_root()).fetch_all(todo)
    missing = {m: b for m, b in modules.items() if m not in files}
    for m in sorted(missing):
        if gone.get(m) != missing[m]:
            log.warning("module %s: no debuginfod server has its debug info (build ID %s); its aliases are left out",
                        m, missing[m])
    from kasalias.index import index_of_files

    started = time.monotonic()
    index, problems = index_of_files(files.pop(VMLINUX), files)
    for p in problems:
        log.info("%s", p)
    log.info("%d aliases of vmlinux and %d module%s in %.1f s", len(index.entries), len(index.build_ids) - 1,
             "" if len(index.build_ids) == 2 else "s", time.monotonic() - started)
    _mkdir(store)
    for old in store.glob("kasalias-*"):  # another kasalias's: this one does not read them
        if not old.name.startswith(f"kasalias-{tag}."):
            try:
                old.unlink()
            except OSError:
                pass
    write_atomic(index_path, index.render())
    if missing or unavailable_path.exists():
        now = int(time.time())
        write_atomic(unavailable_path, "".join(
            f"{m} {b} {unavailable[m][1] if gone.get(m) == b else now}\n" for m, b in sorted(missing.items())).encode())
    return Index.read(index_path)  # what the next call reads: one way to an index


def _kasalias_tag() -> str:
    from kasalias.buildid import build_id

    return build_id()


def _read_cached(path: Path) -> Index | None:
    from kasalias.index import Index

    if not path.exists():
        return None
    try:
        return Index.read(path)
    except KasaliasError as e:  # a cache only saves time: made again
        log.warning("%s; the index is made again", e)
        return None


def _read_unavailable(path: Path) -> dict[str, tuple[str, int]]:
    """The modules that no server had in the last day: name -> (build ID, when)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    out = {}
    now = time.time()
    for line in lines:
        f = line.split()
        if len(f) == 3 and _MODULE.fullmatch(f[0]) and _HEX.fullmatch(f[1]) and f[2].isascii() and f[2].isdigit() \
                and 0 <= now - int(f[2]) < UNAVAILABLE_SECONDS:
            out[f[0]] = (f[1], int(f[2]))
    return out


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise KasaliasError(f"{path}: cannot make the cache directory: {e.strerror} (set {CACHE_ENV} to "
                            "another directory)") from None


def _cached_file(build_id: str) -> Path | None:
    """The cached debug file of ``build_id`` if it is one: an ELF file of that build ID (not a
    zero-length file, which libdebuginfod leaves for a build ID no server had)."""
    from kasalias.index import build_id as file_build_id

    path = cache_root() / build_id / DEBUGINFO
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"\x7fELF":
                return None
        return path if file_build_id(path) == build_id else None
    except (OSError, KasaliasError):
        return None


# ---------------------------------------------------------------------------
# Fetching


class _NotFound(Exception):
    """The server does not have that build ID (HTTP 404)."""


class Fetcher:
    """Debug files by build ID into the cache, from the servers of ``$DEBUGINFOD_URLS``."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.urls = server_urls()
        text = os.environ.get(TIMEOUT_ENV, "")
        try:
            self.timeout = float(text) if text else DEFAULT_TIMEOUT
        except ValueError:
            raise KasaliasError(f"{TIMEOUT_ENV}={text!r}: not a number of seconds") from None
        if self.timeout <= 0:
            self.timeout = DEFAULT_TIMEOUT
        self.progress = _Progress()

    def fetch_all(self, wanted: list[tuple[str, str]]) -> dict[str, Path]:
        """Each (image, build ID)'s debug file, from the cache or fetched; the first is vmlinux,
        which every server must be asked for: a module that no server has is left out of the
        result, any other failure is an error."""
        out: dict[str, Path] = {}
        todo = []
        for name, bid in wanted:
            path = _cached_file(bid)
            if path is not None:
                log.debug("%s: the debug info of build ID %s from the cache: %s", name, bid, path)
                out[name] = path
            else:
                todo.append((name, bid))
        if todo and not self.urls:
            name, bid = todo[0]
            raise KasaliasError(f"{URLS_ENV} is {'not set' if URLS_ENV not in os.environ else 'empty'}: set it to "
                                f"the debuginfod server(s) of this kernel's distribution to fetch the debug info of "
                                f"{name} (build ID {bid}), or give --index FILE")
        self.progress.total = len(todo)
        for name, bid in todo:
            try:
                out[name] = self.fetch(name, bid)
            except _NotFound as e:
                if name == VMLINUX:
                    raise KasaliasError(f"no debuginfod server has the debug info of vmlinux (build ID {bid}): {e}; "
                                        f"{URLS_ENV} should name the servers of this kernel's distribution, or "
                                        "give --index FILE") from None
        return out

    def fetch(self, name: str, bid: str) -> Path:
        """Ask each server in turn; _NotFound when each one answers 404."""
        path = self.cache / bid / DEBUGINFO
        failures: list[str] = []
        found_nowhere = True
        for url in self.urls:
            try:
                self._download(f"{url}/buildid/{bid}/{DEBUGINFO}", path, name, bid)
                return path
            except _NotFound:
                failures.append(f"{url}: not found (HTTP 404)")
            except KasaliasError as e:
                failures.append(str(e))
                found_nowhere = False
        if found_nowhere:
            raise _NotFound("; ".join(failures))
        raise KasaliasError(f"cannot fetch the debug info of {name} (build ID {bid}): {'; '.join(failures)}")

    def _download(self, url: str, path: Path, name: str, bid: str) -> None:
        import urllib.error
        import urllib.request

        from kasalias import __version__

        request = urllib.request.Request(url, headers={"User-Agent": f"kasalias/{__version__}"})
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            e.close()
            if e.code == 404:
                raise _NotFound() from None
            raise KasaliasError(f"{url}: HTTP {e.code} {e.reason}") from None
        except urllib.error.URLError as e:
            raise KasaliasError(f"{url}: {_reason(e.reason, self.timeout)}") from None
        except (OSError, ValueError) as e:  # a timeout while connecting; a URL urllib refuses
            raise KasaliasError(f"{url}: {_reason(e, self.timeout)}") from None
        with response:
            header = response.headers.get("Content-Length", "")
            length = int(header) if header.isascii() and header.isdigit() else None
            _mkdir(path.parent)
            fd, tmp = create_temp_beside(path)
            got = 0
            self.progress.start(name, bid, url, length)
            try:
                with os.fdopen(fd, "wb") as f:
                    buf = bytearray(_CHUNK)
                    while True:
                        try:
                            n = response.readinto(buf)
                        except (OSError, ValueError) as e:  # reset, timeout; http.client's IncompleteRead
                            raise KasaliasError(f"{url}: download interrupted after {got} bytes: "
                                                f"{_reason(e, self.timeout)}") from None
                        if not n:
                            break
                        f.write(memoryview(buf)[:n])
                        got += n
                        self.progress.update(got)
                self.progress.done()
                if length is not None and got != length:
                    raise KasaliasError(f"{url}: truncated download: {got} of {length} bytes (Content-Length)")
                _check_downloaded(tmp, url, bid)
                os.replace(tmp, path)
            except BaseException as e:
                self.progress.done()
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                _rmdir_if_empty(path.parent)
                if isinstance(e, OSError):  # ENOSPC, EROFS, ...: the cache's file
                    raise KasaliasError(f"{path}: cannot write: {e.strerror}") from None
                raise
        self.progress.fetched(name, got)


def _check_downloaded(tmp: str, url: str, bid: str) -> None:
    from kasalias.index import build_id as file_build_id

    with open(tmp, "rb") as f:
        if f.read(4) != b"\x7fELF":
            raise KasaliasError(f"{url}: not an ELF file: the server sent something else (a truncated download, or "
                                "an error page)")
    try:
        got = file_build_id(tmp)
    except KasaliasError as e:
        raise KasaliasError(f"{url}: not a readable ELF file: {str(e).removeprefix(tmp + ': ')} (a truncated "
                            "download?)") from None
    if got != bid:
        raise KasaliasError(f"{url}: the file sent has build ID {got or '(none)'}, not {bid}")


def _reason(e: object, timeout: float) -> str:
    import socket
    import ssl

    if isinstance(e, ConnectionRefusedError):
        return "cannot connect (Connection refused): is the server down?"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return f"no answer in {timeout:g} s ({TIMEOUT_ENV})"
    if isinstance(e, socket.gaierror):
        return f"unknown host ({e.strerror})"
    if isinstance(e, ssl.SSLError):
        return f"TLS: {e.reason or e}"
    if isinstance(e, OSError) and e.strerror:
        return f"cannot connect ({e.strerror})"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _rmdir_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


class _Progress:
    """``downloading [k/n] NAME 12.3/345.6 MB`` on stderr while a file comes, when stderr is
    a terminal (the line of analysis.Progress, never under make or in a pipe); at -v a log
    line before and after each file."""

    def __init__(self) -> None:
        self.on = sys.stderr.isatty()
        self.total, self.n = 0, 0
        self.name, self.length, self.started, self.shown = "", None, 0.0, 0.0

    def start(self, name: str, bid: str, url: str, length: int | None) -> None:
        self.n += 1
        self.name, self.length, self.started, self.shown = name, length, time.monotonic(), 0.0
        log.info("fetching the debug info of %s (build ID %s%s) from %s", name, bid,
                 f", {_mb(length)}" if length is not None else "", url)
        self.update(0)

    def update(self, got: int) -> None:
        now = time.monotonic()
        if self.on and (now - self.shown >= 0.1 or got == self.length):
            self.shown = now
            of = f"/{_mb(self.length)}" if self.length is not None else " MB"
            sys.stderr.write(f"\r\x1b[Kdownloading [{self.n}/{self.total}] {self.name} {_mb(got, unit=False)}{of}")
            sys.stderr.flush()

    def done(self) -> None:
        if self.on:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()

    def fetched(self, name: str, size: int) -> None:
        log.info("fetched %s: %s in %.1f s", name, _mb(size), time.monotonic() - self.started)


def _mb(size: int | None, unit: bool = True) -> str:
    return f"{(size or 0) / 1e6:.1f}" + (" MB" if unit else "")

