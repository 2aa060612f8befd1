/*
 * Test guest: prints "boot" and resets the machine through the ACPI reset
 * register. Expected: exit status 0 ("reboot"), or with --on-reboot restart
 * the line again and again until the VMM is stopped.
 */
	.code64
	.text
	.globl _start
_start:
	mov	$0x3f8, %dx
	mov	$'b', %al
	outb	%al, %dx
	mov	$'o', %al
	outb	%al, %dx
	outb	%al, %dx
	mov	$'t', %al
	outb	%al, %dx
	mov	$'\n', %al
	outb	%al, %dx
	mov	$0x604, %dx		/* FADT RESET_REG */
	mov	$1, %al			/* RESET_VALUE */
	outb	%al, %dx
1:	hlt
	jmp	1b
