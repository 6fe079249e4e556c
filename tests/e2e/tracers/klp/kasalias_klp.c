// SPDX-License-Identifier: GPL-2.0
/*
 * A livepatch that replaces one copy of a duplicated function, named by the module
 * parameter 'target' (old_name; old_sympos 0: the name must be unique in vmlinux).
 * With target=type_show@net_core_net_sysfs_c_N (the kasalias alias of net-sysfs's
 * type_show), /sys/class/net/lo/type reads "4242" and every other type_show copy is
 * left alone; with the bare target=type_show the kernel refuses the patch.
 * Like samples/livepatch/livepatch-sample.c.
 */
#include <linux/device.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/sysfs.h>

static char *target = "";
module_param(target, charp, 0444);
MODULE_PARM_DESC(target, "the function to replace (old_name)");

static ssize_t kasalias_type_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "4242\n");
}

static struct klp_func funcs[] = {
	{ .new_func = kasalias_type_show, },
	{ }
};

static struct klp_object objs[] = {
	{ .funcs = funcs, },	/* name NULL: vmlinux */
	{ }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int kasalias_klp_init(void)
{
	funcs[0].old_name = target;
	return klp_enable_patch(&patch);
}

static void kasalias_klp_exit(void)
{
}

module_init(kasalias_klp_init);
module_exit(kasalias_klp_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
