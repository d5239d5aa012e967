/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * No device tree (CONFIG_OF unset): platform devices come from the board's
 * slot table, and every OF query finds nothing.
 */
#ifndef _LINUX_OF_H
#define _LINUX_OF_H

#include <linux/types.h>

struct device_node;

static inline void of_node_put(struct device_node *node)
{
}

static inline int of_get_available_child_count(const struct device_node *np)
{
	return 0;
}

static inline struct device_node *
of_get_next_available_child(const struct device_node *node,
			    struct device_node *prev)
{
	return NULL;
}

static inline int of_device_is_compatible(const struct device_node *device,
					  const char *compat)
{
	return 0;
}

static inline bool of_property_read_bool(const struct device_node *np,
					 const char *propname)
{
	return false;
}

#endif /* _LINUX_OF_H */
