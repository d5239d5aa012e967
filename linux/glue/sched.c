// SPDX-License-Identifier: GPL-2.0-only
/*
 * Completions. There is one task and no scheduler: a wait asks the host to
 * deliver interrupts (running their handlers, which may complete()) until
 * the count is non-zero. The host bounds every wait with its own deadline:
 * a killable or interruptible wait then returns -ERESTARTSYS, as if the
 * task had been killed; an uninterruptible one ends the kernel instance
 * with an error naming the waiting file and line (a hung task).
 */
#include <linux/kernel.h>
#include <linux/completion.h>
#include <linux/limits.h>
#include <linux/jiffies.h>
#include <linux/delay.h>
#include "lx.h"

#define LX_HZ	HZ	/* jiffies are milliseconds */

unsigned long lx_jiffies(void)
{
	return lx_host_clock_ms();
}

void udelay(unsigned long usecs)
{
	lx_host_udelay(usecs);
}

void complete(struct completion *x)
{
	if (x->done != UINT_MAX)
		x->done++;
}

void complete_all(struct completion *x)
{
	x->done = UINT_MAX;
}

bool try_wait_for_completion(struct completion *x)
{
	if (!READ_ONCE(x->done))
		return false;
	if (x->done != UINT_MAX)
		x->done--;
	return true;
}

bool completion_done(struct completion *x)
{
	return READ_ONCE(x->done) != 0;
}

static int lx_wait(struct completion *x, int mode, int timeout_ms,
		   const char *file, int line, const char *func)
{
	int r = LX_WAIT_DONE;

	lx_might_sleep(file, line, func);
	if (!READ_ONCE(x->done))
		r = lx_host_wait(&x->done, mode, timeout_ms, file, line, func);
	if (r == LX_WAIT_DONE && !try_wait_for_completion(x))
		panic("wait at %s:%d returned without a completion\n",
		      file, line);
	return r;
}

void lx_wait_for_completion(struct completion *x, const char *file, int line,
			    const char *func)
{
	lx_wait(x, LX_WAIT_UNINTERRUPTIBLE, -1, file, line, func);
}

int lx_wait_for_completion_state(struct completion *x, int killable,
				 const char *file, int line, const char *func)
{
	int mode = killable ? LX_WAIT_KILLABLE : LX_WAIT_INTERRUPTIBLE;

	if (lx_wait(x, mode, -1, file, line, func) == LX_WAIT_KILLED)
		return -ERESTARTSYS;
	return 0;
}

unsigned long lx_wait_for_completion_timeout(struct completion *x,
					     unsigned long timeout,
					     const char *file, int line,
					     const char *func)
{
	int ms = timeout > INT_MAX / (1000 / LX_HZ) ? INT_MAX :
		 (int)timeout * (1000 / LX_HZ);

	if (lx_wait(x, LX_WAIT_UNINTERRUPTIBLE, ms, file, line, func) !=
	    LX_WAIT_DONE)
		return 0;
	/* The remaining time is not tracked: report at least one jiffy. */
	return timeout ? timeout : 1;
}
