/* SPDX-License-Identifier: GPL-2.0-only */
/* Allocation flags and the page allocator (linux/glue/mm.c). */
#ifndef _LINUX_GFP_H
#define _LINUX_GFP_H

#include <linux/types.h>

#define __GFP_DMA		((__force gfp_t)0x01u)
#define __GFP_HIGHMEM		((__force gfp_t)0x02u)
#define __GFP_DMA32		((__force gfp_t)0x04u)
#define __GFP_HIGH		((__force gfp_t)0x20u)
#define __GFP_IO		((__force gfp_t)0x40u)
#define __GFP_FS		((__force gfp_t)0x80u)
#define __GFP_ZERO		((__force gfp_t)0x100u)
#define __GFP_DIRECT_RECLAIM	((__force gfp_t)0x400u)
#define __GFP_KSWAPD_RECLAIM	((__force gfp_t)0x800u)
#define __GFP_NOWARN		((__force gfp_t)0x2000u)
#define __GFP_NORETRY		((__force gfp_t)0x10000u)
#define __GFP_RECLAIM	(__GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM)

#define GFP_ATOMIC	(__GFP_HIGH | __GFP_KSWAPD_RECLAIM)
#define GFP_KERNEL	(__GFP_RECLAIM | __GFP_IO | __GFP_FS)
#define GFP_NOWAIT	(__GFP_KSWAPD_RECLAIM)
#define GFP_NOIO	(__GFP_RECLAIM)
#define GFP_DMA		__GFP_DMA

struct page;

struct page *alloc_pages(gfp_t gfp, unsigned int order);
void __free_pages(struct page *page, unsigned int order);
unsigned long __get_free_pages(gfp_t gfp, unsigned int order);
void free_pages(unsigned long addr, unsigned int order);
void *alloc_pages_exact(size_t size, gfp_t gfp);
void free_pages_exact(void *virt, size_t size);

#define __get_free_page(gfp)	__get_free_pages((gfp), 0)
#define free_page(addr)		free_pages((addr), 0)

#endif /* _LINUX_GFP_H */
