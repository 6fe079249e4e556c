// SPDX-License-Identifier: GPL-2.0
/*
 * sample-tree: drivers/rtc/sysfs.c
 * case 1: static name_show (also kernel/irq/irqdesc.c and
 *         drivers/base/power/wakeup_stats.c);
 * case 3: file-scope "static int debug;" and "static const char
 *         driver_name[]" (both also elsewhere);
 * case 6: setup_clone.constprop.0, the same clone name as in
 *         kernel/irq/irqdesc.c.
 */
#include <linux/kernel.h>
#include <linux/device.h>
#include <linux/init.h>

static int debug;
static const char driver_name[] = "rtc";

struct rtc_device {
	int id;
	int mode;
	unsigned long max_freq;
	unsigned long irq_freq;
	const char *name;
	struct device dev;
};

static struct rtc_device rtc0 = { .name = "rtc_cmos" };

static ssize_t name_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	struct rtc_device *rtc = container_of(dev, struct rtc_device, dev);

	return sysfs_emit(buf, "%s %s\n", driver_name, rtc->name);
}
static DEVICE_ATTR_RO(name);

static noinline int setup_clone(struct rtc_device *rtc, int mode)
{
	if (debug)
		printk("%s: mode %d\n", driver_name, mode);
	switch (mode) {
	case 1:
		rtc->max_freq = 64;
		rtc->irq_freq = 1;
		break;
	case 3:
		rtc->max_freq = 8192;
		rtc->irq_freq = rtc->max_freq / 4;
		break;
	default:
		rtc->max_freq = 0;
		break;
	}
	rtc->mode = mode;
	return rtc->id;
}

int rtc_set_debug(int on)
{
	debug = on;
	return setup_clone(&rtc0, 3);
}

static int __init rtc_sysfs_init(void)
{
	setup_clone(&rtc0, 3);
	return device_create_file(&rtc0.dev, &dev_attr_name);
}
device_initcall(rtc_sysfs_init);
