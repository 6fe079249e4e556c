#!/bin/sh
# The tracer guest's workload (tests/e2e/tracers/test.sh): calls one copy of each probed pair.
#   type_show of net/core/net-sysfs.c: 3 calls; type_show of kernel/events/core.c: 2 (and
#   whatever the tracer itself reads of /sys/bus/event_source); minix's V1 get_block: reading
#   a file of a minix v1 file system (its V2 copy: never); foo_show of
#   samples/kobject/kobject-example.c: 2 calls, of kset-example.c: 1.
for i in 1 2 3; do cat /sys/class/net/lo/type; done >/dev/null
for i in 1 2; do cat /sys/bus/event_source/devices/software/type; done >/dev/null
for i in 1 2; do cat /sys/kernel/kobject_example/foo; done >/dev/null
cat /sys/kernel/kset_example/foo/foo >/dev/null
mount -t minix -o loop,ro /tmp/minix1.img /mnt && cat /mnt/file >/dev/null
umount /mnt
