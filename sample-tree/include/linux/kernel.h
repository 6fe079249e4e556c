/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sample-tree: printk and friends.  __warn_printk() and panic() are __cold,
 * so a WARN_ON()/panic() path is split off by GCC into a "<fn>.cold" part
 * (case 6).  Passing __func__ to printk gives "__func__.N" objects (case 3).
 */
#ifndef _LINUX_KERNEL_H
#define _LINUX_KERNEL_H

#include <linux/types.h>

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

#define KERN_ERR	"\0013"
#define KERN_INFO	"\0016"
#define KERN_DEBUG	"\0017"

__printf(1, 2) int _printk(const char *fmt, ...);
__printf(1, 2) __cold void __warn_printk(const char *fmt, ...);
__printf(1, 2) __cold __noreturn void panic(const char *fmt, ...);

#define printk(fmt, ...)	_printk(fmt, ##__VA_ARGS__)
#define pr_err(fmt, ...)	printk(KERN_ERR fmt, ##__VA_ARGS__)
#define pr_info(fmt, ...)	printk(KERN_INFO fmt, ##__VA_ARGS__)
#define pr_debug(fmt, ...)	printk(KERN_DEBUG fmt, ##__VA_ARGS__)

#define WARN_ON(condition) ({						\
	int __ret_warn_on = !!(condition);				\
	if (unlikely(__ret_warn_on))					\
		__warn_printk("WARNING in %s\n", __func__);		\
	unlikely(__ret_warn_on);					\
})

#endif /* _LINUX_KERNEL_H */
