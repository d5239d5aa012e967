/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * One CPU, and interrupt handlers run only while the kernel waits: when
 * synchronize_rcu() is called no reader is inside a critical section.
 */
#ifndef _LINUX_RCUPDATE_H
#define _LINUX_RCUPDATE_H

void synchronize_rcu(void);

#endif /* _LINUX_RCUPDATE_H */
