/* SPDX-License-Identifier: GPL-2.0-only */
/* No ACPI. */
#ifndef _LINUX_ACPI_H
#define _LINUX_ACPI_H

#define ACPI_PTR(_ptr)	(NULL)

#endif /* _LINUX_ACPI_H */
