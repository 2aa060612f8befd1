/*
 * Test guest: its first store signals the boot timer (the byte 123
 * at 0xc0000000, Firecracker's contract), then it prints a line on COM1
 * and powers off. With --device boot-timer the VMM logs the time from its
 * start to that first store (bench/startup measures it so).
 */
	.code64
	.section .text
	.globl _start
_start:
	mov	$0xc0000000, %eax	/* zero-extended: 0xc0000000 is no disp32 */
	movb	$123, (%rax)
	lea	msg(%rip), %rsi
	mov	$msg_len, %ecx
	mov	$0x3f8, %dx
1:	lodsb
	outb	%al, %dx
	loop	1b
	mov	$0x600, %dx		/* FADT SLEEP_CONTROL_REG */
	mov	$(1 << 5 | 5 << 2), %al	/* SLP_EN | SLP_TYP(S5) */
	outb	%al, %dx
2:	hlt
	jmp	2b

	.section .rodata
msg:	.ascii	"booted\n"
	.set	msg_len, . - msg
