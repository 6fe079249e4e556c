/* SPDX-License-Identifier: GPL-2.0 */
/* sample-tree: sysfs attributes (the *_show callbacks of cases 1, 2 and 7). */
#ifndef _LINUX_SYSFS_H
#define _LINUX_SYSFS_H

#include <linux/types.h>

struct kobject;

struct attribute {
	const char *name;
	umode_t mode;
};

struct attribute_group {
	const char *name;
	struct attribute **attrs;
};

#define __ATTR(_name, _mode, _show, _store) {				\
	.attr = { .name = __stringify(_name), .mode = (_mode) },	\
	.show = _show,							\
	.store = _store,						\
}

#define __ATTR_RO(_name) {						\
	.attr = { .name = __stringify(_name), .mode = 0444 },		\
	.show = _name##_show,						\
}

__printf(2, 3) int sysfs_emit(char *buf, const char *fmt, ...);
int sysfs_create_group(struct kobject *kobj, const struct attribute_group *grp);

#endif /* _LINUX_SYSFS_H */
