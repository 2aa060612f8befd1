/*
 * Test guest for snapshots: increments a counter kept in guest memory (at
 * 0x300000, not in a register) and prints "count N" (N in hexadecimal) on
 * COM1 after each increment, with a pause of POST-port writes between.
 * A restored snapshot must continue from the saved count; a diff snapshot
 * must carry the page the counter lives in.
 */
	.code64
	.section .text
	.globl _start
	.set	counter, 0x300000
_start:
	movq	$0, counter
next:
	incq	counter
	mov	$0x3f8, %dx
	lea	msg(%rip), %rsi
	mov	$msg_len, %ecx
1:	lodsb
	outb	%al, %dx
	loop	1b
	mov	counter, %rbx
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
msg:	.ascii	"count "
	.set	msg_len, . - msg
