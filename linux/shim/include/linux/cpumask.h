/* SPDX-License-Identifier: GPL-2.0-only */
/* One CPU; nothing sets an affinity. */
#ifndef _LINUX_CPUMASK_H
#define _LINUX_CPUMASK_H

struct cpumask;

#endif /* _LINUX_CPUMASK_H */
