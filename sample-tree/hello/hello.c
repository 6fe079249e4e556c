// SPDX-License-Identifier: GPL-2.0
/*
 * sample-tree: hello/hello.c (module "hello", object hello/hello.o)
 * case 2: static name_show in a module (vmlinux has three, rpmsg_char one);
 * case 3: "static const char driver_name[]" (also in two built-in files)
 *         and a __func__.N.
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/device.h>

static const char driver_name[] = "hello";

static struct device hello_dev = { .init_name = "hello0" };

static ssize_t name_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "%s:%s\n", driver_name, dev->init_name);
}
static DEVICE_ATTR_RO(name);

static int __init hello_init(void)
{
	pr_info("%s: %s loaded\n", __func__, driver_name);
	return device_create_file(&hello_dev, &dev_attr_name);
}

static void __exit hello_exit(void)
{
	pr_info("%s: bye\n", driver_name);
}

module_init(hello_init);
module_exit(hello_exit);
MODULE_LICENSE("GPL");
