/* SPDX-License-Identifier: GPL-2.0-only */
/* No highmem: every page is in the linear map. */
#ifndef _LINUX_HIGHMEM_H
#define _LINUX_HIGHMEM_H

#include <linux/mm.h>

#endif /* _LINUX_HIGHMEM_H */
