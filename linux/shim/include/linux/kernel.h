/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef _LINUX_KERNEL_H
#define _LINUX_KERNEL_H

#include <linux/types.h>
#include <linux/compiler.h>
#include <linux/limits.h>
#include <linux/stdarg.h>
#include <linux/build_bug.h>
#include <linux/printk.h>
#include <linux/bug.h>
#include <linux/err.h>
#include <linux/string.h>
#include <linux/log2.h>
#include <linux/bits.h>
#include <asm/byteorder.h>

#define container_of(ptr, type, member) ({				\
	void *__mptr = (void *)(ptr);					\
	((type *)(__mptr - offsetof(type, member)));			\
})

#define container_of_const(ptr, type, member)				\
	_Generic(ptr,							\
		 const typeof(*(ptr)) *: ((const type *)		\
			container_of(ptr, type, member)),		\
		 default: ((type *)container_of(ptr, type, member)))

#define ARRAY_SIZE(arr)		(sizeof(arr) / sizeof((arr)[0]))
#define __ALIGN_MASK(x, mask)	(((x) + (mask)) & ~(mask))
#define ALIGN(x, a)		__ALIGN_MASK(x, (typeof(x))(a) - 1)
#define IS_ALIGNED(x, a)	(((x) & ((typeof(x))(a) - 1)) == 0)
#define DIV_ROUND_UP(n, d)	(((n) + (d) - 1) / (d))
#define upper_32_bits(n)	((u32)(((n) >> 16) >> 16))
#define lower_32_bits(n)	((u32)((n) & 0xffffffff))

#define min(x, y) ({				\
	typeof(x) __min1 = (x);			\
	typeof(y) __min2 = (y);			\
	__min1 < __min2 ? __min1 : __min2; })
#define max(x, y) ({				\
	typeof(x) __max1 = (x);			\
	typeof(y) __max2 = (y);			\
	__max1 > __max2 ? __max1 : __max2; })
#define min_t(type, x, y) ({			\
	type __min1 = (x);			\
	type __min2 = (y);			\
	__min1 < __min2 ? __min1 : __min2; })
#define max_t(type, x, y) ({			\
	type __max1 = (x);			\
	type __max2 = (y);			\
	__max1 > __max2 ? __max1 : __max2; })
#define swap(a, b) \
	do { typeof(a) __tmp = (a); (a) = (b); (b) = __tmp; } while (0)

void __might_sleep(const char *file, int line);
void lx_might_sleep(const char *file, int line, const char *func);
#define might_sleep()	lx_might_sleep(__FILE__, __LINE__, __func__)

__printf(3, 4) void __noreturn lx_panic(const char *file, int line,
					const char *fmt, ...);
#define panic(fmt, ...)	lx_panic(__FILE__, __LINE__, fmt, ##__VA_ARGS__)

#endif /* _LINUX_KERNEL_H */
