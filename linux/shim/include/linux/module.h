/* SPDX-License-Identifier: GPL-2.0-only */
/* Everything is built in: module_init is a device initcall. */
#ifndef _LINUX_MODULE_H
#define _LINUX_MODULE_H

#include <linux/init.h>
#include <linux/stringify.h>
#include <linux/types.h>

struct module;
#define THIS_MODULE	((struct module *)0)

#define module_init(fn)		device_initcall(fn)
#define module_exit(fn)							\
	void __lx_call(lx_exitcall_, LX_OBJ)(void);			\
	void __lx_call(lx_exitcall_, LX_OBJ)(void)			\
	{								\
		fn();							\
	}

#define EXPORT_SYMBOL(sym)
#define EXPORT_SYMBOL_GPL(sym)
#define MODULE_LICENSE(x)
#define MODULE_AUTHOR(x)
#define MODULE_DESCRIPTION(x)
#define MODULE_ALIAS(x)
#define MODULE_DEVICE_TABLE(type, name)

#endif /* _LINUX_MODULE_H */
