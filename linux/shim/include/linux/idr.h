/* SPDX-License-Identifier: GPL-2.0-only */
/* ID allocators: a bitmap that grows on demand (linux/glue/lib.c). */
#ifndef _LINUX_IDR_H
#define _LINUX_IDR_H

#include <linux/types.h>
#include <linux/gfp.h>

struct ida {
	unsigned long *bits;
	unsigned int nbits;
};

#define IDA_INIT(name)	{ .bits = NULL, .nbits = 0 }
#define DEFINE_IDA(name)	struct ida name = IDA_INIT(name)

int ida_alloc_range(struct ida *ida, unsigned int min, unsigned int max,
		    gfp_t gfp);
void ida_free(struct ida *ida, unsigned int id);
void ida_destroy(struct ida *ida);

static inline void ida_init(struct ida *ida)
{
	ida->bits = NULL;
	ida->nbits = 0;
}

static inline int ida_alloc(struct ida *ida, gfp_t gfp)
{
	return ida_alloc_range(ida, 0, ~0U, gfp);
}

static inline int ida_alloc_min(struct ida *ida, unsigned int min, gfp_t gfp)
{
	return ida_alloc_range(ida, min, ~0U, gfp);
}

static inline int ida_alloc_max(struct ida *ida, unsigned int max, gfp_t gfp)
{
	return ida_alloc_range(ida, 0, max, gfp);
}

#endif /* _LINUX_IDR_H */
