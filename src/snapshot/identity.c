/*
 * A clone's identity. Every restore gets a new VM generation ID
 * (snapshot.c); clones also must not share their parent's network
 * identity, or two VMs would answer for one MAC and one vsock CID:
 * - MAC: clone i of a card with MAC m gets FNV-1a(m, i) in the low three
 *   bytes, locally administered and unicast; the same clone number of the
 *   same snapshot always gets the same MAC.
 * - vsock CID: the snapshot's CID + 1 + i.
 */
#include "snapshot/snapshot.h"

#include "util/log.h"
#include "virtio/mmio.h"
#include "virtio/virtio.h"

#include <errno.h>
#include <string.h>

static void clone_mac(const uint8_t old[6], int index, uint8_t mac[6])
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < 6; i++)
		h = (h ^ old[i]) * 16777619u;
	for (int i = 0; i < 4; i++)
		h = (h ^ (uint8_t)((unsigned int)index >> (8 * i))) * 16777619u;
	memcpy(mac, old, 6);
	mac[0] = (uint8_t)((old[0] | 0x02) & ~0x01); /* locally administered, unicast */
	mac[3] = (uint8_t)(h >> 16);
	mac[4] = (uint8_t)(h >> 8);
	mac[5] = (uint8_t)(h ^ (uint32_t)index);
}

static int clone_net(struct vm *vm, struct virtio_dev *vdev, unsigned int n, int index)
{
	const struct net_config *net;
	uint8_t old[6], mac[6];

	if (n >= vm->cfg.nnets)
		return 0;
	net = &vm->cfg.nets[n];
	if (net->has_mac)
		memcpy(old, net->mac, 6);
	else
		virtio_net_default_mac(net->tap, net->id ? net->id : vdev->id, old);
	clone_mac(old, index, mac);
	log_info("clone %d: %s gets MAC %02x:%02x:%02x:%02x:%02x:%02x", index, vdev->id, mac[0],
		 mac[1], mac[2], mac[3], mac[4], mac[5]);
	return virtio_net_set_mac(vdev, mac);
}

static int clone_vsock(struct vm *vm, struct virtio_dev *vdev, int index)
{
	uint32_t cid = vm->cfg.vsock.cid + 1 + (uint32_t)index;

	log_info("clone %d: vsock CID %u", index, cid);
	return virtio_vsock_set_cid(vdev, cid);
}

int snapshot_clone_identity(struct vm *vm, int index)
{
	unsigned int nets = 0;
	int ret = 0;

	if (index < 0)
		return 0;
	/* The device list is newest first; count cards in creation order. */
	for (struct device *d = vm->devices; d; d = d->next) {
		struct virtio_dev *vdev = virtio_mmio_vdev(d);

		if (vdev && vdev->ops->device_id == VIRTIO_ID_NET)
			nets++;
	}
	for (struct device *d = vm->devices; d && ret == 0; d = d->next) {
		struct virtio_dev *vdev = virtio_mmio_vdev(d);

		if (!vdev)
			continue;
		if (vdev->ops->device_id == VIRTIO_ID_NET)
			ret = clone_net(vm, vdev, --nets, index);
		else if (vdev->ops->device_id == VIRTIO_ID_VSOCK)
			ret = clone_vsock(vm, vdev, index);
	}
	return ret;
}
