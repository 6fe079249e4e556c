#!/bin/sh
# /test.sh for a kernel built with 'make KAS_ALIAS=1' (busybox sh in the guest).
# Prints what the host test (tests/test_e2e_kernel.py) checks; every line it
# parses starts with "E2E". Exits 0: the verdict is the host's.
TRACE=/sys/kernel/tracing
MODDIR=/lib/modules/$(uname -r)

# The kallsyms lines of every name that occurs twice or more, of every alias,
# of every name that has an alias (ThinLTO's name.llvm.<hash> included), and _text,
# in /proc/kallsyms order.
dump() {
	echo "E2E-KALLSYMS-BEGIN $1"
	awk '{ line[NR] = $0; name[NR] = $3; n[$3]++
	       if ((i = index($3, "@")) > 0) base[substr($3, 1, i - 1)] = 1 }
	     END { for (k = 1; k <= NR; k++) { s = name[k]; c = s; sub(/\.llvm\..*/, "", c)
	           if (n[s] > 1 || index(s, "@") || (s in base) || (c in base) || s == "_text")
	               print "E2E-K " line[k] } }' /proc/kallsyms
	echo "E2E-KALLSYMS-END $1"
}

kprobe() {  # $1: event name, $2: probe point
	if echo "p:$1 $2" >>$TRACE/kprobe_events 2>/tmp/kprobe.err; then
		echo "E2E-KPROBE accepted $2"
	else
		echo "E2E-KPROBE rejected $2 $(cat /tmp/kprobe.err)"
	fi
}

echo "E2E-KERNEL $(uname -r)"
dump vmlinux
# with vmlinux BTF: each aliased copy's BTF FUNC name (its alias, '.' for '@') at the copy's address
awk 'NF == 3 { at[$3] = $1; if (index($3, "@")) alias[$3] = $1 }
     END { for (a in alias) { d = a; gsub(/@/, ".", d); if (d in at && at[d] == alias[a]) print "E2E-FUNCNAME", at[d], d } }' /proc/kallsyms
if [ -e /sys/kernel/btf/vmlinux ]; then echo "E2E-BTF-SYSFS $(wc -c </sys/kernel/btf/vmlinux)"; fi
dmesg | grep -i -e btf -e kfunc | sed 's/^/E2E-DMESG-BTF /'
for m in minix kobject-example kset-example loop hello; do
	if modprobe "$m"; then echo "E2E-MODPROBE ok $m"; else echo "E2E-MODPROBE failed $m"; fi
done
dmesg | grep -q 'module verification failed' && echo "E2E-SIGNATURE failed"
echo "E2E-TAINTED $(cat /proc/sys/kernel/tainted)"
dump modules
# with module BTF: each module's BTF as the kernel took it, and its copies' FUNC names in kallsyms
for f in /sys/kernel/btf/*; do [ "${f##*/}" = vmlinux ] || echo "E2E-BTF-MODULE ${f##*/} $(wc -c <"$f")"; done
awk 'NF == 4 { k = $3 " " $4; at[k] = $1; if (index($3, "@")) alias[k] = $1 }
     END { for (a in alias) { d = a; gsub(/@/, ".", d); if (d in at && at[d] == alias[a]) print "E2E-MODFUNCNAME", at[d], d } }' /proc/kallsyms

dup_alias=$(awk '$3 ~ /^type_show@/ { print $3; exit }' /proc/kallsyms)
mod_alias=$(awk '$3 ~ /^get_block@/ && $4 == "[minix]" { print $3; exit }' /proc/kallsyms)
kprobe e2e_dup type_show
kprobe e2e_alias "$dup_alias"
kprobe e2e_modalias "$mod_alias"
echo "E2E-KPROBE-EVENTS-BEGIN"
cat $TRACE/kprobe_events
echo "E2E-KPROBE-EVENTS-END"
echo >$TRACE/kprobe_events
exit 0
