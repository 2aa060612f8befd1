/*
 * Test guest: halts with interrupts off. Run with --no-irqchip, HLT reaches
 * user space and, every vCPU being halted, the VM stops: exit status 4.
 */
	.code64
	.text
	.globl _start
_start:
	cli
	hlt
1:	jmp	1b
