/*
 * Test guest: entered in 64-bit mode by the boot protocol, prints a line on
 * COM1 through port writes, then powers off through the ACPI sleep control
 * register (SLP_EN). Expected: the line on stdout, exit status 0.
 */
	.code64
	.section .text
	.globl _start
_start:
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
msg:	.ascii	"hello from a banyan test guest\n"
	.set	msg_len, . - msg
