"""Debug info by build ID on a running distribution kernel, with nothing downloaded by hand:
Debian's own linux-image-6.12.*-cloud-amd64 (no aliases in its kallsyms) boots in QEMU (-nic
none) from a Debian 12 root disk (tests/e2e/debuginfod/mkguest) whose Debian debuginfod serves,
on 127.0.0.1, a directory holding the kernel's own -dbg .deb. With only DEBUGINFOD_URLS set,
'kasalias probe --for kprobe' fetches vmlinux's and md_mod's debug info from it, indexes and
caches them; the server is stopped; 'kasalias probe --for bpftrace' answers from the cache. The
kprobe lines (tracefs) and the bpftrace probes each fire on the named copy only: net-sysfs's
type_show and md.c's metadata_show are called, kernel/reboot.c's type_show and md-bitmap.c's
metadata_show are not (not events/core.c's type_show, as in tests/test_stock_kernel.py:
bpftrace reads /sys/bus/event_source/devices/kprobe/type, which calls it, as it attaches).
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.e2e
E2E = ROOT / "tests" / "e2e"
GUEST = E2E / "debuginfod"
# alias prefixes of the copies test.sh names, by what triggers.sh does to them
CALLED = ("type_show@net_core_net_sysfs_c_", "metadata_show@drivers_md_md_c_")
NOT_CALLED = ("type_show@kernel_reboot_c_", "metadata_show@drivers_md_md_bitmap_c_")


@dataclass
class Guest:
    log: str
    calls: dict[str, tuple[int, float]] = field(default_factory=dict)  # first/second: (rc, seconds)
    kprobe: dict[str, int] = field(default_factory=dict)  # alias prefix -> hits
    bpftrace: dict[str, int] = field(default_factory=dict)

    def lines(self, prefix: str) -> list[str]:
        return [l[len(prefix) + 1:] for l in self.log.splitlines() if l.startswith(prefix + " ")]


def boot_guest(out: Path, script: Path, timeout: int = 2400) -> str:
    """mkguest + boot; the serial log (the root disk, 2 GB, is removed after the boot)."""
    made = subprocess.run([str(GUEST / "mkguest"), str(out), str(script)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-3000:]
    paths = dict(line.split("=", 1) for line in made.stdout.splitlines() if "=" in line)
    log = out / "guest.log"
    try:
        # two CPUs: the server's scan is bsdtar's xz and debuginfod's ELF reading side by side
        subprocess.run([str(E2E / "boot"), "-t", str(timeout), "-o", str(log), "-d", paths["disk"], paths["kernel"],
                        paths["initrd"]], capture_output=True, text=True,
                       env=dict(os.environ, QEMU_MEM="2G", QEMU_SMP="2"))
    finally:
        Path(paths["disk"]).unlink(missing_ok=True)
    return log.read_text(errors="replace")


def which(prefixes: tuple[str, ...], name: str) -> str:
    """The alias prefix an event name or alias is of (event names: '@' as '_')."""
    (p,) = [p for p in prefixes if name.startswith(p) or name.startswith(p.replace("@", "_"))]
    return p


def parse(log: str) -> Guest:
    g = Guest(log)
    for line in g.lines("E2E-CALL"):
        call, rc, seconds = line.split()
        g.calls[call] = (int(rc.removeprefix("rc=")), float(seconds.removeprefix("seconds=")))
    prefixes = CALLED + NOT_CALLED
    for line in g.lines("E2E-HITS kprobe"):  # kprobe_profile: EVENT HITS
        event, hits = line.split()[:2]
        g.kprobe[which(prefixes, event)] = int(hits)
    # bpftrace's @hN counts the Nth probe kasalias printed (kprobe:0xADDR); the kprobe line of
    # the same address names its copy
    by_address = {f[1]: f[0].split("/", 1)[1] for f in (l.split() for l in g.lines("E2E-SPEC-kprobe"))}
    specs = g.lines("E2E-SPEC-bpftrace")
    counts = dict(re.findall(r"^E2E-BPFTRACE @h(\d+): (\d+)$", log, re.M))
    for i, spec in enumerate(specs):
        g.bpftrace[which(prefixes, by_address[spec.removeprefix("kprobe:")])] = int(counts.get(str(i), 0))
    return g


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Guest:
    log = boot_guest(tmp_path_factory.mktemp("debuginfod-guest"), GUEST / "test.sh")
    assert "KASALIAS-E2E-END rc=0" in log, log[-4000:]
    return parse(log)


def test_first_call_fetches_second_from_the_cache(guest: Guest) -> None:
    """The first call fetched vmlinux's and md_mod's debug info from the server (its -v log and
    the server's own count of answered requests); the second ran with the server stopped, from
    the cache. Both wall times are in the log (E2E-CALL)."""
    assert guest.calls["first"][0] == 0 and guest.calls["second"][0] == 0, guest.calls
    (ready,) = [l.split()[1] for l in guest.lines("E2E-SERVER") if l.startswith("ready ")]
    print(f"in the guest: server scan {ready} s, first call {guest.calls['first'][1]:.2f} s, "
          f"second {guest.calls['second'][1]:.2f} s")
    assert guest.calls["second"][1] < guest.calls["first"][1], guest.calls
    first = "\n".join(guest.lines("E2E-FIRST-LOG"))
    assert re.search(r"fetching the debug info of vmlinux \(build ID [0-9a-f]{40}", first), first
    assert re.search(r"fetching the debug info of md_mod \(build ID [0-9a-f]{40}", first), first
    metrics = dict(l.rsplit(" ", 1) for l in guest.lines("E2E-SERVER-METRICS"))
    assert metrics.get('http_responses_duration_milliseconds_count{code="200",type="debuginfo"}') == "2", metrics
    assert float(metrics['http_responses_transfer_bytes_sum{code="200",type="debuginfo"}']) > 300e6, metrics
    assert guest.lines("E2E-SERVER")[-1] == "down"
    second = "\n".join(guest.lines("E2E-SECOND-LOG"))
    assert "from the cache" in second and "fetching" not in second, second
    # the cache: both debug files and the index (the vmlinux's alone is about 340 MB)
    (cache,) = guest.lines("E2E-CACHE")
    assert int(cache.split()[0]) > 300_000_000, cache


@pytest.mark.parametrize("tool", ["kprobe", "bpftrace"])
def test_probes_fire_on_the_named_copy_only(guest: Guest, tool: str) -> None:
    """triggers.sh reads lo's type 3 times (net-sysfs's type_show: 3 calls) and md0's
    metadata_version 3 times (md.c's metadata_show: the same number of calls each read, so a
    multiple of 3); the other copies of both names: never."""
    hits: dict[str, int] = getattr(guest, tool)
    assert set(hits) == set(CALLED + NOT_CALLED), (tool, hits, guest.lines("E2E-BPFTRACE"))
    vhit, mhit = (hits[p] for p in CALLED)
    assert vhit == 3 and mhit % 3 == 0 < mhit, (tool, hits)
    assert [hits[p] for p in NOT_CALLED] == [0, 0], (tool, hits)
