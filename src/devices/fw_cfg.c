/*
 * fw_cfg: numbered items read byte by byte through the data port after a
 * write to the selector, or in one go through DMA (the guest writes the
 * big-endian address of a control structure {be32 control, be32 length,
 * be64 address}; Banyan performs it and clears control, or sets its error
 * bit). Items are read-only: a guest write through DMA is an error.
 * Everything is fixed before the VM runs except the selector, the read
 * offset and the DMA address half, which the lock protects and the
 * snapshot saves.
 */
#include "devices/fw_cfg.h"

#include "vmm/state.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define FW_CFG_MAX_ITEMS (FW_CFG_FILE_FIRST + FW_CFG_MAX_FILES)
#define DMA_CTL_ERROR	 0x01
#define DMA_CTL_READ	 0x02
#define DMA_CTL_SKIP	 0x04
#define DMA_CTL_SELECT	 0x08
#define DMA_CTL_WRITE	 0x10
#define DMA_SIGNATURE	 "QEMU CFG" /* what a read of the DMA register returns */

struct fw_cfg_item {
	uint8_t *data;
	uint32_t len;
};

struct fw_cfg {
	struct device dev;
	const struct guest_mem *mem;
	struct fw_cfg_item items[FW_CFG_MAX_ITEMS];    /* fixed once the VM runs */
	char names[FW_CFG_MAX_FILES][FW_CFG_NAME_MAX]; /* file i is item 0x20 + i */
	unsigned int nfiles;
	uint32_t file_bytes;
	pthread_mutex_t lock; /* protects select, offset, dma_high */
	uint16_t select;
	uint32_t offset;
	uint32_t dma_high;
};

static struct fw_cfg *to_fw_cfg(struct device *dev)
{
	return container_of(dev, struct fw_cfg, dev);
}

static void be32_put(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static uint32_t be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const struct fw_cfg_item *fw_cfg_item(const struct fw_cfg *f, uint16_t key)
{
	return key < FW_CFG_MAX_ITEMS ? &f->items[key] : NULL;
}

/* The next @len bytes of the selected item into @out (zeros past its end). */
static void fw_cfg_read_item(struct fw_cfg *f, uint8_t *out, uint32_t len)
{
	const struct fw_cfg_item *it = fw_cfg_item(f, f->select);
	uint32_t have = it && f->offset < it->len ? it->len - f->offset : 0;
	uint32_t n = have < len ? have : len;

	if (n)
		memcpy(out, it->data + f->offset, n);
	memset(out + n, 0, len - n);
	f->offset = f->offset + len < f->offset ? UINT32_MAX : f->offset + len;
}

/* One DMA transfer of @len bytes to guest @addr; false on an error. */
static bool fw_cfg_dma_read(struct fw_cfg *f, uint64_t addr, uint32_t len)
{
	uint8_t buf[4096];

	while (len) {
		uint32_t n = len < sizeof(buf) ? len : sizeof(buf);

		fw_cfg_read_item(f, buf, n);
		if (gm_write(f->mem, addr, buf, n) < 0)
			return false;
		addr += n;
		len -= n;
	}
	return true;
}

/* Perform the DMA request whose control structure is at @gpa. */
static void fw_cfg_dma(struct fw_cfg *f, uint64_t gpa)
{
	uint8_t req[16], status[4] = {0};
	uint32_t control, len;
	uint64_t addr;
	bool ok = true;

	if (!f->mem || gm_read(f->mem, gpa, req, sizeof(req)) < 0)
		return; /* nowhere to report to */
	control = be32_get(req);
	len = be32_get(req + 4);
	addr = (uint64_t)be32_get(req + 8) << 32 | be32_get(req + 12);
	if (control & DMA_CTL_SELECT) {
		f->select = (uint16_t)(control >> 16);
		f->offset = 0;
	}
	if (control & DMA_CTL_WRITE)
		ok = false; /* every item is read-only */
	else if (control & DMA_CTL_READ)
		ok = fw_cfg_dma_read(f, addr, len);
	else if (control & DMA_CTL_SKIP)
		f->offset = f->offset + len < f->offset ? UINT32_MAX : f->offset + len;
	if (!ok)
		be32_put(status, DMA_CTL_ERROR);
	if (gm_write(f->mem, gpa, status, sizeof(status)) < 0)
		return; /* the structure was readable a moment ago: cannot happen */
}

static void fw_cfg_read(struct device *dev, uint64_t offset, void *data, uint32_t len)
{
	struct fw_cfg *f = to_fw_cfg(dev);
	uint8_t *out = data;

	memset(out, 0, len);
	pthread_mutex_lock(&f->lock);
	if (offset == 1)
		fw_cfg_read_item(f, out, len);
	else if (offset >= 4 && offset < 12)
		for (uint32_t i = 0; i < len && offset + i < 12; i++)
			out[i] = (uint8_t)DMA_SIGNATURE[offset - 4 + i];
	pthread_mutex_unlock(&f->lock);
}

static void fw_cfg_write(struct device *dev, uint64_t offset, const void *data, uint32_t len)
{
	struct fw_cfg *f = to_fw_cfg(dev);
	const uint8_t *in = data;

	pthread_mutex_lock(&f->lock);
	if (offset == 0 && len == 2) {
		f->select = (uint16_t)(in[0] | in[1] << 8);
		f->offset = 0;
	} else if (offset == 4 && len == 4) {
		f->dma_high = be32_get(in);
	} else if (offset == 8 && len == 4) {
		fw_cfg_dma(f, (uint64_t)f->dma_high << 32 | be32_get(in));
		f->dma_high = 0;
	} else if (offset == 4 && len == 8) {
		fw_cfg_dma(f, (uint64_t)be32_get(in) << 32 | be32_get(in + 4));
	}
	pthread_mutex_unlock(&f->lock);
}

static int fw_cfg_state(struct device *dev, struct state_io *io)
{
	struct fw_cfg *f = to_fw_cfg(dev);

	state_u16(io, &f->select);
	state_u32(io, &f->offset);
	state_u32(io, &f->dma_high);
	return 0;
}

static void fw_cfg_destroy(struct device *dev)
{
	struct fw_cfg *f = to_fw_cfg(dev);

	for (unsigned int i = 0; i < FW_CFG_MAX_ITEMS; i++)
		free(f->items[i].data);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static const struct device_ops fw_cfg_ops = {
    .name = "fw-cfg",
    .read = fw_cfg_read,
    .write = fw_cfg_write,
    .state = fw_cfg_state,
    .destroy = fw_cfg_destroy,
};

/* Item @key becomes a copy of @data. */
static int fw_cfg_set(struct fw_cfg *f, uint16_t key, const void *data, uint32_t len)
{
	uint8_t *copy = malloc(len ? len : 1);

	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	free(f->items[key].data);
	f->items[key] = (struct fw_cfg_item){copy, len};
	return 0;
}

/* The directory: be32 count, then per file be32 size, be16 select, be16 0, name[56]. */
static int fw_cfg_write_dir(struct fw_cfg *f)
{
	uint8_t dir[4 + 64 * FW_CFG_MAX_FILES] = {0};

	be32_put(dir, f->nfiles);
	for (unsigned int i = 0; i < f->nfiles; i++) {
		uint8_t *e = dir + 4 + 64 * i;
		const struct fw_cfg_item *it = &f->items[FW_CFG_FILE_FIRST + i];

		be32_put(e, it->len);
		e[4] = (uint8_t)((FW_CFG_FILE_FIRST + i) >> 8);
		e[5] = (uint8_t)(FW_CFG_FILE_FIRST + i);
		memcpy(e + 8, f->names[i], FW_CFG_NAME_MAX);
	}
	return fw_cfg_set(f, FW_CFG_FILE_DIR, dir, 4 + 64 * f->nfiles);
}

int fw_cfg_add_file(struct device *dev, const char *name, const void *data, uint32_t len)
{
	struct fw_cfg *f = to_fw_cfg(dev);
	size_t n = strlen(name);
	int ret;

	if (n == 0 || n >= FW_CFG_NAME_MAX)
		return -EINVAL;
	for (unsigned int i = 0; i < f->nfiles; i++)
		if (strcmp(f->names[i], name) == 0)
			return -EEXIST;
	if (f->nfiles == FW_CFG_MAX_FILES || len > FW_CFG_MAX_BYTES - f->file_bytes)
		return -E2BIG;
	ret = fw_cfg_set(f, (uint16_t)(FW_CFG_FILE_FIRST + f->nfiles), data, len);
	if (ret < 0)
		return ret;
	memcpy(f->names[f->nfiles], name, n + 1);
	f->nfiles++;
	f->file_bytes += len;
	return fw_cfg_write_dir(f);
}

/* The fixed items, little-endian as QEMU stores them. */
static int fw_cfg_fixed_items(struct fw_cfg *f, uint16_t ncpus, uint64_t ram_size)
{
	uint8_t id[4] = {3, 0, 0, 0}, cpus[2] = {(uint8_t)ncpus, (uint8_t)(ncpus >> 8)}, ram[8];
	int ret;

	for (int i = 0; i < 8; i++)
		ram[i] = (uint8_t)(ram_size >> (8 * i));
	ret = fw_cfg_set(f, FW_CFG_SIGNATURE, "QEMU", 4);
	if (ret == 0)
		ret = fw_cfg_set(f, FW_CFG_ID, id, sizeof(id));
	if (ret == 0)
		ret = fw_cfg_set(f, FW_CFG_RAM_SIZE, ram, sizeof(ram));
	if (ret == 0)
		ret = fw_cfg_set(f, FW_CFG_NB_CPUS, cpus, sizeof(cpus));
	if (ret == 0)
		ret = fw_cfg_set(f, FW_CFG_MAX_CPUS, cpus, sizeof(cpus));
	if (ret == 0)
		ret = fw_cfg_write_dir(f);
	return ret;
}

struct device *fw_cfg_create(struct dev_host *host, const struct guest_mem *mem, uint16_t ncpus,
			     uint64_t ram_size)
{
	struct fw_cfg *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	if (pthread_mutex_init(&f->lock, NULL)) {
		free(f);
		return NULL;
	}
	f->dev.ops = &fw_cfg_ops;
	f->dev.host = host;
	f->dev.id = "fw-cfg";
	f->mem = mem;
	if (fw_cfg_fixed_items(f, ncpus, ram_size) < 0) {
		fw_cfg_destroy(&f->dev);
		return NULL;
	}
	return &f->dev;
}
