/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Basic types for wasm32: ILP32 (long and pointers are 32 bits), little
 * endian, 64-bit dma_addr_t and phys_addr_t as on arm64.
 */
#ifndef _LINUX_TYPES_H
#define _LINUX_TYPES_H

#include <linux/compiler_types.h>
#include <linux/stddef.h>

typedef signed char		__s8;
typedef unsigned char		__u8;
typedef signed short		__s16;
typedef unsigned short		__u16;
typedef signed int		__s32;
typedef unsigned int		__u32;
typedef signed long long	__s64;
typedef unsigned long long	__u64;

typedef __s8	s8;
typedef __u8	u8;
typedef __s16	s16;
typedef __u16	u16;
typedef __s32	s32;
typedef __u32	u32;
typedef __s64	s64;
typedef __u64	u64;

typedef __u8	uint8_t;
typedef __u16	uint16_t;
typedef __u32	uint32_t;
typedef __u64	uint64_t;

typedef __u16 __bitwise __le16;
typedef __u16 __bitwise __be16;
typedef __u32 __bitwise __le32;
typedef __u32 __bitwise __be32;
typedef __u64 __bitwise __le64;
typedef __u64 __bitwise __be64;
typedef __u64 __aligned_u64 __aligned(8);

typedef _Bool			bool;
typedef __SIZE_TYPE__		size_t;
typedef __PTRDIFF_TYPE__	ptrdiff_t;
typedef long			ssize_t;
typedef __UINTPTR_TYPE__	uintptr_t;
typedef __INTPTR_TYPE__		intptr_t;
typedef unsigned long		ulong;
typedef unsigned int		uint;
typedef unsigned long		kernel_ulong_t;
typedef long long		loff_t;
typedef int			pid_t;
typedef unsigned short		umode_t;
typedef s64			ktime_t;

typedef u64			dma_addr_t;
typedef u64			phys_addr_t;
typedef phys_addr_t		resource_size_t;
typedef unsigned int __bitwise gfp_t;

typedef struct {
	int counter;
} atomic_t;

struct list_head {
	struct list_head *next, *prev;
};

_Static_assert(sizeof(size_t) == sizeof(ssize_t), "ssize_t");
_Static_assert(sizeof(void *) == sizeof(long), "ILP32");

#endif /* _LINUX_TYPES_H */
