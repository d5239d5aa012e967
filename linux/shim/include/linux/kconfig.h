/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kconfig helpers. The configuration itself (CONFIG_*) is given on the
 * compiler's command line by linux/build/build.ts; nothing is modular.
 */
#ifndef _LINUX_KCONFIG_H
#define _LINUX_KCONFIG_H

#define __LX_ARG_1			0,
#define __lx_second(ignored, val, ...)	val
#define __lx_defined(x)			___lx_defined(x)
#define ___lx_defined(val)		____lx_defined(__LX_ARG_##val)
#define ____lx_defined(arg_or_junk)	__lx_second(arg_or_junk 1, 0)

#define IS_BUILTIN(option)	__lx_defined(option)
#define IS_MODULE(option)	0
#define IS_ENABLED(option)	IS_BUILTIN(option)
#define IS_REACHABLE(option)	IS_BUILTIN(option)

#endif /* _LINUX_KCONFIG_H */
