/*
 * The virtio-mmio transport, modern interface (virtio 1.2, 4.2, version 2):
 * a 4 KiB register window per device, one interrupt line. Queue
 * notifications arrive through ioeventfd (one eventfd per queue, matched on
 * the queue index written to QueueNotify) and interrupts leave through
 * irqfd; when the host offers neither (unit tests, no irqchip) the trapped
 * register write and dev_host.set_irq stand in for them.
 */
#ifndef BANYAN_VIRTIO_MMIO_H
#define BANYAN_VIRTIO_MMIO_H

#include <stdint.h>

#include "virtio/virtio.h"
#include "vmm/device.h"
#include "vmm/guest_mem.h"

#define VIRTIO_MMIO_SIZE 0x1000

/* Register offsets (4.2.2). */
#define VIRTIO_MMIO_MAGIC_VALUE		0x000
#define VIRTIO_MMIO_VERSION		0x004
#define VIRTIO_MMIO_DEVICE_ID		0x008
#define VIRTIO_MMIO_VENDOR_ID		0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES	0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES	0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL		0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX	0x034
#define VIRTIO_MMIO_QUEUE_NUM		0x038
#define VIRTIO_MMIO_QUEUE_READY		0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY	0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS	0x060
#define VIRTIO_MMIO_INTERRUPT_ACK	0x064
#define VIRTIO_MMIO_STATUS		0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW	0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH	0x084
#define VIRTIO_MMIO_QUEUE_AVAIL_LOW	0x090
#define VIRTIO_MMIO_QUEUE_AVAIL_HIGH	0x094
#define VIRTIO_MMIO_QUEUE_USED_LOW	0x0a0
#define VIRTIO_MMIO_QUEUE_USED_HIGH	0x0a4
#define VIRTIO_MMIO_SHM_SEL		0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW		0x0b0
#define VIRTIO_MMIO_SHM_LEN_HIGH	0x0b4
#define VIRTIO_MMIO_SHM_BASE_LOW	0x0b8
#define VIRTIO_MMIO_SHM_BASE_HIGH	0x0bc
#define VIRTIO_MMIO_CONFIG_GENERATION	0x0fc
#define VIRTIO_MMIO_CONFIG		0x100

#define VIRTIO_MMIO_MAGIC  0x74726976 /* "virt" */
#define VIRTIO_MMIO_VENDOR 0x4e594e42 /* "BNYN" */

/*
 * virtio_mmio_create - wrap @vdev (which now belongs to the transport) in a
 * register window the guest sees at @base, interrupting on @gsi. Registers
 * the queue ioeventfds and the irqfd through @host when it offers them and
 * starts the device thread. The caller puts the returned device on the MMIO
 * bus at @base. Returns NULL after one log line (and destroys @vdev).
 */
struct device *virtio_mmio_create(struct dev_host *host, const struct guest_mem *mem,
				  struct virtio_dev *vdev, uint64_t base, uint32_t gsi);

/*
 * virtio_mmio_vdev - the virtio device inside @dev (e.g. from
 * vm_find_device), or NULL when @dev is not a virtio-mmio transport.
 */
struct virtio_dev *virtio_mmio_vdev(struct device *dev);

/* virtio_mmio_gsi - the interrupt line of the transport @dev (virtio_mmio_vdev(@dev) != NULL). */
uint32_t virtio_mmio_gsi(struct device *dev);

#endif
