// SPDX-License-Identifier: GPL-2.0
/*
 * sample-tree: kernel/printk/printk.c
 * Ordinary global functions (_printk, __warn_printk, panic,
 * __raw_spin_lock_init) that the rest of vmlinux calls.  Nothing duplicated.
 */
#include <linux/kernel.h>
#include <linux/spinlock.h>

#define LOG_LINES 32

static const char *log_buf[LOG_LINES];
static unsigned int log_next;
unsigned int console_loglevel = 7;

int _printk(const char *fmt, ...)
{
	log_buf[log_next++ % LOG_LINES] = fmt;
	return 0;
}

void __warn_printk(const char *fmt, ...)
{
	log_buf[log_next++ % LOG_LINES] = fmt;
	console_loglevel = 8;
}

void panic(const char *fmt, ...)
{
	log_buf[log_next++ % LOG_LINES] = fmt;
	for (;;)
		;
}

void __raw_spin_lock_init(spinlock_t *lock, const char *name,
			  struct lock_class_key *key)
{
	lock->lock = 0;
	lock->name = name;
	lock->key = key;
}
