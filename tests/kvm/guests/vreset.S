/*
 * Test guest for the log rate limit: breaks the first virtio-mmio device
 * (banyan run --rng puts virtio-rng there) and resets it, in a tight loop,
 * forever. Each round makes the VMM warn "queue 0: bad size or alignment;
 * device needs reset": the log must stay small all the same.
 */
	.code64
	.section .text
	.globl _start
_start:
	movabs	$0xd0000000, %rbx
1:	movl	$0, 0x30(%rbx)		/* QueueSel 0 */
	movl	$3, 0x38(%rbx)		/* QueueNum 3: not a power of two */
	movl	$1, 0x44(%rbx)		/* QueueReady: refused, device needs reset */
	movl	$0, 0x70(%rbx)		/* Status 0: reset */
	jmp	1b
