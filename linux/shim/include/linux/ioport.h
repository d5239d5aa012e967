/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef _LINUX_IOPORT_H
#define _LINUX_IOPORT_H

#include <linux/types.h>

struct resource {
	resource_size_t start;
	resource_size_t end;
	const char *name;
	unsigned long flags;
	/* glue: a busy region's link in the iomem claims */
	struct resource *lx_next;
};

#define IORESOURCE_TYPE_BITS	0x00001f00
#define IORESOURCE_IO		0x00000100
#define IORESOURCE_MEM		0x00000200
#define IORESOURCE_IRQ		0x00000400
#define IORESOURCE_BUSY		0x80000000

static inline resource_size_t resource_size(const struct resource *res)
{
	return res->end - res->start + 1;
}

static inline unsigned long resource_type(const struct resource *res)
{
	return res->flags & IORESOURCE_TYPE_BITS;
}

struct resource *request_mem_region(resource_size_t start,
				    resource_size_t n, const char *name);
void release_mem_region(resource_size_t start, resource_size_t n);

#endif /* _LINUX_IOPORT_H */
