"""``kasalias probe``: how each tracer names one copy of a duplicated function, on a
running kernel (or a saved /proc/kallsyms).

The kernel takes an alias wherever it takes a function name (kprobe_events, the kprobe
PMU that perf, bpftrace and libbpf use, kprobe_multi's symbol list, livepatch), but the
tools around it parse names their own way, and ftrace (available_filter_functions, its
filters, fprobe, bpftrace's attach check and wildcards) knows one name per address: the
first in kallsyms order, the alias on a kernel built with ``KAS_ALIAS=first``, the original
with ``KAS_ALIAS=1`` (tests/test_tracers.py shows each on a booted kernel, NOTES.md
"Tracers and aliases" has the table):

- tracefs ``kprobe_events``: the alias as written, with an event name of our own (the
  automatic one keeps the ``@``, which no event name may hold); ``MOD:`` for a module.
- bpftrace: the alias in double quotes (``@`` starts a map name), where ftrace names the
  address by it; elsewhere bpftrace 0.24 and newer refuse a name ftrace does not list, so
  the copy is given by address (which 0.27 takes only with ``--unsafe``). A pattern is expanded here into one probe per alias
  (bpftrace's own wildcards see aliases only where ftrace does).
- perf probe: every ``@`` escaped (``FUNC@SRC`` is perf's syntax for a source file) and an
  event name given (perf's own stops at ``@``); ``-m MOD`` for a module.
- ftrace (``set_ftrace_filter``, ``set_graph_function``): the alias where ftrace names the
  address by it; elsewhere the line number of the copy in available_filter_functions
  (``echo N > set_ftrace_filter``, Linux 6.5+: read from available_filter_functions_addrs).
- fprobe (``dynamic_events``, ``f:``): takes the name ftrace gives the address only.
- bpftrace's fentry/fexit (``bpftrace-fentry``): the copy's BTF FUNC, which a kernel built
  with BTF and ``KAS_ALIAS`` has under the alias spelled with ``.`` for ``@``, a kallsyms
  name of the copy too (kasalias/fentry.py). bpftrace (every version) attaches fentry only
  to a FUNC that available_filter_functions lists, which names the copy by its alias or its
  original: bpftrace 0.17 to 0.24 take an exact name anyway, 0.25 and newer need
  ``--traceable-functions FILE``, which ``--traceable-functions`` writes here
  (available_filter_functions and the copies' FUNC names). bpftrace 0.17 spells the probe
  ``kfunc:``/``kretfunc:`` (an alias of ``fentry:``/``fexit:`` in later versions).

On a kernel built without the aliases (a distribution's, with ``--index`` from its debug
package: kasalias/index.py) the copies are found by the index and named by address, which
tracefs, bpftrace and perf probe (vmlinux only) take; ftrace's number is by address anyway.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, TypeVar

from kasalias.errors import KasaliasError
from kasalias.aliastable import VMLINUX
from kasalias.index import Index, KallsymsLine, Kernel

TOOLS = ("kprobe", "bpftrace", "perf", "ftrace", "fprobe", "bpftrace-fentry")
TRACEFS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
FPROBE_GROUP = "kasalias_fprobe"
MAX_EVENT_NAME = 63  # the kernel's MAX_EVENT_NAME_LEN (64) less the terminating NUL
_NOT_EVENT = re.compile(r"[^A-Za-z0-9_]")
T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """One aliased copy on the running kernel."""

    alias: str
    module: str  # "" for vmlinux
    address: int
    by_address: bool = False  # the kernel lists no alias: tools get the address
    ftrace_name: bool = False  # the alias is the first name at its address: what ftrace lists
    fentry_name: str = ""  # the copy's BTF FUNC, a kallsyms name at its address too ("": none)


def select(items: Sequence[T], name: Callable[[T], str], patterns: list[str], where: str, empty: str = "") -> list[T]:
    """The items each pattern names: an alias, or a shell-style pattern over the aliases
    (``name_show@*``). Every pattern must name at least one; order: the patterns', then the
    items'; each item once. ``empty``: what to add to the error when there are no items."""
    out: dict[int, T] = {}
    for pattern in patterns:
        wild = any(c in pattern for c in "*?[")
        hits = [i for i, x in enumerate(items) if (fnmatch.fnmatchcase(name(x), pattern) if wild else
                                                     name(x) == pattern)]
        if not hits:
            raise KasaliasError(f"{pattern} {'matches no alias' if wild else 'is not an alias'} in {where}" +
                                ("" if items else empty))
        out.update((i, items[i]) for i in hits)  # a dict keeps the first position of a key
    return list(out.values())


def targets(lines: list[KallsymsLine], patterns: list[str], where: str) -> list[Target]:
    """The copies the patterns name among the aliases of a kernel's kallsyms (see ``select``)."""
    aliases = [l for l in lines if "@" in l.name]
    chosen = select(aliases, lambda l: l.name, patterns, where,
                    " (it lists none: a kernel built without 'make KAS_ALIAS=1')")
    # kallsyms lists vmlinux in its sorted order and a module in its symbol-table order: the
    # first line at an address is the name the kernel gives it
    first: dict[tuple[int, str], str] = {}
    for l in lines:
        first.setdefault((l.address, l.module), l.name)
    # a copy's BTF FUNC name (kasalias.fentry) is a kallsyms name at its address too
    dotted = {(l.address, l.module, l.name) for l in lines if "." in l.name and "@" not in l.name}
    out = []
    for l in chosen:
        fentry = l.name.replace("@", ".")
        out.append(Target(l.name, l.module, l.address, ftrace_name=first[(l.address, l.module)] == l.name,
                          fentry_name=fentry if (l.address, l.module, fentry) in dotted else ""))
    return out


def targets_from_index(index: Index, kernel: Kernel, patterns: list[str]) -> list[Target]:
    """The copies the patterns name among the index's aliases, resolved on ``kernel`` (its
    KASLR slide, its modules' load addresses)."""
    out = []
    for r in kernel.resolve(index, select(index.entries, lambda e: e.alias, patterns, "the index")):
        if r.address is None:
            raise KasaliasError(f"{r.entry.alias}: {r.missing}")
        out.append(Target(r.entry.alias, "" if r.entry.image == VMLINUX else r.entry.image, r.address, True))
    return out


def event_name(alias: str, ret: bool = False) -> str:
    """A trace event name for the alias (``_ret`` appended for a return probe): ``@`` and every
    other character an event name cannot hold become ``_``; a name too long is cut and ends
    with a hash of the whole alias."""
    name = _NOT_EVENT.sub("_", alias) + ("_ret" if ret else "")
    if len(name) > MAX_EVENT_NAME:
        name = name[:MAX_EVENT_NAME - 9] + "_" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return name


def spec(tool: str, t: Target, ftrace_index: dict[tuple[int, str], int] | None = None, ret: bool = False) -> str:
    """The probe for ``tool``, as its user writes it (see the module's docstring); ``ret``: the
    return probe (kretprobe) instead of the entry's."""
    event = event_name(t.alias, ret)
    if tool == "kprobe":
        where = f"0x{t.address:x}" if t.by_address else (f"{t.module}:" if t.module else "") + t.alias
        return f"{'r' if ret else 'p'}:kasalias/{event} {where}"
    if tool == "bpftrace":
        by_address = t.by_address or not t.ftrace_name
        return f"{'kretprobe' if ret else 'kprobe'}:" + (f"0x{t.address:x}" if by_address else f'"{t.alias}"')
    if tool == "perf":
        if t.by_address and t.module:
            raise KasaliasError(f"{t.alias}: perf probe takes no address in a module: use --for kprobe, then "
                                f"perf record -e kasalias:{event}")
        where = f"0x{t.address:x}" if t.by_address else t.alias.replace("@", "\\@")
        return f"{'-m ' + t.module + ' ' if t.module else ''}-a {event}={where}{'%return' if ret else ''}"
    if tool == "fprobe":
        if not t.ftrace_name:
            raise KasaliasError(f"{t.alias}: fprobe takes the name ftrace gives an address, and this kernel gives "
                                "it the original's (built without 'make KAS_ALIAS=first'): use --for kprobe")
        # its own group: an fprobe and a kprobe event of one name cannot both be in one group
        return f"f:{FPROBE_GROUP}/{event} {t.alias}{'%return' if ret else ''}"
    if tool == "bpftrace-fentry":
        if not t.fentry_name:
            raise KasaliasError(f"{t.alias}: this copy has no BTF FUNC (kallsyms lists no "
                                f"{t.alias.replace('@', '.')}): fentry needs a kernel built with 'make KAS_ALIAS=1' "
                                "(or first) and CONFIG_DEBUG_INFO_BTF, and a copy whose signature BTF can name "
                                "(not a compiler clone); use --for bpftrace (a kprobe)")
        return f"{'fexit' if ret else 'fentry'}:{t.module or 'vmlinux'}:{t.fentry_name}"
    if tool == "ftrace":
        assert not ret
        if t.ftrace_name:
            return t.alias
        assert ftrace_index is not None
        n = ftrace_index.get((t.address, t.module))
        if n is None:
            raise KasaliasError(f"{t.alias}: its address is not in available_filter_functions (a function "
                                "ftrace cannot trace)")
        return str(n)
    raise ValueError(tool)


def probes(tool: str, found: list[Target], ret: bool = False, tracefs: Path | None = None) -> list[str]:
    """One probe per target, for ``tool`` (``tracefs``: where --for ftrace reads its numbers)."""
    if tool == "ftrace" and ret:
        raise KasaliasError("ftrace has no return probe: the function_graph tracer shows where a copy returns")
    unnamed = [t for t in found if not t.ftrace_name]
    index = ftrace_index(tracefs) if tool == "ftrace" and unnamed else None
    if unnamed and tool in ("bpftrace", "ftrace"):
        log.warning("%s: ftrace names %s by %s: %s", unnamed[0].alias,
                 "these copies" if len(unnamed) > 1 else "this copy",
                 "the original name (a kernel built with KAS_ALIAS=1, or --index)",
                 "bpftrace gets the address (0.24 and newer refuse a name ftrace does not list; 0.27 "
                 "takes an address only with --unsafe)"
                 if tool == "bpftrace" else "set_ftrace_filter gets the copy's number")
    return [spec(tool, t, index, ret) for t in found]


def _tracefs_file(tracefs: Path | None, name: str, what: str) -> tuple[Path, bytes]:
    """A tracefs file's path and bytes, from ``tracefs`` or the usual mount points."""
    dirs = [tracefs] if tracefs else list(TRACEFS)
    for d in dirs:
        path = d / name
        try:
            return path, path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as e:
            raise KasaliasError(f"{path}: cannot read: {e.strerror}") from None
    where = " or ".join(str(d) for d in dirs)
    raise KasaliasError(f"no {name} in {where}: mount tracefs there (mount -t tracefs nodev /sys/kernel/tracing)"
                        + what)


def traceable_functions(found: list[Target], tracefs: Path | None) -> bytes:
    """available_filter_functions with a line for each copy's fentry name ("NAME [MOD]"): the
    list bpftrace 0.25+ reads with --traceable-functions. Each name goes at the end of its
    image's run of lines: bpftrace reads an image's functions up to the next image's first line."""
    _path, data = _tracefs_file(tracefs, "available_filter_functions", "")
    extra: dict[str, list[bytes]] = {}
    for t in found:
        if t.fentry_name:
            extra.setdefault(t.module, []).append(
                (f"{t.fentry_name} [{t.module}]" if t.module else t.fentry_name).encode() + b"\n")
    out: list[bytes] = []
    current: str | None = None
    for line in data.splitlines(keepends=True):
        f = line.split()
        module = f[1][1:-1].decode("utf-8", "surrogateescape") if len(f) > 1 and f[1].startswith(b"[") else ""
        if module != current and current is not None:
            out.extend(extra.pop(current, []))
        current = module
        out.append(line if line.endswith(b"\n") else line + b"\n")
    if current is not None:
        out.extend(extra.pop(current, []))
    for names in extra.values():  # an image ftrace lists nothing of
        out.extend(names)
    return b"".join(out)


def ftrace_index(tracefs: Path | None) -> dict[tuple[int, str], int]:
    """(address, module) -> line number in available_filter_functions, which is the number
    set_ftrace_filter takes, from available_filter_functions_addrs ('ADDR NAME [MOD]')."""
    path, data = _tracefs_file(tracefs, "available_filter_functions_addrs", "; the file exists from Linux 6.5")
    out: dict[tuple[int, str], int] = {}
    for n, raw in enumerate(data.decode("utf-8", "surrogateescape").splitlines(), 1):
        f = raw.split()
        try:
            address = int(f[0], 16)
        except (IndexError, ValueError):
            raise KasaliasError(f"{path}:{n}: not an 'ADDRESS NAME [MODULE]' line") from None
        module = f[2][1:-1] if len(f) > 2 and f[2].startswith("[") else ""
        out.setdefault((address, module), n)
    return out
