/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sample-tree: compiler attribute macros, force-included into every
 * compilation unit (like the kernel's "-include compiler_types.h").
 * No case of its own; noinline/__cold/__used are what make GCC emit the
 * out-of-line symbols the other files demonstrate.
 */
#ifndef _LINUX_COMPILER_TYPES_H
#define _LINUX_COMPILER_TYPES_H

#define inline		inline __attribute__((__gnu_inline__, __unused__))
#define __always_inline	inline __attribute__((__always_inline__))
#define noinline	__attribute__((__noinline__))
#define __cold		__attribute__((__cold__))
#define __noreturn	__attribute__((__noreturn__))
#define __used		__attribute__((__used__))
#define __maybe_unused	__attribute__((__unused__))
#define __section(s)	__attribute__((__section__(s)))
#define __aligned(x)	__attribute__((__aligned__(x)))
#define __printf(a, b)	__attribute__((__format__(printf, a, b)))
#define fallthrough	__attribute__((__fallthrough__))

#if __has_attribute(__externally_visible__)
#define __visible	__attribute__((__externally_visible__))
#else
#define __visible
#endif

#if __has_attribute(__copy__)
#define __copy(symbol)	__attribute__((__copy__(symbol)))
#else
#define __copy(symbol)
#endif

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

#define ___PASTE(a, b)	a##b
#define __PASTE(a, b)	___PASTE(a, b)
#define __UNIQUE_ID(prefix) __PASTE(__PASTE(__UNIQUE_ID_, prefix), __COUNTER__)

#define __stringify_1(x...)	#x
#define __stringify(x...)	__stringify_1(x)

#define __init		__section(".init.text") __cold
#define __exit		__section(".exit.text") __cold
#define __initdata	__section(".init.data")

#endif /* _LINUX_COMPILER_TYPES_H */
