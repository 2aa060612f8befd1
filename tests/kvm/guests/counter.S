/*
 * Test guest: runs until stopped, printing "tick N" (N in hexadecimal,
 * counting from 1) on COM1 every few tens of milliseconds. The pause is a
 * run of writes to the POST port, each a trip to the VMM. Pause/resume
 * tests check that the count stops while the VM is paused.
 */
	.code64
	.section .text
	.globl _start
_start:
	xor	%r12, %r12
next:
	inc	%r12
	mov	$0x3f8, %dx
	lea	msg(%rip), %rsi
	mov	$msg_len, %ecx
1:	lodsb
	outb	%al, %dx
	loop	1b
	mov	%r12, %rbx
	mov	$16, %ecx
2:	rol	$4, %rbx
	mov	%bl, %al
	and	$0xf, %al
	add	$'0', %al
	cmp	$'9', %al
	jbe	3f
	add	$('a' - '9' - 1), %al
3:	outb	%al, %dx
	loop	2b
	mov	$'\n', %al
	outb	%al, %dx
	mov	$1000, %ecx
4:	outb	%al, $0x80
	loop	4b
	jmp	next

	.section .rodata
msg:	.ascii	"tick "
	.set	msg_len, . - msg
