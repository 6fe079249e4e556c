#!/bin/bash
# The guest of bench/debuginfod (the same guest as test.sh's): one debuginfod on 127.0.0.1
# serving the cloud kernel's -dbg .deb; times, in seconds, on "E2E-BENCH NAME SECONDS" lines:
#   server-scan      debuginfod's start and scan of the .deb
#   server-extract   the first GET of vmlinux's debug info: the server takes it out of the
#                    .deb (later GETs come from its fdcache; both clients below get that)
#   download         a second GET, to a file: the transfer alone
#   kasalias-first   'kasalias probe --for kprobe type_show@net_core_net_sysfs_c_*', an empty
#                    cache (fetch + index), kasalias-second the same again (its cache)
#   perf-first       'debuginfod-find debuginfo VMLINUX-ID' and 'perf probe -k THAT -n -a
#                    type_show@net/core/net-sysfs.c', empty libdebuginfod cache (fetch +
#                    resolve), perf-second the same again
# ROUNDS (/kasalias/rounds, default 1) repeats the client rows, each round with empty caches
# (a HOME of its own), kasalias and perf in turn.
. /kasalias/common.sh
echo "E2E-VERSION perf $(perf version 2>&1)"
echo "E2E-VERSION debuginfod $(debuginfod --version 2>&1 | head -n1)"
rounds=$(cat $K/rounds 2>/dev/null || echo 1)
VMLINUX_ID=$(python3 -c '
import sys
d = open("/sys/kernel/notes", "rb").read()
i = 0
while i + 12 <= len(d):  # Elf_Nhdr: namesz, descsz, type; name and desc 4-aligned
    nsz, dsz, typ = (int.from_bytes(d[i + 4 * k:i + 4 * k + 4], "little") for k in range(3))
    name = d[i + 12:i + 12 + nsz]
    desc = d[i + 12 + (nsz + 3) // 4 * 4:][:dsz]
    if typ == 3 and name == b"GNU\0":
        print(desc.hex())
    i += 12 + (nsz + 3) // 4 * 4 + (dsz + 3) // 4 * 4
')
bench() {  # NAME CMD...: runs CMD, prints its time and, on failure, its output
	local name=$1 t0 rc
	shift
	t0=$(now)
	"$@" >/tmp/bench.out 2>&1
	rc=$?
	echo "E2E-BENCH $name $(since "$t0") rc=$rc"
	out "E2E-BENCH-OUT $name" </tmp/bench.out
}
get() {  # URL FILE
	python3 -c 'import shutil, sys, urllib.request; shutil.copyfileobj(urllib.request.urlopen(sys.argv[1], timeout=3600), open(sys.argv[2], "wb"), 1 << 20)' "$1" "$2"
}

t0=$(now)
start_server || exit 1
echo "E2E-BENCH server-scan $(since "$t0") rc=0"
bench server-extract get "$URL/buildid/$VMLINUX_ID/debuginfo" /dev/null
bench download get "$URL/buildid/$VMLINUX_ID/debuginfo" /var/tmp/vmlinux.debug
rm -f /var/tmp/vmlinux.debug
for r in $(seq 1 "$rounds"); do
	home=/var/tmp/home-kasalias-$r
	mkdir -p "$home"
	for n in first second; do
		bench "kasalias-$n" env HOME="$home" DEBUGINFOD_TIMEOUT=900 DEBUGINFOD_URLS="$URL" kasalias probe --for kprobe 'type_show@net_core_net_sysfs_c_*'
	done
	rm -rf "$home"
	home=/var/tmp/home-perf-$r
	mkdir -p "$home"
	for n in first second; do
		# perf 6.1 finds no kernel debug info by build ID itself ("Failed to find the path for
		# the kernel: Invalid ELF file"): debuginfod-find fetches it, through the same
		# libdebuginfod and cache, and perf probe -k reads it
		bench "perf-$n" env HOME="$home" DEBUGINFOD_TIMEOUT=900 DEBUGINFOD_URLS="$URL" sh -c \
			'f=$(debuginfod-find debuginfo "$1") && perf probe -k "$f" -n -a type_show@net/core/net-sysfs.c' sh "$VMLINUX_ID"
	done
	du -sb "$home" | out E2E-PERF-CACHE
	rm -rf "$home"
done
metrics '^http_(requests|responses_total)' | out E2E-SERVER-METRICS
exit 0
