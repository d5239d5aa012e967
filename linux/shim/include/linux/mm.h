/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef _LINUX_MM_H
#define _LINUX_MM_H

#include <linux/types.h>
#include <linux/gfp.h>
#include <asm/page.h>

#endif /* _LINUX_MM_H */
