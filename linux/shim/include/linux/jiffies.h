/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * jiffies: HZ is 1000, a jiffy is the host's millisecond clock (wrapping
 * at 32 bits, as jiffies does on a 32-bit kernel).
 */
#ifndef _LINUX_JIFFIES_H
#define _LINUX_JIFFIES_H

#include <linux/types.h>

#define HZ	1000

unsigned long lx_jiffies(void);
#define jiffies	lx_jiffies()

#define time_after(a, b)	((long)((b) - (a)) < 0)
#define time_before(a, b)	time_after(b, a)
#define time_after_eq(a, b)	((long)((a) - (b)) >= 0)
#define time_before_eq(a, b)	time_after_eq(b, a)

static inline unsigned long msecs_to_jiffies(const unsigned int m)
{
	return m;
}

static inline unsigned int jiffies_to_msecs(const unsigned long j)
{
	return j;
}

#endif /* _LINUX_JIFFIES_H */
