/* Test guest: pulses the i8042 reset line (command 0xfe). Expected: exit 0. */
	.code64
	.text
	.globl _start
_start:
	mov	$0xfe, %al
	outb	%al, $0x64
1:	hlt
	jmp	1b
