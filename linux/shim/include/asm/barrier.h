/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Barriers. The device side runs in another thread over the same shared
 * memory, so every barrier is a sequentially consistent fence (wasm
 * atomic.fence): wasm has no weaker fence, and plain accesses are not
 * ordered against another agent without one.
 */
#ifndef _ASM_BARRIER_H
#define _ASM_BARRIER_H

#include <linux/compiler.h>

#define __lx_fence()	__atomic_thread_fence(__ATOMIC_SEQ_CST)

#define mb()		__lx_fence()
#define rmb()		__lx_fence()
#define wmb()		__lx_fence()
#define dma_mb()	__lx_fence()
#define dma_rmb()	__lx_fence()
#define dma_wmb()	__lx_fence()
#define smp_mb()	__lx_fence()
#define smp_rmb()	__lx_fence()
#define smp_wmb()	__lx_fence()
#define virt_mb()	__lx_fence()
#define virt_rmb()	__lx_fence()
#define virt_wmb()	__lx_fence()
#define __smp_mb()	__lx_fence()

#define virt_store_mb(var, value) \
	do { WRITE_ONCE(var, value); __lx_fence(); } while (0)
#define smp_store_mb(var, value)	virt_store_mb(var, value)

#define smp_store_release(p, v) \
	do { __lx_fence(); WRITE_ONCE(*(p), (v)); } while (0)
#define smp_load_acquire(p) ({				\
	typeof(*(p)) ___p1 = READ_ONCE(*(p));		\
	__lx_fence();					\
	___p1;						\
})

#define smp_mb__before_atomic()	__lx_fence()
#define smp_mb__after_atomic()	__lx_fence()

#endif /* _ASM_BARRIER_H */
