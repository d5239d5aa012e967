// SPDX-License-Identifier: GPL-2.0-only
/*
 * Memory: a page allocator over guest RAM from __heap_base to the end of
 * the linear memory, and kmalloc on top of it (power-of-two size classes
 * carved from whole pages up to 2 KiB, whole pages beyond). mem_map[] has
 * one struct page per 4 KiB page of RAM and records who owns it, so
 * kfree() and ksize() find an object's allocation from its address, as
 * SLUB does from its slab page.
 */
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include "lx.h"

#ifndef LX_RAM_SIZE
#error "LX_RAM_SIZE must be defined by the build"
#endif

#define LX_PAGES	(LX_RAM_SIZE >> PAGE_SHIFT)

enum {
	LX_PAGE_RESERVED = 0,	/* kernel image, stack, nonexistent */
	LX_PAGE_FREE,
	LX_PAGE_HEAD,		/* first page of a page allocation */
	LX_PAGE_TAIL,
	LX_PAGE_SLAB,		/* holds kmalloc objects of one class */
};

struct page mem_map[LX_PAGES];

#define KMALLOC_MIN_SHIFT	3
#define KMALLOC_MAX_SHIFT	11
#define KMALLOC_CLASSES		(KMALLOC_MAX_SHIFT - KMALLOC_MIN_SHIFT + 1)

struct lx_free_object {
	struct lx_free_object *next;
};

static struct lx_free_object *kmalloc_free[KMALLOC_CLASSES];

/* Read by the host (lx_mm_stats). */
static struct lx_mm_stats {
	u32 ram_size;
	u32 heap_start;
	u32 heap_end;
	u32 pages_total;
	u32 pages_free;
	u32 slab_pages;
	u32 kmalloc_live;	/* objects handed out and not freed */
	u32 kmalloc_bytes;	/* their allocated sizes */
	u32 page_allocs;	/* page allocations that are live */
	u32 alloc_failures;
} stats;

static unsigned long heap_first, heap_last;	/* page indices */
static unsigned long next_fit;

void lx_mm_init(void)
{
	unsigned long bytes = __builtin_wasm_memory_size(0) * 65536UL;
	unsigned long start = PAGE_ALIGN((unsigned long)&__heap_base);
	unsigned long i;

	if (bytes > LX_RAM_SIZE)
		bytes = LX_RAM_SIZE;
	heap_first = start >> PAGE_SHIFT;
	heap_last = bytes >> PAGE_SHIFT;
	for (i = 0; i < LX_PAGES; i++)
		mem_map[i].lx_kind = (i >= heap_first && i < heap_last) ?
				     LX_PAGE_FREE : LX_PAGE_RESERVED;
	next_fit = heap_first;
	stats.ram_size = bytes;
	stats.heap_start = start;
	stats.heap_end = bytes;
	stats.pages_total = heap_last - heap_first;
	stats.pages_free = stats.pages_total;
}

LX_EXPORT("lx_mm_stats") struct lx_mm_stats *lx_mm_stats(void)
{
	return &stats;
}

/* First fit from where the last search ended, then from the start. */
static long find_free_run(unsigned long n)
{
	unsigned long pass, i, run;

	for (pass = 0; pass < 2; pass++) {
		unsigned long from = pass ? heap_first : next_fit;
		unsigned long to = pass ? next_fit + n : heap_last;

		if (to > heap_last)
			to = heap_last;
		run = 0;
		for (i = from; i < to; i++) {
			if (mem_map[i].lx_kind != LX_PAGE_FREE) {
				run = 0;
				continue;
			}
			if (++run == n)
				return i + 1 - n;
		}
	}
	return -1;
}

static void *lx_alloc_run(unsigned long n, gfp_t gfp)
{
	long first;
	unsigned long i;
	void *virt;

	if (n == 0 || n > stats.pages_free)
		goto fail;
	first = find_free_run(n);
	if (first < 0)
		goto fail;
	mem_map[first].lx_kind = LX_PAGE_HEAD;
	mem_map[first].lx_order = n;
	for (i = 1; i < n; i++)
		mem_map[first + i].lx_kind = LX_PAGE_TAIL;
	next_fit = first + n;
	stats.pages_free -= n;
	virt = (void *)(first << PAGE_SHIFT);
	if (gfp & __GFP_ZERO)
		memset(virt, 0, n << PAGE_SHIFT);
	return virt;
fail:
	stats.alloc_failures++;
	if (!(gfp & __GFP_NOWARN))
		pr_warn("page allocation failure: %lu pages, %u free\n",
			n, stats.pages_free);
	return NULL;
}

static void lx_free_run(void *virt, unsigned long n, const char *who)
{
	unsigned long first = (unsigned long)virt >> PAGE_SHIFT;
	unsigned long i;

	if (offset_in_page(virt) || first < heap_first ||
	    first >= heap_last || mem_map[first].lx_kind != LX_PAGE_HEAD)
		panic("%s: %p is not an allocated page\n", who, virt);
	if (n == 0)
		n = mem_map[first].lx_order;
	if (WARN(n != mem_map[first].lx_order,
		 "%s: %lu pages freed of an allocation of %u\n", who, n,
		 mem_map[first].lx_order))
		n = mem_map[first].lx_order;
	for (i = 0; i < n; i++)
		mem_map[first + i].lx_kind = LX_PAGE_FREE;
	mem_map[first].lx_order = 0;
	stats.pages_free += n;
}

void *alloc_pages_exact(size_t size, gfp_t gfp)
{
	void *p = lx_alloc_run(PAGE_ALIGN(size) >> PAGE_SHIFT, gfp);

	if (p)
		stats.page_allocs++;
	return p;
}

void free_pages_exact(void *virt, size_t size)
{
	lx_free_run(virt, PAGE_ALIGN(size) >> PAGE_SHIFT, "free_pages_exact");
	stats.page_allocs--;
}

unsigned long __get_free_pages(gfp_t gfp, unsigned int order)
{
	return (unsigned long)alloc_pages_exact(PAGE_SIZE << order, gfp);
}

void free_pages(unsigned long addr, unsigned int order)
{
	if (addr)
		free_pages_exact((void *)addr, PAGE_SIZE << order);
}

struct page *alloc_pages(gfp_t gfp, unsigned int order)
{
	void *p = alloc_pages_exact(PAGE_SIZE << order, gfp);

	return p ? virt_to_page(p) : NULL;
}

void __free_pages(struct page *page, unsigned int order)
{
	free_pages((unsigned long)page_address(page), order);
}

static unsigned int kmalloc_class(size_t size)
{
	unsigned int c = 0;

	while ((1UL << (c + KMALLOC_MIN_SHIFT)) < size)
		c++;
	return c;
}

static bool kmalloc_refill(unsigned int c)
{
	size_t objsize = 1UL << (c + KMALLOC_MIN_SHIFT);
	char *page = lx_alloc_run(1, GFP_KERNEL | __GFP_NOWARN);
	struct page *pg;
	size_t off;

	if (!page)
		return false;
	pg = virt_to_page(page);
	pg->lx_kind = LX_PAGE_SLAB;
	pg->lx_class = c;
	pg->lx_inuse = 0;
	stats.slab_pages++;
	for (off = PAGE_SIZE; off >= objsize; off -= objsize) {
		struct lx_free_object *o = (void *)(page + off - objsize);

		o->next = kmalloc_free[c];
		kmalloc_free[c] = o;
	}
	return true;
}

void *kmalloc(size_t size, gfp_t flags)
{
	struct lx_free_object *o;
	unsigned int c;
	void *p;

	if (size == 0)
		return ZERO_SIZE_PTR;
	if (size > (1UL << KMALLOC_MAX_SHIFT)) {
		p = lx_alloc_run(PAGE_ALIGN(size) >> PAGE_SHIFT, flags);
		if (!p)
			return NULL;
		stats.kmalloc_live++;
		stats.kmalloc_bytes += PAGE_ALIGN(size);
		return p;
	}
	c = kmalloc_class(size);
	if (!kmalloc_free[c] && !kmalloc_refill(c)) {
		stats.alloc_failures++;
		if (!(flags & __GFP_NOWARN))
			pr_warn("%s: out of memory for %zu bytes\n", __func__,
				size);
		return NULL;
	}
	o = kmalloc_free[c];
	kmalloc_free[c] = o->next;
	virt_to_page(o)->lx_inuse++;
	stats.kmalloc_live++;
	stats.kmalloc_bytes += 1UL << (c + KMALLOC_MIN_SHIFT);
	if (flags & __GFP_ZERO)
		memset(o, 0, 1UL << (c + KMALLOC_MIN_SHIFT));
	return o;
}

static struct page *kmalloc_page(const void *objp, const char *who)
{
	unsigned long pfn_index = (unsigned long)objp >> PAGE_SHIFT;
	struct page *pg;

	if (pfn_index < heap_first || pfn_index >= heap_last)
		panic("%s: %p is outside the heap\n", who, objp);
	pg = &mem_map[pfn_index];
	if (pg->lx_kind == LX_PAGE_SLAB)
		return pg;
	if (pg->lx_kind == LX_PAGE_HEAD && !offset_in_page(objp))
		return pg;
	panic("%s: %p was not allocated by kmalloc\n", who, objp);
}

size_t ksize(const void *objp)
{
	struct page *pg;

	if (ZERO_OR_NULL_PTR(objp))
		return 0;
	pg = kmalloc_page(objp, "ksize");
	if (pg->lx_kind == LX_PAGE_SLAB)
		return 1UL << (pg->lx_class + KMALLOC_MIN_SHIFT);
	return (size_t)pg->lx_order << PAGE_SHIFT;
}

void kfree(const void *objp)
{
	struct lx_free_object *o = (void *)objp;
	struct page *pg;

	if (ZERO_OR_NULL_PTR(objp))
		return;
	pg = kmalloc_page(objp, "kfree");
	stats.kmalloc_live--;
	stats.kmalloc_bytes -= ksize(objp);
	if (pg->lx_kind == LX_PAGE_HEAD) {
		lx_free_run(o, 0, "kfree");
		return;
	}
	if (WARN_ON(pg->lx_inuse == 0))
		return;
	pg->lx_inuse--;
	o->next = kmalloc_free[pg->lx_class];
	kmalloc_free[pg->lx_class] = o;
}

void *krealloc(const void *p, size_t new_size, gfp_t flags)
{
	size_t old = ksize(p);
	void *n;

	if (new_size && new_size <= old)
		return (void *)p;
	n = kmalloc(new_size, flags);
	if (n && !ZERO_OR_NULL_PTR(n) && old)
		memcpy(n, p, old);
	if (n)
		kfree(p);
	return n;
}
