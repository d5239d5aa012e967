/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * BUG() and WARN(): reported to the host with file and line. A BUG() ends
 * the kernel instance (the host throws); a WARN is recorded as data and
 * execution goes on, as in Linux.
 */
#ifndef _LINUX_BUG_H
#define _LINUX_BUG_H

#include <linux/compiler.h>
#include <linux/build_bug.h>

void __noreturn lx_bug(const char *file, int line, const char *func,
		       const char *what);
__printf(5, 6)
void lx_warn(const char *file, int line, const char *func, const char *cond,
	     const char *fmt, ...);

#define BUG()	lx_bug(__FILE__, __LINE__, __func__, "BUG()")

#define BUG_ON(condition)						\
	do {								\
		if (unlikely(condition))				\
			lx_bug(__FILE__, __LINE__, __func__,		\
			       "BUG_ON(" #condition ")");		\
	} while (0)

#define WARN_ON(condition) ({						\
	int __ret_warn_on = !!(condition);				\
	if (unlikely(__ret_warn_on))					\
		lx_warn(__FILE__, __LINE__, __func__, #condition, NULL);\
	unlikely(__ret_warn_on);					\
})

#define WARN(condition, format...) ({					\
	int __ret_warn_on = !!(condition);				\
	if (unlikely(__ret_warn_on))					\
		lx_warn(__FILE__, __LINE__, __func__, #condition, format);\
	unlikely(__ret_warn_on);					\
})

#define WARN_ON_ONCE(condition) ({					\
	static bool __warned;						\
	int __ret_warn_once = !!(condition);				\
	if (unlikely(__ret_warn_once && !__warned)) {			\
		__warned = true;					\
		lx_warn(__FILE__, __LINE__, __func__, #condition, NULL);\
	}								\
	unlikely(__ret_warn_once);					\
})

#define WARN_ONCE(condition, format...) ({				\
	static bool __warned;						\
	int __ret_warn_once = !!(condition);				\
	if (unlikely(__ret_warn_once && !__warned)) {			\
		__warned = true;					\
		lx_warn(__FILE__, __LINE__, __func__, #condition, format);\
	}								\
	unlikely(__ret_warn_once);					\
})

#endif /* _LINUX_BUG_H */
