// SPDX-License-Identifier: GPL-2.0
/*
 * sample-tree: kernel/irq/irqdesc.c
 * case 1: static name_show (also in drivers/base/power/wakeup_stats.c and
 *         drivers/rtc/sysfs.c), with its static dev_attr_name;
 * case 3: __key.N (spin_lock_init in two functions), __func__.N;
 * case 4: out-of-line copy of the header's static inline jhash;
 * case 6: setup_clone.constprop.0 (the same clone name in drivers/rtc/sysfs.c).
 */
#include <linux/kernel.h>
#include <linux/device.h>
#include <linux/spinlock.h>
#include <linux/jhash.h>
#include <linux/rhashtable.h>
#include <linux/init.h>

#define NR_IRQS 16

struct irq_desc {
	spinlock_t lock;
	unsigned int irq;
	unsigned int depth;
	unsigned int flags;
	const char *name;
	struct device dev;
};

static struct irq_desc irq_descs[NR_IRQS];
static struct rhashtable irq_ht;

static const struct rhashtable_params irq_ht_params = {
	.key_len = sizeof(unsigned int),
	.key_offset = offsetof(struct irq_desc, irq),
	.hashfn = jhash,
};

static ssize_t name_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	struct irq_desc *desc = container_of(dev, struct irq_desc, dev);

	return sysfs_emit(buf, "%s\n", desc->name ? desc->name : "");
}
static DEVICE_ATTR_RO(name);

static noinline int setup_clone(struct irq_desc *desc, int mode)
{
	switch (mode) {
	case 0:
		desc->depth = 0;
		return 0;
	case 1:
		desc->depth = 1;
		desc->flags |= 0x10;
		return 1;
	case 2:
		desc->depth = desc->irq + 2;
		desc->flags |= 0x20;
		desc->name = "edge";
		return 2;
	default:
		desc->flags = 0;
		return -1;
	}
}

struct irq_desc *irq_to_desc(unsigned int irq)
{
	if (irq >= NR_IRQS) {
		pr_err("%s: bad irq %u\n", __func__, irq);
		return NULL;
	}
	return &irq_descs[irq];
}

int irq_set_chained(unsigned int irq)
{
	struct irq_desc *desc = irq_to_desc(irq);

	if (!desc)
		return -1;
	spin_lock_init(&desc->lock);
	return setup_clone(desc, 2);
}

static int __init early_irq_init(void)
{
	unsigned int i;

	for (i = 0; i < NR_IRQS; i++) {
		irq_descs[i].irq = i;
		spin_lock_init(&irq_descs[i].lock);
		setup_clone(&irq_descs[i], 2);
		device_create_file(&irq_descs[i].dev, &dev_attr_name);
	}
	pr_info("%s: %d irqs\n", __func__, NR_IRQS);
	return rhashtable_init(&irq_ht, &irq_ht_params);
}
core_initcall(early_irq_init);
