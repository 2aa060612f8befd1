/* The x86 machine: memory map, in-kernel irqchip and PIT, legacy devices, ACPI. */
#include "vmm/arch.h"
#include "vmm/kvm.h"

#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"
#include "arch/x86/x86.h"
#include "devices/fw_cfg.h"
#include "devices/legacy.h"
#include "devices/boot_timer.h"
#include "devices/testdev.h"
#include "devices/vmgenid.h"
#include "util/clock.h"
#include "util/file.h"
#include "util/log.h"
#include "virtio/mmio.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define KVM_TSS_ADDR	      0xfffbd000ULL /* three pages KVM needs, inside the hole */
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ULL

int arch_memory_layout(uint64_t mem_size, struct arch_mem_range ranges[ARCH_MAX_MEM_RANGES])
{
	if (mem_size < (1ULL << 20) || (mem_size & 0xfff))
		return -EINVAL;
	ranges[0].gpa = 0;
	ranges[0].size = mem_size < LAYOUT_LOWMEM_END ? mem_size : LAYOUT_LOWMEM_END;
	if (mem_size <= LAYOUT_LOWMEM_END)
		return 1;
	ranges[1].gpa = LAYOUT_HIGHMEM;
	ranges[1].size = mem_size - LAYOUT_LOWMEM_END;
	return 2;
}

int arch_vm_init(struct vm *vm)
{
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	uint64_t identity = KVM_IDENTITY_MAP_ADDR;
	int ret;

	vm->arch = calloc(1, sizeof(*vm->arch));
	if (!vm->arch)
		return -ENOMEM;
	ret = kvm_ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR);
	if (ret == 0)
		ret = kvm_ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity);
	if (ret == 0 && !vm->cfg.no_irqchip)
		ret = kvm_ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0);
	if (ret == 0 && !vm->cfg.no_irqchip)
		ret = kvm_ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit);
	return ret < 0 ? ret : x86_cpuid_init(vm);
}

static int x86_add_pio_device(struct vm *vm, struct device *dev, uint64_t port, uint64_t len)
{
	int ret;

	if (!dev)
		return -ENOMEM;
	vm_add_device(vm, dev);
	ret = bus_register(&vm->pio, port, len, dev);
	if (ret < 0)
		log_error("cannot register %s at port 0x%llx: %s", dev->ops->name,
			  (unsigned long long)port, strerror(-ret));
	return ret;
}

/*
 * virtio-mmio devices: the disks first (vda, vdb, ...), then the entropy
 * source, the network cards, the vsock device, the balloon (last: the
 * others keep their addresses and lines with or without it).
 */
static unsigned int x86_nvirtio(const struct vm *vm)
{
	return vm->cfg.ndisks + (vm->cfg.rng ? 1 : 0) + vm->cfg.nnets +
	       (vm->cfg.vsock.cid ? 1 : 0) + (vm->cfg.balloon.enabled ? 1 : 0);
}

static struct virtio_dev *x86_virtio_dev(struct vm *vm, unsigned int i)
{
	const struct dev_instance *inst = &vm->cfg.inst;

	if (i < vm->cfg.ndisks)
		return virtio_blk_create(&vm->cfg.disks[i], i, inst);
	i -= vm->cfg.ndisks;
	if (vm->cfg.rng && i-- == 0)
		return virtio_rng_create(&vm->cfg.rng_limit);
	if (i < vm->cfg.nnets)
		return virtio_net_create(&vm->cfg.nets[i], i, inst);
	i -= vm->cfg.nnets;
	if (vm->cfg.vsock.cid && i-- == 0)
		return virtio_vsock_create(&vm->cfg.vsock, inst);
	return virtio_balloon_create(&vm->cfg.balloon, &vm->mem);
}

/* The interrupt line of the @i-th virtio device (layout.h): the same on every boot and restore. */
static uint32_t x86_virtio_gsi(unsigned int i)
{
	static const uint8_t extra[] = GSI_VIRTIO_EXTRA;
	const unsigned int dedicated = GSI_VIRTIO_LAST - GSI_VIRTIO_FIRST + 1;

	_Static_assert(sizeof(extra) + GSI_VIRTIO_LAST - GSI_VIRTIO_FIRST + 1 == GSI_VIRTIO_COUNT,
		       "GSI_VIRTIO_COUNT counts every line");
	return i < dedicated ? GSI_VIRTIO_FIRST + i : extra[i - dedicated];
}

static int x86_add_virtio_devices(struct vm *vm)
{
	unsigned int i, n = x86_nvirtio(vm);
	int ret;

	if (n > GSI_VIRTIO_COUNT) {
		log_error("too many virtio devices (%u: disks, network cards, rng, vsock, "
			  "balloon): at most "
			  "%d",
			  n, GSI_VIRTIO_COUNT);
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		uint64_t base = LAYOUT_VIRTIO_MMIO + i * LAYOUT_VIRTIO_SIZE;
		struct virtio_dev *vdev = x86_virtio_dev(vm, i);
		struct device *dev =
		    virtio_mmio_create(&vm->host, &vm->mem, vdev, base, x86_virtio_gsi(i));

		if (!dev)
			return -EINVAL;
		vm_add_device(vm, dev);
		ret = bus_register(&vm->mmio, base, LAYOUT_VIRTIO_SIZE, dev);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* The VM generation ID: no registers, only memory and the GED's interrupt. */
static int x86_add_vmgenid(struct vm *vm)
{
	struct device *gen = vmgenid_create(&vm->host, &vm->mem, LAYOUT_VMGENID, GSI_GED);

	if (!gen)
		return -ENOMEM;
	vm_add_device(vm, gen);
	return 0;
}

static int x86_add_testdev(struct vm *vm)
{
	struct device *parts[TESTDEV_NPARTS];
	int ret = testdev_create(&vm->host, &vm->mem, parts);

	if (ret < 0)
		return ret;
	for (unsigned int i = 0; i < TESTDEV_NPARTS; i++)
		vm_add_device(vm, parts[i]);
	ret = bus_register(&vm->pio, TESTDEV_PORT, TESTDEV_PORT_LEN, parts[TESTDEV_PART_PORTS]);
	if (ret == 0)
		ret = bus_register(&vm->pio, TESTDEV_IRQ_PORT, TESTDEV_IRQ_LINES,
				   parts[TESTDEV_PART_IRQ]);
	if (ret == 0)
		ret = bus_register(&vm->mmio, TESTDEV_IOMEM, TESTDEV_IOMEM_LEN,
				   parts[TESTDEV_PART_IOMEM]);
	if (ret < 0)
		log_error("cannot register the test device: %s", strerror(-ret));
	return ret;
}

/* One user file: its contents (or string) under its name. */
static int x86_fw_cfg_file(struct device *fw, const struct fw_cfg_file_config *f)
{
	uint8_t *buf = NULL;
	size_t len = f->string ? strlen(f->string) : 0;
	int ret = f->path ? file_read_all(f->path, FW_CFG_MAX_BYTES, &buf, &len) : 0;

	if (ret == 0)
		ret = fw_cfg_add_file(fw, f->name, f->path ? buf : (const void *)f->string,
				      (uint32_t)len);
	if (ret < 0)
		log_error("fw_cfg file %s%s%s: %s", f->name, f->path ? " from " : "",
			  f->path ? f->path : "",
			  ret == -E2BIG ? "too large (16 MiB for all files)" : strerror(-ret));
	free(buf);
	return ret;
}

static int x86_add_fw_cfg(struct vm *vm)
{
	struct device *fw =
	    fw_cfg_create(&vm->host, &vm->mem, (uint16_t)vm->cfg.ncpus, vm->cfg.mem_size);
	int ret = x86_add_pio_device(vm, fw, FW_CFG_PORT, FW_CFG_PORT_LEN);

	for (unsigned int i = 0; ret == 0 && i < vm->cfg.nfw_cfg_files; i++)
		ret = x86_fw_cfg_file(fw, &vm->cfg.fw_cfg_files[i]);
	return ret;
}

/* The boot timer's MMIO window, from the process's start (devices/boot_timer.h). */
static int x86_add_boot_timer(struct vm *vm)
{
	struct device *dev = boot_timer_create(&vm->host, clock_start_ns());
	int ret;

	if (!dev)
		return -ENOMEM;
	vm_add_device(vm, dev);
	ret = bus_register(&vm->mmio, LAYOUT_BOOT_TIMER, LAYOUT_BOOT_TIMER_SIZE, dev);
	if (ret < 0)
		log_error("cannot register the boot timer at 0x%llx: %s",
			  (unsigned long long)LAYOUT_BOOT_TIMER, strerror(-ret));
	return ret;
}

/* The opt-in devices (--device), after the platform's: their ports must not collide. */
static int x86_add_extra_devices(struct vm *vm)
{
	int ret = 0;

	for (unsigned int i = 0; ret == 0 && i < vm->cfg.nextra; i++) {
		const struct extra_device_config *e = &vm->cfg.extra[i];

		if (e->kind == EXTRA_DEBUG_EXIT)
			ret = x86_add_pio_device(vm, debug_exit_create(&vm->host, e->iosize),
						 e->iobase, e->iosize);
		else if (e->kind == EXTRA_TESTDEV)
			ret = x86_add_testdev(vm);
		else if (e->kind == EXTRA_FW_CFG)
			ret = x86_add_fw_cfg(vm);
		else if (e->kind == EXTRA_BOOT_TIMER)
			ret = x86_add_boot_timer(vm);
	}
	return ret;
}

int arch_create_devices(struct vm *vm)
{
	struct device *com1 = serial_create(&vm->host, "com1", GSI_COM1, vm->cfg.console_out_fd);
	int ret;

	vm->console = com1;
	ret = x86_add_pio_device(vm, com1, PORT_COM1, PORT_UART_LEN);
	if (ret == 0)
		ret = x86_add_pio_device(vm, i8042_create(&vm->host), PORT_I8042, PORT_I8042_LEN);
	if (ret == 0)
		ret = x86_add_pio_device(vm, rtc_create(&vm->host), PORT_RTC, PORT_RTC_LEN);
	if (ret == 0)
		ret = x86_add_pio_device(vm, acpi_pm_create(&vm->host, ACPI_RESET_VALUE),
					 PORT_ACPI_PM, PORT_ACPI_PM_LEN);
	if (ret == 0)
		ret = x86_add_pio_device(vm, post_sink_create(&vm->host), PORT_POST, 1);
	if (ret == 0)
		ret = x86_add_virtio_devices(vm);
	if (ret == 0)
		ret = x86_add_vmgenid(vm);
	if (ret == 0)
		ret = x86_add_extra_devices(vm);
	return ret;
}

/* Whether a device answers at @port: the DSDT describes what was registered, nothing else. */
static bool x86_pio_registered(const struct vm *vm, uint64_t port)
{
	for (unsigned int i = 0; i < vm->pio.count; i++)
		if (vm->pio.ranges[i].base == port)
			return true;
	return false;
}

/* The virtio-mmio transports on the MMIO bus, in address order, as the DSDT lists them. */
static unsigned int x86_acpi_virtio(const struct vm *vm, struct acpi_mmio_dev *out,
				    unsigned int max)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < vm->mmio.count && n < max; i++) {
		const struct bus_range *r = &vm->mmio.ranges[i];

		if (virtio_mmio_vdev(r->dev))
			out[n++] = (struct acpi_mmio_dev){r->base, (uint32_t)r->len,
							  virtio_mmio_gsi(r->dev)};
	}
	return n;
}

static void x86_acpi_legacy(struct vm *vm, struct acpi_machine *m)
{
	if (!x86_pio_registered(vm, PORT_COM1))
		m->com1_port = 0;
	if (!x86_pio_registered(vm, PORT_RTC))
		m->rtc_port = 0;
	if (!x86_pio_registered(vm, PORT_I8042))
		m->kbd_port = 0;
	if (x86_pio_registered(vm, FW_CFG_PORT))
		m->fw_cfg_port = FW_CFG_PORT;
	if (!vm_find_device(vm, VMGENID_DEVICE_ID))
		m->vmgenid_addr = 0;
}

static int x86_write_acpi(struct vm *vm)
{
	struct acpi_machine m = {
	    .ncpus = vm->cfg.ncpus,
	    .lapic_addr = LAYOUT_LAPIC,
	    .ioapic_addr = LAYOUT_IOAPIC,
	    .ioapic_id = IOAPIC_ID,
	    .sleep_ctl_port = PORT_ACPI_SLEEP_CTL,
	    .sleep_sts_port = PORT_ACPI_SLEEP_STS,
	    .reset_port = PORT_ACPI_RESET,
	    .reset_value = ACPI_RESET_VALUE,
	    .pm_timer_port = PORT_ACPI_PM_TIMER,
	    .com1_port = PORT_COM1,
	    .com1_gsi = GSI_COM1,
	    .rtc_port = PORT_RTC,
	    .rtc_gsi = GSI_RTC,
	    .kbd_port = PORT_I8042,
	    .kbd_gsi = GSI_KBD,
	    .vmgenid_addr = LAYOUT_VMGENID,
	    .ged_gsi = GSI_GED,
	};
	struct acpi_mmio_dev virtio[GSI_VIRTIO_COUNT];
	uint8_t *buf = gm_ptr(&vm->mem, LAYOUT_ACPI, LAYOUT_ACPI_SIZE);
	long n;

	if (!buf)
		return -EFAULT;
	x86_acpi_legacy(vm, &m);
	m.nmmio_devs = x86_acpi_virtio(vm, virtio, sizeof(virtio) / sizeof(virtio[0]));
	m.mmio_devs = virtio;
	n = acpi_build(buf, LAYOUT_ACPI_SIZE, LAYOUT_ACPI, &m, &vm->arch->rsdp_gpa);
	if (n < 0) {
		log_error("cannot build ACPI tables: %s", strerror((int)-n));
		return (int)n;
	}
	return 0;
}

/*
 * The BIOS reset vector (F000:FFF0). Linux on a hardware-reduced ACPI
 * machine reboots through "EFI", which without EFI falls back to jumping to
 * the BIOS reset vector in real mode (machine_real_restart). There is no
 * BIOS, so Banyan puts there what a reset does: write the ACPI reset
 * register. Any other path that ends at the reset vector resets too.
 */
static int x86_write_reset_vector(struct vm *vm)
{
	static const uint8_t stub[] = {
	    0xba,
	    PORT_ACPI_RESET & 0xff,
	    PORT_ACPI_RESET >> 8, /* mov dx, PORT_ACPI_RESET */
	    0xb0,
	    ACPI_RESET_VALUE, /* mov al, ACPI_RESET_VALUE */
	    0xee,	      /* out dx, al */
	    0xf4,	      /* hlt */
	    0xeb,
	    0xfd, /* jmp hlt */
	};

	return gm_write(&vm->mem, LAYOUT_RESET_VECTOR, stub, sizeof(stub));
}

int arch_setup_boot(struct vm *vm)
{
	int ret = x86_write_acpi(vm);

	if (ret == 0)
		ret = x86_write_reset_vector(vm);
	if (ret == 0)
		ret = x86_write_page_tables(vm);
	if (ret == 0)
		ret = x86_boot_kernel(vm);
	return ret;
}

int arch_vcpu_init(struct vm *vm, struct vcpu *vcpu)
{
	int ret = x86_vcpu_set_cpuid(vm, vcpu);

	if (ret == 0)
		ret = x86_vcpu_set_msrs(vcpu);
	if (ret == 0)
		ret = x86_vcpu_set_template_msrs(vcpu, vm->cfg.cpu_template);
	/* A snapshot (or migration stream) has the LAPIC and vCPU 0's registers. */
	if (ret == 0 && !vm->cfg.no_irqchip && !vm->cfg.restoring)
		ret = x86_vcpu_set_lapic(vcpu);
	if (ret == 0 && vcpu->index == 0 && !vm->cfg.restoring)
		ret = x86_vcpu_set_boot_regs(vcpu, &vm->arch->boot);
	if (ret == 0 && vcpu->index == 0 && vm->cfg.restoring)
		x86_restore_baseline(vcpu);
	return ret;
}

void arch_vm_destroy(struct vm *vm)
{
	if (vm->arch)
		free(vm->arch->fresh_cpuid);
	free(vm->arch); /* not supported_cpuid nor state_caps: the process keeps them */
	vm->arch = NULL;
}
