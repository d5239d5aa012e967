/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef _LINUX_IO_H
#define _LINUX_IO_H

#include <linux/types.h>
#include <linux/err.h>
#include <asm/io.h>

struct device;
struct resource;

void __iomem *ioremap(phys_addr_t offset, size_t size);
/* Nothing was mapped: the cookie is the physical address (glue/platform.c). */
static inline void iounmap(volatile void __iomem *addr)
{
}

void __iomem *devm_ioremap(struct device *dev, resource_size_t offset,
			   resource_size_t size);
void __iomem *devm_ioremap_resource(struct device *dev,
				    const struct resource *res);

#endif /* _LINUX_IO_H */
