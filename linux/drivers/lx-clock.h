/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Readable clocks by name: what the RTC and PTP class devices are to the
 * full virtio_rtc driver, reduced to a registry a driver can read a clock
 * from (linux/drivers/lx-clock.c).
 */
#ifndef _LX_CLOCK_H
#define _LX_CLOCK_H

#include <linux/types.h>
#include <linux/list.h>

struct lx_clock {
	const char *name;
	/* 0 and the reading in ns, or -errno */
	int (*read)(struct lx_clock *clk, u64 *ns);
	struct list_head node;
};

int lx_clock_register(struct lx_clock *clk);
void lx_clock_unregister(struct lx_clock *clk);
/* -ENODEV when no clock of that name is registered */
int lx_clock_read(const char *name, u64 *ns);

#endif /* _LX_CLOCK_H */
