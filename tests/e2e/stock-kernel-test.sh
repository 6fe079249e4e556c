#!/bin/sh
# /test.sh for Debian's own kernel (no kasalias hooks, no rebuild): loads the modules of
# /modules.txt, then either dumps what 'kasalias lookup' needs (all of /proc/kallsyms, the
# build IDs), or, when /kprobes.txt exists, writes its kprobes ("EVENT PROBE-POINT" lines),
# runs the triggers of /triggers.txt three times and prints the hit counts.
TRACE=/sys/kernel/tracing
MODDIR=/lib/modules/$(uname -r)
echo "E2E-KERNEL $(uname -r)"
while read -r m; do
	f=$(find "$MODDIR" -name "$m.ko*" | head -n 1)
	if [ -n "$f" ] && insmod "$f"; then echo "E2E-MODPROBE ok $m"; else echo "E2E-MODPROBE failed $m"; fi
done </modules.txt
hex() { od -An -v -tx1 "$1" | tr -d ' \n'; }
if [ ! -f /kprobes.txt ]; then
	echo "E2E-BUILDID vmlinux $(hex /sys/kernel/notes)"
	for d in /sys/module/*/notes/.note.gnu.build-id; do
		m=${d#/sys/module/}; m=${m%%/*}
		echo "E2E-BUILDID $m $(hex "$d")"
	done
	echo "E2E-KALLSYMS-BEGIN all"
	sed 's/^/E2E-K /' /proc/kallsyms
	echo "E2E-KALLSYMS-END all"
	exit 0
fi
while read -r ev point; do
	if echo "p:kprobes/$ev $point" >>$TRACE/kprobe_events 2>/tmp/err; then
		echo "E2E-KPROBE accepted $ev $point"
	else
		echo "E2E-KPROBE rejected $ev $point $(cat /tmp/err)"
	fi
done </kprobes.txt
echo 1 >$TRACE/events/kprobes/enable
for i in 1 2 3; do sh /triggers.txt >/dev/null 2>&1; done
echo 0 >$TRACE/events/kprobes/enable
sed 's/^/E2E-HITS /' $TRACE/kprobe_profile
exit 0
