/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sample-tree: struct device and DEVICE_ATTR_RO().  "static DEVICE_ATTR_RO(name);"
 * needs a function called name_show and defines "static struct device_attribute
 * dev_attr_name": this is how the kernel ends up with many static name_show
 * functions (cases 1 and 2) and dev_attr_name objects.
 */
#ifndef _LINUX_DEVICE_H
#define _LINUX_DEVICE_H

#include <linux/types.h>
#include <linux/sysfs.h>

struct device {
	const char *init_name;
	int id;
	void *driver_data;
};

struct device_attribute {
	struct attribute attr;
	ssize_t (*show)(struct device *dev, struct device_attribute *attr,
			char *buf);
	ssize_t (*store)(struct device *dev, struct device_attribute *attr,
			 const char *buf, size_t count);
};

#define DEVICE_ATTR_RO(_name) \
	struct device_attribute dev_attr_##_name = __ATTR_RO(_name)

int device_create_file(struct device *dev, const struct device_attribute *attr);

#endif /* _LINUX_DEVICE_H */
