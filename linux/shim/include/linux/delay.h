/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Busy-wait delays. The one CPU really waits (the host naps the thread),
 * so a polling loop gives the device time to answer; nothing is delivered
 * meanwhile (no interrupt, no scheduling).
 */
#ifndef _LINUX_DELAY_H
#define _LINUX_DELAY_H

#include <linux/kernel.h>

void udelay(unsigned long usecs);

static inline void ndelay(unsigned long nsecs)
{
	udelay(DIV_ROUND_UP(nsecs, 1000));
}

static inline void mdelay(unsigned long msecs)
{
	udelay(msecs * 1000);
}

#endif /* _LINUX_DELAY_H */
