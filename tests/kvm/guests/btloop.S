/*
 * Test guest for start-up measurements (bench/startup): signals the boot
 * timer (the byte 123 at 0xc0000000) as its first store and then once per
 * round, each round printing one '.' on COM1 and pausing with 32 writes to
 * the POST port (each a trip to the VMM, ~1 ms in all). A restored or
 * cloned copy signals within one round of its first instruction.
 */
	.code64
	.section .text
	.globl _start
_start:
	mov	$0xc0000000, %eax	/* zero-extended: 0xc0000000 is no disp32 */
	mov	$0x3f8, %dx
round:
	movb	$123, (%rax)
	mov	$'.', %bl
	xchg	%bl, %al
	outb	%al, %dx
	xchg	%bl, %al
	mov	$32, %ecx
1:	outb	%al, $0x80
	loop	1b
	jmp	round
