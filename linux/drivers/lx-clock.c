// SPDX-License-Identifier: GPL-2.0-only
/*
 * The clock registry of lx-clock.h. One CPU and no concurrent callers: a
 * plain list.
 */
#include <linux/kernel.h>
#include <linux/string.h>
#include "lx-clock.h"
#include "../glue/lx.h"

static LIST_HEAD(lx_clocks);

static struct lx_clock *lx_clock_find(const char *name)
{
	struct lx_clock *clk;

	list_for_each_entry(clk, &lx_clocks, node)
		if (!strcmp(clk->name, name))
			return clk;
	return NULL;
}

int lx_clock_register(struct lx_clock *clk)
{
	if (!clk->name || !clk->read)
		return -EINVAL;
	if (lx_clock_find(clk->name))
		return -EEXIST;
	list_add_tail(&clk->node, &lx_clocks);
	return 0;
}

void lx_clock_unregister(struct lx_clock *clk)
{
	list_del_init(&clk->node);
}

int lx_clock_read(const char *name, u64 *ns)
{
	struct lx_clock *clk = lx_clock_find(name);

	return clk ? clk->read(clk, ns) : -ENODEV;
}

/* For the host: the reading in *ns, or -errno. */
LX_EXPORT("lx_clock_read") int lx_host_clock_read(const char *name, u64 *ns)
{
	return lx_clock_read(name, ns);
}
