/*
 * QEMU's firmware configuration interface (docs/specs/fw_cfg.rst in QEMU):
 * a selector port, a data port and a DMA address register, through which a
 * guest reads numbered items and named files. Opt-in (`--device fw-cfg`,
 * `--fw-cfg name=opt/NAME,...`); Linux's qemu_fw_cfg driver finds it by its
 * ACPI device (QEMU0002) and shows the files under /sys/firmware/qemu_fw_cfg.
 */
#ifndef BANYAN_DEVICES_FW_CFG_H
#define BANYAN_DEVICES_FW_CFG_H

#include <stdint.h>

#include "vmm/device.h"
#include "vmm/guest_mem.h"

#define FW_CFG_PORT	0x510 /* selector (16-bit), data at +1, DMA address at +4 */
#define FW_CFG_PORT_LEN 12

/* The items QEMU defines that Banyan fills. */
#define FW_CFG_SIGNATURE  0x0000 /* "QEMU" */
#define FW_CFG_ID	  0x0001 /* bit 0: this interface, bit 1: DMA */
#define FW_CFG_RAM_SIZE	  0x0003 /* 64-bit little-endian bytes */
#define FW_CFG_NB_CPUS	  0x0005 /* 16-bit little-endian */
#define FW_CFG_MAX_CPUS	  0x000f
#define FW_CFG_FILE_DIR	  0x0019
#define FW_CFG_FILE_FIRST 0x0020

#define FW_CFG_NAME_MAX	 56 /* including the NUL */
#define FW_CFG_MAX_FILES 32
#define FW_CFG_MAX_BYTES (16U << 20) /* all files together */

/*
 * fw_cfg_create - the device, with the signature, ID, @ncpus and @ram_size
 * items and an empty file directory. DMA reads go to @mem. NULL when out
 * of memory.
 */
struct device *fw_cfg_create(struct dev_host *host, const struct guest_mem *mem, uint16_t ncpus,
			     uint64_t ram_size);

/*
 * fw_cfg_add_file - add file @name (1..55 bytes) holding a copy of @len
 * bytes of @data, at the next selector from 0x20. 0, -EEXIST for a name
 * already there, -EINVAL for a bad name, -E2BIG past FW_CFG_MAX_FILES or
 * FW_CFG_MAX_BYTES, -ENOMEM. Before the VM runs only.
 */
int fw_cfg_add_file(struct device *dev, const char *name, const void *data, uint32_t len)
    __attribute__((warn_unused_result));

#endif
