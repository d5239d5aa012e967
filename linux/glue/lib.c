// SPDX-License-Identifier: GPL-2.0-only
/*
 * Library services: string functions, a vsnprintf for the formats the
 * kernel files print, scatterlist helpers and the IDA.
 */
#define __LX_NO_STRING_BUILTINS
#include <linux/kernel.h>
#include <linux/string.h>
#include <linux/slab.h>
#include <linux/scatterlist.h>
#include <linux/idr.h>
#include <linux/ioport.h>

void *memcpy(void *dest, const void *src, size_t n)
{
	__builtin_memcpy(dest, src, n);
	return dest;
}

void *memmove(void *dest, const void *src, size_t n)
{
	__builtin_memmove(dest, src, n);
	return dest;
}

void *memset(void *s, int c, size_t n)
{
	__builtin_memset(s, c, n);
	return s;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	const char *p = s;

	while (*p)
		p++;
	return p - s;
}

size_t strnlen(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n])
		n++;
	return n;
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			break;
	}
	return 0;
}

char *strchr(const char *s, int c)
{
	for (; *s != (char)c; s++)
		if (!*s)
			return NULL;
	return (char *)s;
}

ssize_t strscpy(char *dest, const char *src, size_t count)
{
	size_t n;

	if (count == 0)
		return -E2BIG;
	n = strnlen(src, count);
	if (n == count) {
		memcpy(dest, src, count - 1);
		dest[count - 1] = '\0';
		return -E2BIG;
	}
	memcpy(dest, src, n + 1);
	return n;
}

char *kstrdup(const char *s, gfp_t gfp)
{
	size_t len;
	char *buf;

	if (!s)
		return NULL;
	len = strlen(s) + 1;
	buf = kmalloc(len, gfp);
	if (buf)
		memcpy(buf, s, len);
	return buf;
}

/* No .rodata tracking: a const duplicate is an ordinary one. */
const char *kstrdup_const(const char *s, gfp_t gfp)
{
	return kstrdup(s, gfp);
}

void kfree_const(const void *x)
{
	kfree(x);
}

/* vsnprintf */

struct lx_out {
	char *buf;
	size_t size;
	size_t len;	/* what would have been written */
};

static void out_c(struct lx_out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void out_pad(struct lx_out *o, char c, int n)
{
	while (n-- > 0)
		out_c(o, c);
}

#define F_LEFT	1
#define F_ZERO	2
#define F_PLUS	4
#define F_SPACE	8
#define F_ALT	16
#define F_UPPER	32

static void out_str(struct lx_out *o, const char *s, int width, int prec,
		    int flags)
{
	int len, i;

	if (!s)
		s = "(null)";
	len = prec >= 0 ? (int)strnlen(s, prec) : (int)strlen(s);
	if (!(flags & F_LEFT))
		out_pad(o, ' ', width - len);
	for (i = 0; i < len; i++)
		out_c(o, s[i]);
	if (flags & F_LEFT)
		out_pad(o, ' ', width - len);
}

static void out_num(struct lx_out *o, unsigned long long v, bool neg,
		    unsigned int base, int width, int prec, int flags)
{
	const char *digits = (flags & F_UPPER) ? "0123456789ABCDEF" :
						 "0123456789abcdef";
	char tmp[24];
	int n = 0, len, pad;
	bool zero;
	char sign = 0;
	const char *prefix = "";

	if (neg)
		sign = '-';
	else if (flags & F_PLUS)
		sign = '+';
	else if (flags & F_SPACE)
		sign = ' ';
	if ((flags & F_ALT) && base == 16 && v)
		prefix = (flags & F_UPPER) ? "0X" : "0x";
	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	if (prec == 0 && n == 1 && tmp[0] == '0')
		n = 0;
	len = (prec > n ? prec : n) + (sign ? 1 : 0) + (int)strlen(prefix);
	pad = width - len;
	zero = (flags & F_ZERO) && !(flags & F_LEFT) && prec < 0;
	if (!(flags & F_LEFT) && !zero)
		out_pad(o, ' ', pad);
	if (sign)
		out_c(o, sign);
	while (*prefix)
		out_c(o, *prefix++);
	if (zero)
		out_pad(o, '0', pad);
	out_pad(o, '0', prec - n);
	while (n)
		out_c(o, tmp[--n]);
	if (flags & F_LEFT)
		out_pad(o, ' ', pad);
}

/* %pR: a resource as the kernel shows one, e.g. [mem 0x0a000000-0x0a0001ff] */
static void out_resource(struct lx_out *o, const struct resource *r)
{
	const char *kind = "??";

	if (!r) {
		out_str(o, "(null)", 0, -1, 0);
		return;
	}
	if (resource_type(r) == IORESOURCE_MEM)
		kind = "mem";
	else if (resource_type(r) == IORESOURCE_IRQ)
		kind = "irq";
	out_c(o, '[');
	out_str(o, kind, 0, -1, 0);
	out_c(o, ' ');
	out_num(o, r->start, false, 16, 10, -1, F_ALT | F_ZERO);
	out_c(o, '-');
	out_num(o, r->end, false, 16, 10, -1, F_ALT | F_ZERO);
	out_c(o, ']');
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list args)
{
	struct lx_out o = { .buf = buf, .size = size, .len = 0 };

	for (; *fmt; fmt++) {
		int flags = 0, width = -1, prec = -1, lng = 0;
		unsigned long long v;
		bool neg = false;
		unsigned int base = 10;

		if (*fmt != '%') {
			out_c(&o, *fmt);
			continue;
		}
		for (;;) {
			char f = *++fmt;

			if (f == '-')
				flags |= F_LEFT;
			else if (f == '0')
				flags |= F_ZERO;
			else if (f == '+')
				flags |= F_PLUS;
			else if (f == ' ')
				flags |= F_SPACE;
			else if (f == '#')
				flags |= F_ALT;
			else
				break;
		}
		if (*fmt == '*') {
			width = va_arg(args, int);
			if (width < 0) {
				flags |= F_LEFT;
				width = -width;
			}
			fmt++;
		} else {
			for (width = 0; *fmt >= '0' && *fmt <= '9'; fmt++)
				width = width * 10 + (*fmt - '0');
		}
		if (*fmt == '.') {
			fmt++;
			if (*fmt == '*') {
				prec = va_arg(args, int);
				fmt++;
			} else {
				for (prec = 0; *fmt >= '0' && *fmt <= '9'; fmt++)
					prec = prec * 10 + (*fmt - '0');
			}
		}
		while (*fmt == 'l' || *fmt == 'h' || *fmt == 'z' ||
		       *fmt == 't') {
			if (*fmt == 'l')
				lng++;
			else if (*fmt == 'z' || *fmt == 't')
				lng = 1;
			fmt++;
		}
		switch (*fmt) {
		case '%':
			out_c(&o, '%');
			continue;
		case 'c':
			out_pad(&o, ' ', (flags & F_LEFT) ? 0 : width - 1);
			out_c(&o, (char)va_arg(args, int));
			out_pad(&o, ' ', (flags & F_LEFT) ? width - 1 : 0);
			continue;
		case 's':
			out_str(&o, va_arg(args, const char *), width, prec,
				flags);
			continue;
		case 'p':
			if (fmt[1] == 'R' || fmt[1] == 'r') {
				fmt++;
				out_resource(&o, va_arg(args, void *));
				continue;
			}
			if (fmt[1] == 'x')
				fmt++;
			v = (unsigned long)va_arg(args, void *);
			out_num(&o, v, false, 16, 8, -1, F_ZERO);
			continue;
		case 'd':
		case 'i': {
			long long sv;

			if (lng >= 2)
				sv = va_arg(args, long long);
			else if (lng == 1)
				sv = va_arg(args, long);
			else
				sv = va_arg(args, int);
			neg = sv < 0;
			v = neg ? -(unsigned long long)sv : (unsigned long long)sv;
			out_num(&o, v, neg, 10, width, prec, flags);
			continue;
		}
		case 'X':
			flags |= F_UPPER;
			fallthrough;
		case 'x':
			base = 16;
			break;
		case 'o':
			base = 8;
			break;
		case 'u':
			break;
		default:
			out_c(&o, '%');
			if (*fmt)
				out_c(&o, *fmt);
			else
				fmt--;
			continue;
		}
		if (lng >= 2)
			v = va_arg(args, unsigned long long);
		else if (lng == 1)
			v = va_arg(args, unsigned long);
		else
			v = va_arg(args, unsigned int);
		out_num(&o, v, false, base, width, prec, flags);
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return o.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list args;
	int n;

	va_start(args, fmt);
	n = vsnprintf(buf, size, fmt, args);
	va_end(args);
	return n;
}

int vscnprintf(char *buf, size_t size, const char *fmt, va_list args)
{
	int n = vsnprintf(buf, size, fmt, args);

	if (n < (int)size)
		return n;
	return size ? size - 1 : 0;
}

int scnprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list args;
	int n;

	va_start(args, fmt);
	n = vscnprintf(buf, size, fmt, args);
	va_end(args);
	return n;
}

int sprintf(char *buf, const char *fmt, ...)
{
	va_list args;
	int n;

	va_start(args, fmt);
	n = vsnprintf(buf, INT_MAX, fmt, args);
	va_end(args);
	return n;
}

char *kvasprintf(gfp_t gfp, const char *fmt, va_list args)
{
	va_list copy;
	int len;
	char *p;

	va_copy(copy, args);
	len = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	p = kmalloc(len + 1, gfp);
	if (p)
		vsnprintf(p, len + 1, fmt, args);
	return p;
}

char *kasprintf(gfp_t gfp, const char *fmt, ...)
{
	va_list args;
	char *p;

	va_start(args, fmt);
	p = kvasprintf(gfp, fmt, args);
	va_end(args);
	return p;
}

/* Scatterlists (no chaining is ever set up here). */

void sg_init_table(struct scatterlist *sgl, unsigned int nents)
{
	memset(sgl, 0, sizeof(*sgl) * nents);
	sg_mark_end(&sgl[nents - 1]);
}

void sg_init_one(struct scatterlist *sg, const void *buf, unsigned int buflen)
{
	sg_init_table(sg, 1);
	sg_set_buf(sg, buf, buflen);
}

struct scatterlist *sg_next(struct scatterlist *sg)
{
	if (sg_is_last(sg))
		return NULL;
	sg++;
	if (unlikely(sg_is_chain(sg)))
		sg = sg_chain_ptr(sg);
	return sg;
}

/* IDA: a bitmap of allocated ids, doubled when full. */

#define IDA_BITS_PER_WORD	(8 * sizeof(unsigned long))

static bool ida_test(struct ida *ida, unsigned int id)
{
	return id < ida->nbits &&
	       (ida->bits[id / IDA_BITS_PER_WORD] >> (id % IDA_BITS_PER_WORD)) & 1;
}

int ida_alloc_range(struct ida *ida, unsigned int min, unsigned int max,
		    gfp_t gfp)
{
	unsigned int id;

	if ((int)min < 0)
		return -ENOSPC;
	if ((int)max < 0)
		max = INT_MAX;
	for (id = min; id <= max; id++) {
		if (id >= ida->nbits) {
			unsigned int n = ida->nbits ? ida->nbits * 2 : 64;
			unsigned long *bits;

			while (n <= id)
				n *= 2;
			bits = kzalloc(n / 8, gfp);
			if (!bits)
				return -ENOMEM;
			if (ida->bits)
				memcpy(bits, ida->bits, ida->nbits / 8);
			kfree(ida->bits);
			ida->bits = bits;
			ida->nbits = n;
		}
		if (!ida_test(ida, id)) {
			ida->bits[id / IDA_BITS_PER_WORD] |=
				1UL << (id % IDA_BITS_PER_WORD);
			return id;
		}
	}
	return -ENOSPC;
}

void ida_free(struct ida *ida, unsigned int id)
{
	if (!ida_test(ida, id)) {
		WARN(1, "%s called for id=%d which is not allocated.\n",
		     __func__, id);
		return;
	}
	ida->bits[id / IDA_BITS_PER_WORD] &= ~(1UL << (id % IDA_BITS_PER_WORD));
}

void ida_destroy(struct ida *ida)
{
	kfree(ida->bits);
	ida->bits = NULL;
	ida->nbits = 0;
}
