/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The linear map. The module's linear memory is guest RAM: virtual address
 * (wasm offset) v is guest-physical LX_RAM_BASE + v, for every byte of the
 * memory. mem_map holds one struct page per 4 KiB page (linux/glue/mm.c).
 */
#ifndef _ASM_PAGE_H
#define _ASM_PAGE_H

#include <linux/types.h>

#ifndef LX_RAM_BASE
#error "LX_RAM_BASE must be defined by the build"
#endif

#define PAGE_SHIFT	12
#define PAGE_SIZE	(1UL << PAGE_SHIFT)
#define PAGE_MASK	(~(PAGE_SIZE - 1))
#define PAGE_ALIGN(addr)	(((addr) + PAGE_SIZE - 1) & PAGE_MASK)
#define offset_in_page(p)	((unsigned long)(p) & ~PAGE_MASK)
#define SMP_CACHE_BYTES	64
#define L1_CACHE_BYTES	64

/* Owner of a page: the page allocator's and kmalloc's bookkeeping. */
struct page {
	unsigned int	lx_kind;	/* LX_PAGE_* (glue/mm.c) */
	unsigned int	lx_order;	/* pages in this allocation, head only */
	unsigned int	lx_class;	/* kmalloc size class of a slab page */
	unsigned int	lx_inuse;	/* objects handed out from it */
};

extern struct page mem_map[];

#define PHYS_OFFSET	((phys_addr_t)LX_RAM_BASE)
#define PHYS_PFN_OFFSET	((unsigned long)(LX_RAM_BASE >> PAGE_SHIFT))

#define __pa(x)		((phys_addr_t)(unsigned long)(x) + PHYS_OFFSET)
#define __va(x)		((void *)(unsigned long)((phys_addr_t)(x) - PHYS_OFFSET))

static inline phys_addr_t virt_to_phys(const volatile void *x)
{
	return __pa(x);
}

static inline void *phys_to_virt(phys_addr_t x)
{
	return __va(x);
}

#define virt_to_pfn(kaddr)	((unsigned long)(__pa(kaddr) >> PAGE_SHIFT))
#define pfn_to_page(pfn)	(mem_map + ((pfn) - PHYS_PFN_OFFSET))
#define page_to_pfn(page)	\
	((unsigned long)((page) - mem_map) + PHYS_PFN_OFFSET)
#define virt_to_page(kaddr)	pfn_to_page(virt_to_pfn(kaddr))
#define page_to_phys(page)	((phys_addr_t)page_to_pfn(page) << PAGE_SHIFT)
#define page_address(page)	__va(page_to_phys(page))

#endif /* _ASM_PAGE_H */
