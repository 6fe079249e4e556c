// SPDX-License-Identifier: GPL-2.0
/*
 * sample-tree: samples/kobject/kset-example.c (module "kset-example",
 * object kset-example.o; kset_example at runtime)
 * case 2: static b_show and b_store, also in kobject-example.c; the static
 * objects baz_attribute and bar_attribute are in both files too (as in the
 * real samples).
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/kobject.h>
#include <linux/string.h>

struct foo_obj {
	struct kobject kobj;
	int foo;
	int baz;
	int bar;
};
#define to_foo_obj(x) container_of(x, struct foo_obj, kobj)

struct foo_attribute {
	struct attribute attr;
	ssize_t (*show)(struct foo_obj *foo, struct foo_attribute *attr, char *buf);
	ssize_t (*store)(struct foo_obj *foo, struct foo_attribute *attr,
			 const char *buf, size_t count);
};

static ssize_t b_show(struct foo_obj *foo_obj, struct foo_attribute *attr,
		      char *buf)
{
	int var;

	if (strcmp(attr->attr.name, "baz") == 0)
		var = foo_obj->baz;
	else
		var = foo_obj->bar;
	return sysfs_emit(buf, "%d\n", var);
}

static ssize_t b_store(struct foo_obj *foo_obj, struct foo_attribute *attr,
		       const char *buf, size_t count)
{
	int var, ret;

	ret = kstrtoint(buf, 10, &var);
	if (ret < 0)
		return ret;
	if (strcmp(attr->attr.name, "baz") == 0)
		foo_obj->baz = var;
	else
		foo_obj->bar = var;
	return count;
}

static struct foo_attribute baz_attribute = __ATTR(baz, 0664, b_show, b_store);
static struct foo_attribute bar_attribute = __ATTR(bar, 0664, b_show, b_store);

static struct attribute *foo_default_attrs[] = {
	&baz_attribute.attr,
	&bar_attribute.attr,
	NULL,
};

static struct attribute_group foo_default_group = {
	.attrs = foo_default_attrs,
};

static struct kset *example_kset;
static struct foo_obj foo_obj_one;

static int __init kset_example_init(void)
{
	example_kset = kset_create_and_add("kset_example", kernel_kobj);
	if (!example_kset)
		return -12;
	kobject_init_and_add(&foo_obj_one.kobj, example_kset, "foo");
	return sysfs_create_group(&foo_obj_one.kobj, &foo_default_group);
}

static void __exit kset_example_exit(void)
{
	kobject_put(&foo_obj_one.kobj);
}

module_init(kset_example_init);
module_exit(kset_example_exit);
MODULE_LICENSE("GPL v2");
