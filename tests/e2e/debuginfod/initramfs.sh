#!/bin/sh
# /test.sh of the debuginfod guest's initramfs (tests/e2e/debuginfod/mkguest): Debian's cloud
# kernel has virtio_blk as a module, so this busybox stage loads it (and md-mod, the module
# whose copies the guest probes), brings up the loopback interface (the only one: QEMU runs
# with -nic none), mounts the Debian root disk /dev/vda and runs its /kasalias/run.sh there
# (chroot: /init, PID 1, prints the end marker with its status).
MODDIR=/lib/modules/$(uname -r)
for m in virtio_blk md-mod; do
	f=$(find "$MODDIR" -name "$m.ko*" | head -n 1)
	if [ -n "$f" ] && insmod "$f"; then echo "E2E-MODPROBE ok $m"; else echo "E2E-MODPROBE failed $m"; exit 1; fi
done
ip link set lo up || exit 1
mkdir -p /newroot
# the disk appears once virtio_blk has probed it: wait for its node, a bounded number of tries
n=0
while [ ! -b /dev/vda ]; do
	n=$((n + 1))
	[ $n -le 100 ] || { echo "E2E-ERROR no /dev/vda"; exit 1; }
	sleep 0.1
done
mount -t ext4 -o rw /dev/vda /newroot || exit 1
mount -t proc proc /newroot/proc
mount -t sysfs sys /newroot/sys
mount -t devtmpfs dev /newroot/dev
mount -t tracefs nodev /newroot/sys/kernel/tracing
mount -t debugfs nodev /newroot/sys/kernel/debug
mount -t tmpfs tmp /newroot/tmp
mount -t tmpfs run /newroot/run
mount -t bpf bpf /newroot/sys/fs/bpf 2>/dev/null
chroot /newroot /bin/bash /kasalias/run.sh
rc=$?
sync
exit $rc
