// SPDX-License-Identifier: GPL-2.0-only
/*
 * printk, dev_printk, WARN, BUG, panic and might_sleep: each is formatted
 * here and handed to the host at once, with its level, the device it is
 * about, and for WARN/BUG the file and line.
 */
#include <linux/kernel.h>
#include <linux/device.h>
#include <linux/string.h>
#include <linux/irqflags.h>
#include <linux/spinlock.h>
#include <linux/mm.h>
#include "lx.h"

#define LX_LOG_LINE_MAX		1024
#define LX_DEFAULT_LOGLEVEL	4	/* KERN_WARNING, as Linux's default */

unsigned long lx_irqs_off;
int lx_preempt_count;
int lx_hardirq_count;

static unsigned int strip_newline(const char *msg, unsigned int len)
{
	while (len && msg[len - 1] == '\n')
		len--;
	return len;
}

/* Split a KERN_<LEVEL> prefix off; returns the text after it. */
static const char *printk_level(const char *text, int *level)
{
	*level = LX_DEFAULT_LOGLEVEL;
	while (text[0] == KERN_SOH[0] && text[1]) {
		if (text[1] >= '0' && text[1] <= '7')
			*level = text[1] - '0';
		text += 2;
	}
	return text;
}

int vprintk(const char *fmt, va_list args)
{
	char buf[LX_LOG_LINE_MAX];
	const char *text;
	int level, len;

	len = vscnprintf(buf, sizeof(buf), fmt, args);
	text = printk_level(buf, &level);
	len -= text - buf;
	lx_host_log(level, NULL, NULL, text, strip_newline(text, len));
	return len;
}

int _printk(const char *fmt, ...)
{
	va_list args;
	int r;

	va_start(args, fmt);
	r = vprintk(fmt, args);
	va_end(args);
	return r;
}

/* The "driver" part of "virtio_rng virtio0: ...": driver, else bus. */
static const char *dev_driver_string(const struct device *dev)
{
	struct device_driver *drv = READ_ONCE(dev->driver);

	if (drv)
		return drv->name;
	return dev->bus ? dev->bus->name : "";
}

void _dev_printk(const char *level, const struct device *dev,
		 const char *fmt, ...)
{
	char buf[LX_LOG_LINE_MAX];
	va_list args;
	int lvl, len;

	va_start(args, fmt);
	len = vscnprintf(buf, sizeof(buf), fmt, args);
	va_end(args);
	printk_level(level, &lvl);
	if (!dev) {
		lx_host_log(lvl, "(NULL device *)", NULL, buf,
			    strip_newline(buf, len));
		return;
	}
	lx_host_log(lvl, dev_name(dev), dev_driver_string(dev), buf,
		    strip_newline(buf, len));
}

void lx_warn(const char *file, int line, const char *func, const char *cond,
	     const char *fmt, ...)
{
	char buf[LX_LOG_LINE_MAX];
	va_list args;
	int len = 0;

	if (fmt) {
		va_start(args, fmt);
		len = vscnprintf(buf, sizeof(buf), fmt, args);
		va_end(args);
	} else {
		buf[0] = '\0';
	}
	lx_host_warn(LX_WARN_WARN_ON, file, line, func, cond, buf,
		     strip_newline(buf, len), lx_context_name());
}

void lx_bug(const char *file, int line, const char *func, const char *what)
{
	lx_host_bug(LX_BUG_BUG, file, line, func, what, strlen(what));
	__builtin_trap();
}

void lx_panic(const char *file, int line, const char *fmt, ...)
{
	char buf[LX_LOG_LINE_MAX];
	va_list args;
	int len;

	va_start(args, fmt);
	len = vscnprintf(buf, sizeof(buf), fmt, args);
	va_end(args);
	lx_host_bug(LX_BUG_PANIC, file, line, NULL, buf,
		    strip_newline(buf, len));
	__builtin_trap();
}

void lx_spin_bug(spinlock_t *lock, const char *msg, const char *file,
		 int line)
{
	lx_host_bug(LX_BUG_BUG, file, line, NULL, msg, strlen(msg));
	__builtin_trap();
}

/*
 * CONFIG_DEBUG_ATOMIC_SLEEP: every call is counted by the host (which can
 * flag calls made where sleeping is not allowed for its own reasons, such
 * as a noirq phase); a call in atomic context is a warning here, as
 * "BUG: sleeping function called from invalid context" is in Linux.
 */
void lx_might_sleep(const char *file, int line, const char *func)
{
	const char *dev = lx_context_name();

	lx_host_might_sleep(file, line, func, dev);
	if (!preemptible() || in_hardirq()) {
		static const char msg[] =
			"sleeping function called from invalid context";

		lx_host_warn(LX_WARN_SLEEP_ATOMIC, file, line, func,
			     in_hardirq() ? "in_hardirq()" :
			     irqs_disabled() ? "irqs_disabled()" :
			     "preempt_count()", msg, sizeof(msg) - 1, dev);
	}
}

void __might_sleep(const char *file, int line)
{
	lx_might_sleep(file, line, NULL);
}

static int sysfs_vemit(char *buf, int at, const char *fmt, va_list args)
{
	if (WARN(!buf || offset_in_page(buf) || at < 0 || at >= PAGE_SIZE,
		 "invalid sysfs_emit_at: buf:%p at:%d\n", buf, at))
		return 0;
	return vscnprintf(buf + at, PAGE_SIZE - at, fmt, args);
}

int sysfs_emit(char *buf, const char *fmt, ...)
{
	va_list args;
	int len;

	va_start(args, fmt);
	len = sysfs_vemit(buf, 0, fmt, args);
	va_end(args);
	return len;
}

int sysfs_emit_at(char *buf, int at, const char *fmt, ...)
{
	va_list args;
	int len;

	va_start(args, fmt);
	len = sysfs_vemit(buf, at, fmt, args);
	va_end(args);
	return len;
}

int add_uevent_var(struct kobj_uevent_env *env, const char *format, ...)
{
	va_list args;
	int len;

	if (env->envp_idx >= ARRAY_SIZE(env->envp)) {
		WARN(1, "%s: too many keys\n", __func__);
		return -ENOMEM;
	}
	va_start(args, format);
	len = vsnprintf(&env->buf[env->buflen],
			sizeof(env->buf) - env->buflen, format, args);
	va_end(args);
	if (len >= (sizeof(env->buf) - env->buflen)) {
		WARN(1, "%s: buffer size too small\n", __func__);
		return -ENOMEM;
	}
	env->envp[env->envp_idx++] = &env->buf[env->buflen];
	env->buflen += len + 1;
	return 0;
}
