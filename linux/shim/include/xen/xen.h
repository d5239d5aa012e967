/* SPDX-License-Identifier: GPL-2.0-only */
/* Not a Xen guest. */
#ifndef _XEN_XEN_H
#define _XEN_XEN_H

#define xen_domain()	0

#endif /* _XEN_XEN_H */
