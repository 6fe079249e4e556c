"""Aliases in the tools people trace with, on a booted kernel: bpftrace, perf probe + perf record,
libbpf (kprobe, kprobe_multi by names and by glob), tracefs kprobe and fprobe events, ftrace's
filters, the tools' own wildcards, and livepatch; on the userlands people run.

The hooked 6.12 kernel of tests/test_e2e_kernel.py (its TRACE variant carries BPF, BTF, fprobe
and the function tracer, and is built with KAS_ALIAS=first: each alias is the name ftrace
gives its copy) boots from a root disk made of one Debian suite's own packages
(tests/e2e/fetch-rootfs SUITE: bpftrace, linux-perf, libbpf1, Python for kasalias) with
tests/e2e/tracers/test.sh as init. Each tool probes two copies of a vmlinux name (net-sysfs's
and perf's type_show), two of a module name in one module (minix's V1 and V2 get_block, one
included .c file) and one in each of two modules (the kobject and kset samples' foo_show), in
the form 'kasalias probe --for TOOL' prints, while tests/e2e/tracers/work.sh calls them a
known number of times; the hit counts per copy must say exactly that.

KASALIAS_TRACER_SUITES (comma-separated: bookworm, trixie, sid) picks the userlands; the
default is what CI boots, tests/e2e/outside-ci boots all three.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import ROOT, readme_block, run_kasalias
from test_e2e_kernel import E2E, TRACE, boot_hooked, built_modules, hooked_tree, sh

from kasalias.probe import event_name

pytestmark = pytest.mark.e2e
TRACERS = E2E / "tracers"
# what each tool's hit counts are read from, in the guest's output
TOOLS = ("kprobe", "kprobe-return", "kprobe-index", "bpftrace", "bpftrace-kretprobe", "bpftrace-index", "perf",
         "perf-kprobe-events", "libbpf-single", "libbpf-multi", "ftrace-function", "ftrace-function_graph",
         "ftrace-graph-function", "fprobe")
# each suite's own bpftrace (tests/e2e/fetch-rootfs installs the suite's packages)
BPFTRACE = {"bookworm": "v0.17", "trixie": "v0.23", "sid": "v0.2"}
# CI boots all three, at once (a cold CI run: 28 minutes with Debian 13's alone); tests/e2e/outside-ci
# boots those not in CI_SUITES
CI_SUITES = ("bookworm", "trixie", "sid")
OUTSIDE_CI_SUITES = tuple(x for x in BPFTRACE if x not in CI_SUITES)
SUITES = [x for x in os.environ.get("KASALIAS_TRACER_SUITES", ",".join(CI_SUITES)).split(",") if x]


@dataclass
class TraceGuest:
    log: str
    suite: str = ""
    targets: list[str] = field(default_factory=list)
    hits: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))

    def lines(self, prefix: str) -> list[str]:
        return [l[len(prefix) + 1:] for l in self.log.splitlines() if l.startswith(prefix + " ")]


def build_kcount(out: Path) -> tuple[Path, Path]:
    """tests/e2e/tracers/kcount: clang's BPF target and Debian's libbpf-dev, as a tool author
    builds a libbpf program (the guest has the same suite's libbpf1)."""
    bpf, prog = out / "kcount.bpf.o", out / "kcount"
    sh("clang", "-O2", "-g", "-Wall", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu",
       "-c", TRACERS / "kcount.bpf.c", "-o", bpf)
    sh("cc", "-O2", "-Wall", "-o", prog, TRACERS / "kcount.c", "-lbpf")
    return bpf, prog


def build_kfentry(out: Path, aliases: Path) -> tuple[Path, Path]:
    """tests/e2e/tracers/kfentry: SEC("fentry/NAME") programs on the BTF FUNCs of net-sysfs's and
    perf's type_show (vmlinux), kobject-example's foo_show and minix's V1 get_block (modules),
    NAME as the build's alias table gives it, '@' spelled '.'."""
    wanted = {"NET": ("vmlinux", "type_show@net_core_net_sysfs_c_"),
              "PERF": ("vmlinux", "type_show@kernel_events_core_c_"),
              "KOBJ": ("kobject_example", "foo_show@samples_kobject_kobject_example_c_"),
              "V1": ("minix", "get_block@")}
    names = {}
    for row in aliases.read_text().splitlines():
        f = row.split("\t")
        for key, (image, stem) in wanted.items():
            if len(f) > 5 and f[0] == image and f[5].startswith(stem) and (key != "V1" or f[5].endswith("_v1_c")):
                names[key] = f[5].replace("@", ".")
    assert set(names) == set(wanted), names
    bpf, prog = out / "kfentry.bpf.o", out / "kfentry"
    sh("clang", "-O2", "-g", "-Wall", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu",
       *(f'-D{k}="{v}"' for k, v in sorted(names.items())), "-c", TRACERS / "kfentry.bpf.c", "-o", bpf)
    sh("cc", "-O2", "-Wall", "-o", prog, TRACERS / "kfentry.c", "-lbpf")
    return bpf, prog


def parse(log: str) -> TraceGuest:
    g = TraceGuest(log)
    g.targets = g.lines("E2E-TARGET")
    by_event = {event_name(a, ret): (a, ret) for a in g.targets for ret in (False, True)}
    for line in g.lines("E2E-HITS-EVENT"):  # kprobe_profile: "kprobe EVENT HITS", "kprobe-index EVENT HITS"
        tool, event, n = line.split()[:3]
        alias, ret = by_event[event]
        g.hits[tool + ("-return" if ret else "")][alias] = int(n)
    for tool, prefix in (("bpftrace", "E2E-BPFTRACE"), ("bpftrace-kretprobe", "E2E-BPFTRACE-RET"),
                         ("bpftrace-index", "E2E-BPFTRACE-INDEX")):
        maps = dict(re.findall(rf"^{prefix} @h(\d+): (\d+)$", log, re.M))
        for i, alias in enumerate(g.targets):
            g.hits[tool][alias] = int(maps.get(str(i), 0))  # a map never written is not printed
    for tool, prefix, group in (("perf", "E2E-PERF-SCRIPT", "probe"),
                                ("perf-kprobe-events", "E2E-PERF-EVENTS-SCRIPT", "kasalias")):
        events = {m[1]: int(m[0]) for m in re.findall(rf"^{prefix}\s+(\d+)\s+{group}:(\S+?):?\s*$", log, re.M)}
        for alias in g.targets:
            g.hits[tool][alias] = events.get(event_name(alias), 0)  # perf script shows events with hits
    for mode in ("single", "multi"):
        for line in g.lines(f"E2E-LIBBPF-{mode} KCOUNT"):
            alias, n = line.split()
            g.hits[f"libbpf-{mode}"][alias] = int(n)
    for line in g.lines("E2E-HITS"):
        tool, alias, n = line.split()[:3]
        g.hits[tool][alias] = int(n)
    for line in g.lines("E2E-LIBBPF-fentry KFENTRY"):
        program, n = line.split()
        g.hits["libbpf-fentry"][program] = int(n)
    return g


@dataclass
class TraceKernel:
    """What every tracer guest boots: the kernel, its stripped modules, and the files test.sh uses."""

    obj: Path
    staging: Path
    files: list[tuple[Path, str]]


@pytest.fixture(scope="module")
def trace_kernel(tmp_path_factory: pytest.TempPathFactory) -> TraceKernel:
    obj = boot_hooked(TRACE).obj
    # modules installed as distributions ship them: without DWARF (perf probe looks names up
    # in DWARF when it finds some, and aliases are not there)
    staging = obj / "tracers-staging"
    shutil.rmtree(staging, ignore_errors=True)
    sh(E2E / "build-kernel", hooked_tree(TRACE.series), obj, "modules_install", f"INSTALL_MOD_PATH={staging}",
       "INSTALL_MOD_STRIP=1", TRACE.alias_arg, *TRACE.make_args(), env=TRACE.env())
    tmp = tmp_path_factory.mktemp("tracers")
    bpf, prog = build_kcount(tmp)
    fentry_bpf, fentry_prog = build_kfentry(tmp, obj / "modules.symalias")
    # kasalias in the guest: this checkout's package, run by the guest's Python (Debian's
    # python3-pyelftools and python3-jinja2 in the root file system)
    wrapper = tmp / "kasalias"
    wrapper.write_text('#!/bin/sh\nPYTHONPATH=/opt/kasalias exec python3 -m kasalias "$@"\n')
    wrapper.chmod(0o755)
    package = tmp / "package"
    shutil.copytree(ROOT / "kasalias", package, ignore=shutil.ignore_patterns("__pycache__"))
    klp = tmp / "klp"  # the livepatch module, built against this kernel like an external module
    shutil.copytree(TRACERS / "klp", klp)
    sh(E2E / "build-kernel", hooked_tree(TRACE.series), obj, f"M={klp}", "modules", TRACE.alias_arg,
       *TRACE.make_args(), env=TRACE.env())
    # the index of the build without its aliases (vmlinux, X.ko), as of a distribution's debug package
    index = tmp / "kernel.index"
    run_kasalias("index", "--vmlinux", obj / "vmlinux", "--kernel-version", TRACE.series,
                 *[a for m in built_modules(obj) for a in ("--module", m)], "-o", index)
    readme = tmp / "readme.sh"
    readme.write_text(readme_block("## Tracing with aliases"))
    files = [(TRACERS / "test.sh", "/kasalias/test.sh"), (TRACERS / "work.sh", "/kasalias/work.sh"),
             (readme, "/kasalias/readme.sh"), (index, "/kasalias/kernel.index"),
             (klp / "kasalias_klp.ko", "/kasalias/kasalias_klp.ko"),
             (bpf, "/kasalias/kcount.bpf.o"), (prog, "/kasalias/kcount"), (wrapper, "/usr/local/bin/kasalias"),
             (fentry_bpf, "/kasalias/kfentry.bpf.o"), (fentry_prog, "/kasalias/kfentry"),
             (package, "/opt/kasalias/kasalias")]
    return TraceKernel(obj, staging, files)


@pytest.fixture(scope="module")
def guest_logs(trace_kernel: TraceKernel) -> dict[str, Path]:
    """Every suite's guest, booted at once (QEMU runs one CPU each; the machine has two):
    the serial log of each, by suite."""
    obj = trace_kernel.obj
    env = dict(TRACE.env(), QEMU_MEM="1536M")
    runs: dict[str, tuple[subprocess.Popen[bytes], Path, Path]] = {}
    for suite in SUITES:
        rootfs = sh(E2E / "fetch-rootfs", suite).strip().splitlines()[-1]
        disk = obj / f"tracers-root-{suite}.img"
        sh(E2E / "mkrootdisk", "-r", rootfs, "-m", trace_kernel.staging,
           *[a for s, d in trace_kernel.files for a in ("-f", f"{s}:{d}")], disk)
        log = obj / f"tracers-{suite}.log"
        proc = subprocess.Popen([str(E2E / "boot"), "-t", "2400", "-o", str(log), "-d", str(disk),
                                 "-a", "root=/dev/vda rw init=/kasalias/test.sh", str(obj / TRACE.image)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        runs[suite] = (proc, disk, log)
    for proc, disk, _log in runs.values():
        proc.wait()
        disk.unlink()  # a root disk per suite is about a gigabyte; the log stays
    return {suite: log for suite, (_p, _d, log) in runs.items()}


@pytest.fixture(scope="module", params=SUITES)
def trace_guest(request: pytest.FixtureRequest, guest_logs: dict[str, Path]) -> TraceGuest:
    suite: str = request.param
    log = guest_logs[suite]
    text = log.read_text(errors="replace")
    assert "KASALIAS-E2E-END rc=0" in text, f"the tracer guest did not finish: {log}"
    guest = parse(text)
    guest.suite = suite
    return guest


def test_guest_runs_its_suites_tools(trace_guest: TraceGuest) -> None:
    (version,) = trace_guest.lines("E2E-VERSION bpftrace")
    assert version.startswith(f"bpftrace {BPFTRACE[trace_guest.suite]}"), version


def test_guest_found_the_copies(trace_guest: TraceGuest) -> None:
    net, perf, v1, v2, kobj, kset = trace_guest.targets
    assert net.startswith("type_show@net_core_net_sysfs_c_") and perf.startswith("type_show@kernel_events_core_c_")
    assert v1.startswith("get_block@") and v1.endswith("itree_v1_c") and v2.endswith("itree_v2_c")
    assert kobj.startswith("foo_show@samples_kobject_kobject_example_c_")
    assert kset.startswith("foo_show@samples_kobject_kset_example_c_")
    assert not trace_guest.lines("E2E-ERROR")


@pytest.mark.parametrize("tool", TOOLS)
def test_probe_by_alias_fires_on_that_copy_only(trace_guest: TraceGuest, tool: str) -> None:
    """work.sh reads net-sysfs's type attribute 3 times, perf's twice (the tool may read it
    too), a minix v1 file system, kobject-example's foo twice and kset-example's once: the
    probe on each alias counts its own copy's calls."""
    net, perf, v1, v2, kobj, kset = trace_guest.targets
    hits = trace_guest.hits[tool]
    assert set(hits) == set(trace_guest.targets), (tool, hits)
    assert hits[net] == 3 and hits[perf] >= 2, (tool, hits)
    assert hits[v1] > 0 and hits[v2] == 0, (tool, hits)
    assert hits[kobj] == 2 and hits[kset] == 1, (tool, hits)


def test_ftrace_lists_the_alias(trace_guest: TraceGuest) -> None:
    """On a KAS_ALIAS=first kernel ftrace names each copy by its alias: available_filter_functions
    lists it (and no longer the bare name), set_ftrace_filter refuses the bare name and a
    glob over it selects the aliases."""
    (aff,) = trace_guest.lines("E2E-AFF")
    counts = dict(f.split("=") for f in aff.split())
    assert int(counts["aliases"]) > 100 and counts["net"] == "1" and counts["kobj"] == "1", aff
    assert counts["bare"] == "0", aff
    (bare,) = trace_guest.lines("E2E-BARE ftrace-filter")
    assert not bare.startswith("rc=0"), bare
    (glob,) = trace_guest.lines("E2E-BARE ftrace-glob")
    assert glob.startswith("rc=0") and trace_guest.targets[0] in glob.split(), glob


def test_the_tools_own_wildcards_take_aliases(trace_guest: TraceGuest) -> None:
    """bpftrace's kprobe:"NAME@*" and libbpf's kprobe_multi glob, which go by ftrace's names,
    attach every copy a pattern names: the net-sysfs pattern counts its 3 calls, foo_show@*
    the 2 + 1 of the two modules' copies."""
    for name in ("net", "foo"):
        out = "\n".join(trace_guest.lines(f"E2E-OWN-WILDCARD-bpftrace-{name}"))
        assert re.search(r"^@: 3$", out, re.M), (name, out)
        (libbpf,) = trace_guest.lines(f"E2E-LIBBPF-glob-{name} KCOUNT")
        assert libbpf.split()[-1] == "3", (name, libbpf)


def test_bare_name_is_refused_where_the_kernel_decides(trace_guest: TraceGuest) -> None:
    """The duplicated name itself: a kprobe on it is refused (tracefs and libbpf), as without
    kasalias; fprobe finds no function of that name."""
    (kprobe,) = trace_guest.lines("E2E-BARE kprobe")
    assert not kprobe.startswith("rc=0"), kprobe
    assert any("KCOUNT-REFUSED type_show" in l for l in trace_guest.lines("E2E-BARE libbpf-single"))
    (fprobe,) = trace_guest.lines("E2E-BARE fprobe")
    assert not fprobe.startswith("rc=0"), fprobe


def test_backtraces_name_the_copy(trace_guest: TraceGuest) -> None:
    """What alias-first costs and gives: the kernel prints the alias where it names the copy's
    address (a stack trace's frame, an event's %pS)."""
    stack = "\n".join(trace_guest.lines("E2E-TRADE-stack"))
    kobj = trace_guest.targets[4]
    assert re.search(rf"^ => {re.escape(kobj)}$", stack, re.M), stack  # ftrace's stack: %ps, no offset
    (event,) = trace_guest.lines("E2E-TRADE-event-line")
    assert f"({trace_guest.targets[0]}+0x0/" in event, event
    assert trace_guest.lines("E2E-TRADE-kallsyms") and trace_guest.lines("E2E-TRADE-btf")


def test_bpftrace_patterns_through_kasalias(trace_guest: TraceGuest) -> None:
    """The pattern expanded by 'kasalias probe' attaches every type_show copy, and the
    net-sysfs one counts its 3 calls."""
    lines = "\n".join(trace_guest.lines("E2E-BPFTRACE-WILDCARD"))
    probes = [line.split()[0] for line in trace_guest.lines("E2E-SPEC-bpftrace-wildcard")]
    net = probes.index(f'kprobe:"{trace_guest.targets[0]}"')
    # "Attaching 8 probes..." (0.17 to 0.23), "Attached 8 probes" (0.27)
    assert len(probes) >= 2 and re.search(rf"^Attach(ing|ed) {len(probes)} probes", lines, re.M), lines
    assert re.search(rf"^@h{net}: 3$", lines, re.M), lines


def test_readme_tracing_lines_run_as_written(trace_guest: TraceGuest) -> None:
    assert trace_guest.lines("E2E-README") == ["rc=0"], "\n".join(trace_guest.lines("E2E-README-OUT"))
    out = "\n".join(trace_guest.lines("E2E-README-OUT"))
    assert "@hits: 1" in out and f'kprobe:"{trace_guest.targets[0]}"' in out, out


def test_livepatch_replaces_the_copy_its_alias_names(trace_guest: TraceGuest) -> None:
    """klp_func.old_name = the alias of net-sysfs's type_show: /sys/class/net/lo/type reads the
    patch's 4242, perf's type_show copy still answers; the bare name is refused."""
    (bare,) = trace_guest.lines("E2E-KLP-BARE")
    assert not bare.startswith("rc=0"), bare
    assert any(l.startswith("loaded") for l in trace_guest.lines("E2E-KLP")), trace_guest.lines("E2E-KLP")
    (state,) = [l for l in trace_guest.lines("E2E-KLP") if l.startswith("net=")]
    net, perf = (v.split("=")[1] for v in state.split())
    assert net == "4242" and perf.isdigit() and perf != "4242", state


def test_btf_has_a_func_per_copy_and_the_kernel_took_it(trace_guest: TraceGuest) -> None:
    """vmlinux's BTF holds a static FUNC per aliased copy, named as its alias with '.' for '@',
    and the same name is in kallsyms at the copy's address; the kernel accepted that BTF at
    boot (a rejected one would fail every BPF program load: the BPF tools above attached)."""
    net, perf = trace_guest.targets[:2]
    btf = "\n".join(trace_guest.lines("E2E-FENTRY-BTF"))
    for alias in (net, perf):
        assert re.search(rf"FUNC '{re.escape(alias.replace('@', '.'))}' type_id=\d+ linkage=static", btf), btf
    kallsyms = trace_guest.lines("E2E-FENTRY-KALLSYMS")
    by_name = {l.split()[2]: l.split()[0] for l in kallsyms}
    assert by_name[net.replace("@", ".")] == by_name[net], kallsyms
    assert not trace_guest.lines("E2E-FENTRY-DMESG"), trace_guest.lines("E2E-FENTRY-DMESG")


def test_bpftrace_fentry_and_fexit_on_one_copy(trace_guest: TraceGuest) -> None:
    """bpftrace's fentry and fexit on the net-sysfs copy's FUNC (kfunc/kretfunc in 0.17), as
    'kasalias probe --for bpftrace-fentry' prints it (0.25+: with the --traceable-functions file
    it writes): 3 calls at entry and at exit; perf's copy counts its own."""
    if trace_guest.suite == "sid":
        assert trace_guest.lines("E2E-FENTRY-TRACEABLE") == ["--traceable-functions /tmp/traceable"]
    out = "\n".join(trace_guest.lines("E2E-BPFTRACE-FENTRY"))
    assert re.search(r"^@net: 3$", out, re.M) and re.search(r"^@netret: 3$", out, re.M), out
    perf = re.search(r"^@perf: (\d+)$", out, re.M)
    assert perf and int(perf.group(1)) >= 2, out


def test_bpftrace_fentry_args_are_that_copys(trace_guest: TraceGuest) -> None:
    """The copy's own typed args (net-sysfs's type_show takes a struct device *dev; the bare
    name's FUNC has reboot.c's (kobj, attr, buf)): args.dev->kobj.name is "lo" in its 3 calls.
    bpftrace 0.17 and 0.23 resolve args only for a function ftrace lists by that name, and ftrace
    names the copy by its '@' alias: they refuse (NOTES.md)."""
    out = "\n".join(trace_guest.lines("E2E-BPFTRACE-FENTRY-ARGS"))
    if trace_guest.suite in ("bookworm", "trixie"):
        assert "function not traceable" in out, out
    else:
        assert re.search(r"^@args\[lo\]: 3$", out, re.M), out


def test_libbpf_fentry_section_on_one_copy(trace_guest: TraceGuest) -> None:
    """A libbpf program's SEC("fentry/NAME") and SEC("fexit/NAME") on the net-sysfs copy's
    FUNC fire on that copy only (3 calls); perf's copy's program counts its own."""
    hits = trace_guest.hits["libbpf-fentry"]
    assert not trace_guest.lines("E2E-LIBBPF-fentry KFENTRY-REFUSED"), trace_guest.lines("E2E-LIBBPF-fentry")
    assert hits["net_fentry"] == 3 and hits["net_fexit"] == 3 and hits["perf_fentry"] >= 2, hits


def test_module_btf_has_a_func_per_copy(trace_guest: TraceGuest) -> None:
    """A module's split BTF, as the kernel took it at load (/sys/kernel/btf/MODULE), holds a FUNC
    per aliased copy: minix's two get_block copies (one module), kobject-example's foo_show."""
    _net, _perf, v1, v2, kobj, _kset = trace_guest.targets
    btf = "\n".join(trace_guest.lines("E2E-FENTRY-BTF-MODULE"))
    for alias in (v1, v2, kobj):
        assert re.search(rf"FUNC '{re.escape(alias.replace('@', '.'))}' type_id=\d+ linkage=static", btf), btf


def test_bpftrace_fentry_on_module_copies(trace_guest: TraceGuest) -> None:
    """bpftrace's fentry/fexit on module copies' FUNCs (kfunc/kretfunc in 0.17): kobject-example's
    foo_show fires 2 times at entry and exit (not kset-example's copy), minix's V1 get_block as
    often as its kprobe, the V2 copy never."""
    _net, _perf, v1, _v2, _kobj, _kset = trace_guest.targets
    out = "\n".join(trace_guest.lines("E2E-BPFTRACE-FENTRY-MODULE"))
    assert re.search(r"^@kobj: 2$", out, re.M) and re.search(r"^@kobjret: 2$", out, re.M), out
    kprobe_v1 = trace_guest.hits["kprobe"][v1]
    assert kprobe_v1 > 0 and re.search(rf"^@v1: {kprobe_v1}$", out, re.M), (kprobe_v1, out)
    assert not re.search(r"^@v2: [1-9]", out, re.M), out


def test_bpftrace_fentry_args_on_a_module_copy(trace_guest: TraceGuest) -> None:
    """kobject-example's foo_show copy's typed args: attr->attr.name is "foo" in its 2 calls
    (bpftrace 0.27; 0.17 and 0.23 resolve args only for names ftrace lists, as in vmlinux)."""
    out = "\n".join(trace_guest.lines("E2E-BPFTRACE-FENTRY-MODULE-ARGS"))
    if trace_guest.suite in ("bookworm", "trixie"):
        assert "function not traceable" in out or "@args[foo]: 2" in out, out
    else:
        assert re.search(r"^@args\[foo\]: 2$", out, re.M), out


def test_libbpf_fentry_on_module_copies(trace_guest: TraceGuest) -> None:
    """libbpf's SEC("fentry/NAME") on kobject-example's foo_show copy (found in that module's
    BTF) and SEC("fexit/NAME") on minix's V1 get_block: 2 calls, and as many as its kprobe."""
    _net, _perf, v1, _v2, _kobj, _kset = trace_guest.targets
    hits = trace_guest.hits["libbpf-fentry"]
    assert not trace_guest.lines("E2E-LIBBPF-fentry KFENTRY-REFUSED"), trace_guest.lines("E2E-LIBBPF-fentry")
    assert hits["kobj_fentry"] == 2 and hits["v1_fexit"] == trace_guest.hits["kprobe"][v1] > 0, hits
