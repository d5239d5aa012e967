/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Completions. complete() counts; a wait asks the host to deliver
 * interrupts until the count is non-zero, within a bounded deadline (see
 * linux/glue/sched.c). The waits are macros so that the host learns the
 * caller's file and line.
 */
#ifndef _LINUX_COMPLETION_H
#define _LINUX_COMPLETION_H

#include <linux/types.h>

struct completion {
	unsigned int done;
};

#define COMPLETION_INITIALIZER(work)	{ 0 }
#define DECLARE_COMPLETION(work) \
	struct completion work = COMPLETION_INITIALIZER(work)

static inline void init_completion(struct completion *x)
{
	x->done = 0;
}

static inline void reinit_completion(struct completion *x)
{
	x->done = 0;
}

void complete(struct completion *x);
void complete_all(struct completion *x);
bool try_wait_for_completion(struct completion *x);
bool completion_done(struct completion *x);

void lx_wait_for_completion(struct completion *x, const char *file,
			    int line, const char *func);
int lx_wait_for_completion_state(struct completion *x, int killable,
				 const char *file, int line, const char *func);
unsigned long lx_wait_for_completion_timeout(struct completion *x,
					     unsigned long timeout,
					     const char *file, int line,
					     const char *func);

#define wait_for_completion(x) \
	lx_wait_for_completion(x, __FILE__, __LINE__, __func__)
#define wait_for_completion_killable(x) \
	lx_wait_for_completion_state(x, 1, __FILE__, __LINE__, __func__)
#define wait_for_completion_interruptible(x) \
	lx_wait_for_completion_state(x, 0, __FILE__, __LINE__, __func__)
#define wait_for_completion_timeout(x, t) \
	lx_wait_for_completion_timeout(x, t, __FILE__, __LINE__, __func__)

#endif /* _LINUX_COMPLETION_H */
