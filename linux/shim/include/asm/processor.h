/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef _ASM_PROCESSOR_H
#define _ASM_PROCESSOR_H

#include <linux/compiler.h>

/* A spin-wait hint; wasm has none, so only a compiler barrier. */
static inline void cpu_relax(void)
{
	barrier();
}

#endif /* _ASM_PROCESSOR_H */
