// SPDX-License-Identifier: GPL-2.0
/*
 * sample-tree: drivers/base/power/wakeup_stats.c
 * case 1: static name_show (also kernel/irq/irqdesc.c, drivers/rtc/sysfs.c);
 * case 3: "static const char driver_name[]" (also drivers/rtc/sysfs.c and
 *         the hello module);
 * case 6: wakeup_source_report.part.0 (GCC partial inlining: the cheap
 *         "not active" test is inlined into the callers, the rest is outlined)
 *         and ws_scaled_time.constprop.0.isra.0 (a clone of a clone: the
 *         unused parameter dropped by IPA-CP, then ws replaced by
 *         ws->total_time by IPA-SRA).
 */
#include <linux/kernel.h>
#include <linux/device.h>
#include <linux/init.h>

static const char driver_name[] = "wakeup_stats";

struct wakeup_source {
	const char *name;
	int active;
	unsigned long event_count;
	unsigned long active_count;
	unsigned long wakeup_count;
	unsigned long total_time;
	unsigned long max_time;
	unsigned long hist[8];
	struct device dev;
};

static struct wakeup_source sources[4];

static ssize_t name_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	struct wakeup_source *ws = container_of(dev, struct wakeup_source, dev);

	return sysfs_emit(buf, "%s\n", ws->name ? ws->name : driver_name);
}
static DEVICE_ATTR_RO(name);

static unsigned long wakeup_source_report(struct wakeup_source *ws, int verbose)
{
	unsigned long sum = 0;
	int i;

	if (likely(!ws->active))
		return 0;

	for (i = 0; i < 8; i++) {
		sum += ws->hist[i] * (i + 1);
		if (ws->hist[i] > ws->max_time)
			ws->max_time = ws->hist[i];
	}
	ws->total_time += sum;
	ws->event_count++;
	if (verbose) {
		printk("%s: %s events %lu active %lu\n", driver_name, ws->name,
		       ws->event_count, ws->active_count);
		printk("%s: %s wakeups %lu total %lu max %lu\n", driver_name,
		       ws->name, ws->wakeup_count, ws->total_time, ws->max_time);
	}
	for (i = 0; i < 8; i++)
		ws->hist[i] = ws->hist[i] / 2 + sum / 16;
	return sum;
}

static noinline unsigned long ws_scaled_time(struct wakeup_source *ws, int unused)
{
	return ws->total_time * 3;
}

unsigned long pm_wakeup_report_all(int verbose)
{
	unsigned long sum = 0;
	int i;

	for (i = 0; i < 4; i++)
		sum += wakeup_source_report(&sources[i], verbose) +
		       ws_scaled_time(&sources[i], 0);
	return sum;
}

unsigned long pm_wakeup_report_one(int idx)
{
	return wakeup_source_report(&sources[idx & 3], 1) +
	       ws_scaled_time(&sources[idx & 3], idx);
}

static int __init wakeup_sources_sysfs_init(void)
{
	int i;

	for (i = 0; i < 4; i++)
		device_create_file(&sources[i].dev, &dev_attr_name);
	return 0;
}
subsys_initcall(wakeup_sources_sysfs_init);
