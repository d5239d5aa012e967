/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The glue's side of the host interface: imports the host provides
 * (module "lx", see linux/host/imports.ts) and helpers shared by the
 * glue files. Strings cross as NUL-terminated pointers into guest RAM.
 */
#ifndef _LX_GLUE_H
#define _LX_GLUE_H

#include <linux/types.h>
#include <linux/compiler.h>

#define LX_IMPORT(name) \
	__attribute__((import_module("lx"), import_name(name)))
#define LX_EXPORT(name)	__attribute__((export_name(name)))

/* Kernel log: level 0..7, device and driver names may be NULL. */
void lx_host_log(int level, const char *dev, const char *drv,
		 const char *msg, unsigned int len) LX_IMPORT("log");

#define LX_WARN_WARN_ON		0
#define LX_WARN_SLEEP_ATOMIC	1
void lx_host_warn(int kind, const char *file, int line, const char *func,
		  const char *cond, const char *msg, unsigned int len,
		  const char *dev) LX_IMPORT("warn");

void lx_host_might_sleep(const char *file, int line, const char *func,
			 const char *dev) LX_IMPORT("might_sleep");

/* Throws on the host: the kernel instance is dead from here on. */
#define LX_BUG_BUG	0
#define LX_BUG_PANIC	1
void lx_host_bug(int kind, const char *file, int line, const char *func,
		 const char *msg, unsigned int len) LX_IMPORT("bug");

void lx_host_irq_request(unsigned int line) LX_IMPORT("irq_request");
void lx_host_irq_free(unsigned int line) LX_IMPORT("irq_free");
void lx_host_irq_mask(unsigned int line) LX_IMPORT("irq_mask");
void lx_host_irq_unmask(unsigned int line) LX_IMPORT("irq_unmask");

/*
 * Deliver interrupts until *done is non-zero. timeout_ms < 0: no timeout
 * of the caller's. Returns LX_WAIT_DONE, LX_WAIT_TIMEOUT (the caller's
 * timeout) or LX_WAIT_KILLED (the host's deadline passed for a killable or
 * interruptible wait; for an uninterruptible one the host throws).
 */
#define LX_WAIT_UNINTERRUPTIBLE	0
#define LX_WAIT_KILLABLE	1
#define LX_WAIT_INTERRUPTIBLE	2
#define LX_WAIT_DONE		0
#define LX_WAIT_TIMEOUT		1
#define LX_WAIT_KILLED		2
int lx_host_wait(const unsigned int *done, int mode, int timeout_ms,
		 const char *file, int line, const char *func) LX_IMPORT("wait");

void lx_host_uevent(const char *action, const char *dev, const char *env,
		    unsigned int len) LX_IMPORT("uevent");

/* The host's monotonic clock in ms (wraps at 32 bits); a nap of usecs. */
LX_IMPORT("clock_ms") unsigned int lx_host_clock_ms(void);
void lx_host_udelay(unsigned int usecs) LX_IMPORT("udelay");

/* glue/base.c: the device whose probe/remove is running, if any. */
struct device *lx_current_device(void);
/* A name for the context: the current device, or the irq's action. */
const char *lx_context_name(void);
extern const char *lx_irq_context_name;

/* glue/mm.c; the linker's end of the kernel image */
void lx_mm_init(void);
extern unsigned char __heap_base;

/* The initcalls of the Linux files, in link order (see linux/init.h). */
int lx_core_initcall_virtio(void);
int lx_device_initcall_virtio_mmio(void);
int lx_device_initcall_virtio_rng(void);

/* glue/hwrng.c and glue/entry.c */
struct hwrng;
struct virtio_device;
struct platform_device;
struct hwrng *lx_hwrng_of_device(struct device *dev);
struct platform_device *lx_slot_pdev(int slot);
struct virtio_device *lx_slot_vdev(int slot);

/* glue/base.c: run code on behalf of a device (its probe, a PM callback) */
void lx_enter_device(struct device *dev);
void lx_leave_device(void);

/*
 * The drivers the host can register by name (glue/drivers.c), and the
 * registration functions of ours that have no initcall of their own.
 */
int lx_virtio_rtc_init(void);
int lx_virtio_rtc_noirq_init(void);
int lx_device_initcall_clock_consumer(void);
int lx_device_initcall_lx_pm_test(void);

/* Drivers built in with build:linux --driver: the table the build generates. */
struct lx_user_driver {
	const char *name;
	int (*init)(void);
};

#define LX_MAX_USER_DRIVERS	16
extern const struct lx_user_driver lx_user_drivers[];

/* glue/irq.c */
extern unsigned int lx_nr_irq_lines;

#endif /* _LX_GLUE_H */
