#!/bin/bash
# The running-kernel test of tests/test_debuginfod_guest.py, in the Debian 12 root on Debian's own
# cloud kernel (no aliases in its kallsyms). With only DEBUGINFOD_URLS set (no --index):
#   1. 'kasalias probe --for kprobe' fetches vmlinux's and md_mod's debug info by build ID
#      from the debuginfod on 127.0.0.1, indexes and caches it;
#   2. the server is stopped; 'kasalias probe --for bpftrace' answers from the cache;
# then the kprobe lines go to tracefs and the bpftrace probes to bpftrace, each around one run of
# triggers.sh, and the hit counts are printed. Every line the host parses starts with E2E.
. /kasalias/common.sh
echo "E2E-VERSION kernel $(uname -r)"
echo "E2E-VERSION bpftrace $(bpftrace --version 2>&1 | head -n1)"
echo "E2E-VERSION debuginfod $(debuginfod --version 2>&1 | head -n1)"
echo md0 >/sys/module/md_mod/parameters/new_array || echo "E2E-ERROR md0"
# one copy called, one not, of a vmlinux name and of a name in md_mod (patterns: the line
# numbers are the index's business)
PATTERNS=('type_show@net_core_net_sysfs_c_*' 'type_show@kernel_reboot_c_*'
	'metadata_show@drivers_md_md_c_*' 'metadata_show@drivers_md_md_bitmap_c_*')

start_server || exit 1
t0=$(now)
# DEBUGINFOD_TIMEOUT (libdebuginfod's, the wait for the first byte): the server takes each file
# out of the .deb's data.tar.xz before it answers, over 90 s (the default) for md-mod in this
# TCG guest when the machine is busy
DEBUGINFOD_TIMEOUT=900 DEBUGINFOD_URLS=$URL kasalias -v probe --for kprobe "${PATTERNS[@]}" >/tmp/kprobes 2>/tmp/first.err
echo "E2E-CALL first rc=$? seconds=$(since "$t0")"
out E2E-FIRST-LOG </tmp/first.err
out E2E-SPEC-kprobe </tmp/kprobes
metrics '^http_(requests|responses_total|responses_duration_milliseconds|responses_transfer_bytes_sum)' | out E2E-SERVER-METRICS
stop_server
t0=$(now)
DEBUGINFOD_URLS=$URL kasalias -v probe --for bpftrace "${PATTERNS[@]}" >/tmp/bt.specs 2>/tmp/second.err
echo "E2E-CALL second rc=$? seconds=$(since "$t0")"
out E2E-SECOND-LOG </tmp/second.err
out E2E-SPEC-bpftrace </tmp/bt.specs
du -sb /root/.cache/kasalias | out E2E-CACHE

# --- tracefs kprobe_events -----------------------------------------------------------
if cat /tmp/kprobes >>$T/kprobe_events; then
	echo 1 >$T/events/kasalias/enable
	$K/triggers.sh
	echo 0 >$T/events/kasalias/enable
	awk '{ print "E2E-HITS kprobe", $1, $2 }' $T/kprobe_profile
else
	echo "E2E-ERROR kprobe_events $(tail -n1 $T/error_log)"
fi
echo >$T/kprobe_events

# --- bpftrace: one counter per probe, in the order kasalias printed them ----------------
awk '{ print $0 " { @h" NR - 1 " = count(); }" }' /tmp/bt.specs >/tmp/bt
# an address is not a name ftrace lists: kasalias says so, and --unsafe lets bpftrace take it
bpftrace --unsafe /tmp/bt -c "/usr/bin/dash $K/triggers.sh" >/tmp/bt.out 2>&1; echo "E2E-RC bpftrace $?"
out E2E-BPFTRACE </tmp/bt.out
exit 0
