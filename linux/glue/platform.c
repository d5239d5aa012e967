// SPDX-License-Identifier: GPL-2.0-only
/*
 * The platform bus (matching by driver_override, id_table or name, as
 * drivers/base/platform.c does without OF and ACPI), platform devices with
 * their resources, iomem claims, ioremap, and the direct-mapped DMA API.
 */
#include <linux/kernel.h>
#include <linux/device.h>
#include <linux/platform_device.h>
#include <linux/ioport.h>
#include <linux/io.h>
#include <linux/interrupt.h>
#include <linux/dma-mapping.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/mm.h>
#include "lx.h"

static const struct platform_device_id *
platform_match_id(const struct platform_device_id *id,
		  struct platform_device *pdev)
{
	for (; id->name[0]; id++) {
		if (strcmp(pdev->name, id->name) == 0) {
			pdev->id_entry = id;
			return id;
		}
	}
	return NULL;
}

static int platform_match(struct device *dev, const struct device_driver *drv)
{
	struct platform_device *pdev = to_platform_device(dev);
	struct platform_driver *pdrv = to_platform_driver(drv);

	if (pdev->driver_override)
		return !strcmp(pdev->driver_override, drv->name);
	if (pdrv->id_table)
		return platform_match_id(pdrv->id_table, pdev) != NULL;
	return strcmp(pdev->name, drv->name) == 0;
}

static int platform_uevent(const struct device *dev,
			   struct kobj_uevent_env *env)
{
	const struct platform_device *pdev =
		container_of(dev, struct platform_device, dev);

	return add_uevent_var(env, "MODALIAS=platform:%s", pdev->name);
}

static int platform_probe(struct device *_dev)
{
	struct platform_driver *drv = to_platform_driver(_dev->driver);
	struct platform_device *dev = to_platform_device(_dev);
	int ret = 0;

	if (drv->probe)
		ret = drv->probe(dev);
	if (drv->prevent_deferred_probe && ret == -EPROBE_DEFER) {
		dev_warn(_dev, "probe deferral not supported\n");
		ret = -ENXIO;
	}
	return ret;
}

static void platform_remove(struct device *_dev)
{
	struct platform_driver *drv = to_platform_driver(_dev->driver);
	struct platform_device *dev = to_platform_device(_dev);

	if (drv->remove)
		drv->remove(dev);
}

const struct bus_type platform_bus_type = {
	.name		= "platform",
	.match		= platform_match,
	.uevent		= platform_uevent,
	.probe		= platform_probe,
	.remove		= platform_remove,
};

int __platform_driver_register(struct platform_driver *drv,
			       struct module *owner)
{
	drv->driver.owner = owner;
	drv->driver.bus = &platform_bus_type;
	return driver_register(&drv->driver);
}

void platform_driver_unregister(struct platform_driver *drv)
{
	driver_unregister(&drv->driver);
}

struct platform_object {
	struct platform_device pdev;
	char name[];
};

static void platform_device_release(struct device *dev)
{
	struct platform_object *pa = container_of(dev, struct platform_object,
						  pdev.dev);

	kfree(pa->pdev.resource);
	kfree(pa);
}

struct platform_device *platform_device_alloc(const char *name, int id)
{
	struct platform_object *pa;

	pa = kzalloc(sizeof(*pa) + strlen(name) + 1, GFP_KERNEL);
	if (!pa)
		return NULL;
	memcpy(pa->name, name, strlen(name) + 1);
	pa->pdev.name = pa->name;
	pa->pdev.id = id;
	device_initialize(&pa->pdev.dev);
	pa->pdev.dev.release = platform_device_release;
	pa->pdev.platform_dma_mask = DMA_BIT_MASK(32);
	pa->pdev.dev.dma_mask = &pa->pdev.platform_dma_mask;
	pa->pdev.dev.coherent_dma_mask = DMA_BIT_MASK(32);
	return &pa->pdev;
}

int platform_device_add_resources(struct platform_device *pdev,
				  const struct resource *res,
				  unsigned int num)
{
	struct resource *r = NULL;

	if (res) {
		r = kmalloc_array(num, sizeof(*r), GFP_KERNEL);
		if (!r)
			return -ENOMEM;
		memcpy(r, res, num * sizeof(*r));
	}
	kfree(pdev->resource);
	pdev->resource = r;
	pdev->num_resources = num;
	return 0;
}

int platform_device_add(struct platform_device *pdev)
{
	int ret;

	pdev->dev.bus = &platform_bus_type;
	if (pdev->id == -1)
		ret = dev_set_name(&pdev->dev, "%s", pdev->name);
	else
		ret = dev_set_name(&pdev->dev, "%s.%d", pdev->name, pdev->id);
	if (ret)
		return ret;
	return device_add(&pdev->dev);
}

void platform_device_del(struct platform_device *pdev)
{
	device_del(&pdev->dev);
}

void platform_device_put(struct platform_device *pdev)
{
	put_device(&pdev->dev);
}

void platform_device_unregister(struct platform_device *pdev)
{
	platform_device_del(pdev);
	platform_device_put(pdev);
}

struct resource *platform_get_resource(struct platform_device *dev,
				       unsigned int type, unsigned int num)
{
	u32 i;

	for (i = 0; i < dev->num_resources; i++) {
		struct resource *r = &dev->resource[i];

		if (type == resource_type(r) && num-- == 0)
			return r;
	}
	return NULL;
}

int platform_get_irq(struct platform_device *dev, unsigned int num)
{
	struct resource *r = platform_get_resource(dev, IORESOURCE_IRQ, num);

	if (!r) {
		dev_err(&dev->dev, "IRQ index %u not found\n", num);
		return -ENXIO;
	}
	if (WARN(!r->start, "0 is an invalid IRQ number\n"))
		return -EINVAL;
	return r->start;
}

/* iomem claims: the regions a driver has requested, a plain list. */
static struct resource *iomem_busy;

struct resource *request_mem_region(resource_size_t start,
				    resource_size_t n, const char *name)
{
	struct resource *r;

	for (r = iomem_busy; r; r = r->lx_next)
		if (start <= r->end && start + n - 1 >= r->start)
			return NULL;
	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return NULL;
	r->start = start;
	r->end = start + n - 1;
	r->name = name;
	r->flags = IORESOURCE_MEM | IORESOURCE_BUSY;
	r->lx_next = iomem_busy;
	iomem_busy = r;
	return r;
}

void release_mem_region(resource_size_t start, resource_size_t n)
{
	struct resource **pp, *r;

	for (pp = &iomem_busy; (r = *pp); pp = &r->lx_next) {
		if (r->start == start && r->end == start + n - 1) {
			*pp = r->lx_next;
			kfree(r);
			return;
		}
	}
	pr_warn("Trying to free nonexistent resource <%#010llx-%#010llx>\n",
		(unsigned long long)start, (unsigned long long)(start + n - 1));
}

/* The cookie is the physical address: every access traps to the host. */
void __iomem *ioremap(phys_addr_t offset, size_t size)
{
	phys_addr_t ram_end = PHYS_OFFSET +
			      __builtin_wasm_memory_size(0) * 65536ULL;

	if (!size || offset + size - 1 > 0xffffffffULL)
		return NULL;
	if (WARN(offset < ram_end && offset + size > PHYS_OFFSET,
		 "%s on RAM at %#010llx\n", __func__,
		 (unsigned long long)offset))
		return NULL;
	return (void __iomem *)(unsigned long)offset;
}

struct lx_region {
	resource_size_t start, n;
	void __iomem *addr;
};

static void devm_region_release(struct device *dev, void *res)
{
	struct lx_region *r = res;

	iounmap(r->addr);
	release_mem_region(r->start, r->n);
}

void __iomem *devm_ioremap(struct device *dev, resource_size_t offset,
			   resource_size_t size)
{
	return ioremap(offset, size);
}

void __iomem *devm_ioremap_resource(struct device *dev,
				    const struct resource *res)
{
	struct lx_region *r;
	const char *name;

	if (!res || resource_type(res) != IORESOURCE_MEM) {
		dev_err(dev, "invalid resource %pR\n", res);
		return (void __iomem *)ERR_PTR(-EINVAL);
	}
	r = devres_alloc(devm_region_release, sizeof(*r), GFP_KERNEL);
	if (!r)
		return (void __iomem *)ERR_PTR(-ENOMEM);
	name = res->name ? res->name : dev_name(dev);
	if (!request_mem_region(res->start, resource_size(res), name)) {
		dev_err(dev, "can't request region for resource %pR\n", res);
		devres_free(r);
		return (void __iomem *)ERR_PTR(-EBUSY);
	}
	r->start = res->start;
	r->n = resource_size(res);
	r->addr = ioremap(res->start, resource_size(res));
	if (!r->addr) {
		dev_err(dev, "ioremap failed for resource %pR\n", res);
		release_mem_region(r->start, r->n);
		devres_free(r);
		return (void __iomem *)ERR_PTR(-ENOMEM);
	}
	devres_add(dev, r);
	return r->addr;
}

void __iomem *devm_platform_ioremap_resource(struct platform_device *pdev,
					     unsigned int index)
{
	struct resource *res = platform_get_resource(pdev, IORESOURCE_MEM,
						     index);

	return devm_ioremap_resource(&pdev->dev, res);
}

/* DMA: dma-direct, no IOMMU, no bounce buffers: bus address = physical. */

static bool dma_supported(struct device *dev, u64 mask)
{
	u64 ram_end = PHYS_OFFSET + __builtin_wasm_memory_size(0) * 65536ULL;

	return mask >= ram_end - 1;
}

int dma_set_mask(struct device *dev, u64 mask)
{
	if (!dev->dma_mask || !dma_supported(dev, mask))
		return -EIO;
	*dev->dma_mask = mask;
	return 0;
}

int dma_set_coherent_mask(struct device *dev, u64 mask)
{
	if (!dma_supported(dev, mask))
		return -EIO;
	dev->coherent_dma_mask = mask;
	return 0;
}

dma_addr_t dma_map_page_attrs(struct device *dev, struct page *page,
			      size_t offset, size_t size,
			      enum dma_data_direction dir, unsigned long attrs)
{
	return page_to_phys(page) + offset;
}

void dma_unmap_page_attrs(struct device *dev, dma_addr_t addr, size_t size,
			  enum dma_data_direction dir, unsigned long attrs)
{
}

dma_addr_t dma_map_single_attrs(struct device *dev, void *ptr, size_t size,
				enum dma_data_direction dir,
				unsigned long attrs)
{
	return virt_to_phys(ptr);
}

void dma_unmap_single_attrs(struct device *dev, dma_addr_t addr,
			    size_t size, enum dma_data_direction dir,
			    unsigned long attrs)
{
}

int dma_mapping_error(struct device *dev, dma_addr_t dma_addr)
{
	return dma_addr == DMA_MAPPING_ERROR;
}

void *dma_alloc_coherent(struct device *dev, size_t size,
			 dma_addr_t *dma_handle, gfp_t gfp)
{
	void *p = alloc_pages_exact(size, gfp | __GFP_ZERO);

	if (p)
		*dma_handle = virt_to_phys(p);
	return p;
}

void dma_free_coherent(struct device *dev, size_t size, void *cpu_addr,
		       dma_addr_t dma_handle)
{
	free_pages_exact(cpu_addr, size);
}

void dma_sync_single_range_for_cpu(struct device *dev, dma_addr_t addr,
				   unsigned long offset, size_t size,
				   enum dma_data_direction dir)
{
}

void dma_sync_single_range_for_device(struct device *dev, dma_addr_t addr,
				      unsigned long offset, size_t size,
				      enum dma_data_direction dir)
{
}

bool dma_need_sync(struct device *dev, dma_addr_t dma_addr)
{
	return false;
}

size_t dma_max_mapping_size(struct device *dev)
{
	return SIZE_MAX;
}

size_t dma_opt_mapping_size(struct device *dev)
{
	return SIZE_MAX;
}
