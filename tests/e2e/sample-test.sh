#!/bin/sh
# Sample /test.sh for the kasalias end-to-end test (busybox sh in the guest).
# Run by the initramfs /init (tests/e2e/mkinitramfs) after proc, sysfs,
# devtmpfs and tracefs are mounted and kptr_restrict is 0.
#
# Reports what /proc/kallsyms shows about duplicated names before and after
# loading the test modules, loads the (signed, xz-compressed) modules, and
# tries kprobe events on a duplicated and on a unique name.  Exits non-zero
# when an expectation of an *unhooked* kernel fails:
#   - every module loads, signatures verify (no "E" taint)
#   - a kprobe on a name with several kallsyms entries is rejected
#     (EADDRNOTAVAIL, Linux >= 6.6 and 6.1.60+)
#   - a kprobe on a unique name is accepted and listed in kprobe_events
# Through tracefs the rejection is EINVAL on 6.12 (EADDRNOTAVAIL only from
# register_kprobe()) and EADDRNOTAVAIL on 6.1.60+; both log "The symbol is
# not unique" in error_log.
#
# Output lines starting with "E2E " are meant for machine checks.

DUP=${DUP:-type_show}            # several static copies in the tinyconfig build
UNIQUE=${UNIQUE:-name_show}      # a single copy in the tinyconfig build
MODDUP=${MODDUP:-b_show}         # in kobject-example, kset-example (and hello)
TRACE=/sys/kernel/tracing
kv=$(uname -r)
MODDIR=/lib/modules/$kv
fail=0
bad() { echo "E2E FAIL $*"; fail=1; }

kallsyms_stats() {
	# $1: label.  Names are compared without the "[module]" column.
	awk -v label="$1" '
		{ n[$3]++; total++; if ($2 ~ /^[tT]$/) t[$3]++ }
		$4 != "" && !($4 in mod) { mod[$4] = 1; nmod++ }
		END {
			for (s in n) if (n[s] > 1) { dn++; ds += n[s] }
			for (s in t) if (t[s] > 1) { tn++; ts += t[s] }
			for (s in n) if (index(s, "@")) al++
			printf "E2E KALLSYMS %s total=%d dup_names=%d dup_syms=%d dup_text_names=%d dup_text_syms=%d aliases=%d modules=%d\n",
				label, total, dn, ds, tn, ts, al, nmod
		}' /proc/kallsyms
}

echo "E2E KERNEL $kv"
echo "E2E KPTR_RESTRICT $(cat /proc/sys/kernel/kptr_restrict)"
kallsyms_stats vmlinux
echo "--- duplicated text names in vmlinux (count name), top 15"
awk '$2 ~ /^[tT]$/ { print $3 }' /proc/kallsyms | sort | uniq -c | awk '$1 > 1' |
	sort -rn | head -n 15
echo "--- grep ' $DUP' and ' $UNIQUE' /proc/kallsyms"
grep -E " ($DUP|$UNIQUE)([@ 	]|\$)" /proc/kallsyms

echo "--- modules"
find "$MODDIR" -name "*.ko*" | sort
# busybox insmod reads the file itself: it tries finit_module() first, and
# on failure (the kernel has no MODULE_DECOMPRESS) decompresses .ko.xz in
# user space and calls init_module().  Check that this works; fall back to
# decompressing by hand.
minix=$(find "$MODDIR" -name 'minix.ko*' | head -n 1)
if [ -z "$minix" ]; then
	bad "minix module not installed"
elif insmod "$minix"; then
	echo "E2E INSMOD minix $minix ok"
else
	echo "E2E INSMOD minix $minix failed; retrying decompressed"
	case $minix in
	*.xz) xz -dc "$minix" >/tmp/minix.ko ;;
	*.gz) gzip -dc "$minix" >/tmp/minix.ko ;;
	*) cp "$minix" /tmp/minix.ko ;;
	esac
	insmod /tmp/minix.ko && echo "E2E INSMOD minix /tmp/minix.ko ok" ||
		bad "insmod minix"
fi
for m in loop kobject-example kset-example; do
	if modprobe "$m"; then echo "E2E MODPROBE $m ok"; else bad "modprobe $m"; fi
done
# the external module from tests/e2e/extmod (installed by tests/e2e/run)
if find "$MODDIR" -name 'hello.ko*' | grep -q .; then
	if modprobe hello; then echo "E2E MODPROBE hello ok"; else bad "modprobe hello"; fi
fi
echo "--- lsmod"
lsmod
for t in /sys/module/*/taint; do
	[ -f "$t" ] || continue
	m=${t#/sys/module/}; m=${m%/taint}
	[ -n "$(cat "$t")" ] && echo "E2E TAINT $m $(cat "$t")"
done
echo "E2E TAINTED $(cat /proc/sys/kernel/tainted)"
if dmesg | grep -q 'module verification failed'; then
	dmesg | grep 'module verification failed'
	bad "module signature verification failed"
fi
kallsyms_stats with-modules
echo "--- duplicated names in modules"
grep -E '\[' /proc/kallsyms | awk '{ print $3 }' | sort | uniq -c | awk '$1 > 1' |
	sort -rn | head -n 15
grep -E " $MODDUP([@ 	]|\$)" /proc/kallsyms

echo "--- kprobe events"
# $1: event name, $2: probe point; appends (">>" keeps other events).
kprobe() {
	if echo "p:$1 $2" >>$TRACE/kprobe_events 2>/tmp/kprobe.err; then
		echo "E2E KPROBE $2 accepted"
		return 0
	fi
	echo "E2E KPROBE $2 rejected: $(cat /tmp/kprobe.err)"
	return 1
}
if [ ! -w $TRACE/kprobe_events ]; then
	bad "no $TRACE/kprobe_events"
else
	kprobe e2e_dup "$DUP" && bad "kprobe on duplicated $DUP was accepted"
	kprobe e2e_moddup "$MODDUP" && bad "kprobe on duplicated $MODDUP was accepted"
	kprobe e2e_modqual "kobject_example:$MODDUP" ||
		bad "kprobe on module-qualified kobject_example:$MODDUP was rejected"
	kprobe e2e_unique "$UNIQUE" || bad "kprobe on unique $UNIQUE was rejected"
	# Informational: two get_block in minix.ko (itree_v1.c and itree_v2.c
	# both include itree_common.c).  6.12 also rejects a name that is
	# duplicated inside the named module; 6.1 does not check MOD:SYM.
	kprobe e2e_minixdup "minix:get_block" || :
	echo "--- $TRACE/error_log"
	cat $TRACE/error_log
	echo "--- $TRACE/kprobe_events"
	cat $TRACE/kprobe_events
	grep -q "e2e_unique $UNIQUE" $TRACE/kprobe_events ||
		bad "e2e_unique not listed in kprobe_events"
	echo >$TRACE/kprobe_events
fi

[ $fail -eq 0 ] && echo "E2E RESULT PASS" || echo "E2E RESULT FAIL"
exit $fail
