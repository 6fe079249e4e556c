// SPDX-License-Identifier: GPL-2.0
/*
 * kasalias e2e: an external (out-of-tree) module, built with
 * `make -C KDIR M=DIR`, whose static functions share names with static
 * functions of vmlinux (type_show) and of in-tree modules (b_show in
 * samples/kobject), plus one unique name.
 */
#include <linux/init.h>
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/sysfs.h>

static struct kobject *hello_kobj;

static ssize_t type_show(struct kobject *kobj, struct kobj_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "hello\n");
}

static ssize_t b_show(struct kobject *kobj, struct kobj_attribute *attr,
		      char *buf)
{
	return sysfs_emit(buf, "b\n");
}

static noinline int kasalias_hello_unique(int x)
{
	return x + 1;
}

static struct kobj_attribute type_attribute = __ATTR_RO(type);
static struct kobj_attribute b_attribute = __ATTR_RO(b);

static struct attribute *hello_attrs[] = {
	&type_attribute.attr,
	&b_attribute.attr,
	NULL,
};

static const struct attribute_group hello_group = {
	.attrs = hello_attrs,
};

static int __init hello_init(void)
{
	int ret;

	hello_kobj = kobject_create_and_add("kasalias_hello", kernel_kobj);
	if (!hello_kobj)
		return -ENOMEM;
	ret = sysfs_create_group(hello_kobj, &hello_group);
	if (ret)
		kobject_put(hello_kobj);
	return kasalias_hello_unique(ret) - 1;
}

static void __exit hello_exit(void)
{
	kobject_put(hello_kobj);
}

module_init(hello_init);
module_exit(hello_exit);
MODULE_DESCRIPTION("kasalias e2e external module");
MODULE_LICENSE("GPL");
