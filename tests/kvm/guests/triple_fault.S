/*
 * Test guest: loads an empty IDT and raises an exception, which can only
 * end in a triple fault. Expected: exit status 1 and a register dump.
 */
	.code64
	.text
	.globl _start
_start:
	lidt	empty_idt(%rip)
	int3
1:	jmp	1b

	.data
empty_idt:
	.word	0
	.quad	0
