/*
 * Test guest: writes to COM1 as fast as it can, forever (rep outsb moves a
 * whole 4 KiB block per exit). With a console reader that never reads, it
 * fills any pipe and any queue: the VMM must keep stopping, pausing and
 * snapshotting it all the same.
 */
	.code64
	.section .text
	.globl _start
_start:
	mov	$0x3f8, %dx
1:	lea	block(%rip), %rsi
	mov	$4096, %ecx
	rep outsb
	jmp	1b

	.section .rodata
block:	.fill	4095, 1, 'f'
	.byte	'\n'
