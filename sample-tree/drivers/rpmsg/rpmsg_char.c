// SPDX-License-Identifier: GPL-2.0
/*
 * sample-tree: drivers/rpmsg/rpmsg_char.c (module "rpmsg_char")
 * case 2: static name_show in a second module;
 * case 3: file-scope "static int debug;" (also drivers/base/core.c and
 *         drivers/rtc/sysfs.c), __key.N, __func__.N;
 * case 4: the module's own out-of-line copy of jhash.
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/device.h>
#include <linux/spinlock.h>
#include <linux/jhash.h>
#include <linux/rhashtable.h>

static int debug;

struct rpmsg_eptdev {
	spinlock_t queue_lock;
	unsigned int addr;
	char name[32];
	struct device dev;
};

static struct rpmsg_eptdev eptdev = { .addr = 0x400, .name = "rpmsg-raw" };
static struct rhashtable ept_ht;

static const struct rhashtable_params ept_ht_params = {
	.key_len = sizeof(unsigned int),
	.key_offset = offsetof(struct rpmsg_eptdev, addr),
	.hashfn = jhash,
};

static ssize_t name_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	struct rpmsg_eptdev *e = container_of(dev, struct rpmsg_eptdev, dev);

	if (debug)
		pr_debug("%s: addr %u\n", __func__, e->addr);
	return sysfs_emit(buf, "%s\n", e->name);
}
static DEVICE_ATTR_RO(name);

static int __init rpmsg_chrdev_init(void)
{
	spin_lock_init(&eptdev.queue_lock);
	debug = rhashtable_init(&ept_ht, &ept_ht_params);
	return device_create_file(&eptdev.dev, &dev_attr_name);
}

static void __exit rpmsg_chrdev_exit(void)
{
	debug = 0;
}

module_init(rpmsg_chrdev_init);
module_exit(rpmsg_chrdev_exit);
MODULE_LICENSE("GPL v2");
