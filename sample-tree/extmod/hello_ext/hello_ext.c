// SPDX-License-Identifier: GPL-2.0
/*
 * sample-tree: extmod/hello_ext/hello_ext.c (out-of-tree module "hello_ext",
 * built by extmod/Makefile against the sample tree's headers)
 * A module built after the tree: its static name_show duplicates the
 * in-tree ones (3 in vmlinux, hello, rpmsg_char); its static
 * hello_unique_ext_fn is unique everywhere.
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/device.h>

static struct device hello_ext_dev = { .init_name = "hello_ext0" };

static noinline int hello_unique_ext_fn(int x)
{
	return x * 3 + hello_ext_dev.id;
}

static ssize_t name_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "%s %d\n", dev->init_name, hello_unique_ext_fn(dev->id));
}
static DEVICE_ATTR_RO(name);

static int __init hello_ext_init(void)
{
	return device_create_file(&hello_ext_dev, &dev_attr_name);
}

static void __exit hello_ext_exit(void)
{
	hello_ext_dev.id = hello_unique_ext_fn(0);
}

module_init(hello_ext_init);
module_exit(hello_ext_exit);
MODULE_LICENSE("GPL");
