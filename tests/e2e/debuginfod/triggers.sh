#!/bin/sh
# The debuginfod guest's workload: calls the named copies a known number of times, their
# other copies never. net-sysfs's type_show: 3 calls (3 reads of lo's type); md.c's
# metadata_show: on each of 3 reads of md0's metadata_version (sysfs calls a show more than
# once a read, as many times each read). kernel/reboot.c's type_show and md-bitmap.c's
# metadata_show: no read of theirs.
for i in 1 2 3; do
	cat /sys/class/net/lo/type
	cat /sys/block/md0/md/metadata_version
done >/dev/null
