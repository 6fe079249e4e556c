// SPDX-License-Identifier: GPL-2.0
/*
 * sample-tree: fs/sysfs/file.c
 * The ordinary global sysfs_emit() every *_show function calls.
 */
#include <linux/kernel.h>
#include <linux/sysfs.h>

int sysfs_emit(char *buf, const char *fmt, ...)
{
	int n = 0;

	while (fmt[n] && n < 4095) {
		buf[n] = fmt[n];
		n++;
	}
	buf[n] = 0;
	return n;
}
