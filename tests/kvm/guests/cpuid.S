/*
 * Test guest: prints, round after round, what CPUID tells it for a few
 * leaves, one line each on COM1: "L leaf subleaf eax ebx ecx edx" in
 * hexadecimal, then pauses with 1000 writes to the POST port. A restored
 * or cloned copy goes on printing where it stopped, so its complete lines
 * show the CPUID its own vCPU was given (tests/kvm/test_startup.sh).
 */
	.code64
	.section .text
	.globl _start
_start:
	mov	$0x3f8, %dx
round:
	lea	leaves(%rip), %rsi
	mov	$nleaves, %r14d
leaf:
	mov	(%rsi), %eax
	mov	4(%rsi), %ecx
	mov	%eax, %r12d
	mov	%ecx, %r13d
	push	%rdx
	cpuid
	mov	%eax, %r8d
	mov	%ebx, %r9d
	mov	%ecx, %r10d
	mov	%edx, %r11d
	pop	%rdx
	mov	$'L', %al
	outb	%al, %dx
	mov	%r12d, %ebx
	call	hex32
	mov	%r13d, %ebx
	call	hex32
	mov	%r8d, %ebx
	call	hex32
	mov	%r9d, %ebx
	call	hex32
	mov	%r10d, %ebx
	call	hex32
	mov	%r11d, %ebx
	call	hex32
	mov	$'\n', %al
	outb	%al, %dx
	add	$8, %rsi
	dec	%r14d
	jnz	leaf
	mov	$1000, %ecx
2:	outb	%al, $0x80
	loop	2b
	jmp	round

/* A space, then %ebx as 8 hexadecimal digits, on port %dx. */
hex32:
	mov	$' ', %al
	outb	%al, %dx
	mov	$8, %ecx
3:	rol	$4, %ebx
	mov	%bl, %al
	and	$0xf, %al
	add	$'0', %al
	cmp	$'9', %al
	jbe	4f
	add	$('a' - '9' - 1), %al
4:	outb	%al, %dx
	loop	3b
	ret

	.section .rodata
	.balign	4
leaves:	/* leaf, subleaf */
	.long	0, 0
	.long	1, 0
	.long	7, 0
	.long	0xd, 0
	.long	0xd, 1
	.long	0x40000000, 0
	.long	0x40000001, 0
	.long	0x80000001, 0
	.long	0x80000008, 0
	.set	nleaves, (. - leaves) / 8
