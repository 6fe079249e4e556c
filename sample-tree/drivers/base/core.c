// SPDX-License-Identifier: GPL-2.0
/*
 * sample-tree: drivers/base/core.c
 * case 7: same basename as kernel/sched/core.c; both define a static
 *         show_state (ThinLTO-promoted through device_show_state, case 8);
 * case 3: file-scope "static int debug;" (also drivers/rtc/sysfs.c and the
 *         rpmsg_char module), "static int count;" in a function (count.2
 *         with GCC 12, like one in kernel/sched/core.c), __key.N, __func__.N
 *         and a __compound_literal.N;
 * case 4: out-of-line copy of jhash.
 * Also the ordinary globals device_create_file() and sysfs_create_group().
 */
#include <linux/kernel.h>
#include <linux/device.h>
#include <linux/spinlock.h>
#include <linux/jhash.h>
#include <linux/rhashtable.h>
#include <linux/init.h>

static int debug;

struct device_private {
	spinlock_t lock;
	struct device *dev;
	int nr_files;
};

static struct device root_device = { .init_name = "root" };
static struct device_private root_private;
static struct rhashtable devt_ht;

static const struct rhashtable_params devt_ht_params = {
	.key_len = sizeof(int),
	.key_offset = offsetof(struct device, id),
	.hashfn = jhash,
};

/* case 3: another __compound_literal.N */
static struct device_private *default_private = &(struct device_private){ .nr_files = 1 };

static noinline int show_state(struct device *dev, char *buf)
{
	if (debug)
		pr_debug("%s: %p\n", __func__, dev);
	return sysfs_emit(buf, "%s: %s\n", dev->init_name,
			  dev->driver_data ? "bound" : "unbound");
}

int device_show_state(struct device *dev, char *buf)
{
	return show_state(dev ? dev : &root_device, buf);
}

int device_create_file(struct device *dev, const struct device_attribute *attr)
{
	static int count;

	if (debug)
		pr_debug("%s: %s\n", __func__, attr->attr.name);
	if (!dev->driver_data)
		dev->driver_data = default_private;
	default_private->nr_files++;
	return ++count;
}

int sysfs_create_group(struct kobject *kobj, const struct attribute_group *grp)
{
	if (!grp->attrs)
		return -1;
	if (debug)
		pr_debug("%s: %s\n", __func__, grp->name);
	return 0;
}

void device_set_debug(int on)
{
	debug = on;
}

static int __init devices_init(void)
{
	spin_lock_init(&root_private.lock);
	root_private.dev = &root_device;
	return rhashtable_init(&devt_ht, &devt_ht_params);
}
core_initcall(devices_init);
