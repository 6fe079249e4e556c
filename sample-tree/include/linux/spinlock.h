/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sample-tree: case 3.  spin_lock_init() declares a function-local
 * "static struct lock_class_key __key;" at every use.  Without LOCKDEP the
 * key is an empty struct (size 0), so GCC numbers them __key.0, __key.1, ...
 * per compilation unit and several of them can share one address.
 */
#ifndef _LINUX_SPINLOCK_H
#define _LINUX_SPINLOCK_H

struct lock_class_key { };

typedef struct {
	volatile unsigned int lock;
	const char *name;
	struct lock_class_key *key;
} spinlock_t;

void __raw_spin_lock_init(spinlock_t *lock, const char *name,
			  struct lock_class_key *key);

#define spin_lock_init(lock)						\
do {									\
	static struct lock_class_key __key;				\
									\
	__raw_spin_lock_init((lock), #lock, &__key);			\
} while (0)

#endif /* _LINUX_SPINLOCK_H */
