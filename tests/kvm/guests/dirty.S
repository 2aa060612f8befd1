/*
 * Test guest for auto-converge: dirties memory as fast as it can, one
 * qword in each of the 1024 pages at 8 MiB (4 MiB) in turn, pass after
 * pass, each write followed by a POST-port write (a trip to the VMM, the
 * pace of a CPL0 guest on any host); it prints "pass N" (N in hex) after
 * each pass. Pre-copy against a capped link cannot keep up with it
 * unless its vCPU is throttled.
 */
	.code64
	.section .text
	.globl _start
	.set	area, 0x800000
	.set	npages, 1024
_start:
	mov	$0x3f0000, %rsp
	xor	%r12, %r12
pass:
	inc	%r12
	mov	$area, %rdi
	mov	$npages, %r8d
1:	mov	%r12, (%rdi)
	outb	%al, $0x80
	add	$4096, %rdi
	dec	%r8d
	jnz	1b
	mov	$0x3f8, %dx
	lea	msg(%rip), %rsi
	mov	$msg_len, %ecx
2:	lodsb
	outb	%al, %dx
	loop	2b
	mov	%r12, %rbx
	mov	$16, %ecx
3:	rol	$4, %rbx
	mov	%bl, %al
	and	$0xf, %al
	add	$'0', %al
	cmp	$'9', %al
	jbe	4f
	add	$('a' - '9' - 1), %al
4:	outb	%al, %dx
	loop	3b
	mov	$'\n', %al
	outb	%al, %dx
	jmp	pass

	.section .rodata
msg:	.ascii	"pass "
	.set	msg_len, . - msg
