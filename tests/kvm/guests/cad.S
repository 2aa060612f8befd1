/*
 * Test guest: prints a line on COM1, then polls the i8042 until the Del key
 * of Ctrl-Alt-Del arrives (scan code set 1, as the controller translates),
 * prints a second line and powers off through the ACPI sleep control
 * register. The graceful stop of the systemd unit (banyan ctl shutdown).
 * Expected: both lines on stdout, exit status 0.
 */
	.code64
	.section .text
	.globl _start
_start:
	lea	hello(%rip), %rsi
	mov	$hello_len, %ecx
	call	puts
wait:	inb	$0x64, %al		/* status: output buffer full? */
	test	$1, %al
	jz	wait
	inb	$0x60, %al		/* the scan code */
	cmp	$0x53, %al		/* Del, make */
	jne	wait
	lea	bye(%rip), %rsi
	mov	$bye_len, %ecx
	call	puts
	mov	$0x600, %dx		/* FADT SLEEP_CONTROL_REG */
	mov	$(1 << 5 | 5 << 2), %al	/* SLP_EN | SLP_TYP(S5) */
	outb	%al, %dx
1:	hlt
	jmp	1b

/* puts: %rsi bytes, %ecx of them, to COM1. */
puts:	mov	$0x3f8, %dx
2:	lodsb
	outb	%al, %dx
	loop	2b
	ret

	.section .rodata
hello:	.ascii	"cad guest: waiting for ctrl-alt-del\n"
	.set	hello_len, . - hello
bye:	.ascii	"cad guest: ctrl-alt-del, powering off\n"
	.set	bye_len, . - bye
