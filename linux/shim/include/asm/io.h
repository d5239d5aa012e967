/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * MMIO is a trap: every access is a host call that performs the trapped
 * bus access at the guest-physical address. An __iomem cookie is the
 * physical address itself (ioremap is the identity). Ordering follows
 * arm64: a fence after each read, before each write.
 */
#ifndef _ASM_IO_H
#define _ASM_IO_H

#include <linux/types.h>
#include <asm/barrier.h>
#include <asm/page.h>

u32 lx_host_mmio_read(unsigned long addr, unsigned int width)
	__attribute__((import_module("lx"), import_name("mmio_read")));
void lx_host_mmio_write(unsigned long addr, unsigned int width, u32 value)
	__attribute__((import_module("lx"), import_name("mmio_write")));

#define __lx_io_addr(c)	((unsigned long)(const volatile void __iomem *)(c))

static inline u8 __raw_readb(const volatile void __iomem *addr)
{
	return lx_host_mmio_read(__lx_io_addr(addr), 1);
}

static inline u16 __raw_readw(const volatile void __iomem *addr)
{
	return lx_host_mmio_read(__lx_io_addr(addr), 2);
}

static inline u32 __raw_readl(const volatile void __iomem *addr)
{
	return lx_host_mmio_read(__lx_io_addr(addr), 4);
}

static inline void __raw_writeb(u8 v, volatile void __iomem *addr)
{
	lx_host_mmio_write(__lx_io_addr(addr), 1, v);
}

static inline void __raw_writew(u16 v, volatile void __iomem *addr)
{
	lx_host_mmio_write(__lx_io_addr(addr), 2, v);
}

static inline void __raw_writel(u32 v, volatile void __iomem *addr)
{
	lx_host_mmio_write(__lx_io_addr(addr), 4, v);
}

/* Little-endian device, little-endian CPU: no swaps. */
#define readb_relaxed(c)	__raw_readb(c)
#define readw_relaxed(c)	__raw_readw(c)
#define readl_relaxed(c)	__raw_readl(c)
#define writeb_relaxed(v, c)	__raw_writeb((v), (c))
#define writew_relaxed(v, c)	__raw_writew((v), (c))
#define writel_relaxed(v, c)	__raw_writel((v), (c))

#define readb(c)	({ u8 __v = readb_relaxed(c); rmb(); __v; })
#define readw(c)	({ u16 __v = readw_relaxed(c); rmb(); __v; })
#define readl(c)	({ u32 __v = readl_relaxed(c); rmb(); __v; })
#define writeb(v, c)	({ wmb(); writeb_relaxed((v), (c)); })
#define writew(v, c)	({ wmb(); writew_relaxed((v), (c)); })
#define writel(v, c)	({ wmb(); writel_relaxed((v), (c)); })

#define ioread8(c)		readb(c)
#define ioread16(c)		readw(c)
#define ioread32(c)		readl(c)
#define iowrite8(v, c)		writeb((v), (c))
#define iowrite16(v, c)		writew((v), (c))
#define iowrite32(v, c)		writel((v), (c))

#endif /* _ASM_IO_H */
