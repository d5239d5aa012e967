/* SPDX-License-Identifier: GPL-2.0-only */
/* No high-resolution timers: virtio_ring.c uses them only under DEBUG. */
#ifndef _LINUX_HRTIMER_H
#define _LINUX_HRTIMER_H

#include <linux/types.h>

#endif /* _LINUX_HRTIMER_H */
