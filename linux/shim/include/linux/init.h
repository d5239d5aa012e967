/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Initcalls. There are no linker sections to walk: each initcall becomes a
 * function named after the file (LX_OBJ, set by the build), and the glue
 * calls them in link order (linux/glue/entry.c).
 */
#ifndef _LINUX_INIT_H
#define _LINUX_INIT_H

#include <linux/compiler.h>

#define __init
#define __exit
#define __initdata
#define __exitdata
#define __init_or_module

#define __lx_paste(a, b)	a##b
#define __lx_call(prefix, obj)	__lx_paste(prefix, obj)

#define __lx_initcall(level, fn)					\
	int __lx_call(lx_##level##_initcall_, LX_OBJ)(void);		\
	int __lx_call(lx_##level##_initcall_, LX_OBJ)(void)		\
	{								\
		return fn();						\
	}

#define core_initcall(fn)	__lx_initcall(core, fn)
#define device_initcall(fn)	__lx_initcall(device, fn)

#endif /* _LINUX_INIT_H */
