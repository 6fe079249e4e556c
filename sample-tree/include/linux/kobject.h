/* SPDX-License-Identifier: GPL-2.0 */
/* sample-tree: kobjects for samples/kobject (case 2: b_show in two modules). */
#ifndef _LINUX_KOBJECT_H
#define _LINUX_KOBJECT_H

#include <linux/types.h>
#include <linux/sysfs.h>

struct kobject {
	const char *name;
	struct kobject *parent;
};

struct kset {
	struct kobject kobj;
};

struct kobj_attribute {
	struct attribute attr;
	ssize_t (*show)(struct kobject *kobj, struct kobj_attribute *attr,
			char *buf);
	ssize_t (*store)(struct kobject *kobj, struct kobj_attribute *attr,
			 const char *buf, size_t count);
};

extern struct kobject *kernel_kobj;

struct kobject *kobject_create_and_add(const char *name, struct kobject *parent);
struct kset *kset_create_and_add(const char *name, struct kobject *parent);
int kobject_init_and_add(struct kobject *kobj, struct kset *kset, const char *name);
void kobject_put(struct kobject *kobj);
int kstrtoint(const char *s, unsigned int base, int *res);

#endif /* _LINUX_KOBJECT_H */
