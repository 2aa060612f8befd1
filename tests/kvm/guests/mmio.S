/*
 * Test guest for bus dispatch (test_dispatch.c registers the devices):
 *  1. writes 0x1122334455667788 (8 bytes) to MMIO 0xd0100008;
 *  2. reads 4 bytes from MMIO 0xd0100010 and writes them to port 0x510;
 *  3. reads 4 bytes from unassigned MMIO 0xd0200000 and writes them to
 *     port 0x514 (expected 0xffffffff);
 *  4. reads a byte from unassigned port 0x2f0 and writes it to 0x518;
 *  5. powers off.
 */
	.code64
	.text
	.globl _start
_start:
	movabs	$0x1122334455667788, %rax
	movabs	$0xd0100008, %rbx
	mov	%rax, (%rbx)
	movabs	$0xd0100010, %rbx
	mov	(%rbx), %eax
	mov	$0x510, %dx
	outl	%eax, %dx
	movabs	$0xd0200000, %rbx
	mov	(%rbx), %eax
	mov	$0x514, %dx
	outl	%eax, %dx
	mov	$0x2f0, %dx
	inb	%dx, %al
	mov	$0x518, %dx
	outb	%al, %dx
	mov	$0x600, %dx
	mov	$(1 << 5), %al
	outb	%al, %dx
1:	hlt
	jmp	1b
