"""'lookup', 'kallsyms' and 'probe' without --index, on a kernel built without the aliases: the
debug info by build ID from a real debuginfod (Debian's elfutils server, on 127.0.0.1) serving
sample-tree's vmlinux and modules, indexed and cached by build ID; the same answers as with the
index 'kasalias index' makes of the same files; the second call does not ask the server (it is
stopped by then). Errors (404, a server down, a truncated download, no DEBUGINFOD_URLS) are one
line each and leave no partial file in the cache. A kernel built with the aliases never fetches.
Only 127.0.0.1 is ever contacted."""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from conftest import Build
from elfread import elf_symbols, nm_symbols
from elftools.elf.elffile import ELFFile

SLIDE = 0x1c00000  # a KASLR offset
DEADLINE = 60.0  # seconds a debuginfod may take to start and scan a few files


def build_id(path: Path) -> str:
    """The GNU build ID, read with pyelftools (any note section: vmlinux's .notes)."""
    with open(path, "rb") as f:
        for sec in ELFFile(f).iter_sections():
            if sec["sh_type"] == "SHT_NOTE":
                for note in sec.iter_notes():
                    if note["n_type"] == "NT_GNU_BUILD_ID" and note["n_name"] == "GNU":  # Xen's type 3 is not
                        return str(note["n_desc"])
    raise AssertionError(f"{path}: no GNU build ID")


def module_name(ko: Path) -> str:
    return ko.name.removesuffix(".ko").replace("-", "_")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kasalias(*args: object, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The real command line with ``env`` and nothing of the caller's debuginfod or proxy
    settings (a proxy would take the loopback requests elsewhere)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("DEBUGINFOD_") and "proxy" not in k.lower()}
    return subprocess.run([sys.executable, "-m", "kasalias", *map(str, args)], capture_output=True, text=True,
                          env={**base, **env})


def assert_one_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    lines = proc.stderr.splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith("kasalias: error: "), proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    assert proc.stdout == ""
    return lines[0]


def cache_files(cache: Path) -> list[str]:
    """Every file in the cache, relative: completed entries only (no temporary file)."""
    files = sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if not p.is_dir()) if cache.exists() else []
    assert not [f for f in files if f.endswith(".tmp") or "/." in f], files
    return files


class Debuginfod:
    """elfutils' debuginfod serving the ELF files of a directory (-F) on a free port."""

    def __init__(self, served: Path, work: Path) -> None:
        self.served, self.work = served, work
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> Debuginfod:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = open(self.work / "debuginfod.log", "ab")
        # Without DEBUGINFOD_URLS: a server with it would ask those servers for what it lacks.
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEBUGINFOD_")}
        self.proc = subprocess.Popen(["debuginfod", "-p", str(port), "-d", str(self.work / "debuginfod.sqlite"),
                                      "-t", "0", "-g", "0", "-F", str(self.served)],
                                     stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        self.wait_ready()
        return self

    def metrics(self) -> dict[str, str]:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as r:
            text = r.read().decode()
        return {f[0]: f[1] for f in (line.split() for line in text.splitlines()) if len(f) == 2 and f[0][0] != "#"}

    def wait_ready(self) -> None:
        """Until the server answers and its scan of the directory is done (its own metrics: one
        traversal, no scan pending or running), within DEADLINE."""
        assert self.proc is not None
        deadline = time.monotonic() + DEADLINE
        while True:
            assert self.proc.poll() is None, (self.work / "debuginfod.log").read_text(errors="replace")
            try:
                m = self.metrics()
                if m.get('thread_work_total{role="traverse"}', "0") != "0" and \
                        m.get('thread_work_pending{role="scan"}') == "0" and m.get('thread_busy{role="scan"}') == "0":
                    return
            except OSError:
                pass  # not listening yet
            assert time.monotonic() < deadline, "debuginfod did not finish its scan"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def debuginfod(served: dict[str, object], tmp_path: Path) -> Iterator[Debuginfod]:
    if shutil.which("debuginfod") is None:
        pytest.skip("debuginfod not installed (tools/setup: Debian's debuginfod package)")
    work = tmp_path / "debuginfod"
    work.mkdir()
    server = Debuginfod(served["dir"], work)  # type: ignore[arg-type]
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def served(build5: Build, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A directory with sample-tree's vmlinux and .ko files (each has a GNU build ID: the sample
    tree links with --build-id), their build IDs, a saved kallsyms that lists every module as
    loaded, and the index 'kasalias index' makes of those files."""
    d = tmp_path_factory.mktemp("served")
    files = d / "files"
    files.mkdir()
    shutil.copy2(build5.vmlinux, files / "vmlinux")
    for m in build5.modules:
        shutil.copy2(m.with_suffix(".ko"), files / m.with_suffix(".ko").name)
    ids = {module_name(p): build_id(p) for p in files.glob("*.ko")}
    assert len(ids) == len(build5.modules) >= 6
    vmlinux = build_id(files / "vmlinux")
    kallsyms = d / "kallsyms"
    lines = [f"{a + SLIDE:016x} {t} {n}" for a, t, n in nm_symbols(files / "vmlinux") if t in "tTdDbBrR" and n]
    for i, name in enumerate(sorted(ids)):  # one section per 64 KiB, as test_index.fake_kallsyms
        secs: dict[str, int] = {}
        for s in elf_symbols(files / next(p.name for p in files.glob("*.ko") if module_name(p) == name)):
            if s["name"] and s["type"] in ("STT_FUNC", "STT_OBJECT") and s["section"] not in ("SHN_UNDEF", "SHN_ABS"):
                base = 0xffffffffc0200000 + 0x100000 * i + 0x10000 * secs.setdefault(str(s["section"]), len(secs))
                lines.append(f"{base + int(s['value']):016x} t {s['name']}\t[{name}]")  # type: ignore[call-overload]
    kallsyms.write_text("\n".join(lines) + "\n")
    index = d / "reference.index"
    proc = kasalias("index", "--vmlinux", files / "vmlinux", "--modules-dir", files, "-o", index, env={})
    assert proc.returncode == 0, proc.stderr
    return {"dir": files, "vmlinux": vmlinux, "modules": ids, "kallsyms": kallsyms, "index": index,
            "saved": ["--kallsyms", kallsyms, "--build-id", vmlinux,
                      *[a for m, b in sorted(ids.items()) for a in ("--module-build-id", f"{m}={b}")]]}


def entries(index: Path) -> list[list[str]]:
    return [line.split("\t") for line in index.read_text().splitlines() if not line.startswith("#")]


def test_fetched_once_then_from_the_cache(served: dict[str, object], debuginfod: Debuginfod, tmp_path: Path) -> None:
    """The first lookup fetches vmlinux and the loaded modules that list the alias's name, no
    other; kallsyms fetches the rest; with the server stopped, every command answers from the
    cache, as with the index of the same files."""
    cache = tmp_path / "cache"
    env = {"DEBUGINFOD_URLS": debuginfod.url, "DEBUGINFOD_CACHE_PATH": str(cache)}
    saved: list[object] = served["saved"]  # type: ignore[assignment]
    ref: list[object] = ["--index", served["index"]]
    ids: dict[str, str] = served["modules"]  # type: ignore[assignment]
    vm = str(served["vmlinux"])
    rows = entries(served["index"])  # type: ignore[arg-type]
    name_show = next(r[1] for r in rows if r[0] == "vmlinux" and r[2] == "name_show")
    holders = sorted({r[0] for r in rows if r[2] == "name_show" and r[0] != "vmlinux"})
    assert holders and len(holders) < len(ids)  # some modules list it, some do not

    started = time.monotonic()
    first = kasalias("-v", "lookup", *saved, name_show, env=env)
    first_seconds = time.monotonic() - started
    assert first.returncode == 0, first.stderr
    assert first.stdout == kasalias("lookup", *saved, *ref, name_show, env={}).stdout != ""
    assert f"fetching the debug info of vmlinux (build ID {vm}" in first.stderr
    files = cache_files(cache)
    assert [f for f in files if f.endswith("/debuginfo")] == sorted([f"{vm}/debuginfo",
                                                                    *[f"{ids[m]}/debuginfo" for m in holders]])
    assert len([f for f in files if f.startswith(f"{vm}/kasalias-") and f.endswith(".index")]) == 1 == \
        len(files) - 1 - len(holders)

    # every alias: the index grows by the other modules; vmlinux is not fetched again
    every = kasalias("-v", "kallsyms", *saved, env=env)
    assert every.returncode == 0, every.stderr
    assert every.stdout == kasalias("kallsyms", *saved, *ref, env={}).stdout
    assert "fetching the debug info of vmlinux" not in every.stderr
    assert all(f"fetching the debug info of {m} " in every.stderr for m in ids if m not in holders)
    assert len([f for f in cache_files(cache) if f.endswith("/debuginfo")]) == 1 + len(ids)

    debuginfod.stop()  # from here on, asking the server would fail
    aliases = [r[1] for r in rows]
    started = time.monotonic()
    second = kasalias("lookup", *saved, name_show, env=env)
    second_seconds = time.monotonic() - started
    assert (second.returncode, second.stdout, second.stderr) == (0, first.stdout, "")
    for argv in (["lookup", *saved, *aliases], ["kallsyms", *saved],
                 ["probe", "--for", "kprobe", *saved, "get_block@*", name_show],
                 ["probe", "--for", "bpftrace", "--return", *saved, "*@*"]):
        got = kasalias(*argv, env=env)
        want = kasalias(*argv, *ref, env={})
        assert (got.returncode, got.stdout, got.stderr) == (0, want.stdout, want.stderr) and got.stdout, argv
    verbose = kasalias("-v", "lookup", *saved, name_show, env=env)
    assert "lists no aliases" in verbose.stderr and "from the cache" in verbose.stderr
    print(f"\nfirst lookup (fetch + index) {first_seconds:.2f} s, second (cache) {second_seconds:.2f} s")


def test_a_build_id_no_server_has(served: dict[str, object], debuginfod: Debuginfod, tmp_path: Path) -> None:
    """vmlinux: an error (404). A module: left out with a warning, not asked for again. The
    default cache: $XDG_CACHE_HOME/kasalias."""
    xdg = tmp_path / "xdg"
    env = {"DEBUGINFOD_URLS": f"{debuginfod.url}/", "XDG_CACHE_HOME": str(xdg)}
    alias = next(r[1] for r in entries(served["index"]) if r[0] == "minix")  # type: ignore[arg-type]
    proc = kasalias("lookup", "--kallsyms", served["kallsyms"], "--build-id", "0f" * 20, alias, env=env)
    assert_one_error(proc, f"no debuginfod server has the debug info of vmlinux (build ID {'0f' * 20})",
                     f"{debuginfod.url}: not found (HTTP 404)", "--index")
    assert cache_files(xdg) == []
    unknown = ["--kallsyms", served["kallsyms"], "--build-id", served["vmlinux"], "--module-build-id",
               f"minix={'ab' * 20}"]
    proc = kasalias("-v", "lookup", *unknown, alias, env=env)
    assert proc.returncode == 1 and f"module minix: no debuginfod server has its debug info (build ID {'ab' * 20})" \
        in proc.stderr and proc.stderr.splitlines()[-1] == f"kasalias: error: not in the index: {alias}"
    again = kasalias("-v", "lookup", *unknown, alias, env=env)
    assert "fetching" not in again.stderr and "no server had its debug info" in again.stderr
    assert cache_files(xdg) == sorted([f"kasalias/{served['vmlinux']}/debuginfo",
                                       *[f for f in cache_files(xdg) if f.endswith((".index", ".unavailable"))]])


def test_a_server_down(served: dict[str, object], tmp_path: Path) -> None:
    with socket.socket() as s:  # bound, not listening: refused, and no one else gets the port meanwhile
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        proc = kasalias("lookup", *served["saved"], "x@y_c_1",  # type: ignore[misc]
                        env={"DEBUGINFOD_URLS": url, "DEBUGINFOD_CACHE_PATH": str(tmp_path / "cache")})
    assert_one_error(proc, f"cannot fetch the debug info of vmlinux (build ID {served['vmlinux']})",
                     f"{url}/buildid/{served['vmlinux']}/debuginfo: cannot connect (Connection refused)")
    assert cache_files(tmp_path / "cache") == []


@pytest.mark.parametrize("kind, needle", [
    ("short", "truncated download: {half} of {size} bytes (Content-Length)"),
    ("html", "not an ELF file: the server sent something else"),
    ("other", "the file sent has build ID {other}, not {vmlinux}"),
    ("cut-elf", "not a readable ELF file"),
])
def test_a_bad_download(served: dict[str, object], tmp_path: Path, kind: str, needle: str) -> None:
    """A server of our own: a body shorter than its Content-Length, an HTML page, another file,
    an ELF file cut short (no Content-Length: the end of the connection ends it)."""
    files: Path = served["dir"]  # type: ignore[assignment]
    data = (files / "vmlinux").read_bytes()
    other = next(files.glob("*.ko"))
    body, length = {"short": (data[:len(data) // 2], len(data)), "html": (b"<html>busy</html>\n", None),
                    "other": (other.read_bytes(), None), "cut-elf": (data[:len(data) // 2], -1)}[kind]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            if length != -1:
                self.send_header("Content-Length", str(length if length is not None else len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        cache = tmp_path / "cache"
        proc = kasalias("lookup", *served["saved"], "x@y_c_1",  # type: ignore[misc]
                        env={"DEBUGINFOD_URLS": f"http://127.0.0.1:{server.server_address[1]}",
                             "DEBUGINFOD_CACHE_PATH": str(cache)})
    finally:
        server.shutdown()
        server.server_close()
    assert_one_error(proc, f"cannot fetch the debug info of vmlinux (build ID {served['vmlinux']})",
                     needle.format(half=len(data) // 2, size=len(data), other=build_id(other),
                                   vmlinux=served["vmlinux"]))
    assert cache_files(cache) == [] and list(cache.iterdir()) == []  # not even an empty directory


def test_what_to_set(served: dict[str, object], tmp_path: Path) -> None:
    env = {"DEBUGINFOD_CACHE_PATH": str(tmp_path / "cache")}
    proc = kasalias("kallsyms", *served["saved"], env=env)  # type: ignore[misc]
    assert_one_error(proc, "DEBUGINFOD_URLS is not set: set it to the debuginfod server(s) of this kernel's "
                     f"distribution to fetch the debug info of vmlinux (build ID {served['vmlinux']}), or give "
                     "--index FILE")
    proc = kasalias("probe", "--for", "kprobe", "--kallsyms", served["kallsyms"], "x@y_c_1", env=env)
    assert_one_error(proc, "lists no aliases (a kernel built without 'make KAS_ALIAS=1'): give --build-id HEX")
    proc = kasalias("lookup", "--kallsyms", served["kallsyms"], "--build-id", "../../etc", "x@y_c_1", env=env)
    assert_one_error(proc, "--build-id: '../../etc' is not a build ID")
    proc = kasalias("lookup", *served["saved"], "--module-build-id", "minix", "x@y_c_1", env=env)  # type: ignore[misc]
    assert_one_error(proc, "--module-build-id 'minix': expected MODULE=HEX")
    assert not (tmp_path / "cache").exists()


KALLSYMS_WITH_ALIASES = """\
ffffffff81000000 T _text
ffffffff81100010 t type_show
ffffffff81100010 t type_show@kernel_events_core_c_11671
ffffffff81200020 t type_show
ffffffff81200020 t type_show@net_core_net_sysfs_c_116
ffffffffa0010000 t get_block\t[minix]
ffffffffa0010000 t get_block@fs_minix_itree_common_c_152@fs_minix_itree_v1_c\t[minix]
"""


def test_a_kernel_with_aliases_never_fetches(tmp_path: Path) -> None:
    """Its kallsyms names the copies: probe answers as it always did, with DEBUGINFOD_URLS set
    (to a port where nothing listens) and without; no cache is made. lookup and kallsyms
    without --index say where the aliases are."""
    kallsyms = tmp_path / "kallsyms"
    kallsyms.write_text(KALLSYMS_WITH_ALIASES)
    cache = tmp_path / "cache"
    env = {"DEBUGINFOD_URLS": f"http://127.0.0.1:{free_port()}", "DEBUGINFOD_CACHE_PATH": str(cache)}
    for tool in ("kprobe", "bpftrace", "perf"):
        argv = ["probe", "--for", tool, "--kallsyms", kallsyms, "type_show@*", "get_block@*"]
        got, plain = kasalias(*argv, env=env), kasalias(*argv, env={})
        assert got.returncode == 0 and got.stdout and (got.stdout, got.stderr) == (plain.stdout, plain.stderr)
    verbose = kasalias("-v", "probe", "--for", "kprobe", "--kallsyms", kallsyms, "type_show@*", env=env)
    assert verbose.stderr.splitlines() == [f"kasalias: info: {kallsyms} lists aliases (a kernel built with "
                                           "'make KAS_ALIAS=1'): they name the copies"]
    assert_one_error(kasalias("lookup", "--kallsyms", kallsyms, "type_show@net_core_net_sysfs_c_116", env=env),
                     "lists the aliases itself")
    assert_one_error(kasalias("kallsyms", "--kallsyms", kallsyms, env=env), "lists the aliases itself")
    assert_one_error(kasalias("probe", "--for", "kprobe", "--kallsyms", kallsyms, "--build-id", "ab" * 20,
                              "type_show@*", env=env), "--build-id and --module-build-id go with --index")
    assert not cache.exists()


def _running_kernel_without_aliases() -> str:
    """The running kernel's build ID, where its kallsyms is readable (addresses too) and lists
    no aliases; else the test is skipped."""
    from kasalias.index import notes_build_id

    try:
        text = Path("/proc/kallsyms").read_text(errors="replace")
        notes = Path("/sys/kernel/notes").read_bytes()
    except OSError as e:
        pytest.skip(f"no kallsyms or notes to read: {e}")
    lines = [line.split() for line in text.splitlines()[:100000]]
    if not lines or all(int(f[0], 16) == 0 for f in lines[:1000]) or any("@" in f[2] for f in lines):
        pytest.skip("kallsyms hides its addresses, or the running kernel has aliases")
    return notes_build_id(notes)


def test_the_running_kernel(tmp_path: Path) -> None:
    """Without --kallsyms: the running kernel's build ID (/sys/kernel/notes) is asked for."""
    vm = _running_kernel_without_aliases()
    env = {"DEBUGINFOD_CACHE_PATH": str(tmp_path / "cache")}
    assert_one_error(kasalias("probe", "--for", "kprobe", "no_such_name@x_c_1", env=env),
                     f"DEBUGINFOD_URLS is not set", f"(build ID {vm})")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        proc = kasalias("-v", "lookup", "*@*", env={**env, "DEBUGINFOD_URLS": url})
    assert proc.returncode == 1 and "/proc/kallsyms lists no aliases" in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith(f"kasalias: error: cannot fetch the debug info of vmlinux (build "
                                                   f"ID {vm}): {url}/buildid/{vm}/debuginfo: cannot connect")
    assert cache_files(tmp_path / "cache") == []


def test_which_modules_and_which_rules(served: dict[str, object], tmp_path: Path) -> None:
    """The modules fetched for NAME@...: those whose kallsyms lines list NAME; every loaded one
    for a pattern over NAME, and for every alias. The kallsyms rules: the version in
    linux_banner."""
    from kasalias.debuginfod import wanted_modules
    from kasalias.index import Kernel, kernel_version

    kernel = Kernel(served["kallsyms"], str(served["vmlinux"]), {})  # type: ignore[arg-type]
    every = sorted(served["modules"])  # type: ignore[call-overload]
    assert wanted_modules(kernel, ["name_show@drivers_rtc_sysfs_c_29"]) == ["hello", "rpmsg_char"]
    assert wanted_modules(kernel, ["get_block@*", "b_show@*"]) == ["kobject_example", "kset_example", "minix"]
    assert wanted_modules(kernel, ["vfs_read_not_in_any_module@x_c_1"]) == []
    for patterns in (None, ["*@fs_minix_*"], ["get_bloc?@*"], ["*"]):
        assert wanted_modules(kernel, patterns) == every, patterns
    files: Path = served["dir"]  # type: ignore[assignment]
    assert kernel_version(files / "vmlinux") == (6, 12)  # "Linux version 6.12.0-sample\n"
    assert kernel_version(files / "minix.ko") is None
