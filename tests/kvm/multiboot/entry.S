/*
 * Entry of the multiboot test kernels: the header (ELF, no address fields),
 * a stack, then mb_main(magic, info, cr0, eflags). Its return value V is
 * written to the debug-exit port (status (V << 1) | 1); the kernels return
 * MB_PASS on success, the number of the failed check otherwise.
 */
	.section .text.entry, "ax"
	.code32
	.align 4
mb_header:
	.long	0x1badb002		/* magic */
	.long	0x00000003		/* page-aligned modules, memory information */
	.long	-(0x1badb002 + 0x00000003)

	.globl	_start
_start:
	mov	%cr0, %ecx
	mov	$stack_top, %esp	/* ESP is undefined at entry */
	pushf
	pop	%edx
	push	%edx			/* eflags at entry */
	push	%ecx			/* cr0 at entry */
	push	%ebx			/* the information structure */
	push	%eax			/* the loader's magic */
	call	mb_main
	mov	$0xf4, %dx
	outb	%al, %dx
1:	hlt
	jmp	1b

	.section .bss
	.align 16
	.space	8192
stack_top:

	.section .note.GNU-stack, "", @progbits
