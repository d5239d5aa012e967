/* SPDX-License-Identifier: GPL-2.0-only */
/* Index clamping against speculation: the generic branch-free mask. */
#ifndef _LINUX_NOSPEC_H
#define _LINUX_NOSPEC_H

#include <linux/compiler.h>
#include <linux/limits.h>

/* ~0UL when index < size, 0 otherwise, without a branch. */
static inline unsigned long array_index_mask_nospec(unsigned long index,
						    unsigned long size)
{
	return ~(long)(index | (size - 1UL - index)) >> (BITS_PER_LONG - 1);
}

#define array_index_nospec(index, size)					\
({									\
	typeof(index) _i = (index);					\
	typeof(size) _s = (size);					\
	unsigned long _mask = array_index_mask_nospec(_i, _s);		\
									\
	(typeof(_i))(_i & _mask);					\
})

#endif /* _LINUX_NOSPEC_H */
