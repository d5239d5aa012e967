/* SPDX-License-Identifier: GPL-2.0-only */
/* Attributes and annotations; force-included before every file. */
#ifndef _LINUX_COMPILER_TYPES_H
#define _LINUX_COMPILER_TYPES_H

/* No sparse: address-space annotations are empty. */
#define __iomem
#define __user
#define __kernel
#define __force
#define __bitwise
#define __rcu
#define __percpu
#define __private
#define __acquires(x)
#define __releases(x)
#define __must_hold(x)

#define __always_inline		inline __attribute__((__always_inline__))
#define noinline		__attribute__((__noinline__))
#define __noreturn		__attribute__((__noreturn__))
#define __packed		__attribute__((__packed__))
#define __aligned(x)		__attribute__((__aligned__(x)))
#define __maybe_unused		__attribute__((__unused__))
#define __always_unused		__attribute__((__unused__))
#define __used			__attribute__((__used__))
#define __weak			__attribute__((__weak__))
#define __cold			__attribute__((__cold__))
#define __pure			__attribute__((__pure__))
#define __attribute_const__	__attribute__((__const__))
#define __malloc		__attribute__((__malloc__))
#define __must_check		__attribute__((__warn_unused_result__))
#define __printf(a, b)		__attribute__((__format__(printf, a, b)))
#define __section(s)		__attribute__((__section__(s)))
#define __counted_by(member)
#define __nonstring
#define __read_mostly
#define __cacheline_aligned
#define __randomize_layout
#define notrace
#define fallthrough		__attribute__((__fallthrough__))
#define __same_type(a, b)	__builtin_types_compatible_p(typeof(a), typeof(b))
#define unreachable()		__builtin_unreachable()

#endif /* _LINUX_COMPILER_TYPES_H */
