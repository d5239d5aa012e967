/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A minimal driver core (linux/glue/base.c): buses, drivers and devices,
 * matching through the bus, probe and remove, reference counts with a
 * release callback, per-device managed resources, and the device
 * attributes of a bus (readable by the host as sysfs would show them).
 */
#ifndef _LINUX_DEVICE_H
#define _LINUX_DEVICE_H

#include <linux/types.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/stringify.h>
#include <linux/pm.h>
#include <linux/gfp.h>
#include <linux/idr.h>
#include <linux/cpumask.h>
#include <linux/rcupdate.h>
#include <linux/module.h>

struct device;
struct device_driver;
struct device_node;
struct fwnode_handle;
struct module;
struct of_device_id;
struct acpi_device_id;

#define UEVENT_NUM_ENVP		8
#define UEVENT_BUFFER_SIZE	512

struct kobj_uevent_env {
	char *envp[UEVENT_NUM_ENVP];
	int envp_idx;
	char buf[UEVENT_BUFFER_SIZE];
	int buflen;
};

__printf(2, 3)
int add_uevent_var(struct kobj_uevent_env *env, const char *format, ...);

struct attribute {
	const char *name;
	umode_t mode;
};

struct attribute_group {
	const char *name;
	struct attribute **attrs;
};

struct device_attribute {
	struct attribute attr;
	ssize_t (*show)(struct device *dev, struct device_attribute *attr,
			char *buf);
	ssize_t (*store)(struct device *dev, struct device_attribute *attr,
			 const char *buf, size_t count);
};

#define __ATTR_RO(_name) {						\
	.attr	= { .name = __stringify(_name), .mode = 0444 },		\
	.show	= _name##_show,						\
}
#define DEVICE_ATTR_RO(_name) \
	struct device_attribute dev_attr_##_name = __ATTR_RO(_name)

#define __ATTRIBUTE_GROUPS(_name)				\
static const struct attribute_group *_name##_groups[] = {	\
	&_name##_group,						\
	NULL,							\
}
#define ATTRIBUTE_GROUPS(_name)					\
static const struct attribute_group _name##_group = {		\
	.attrs = _name##_attrs,					\
};								\
__ATTRIBUTE_GROUPS(_name)

__printf(2, 3) int sysfs_emit(char *buf, const char *fmt, ...);
__printf(3, 4) int sysfs_emit_at(char *buf, int at, const char *fmt, ...);

struct bus_type {
	const char *name;
	const char *dev_name;
	const struct attribute_group **bus_groups;
	const struct attribute_group **dev_groups;
	const struct attribute_group **drv_groups;
	int (*match)(struct device *dev, const struct device_driver *drv);
	int (*uevent)(const struct device *dev, struct kobj_uevent_env *env);
	int (*probe)(struct device *dev);
	void (*sync_state)(struct device *dev);
	void (*remove)(struct device *dev);
	void (*shutdown)(struct device *dev);
	const struct dev_pm_ops *pm;
};

struct device_driver {
	const char *name;
	const struct bus_type *bus;
	struct module *owner;
	const char *mod_name;
	bool suppress_bind_attrs;
	const struct of_device_id *of_match_table;
	const struct acpi_device_id *acpi_match_table;
	int (*probe)(struct device *dev);
	void (*sync_state)(struct device *dev);
	int (*remove)(struct device *dev);
	void (*shutdown)(struct device *dev);
	const struct dev_pm_ops *pm;
	/* driver core: on its bus's list of drivers */
	struct list_head lx_node;
};

struct device {
	struct device *parent;
	const char *init_name;
	const struct bus_type *bus;
	struct device_driver *driver;
	void *platform_data;
	void *driver_data;
	struct device_node *of_node;
	struct fwnode_handle *fwnode;
	u64 *dma_mask;
	u64 coherent_dma_mask;
	void (*release)(struct device *dev);

	/* driver core */
	char *lx_name;
	int lx_refcount;
	bool lx_added;
	struct list_head lx_bus_node;
	struct list_head lx_children;
	struct list_head lx_sibling;
	struct list_head lx_devres;
};

static inline const char *dev_name(const struct device *dev)
{
	if (dev->init_name)
		return dev->init_name;
	return dev->lx_name;
}

__printf(2, 3) int dev_set_name(struct device *dev, const char *name, ...);

static inline void *dev_get_drvdata(const struct device *dev)
{
	return dev->driver_data;
}

static inline void dev_set_drvdata(struct device *dev, void *data)
{
	dev->driver_data = data;
}

static inline struct device_node *dev_of_node(struct device *dev)
{
	return NULL;
}

void device_initialize(struct device *dev);
int device_add(struct device *dev);
void device_del(struct device *dev);
int device_register(struct device *dev);
void device_unregister(struct device *dev);
struct device *get_device(struct device *dev);
void put_device(struct device *dev);
int device_attach(struct device *dev);
void device_release_driver(struct device *dev);
/* As Linux 6.13 names it. */
typedef int (*device_iter_t)(struct device *dev, void *data);
/* A macro only so that checkpatch does not take the definition for a loop. */
int lx_device_walk_children(struct device *parent, void *data,
			    device_iter_t fn);
#define device_for_each_child(parent, data, fn) \
	lx_device_walk_children(parent, data, fn)

int bus_register(const struct bus_type *bus);
void bus_unregister(const struct bus_type *bus);
int driver_register(struct device_driver *drv);
void driver_unregister(struct device_driver *drv);

/* Managed resources: released after remove() or a failed probe(). */
typedef void (*dr_release_t)(struct device *dev, void *res);
void *devres_alloc(dr_release_t release, size_t size, gfp_t gfp);
void devres_add(struct device *dev, void *res);
void devres_free(void *res);
void *devm_kmalloc(struct device *dev, size_t size, gfp_t gfp);
static inline void *devm_kzalloc(struct device *dev, size_t size, gfp_t gfp)
{
	return devm_kmalloc(dev, size, gfp | __GFP_ZERO);
}

__printf(3, 4)
void _dev_printk(const char *level, const struct device *dev,
		 const char *fmt, ...);

#ifndef dev_fmt
#define dev_fmt(fmt) fmt
#endif

#define dev_emerg(dev, fmt, ...) \
	_dev_printk(KERN_EMERG, dev, dev_fmt(fmt), ##__VA_ARGS__)
#define dev_crit(dev, fmt, ...) \
	_dev_printk(KERN_CRIT, dev, dev_fmt(fmt), ##__VA_ARGS__)
#define dev_err(dev, fmt, ...) \
	_dev_printk(KERN_ERR, dev, dev_fmt(fmt), ##__VA_ARGS__)
#define dev_warn(dev, fmt, ...) \
	_dev_printk(KERN_WARNING, dev, dev_fmt(fmt), ##__VA_ARGS__)
#define dev_notice(dev, fmt, ...) \
	_dev_printk(KERN_NOTICE, dev, dev_fmt(fmt), ##__VA_ARGS__)
#define dev_info(dev, fmt, ...) \
	_dev_printk(KERN_INFO, dev, dev_fmt(fmt), ##__VA_ARGS__)
#ifdef DEBUG
#define dev_dbg(dev, fmt, ...) \
	_dev_printk(KERN_DEBUG, dev, dev_fmt(fmt), ##__VA_ARGS__)
#else
#define dev_dbg(dev, fmt, ...) \
	({ if (0) _dev_printk(KERN_DEBUG, dev, fmt, ##__VA_ARGS__); })
#endif

#define dev_level_once(dev_level, dev, fmt, ...)			\
do {									\
	static bool __print_once;					\
									\
	if (!__print_once) {						\
		__print_once = true;					\
		dev_level(dev, fmt, ##__VA_ARGS__);			\
	}								\
} while (0)
#define dev_warn_once(dev, fmt, ...) \
	dev_level_once(dev_warn, dev, fmt, ##__VA_ARGS__)
#define dev_err_once(dev, fmt, ...) \
	dev_level_once(dev_err, dev, fmt, ##__VA_ARGS__)

#define module_driver(__driver, __register, __unregister, ...)	\
static int __init __driver##_init(void)				\
{								\
	return __register(&(__driver), ##__VA_ARGS__);		\
}								\
module_init(__driver##_init);					\
static void __exit __driver##_exit(void)			\
{								\
	__unregister(&(__driver), ##__VA_ARGS__);		\
}								\
module_exit(__driver##_exit)

#endif /* _LINUX_DEVICE_H */
