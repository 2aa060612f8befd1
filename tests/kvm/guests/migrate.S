/*
 * Test guest for live migration: fills 256 KiB at 0x400000 with a pattern
 * (page p holds the qwords S, S+1, ..., S+511 for a seed S), then loops:
 * increments a counter kept in memory at 0x300000, rewrites one pattern
 * page with a new seed, checks the next page (all of them in turn) and
 * prints "count N" (N in hexadecimal), or "pattern BAD" when a page is
 * torn, with a pause of POST-port writes between. A migrated VM must
 * continue the count with an intact pattern. (Small: the tiny guests'
 * instructions may be emulated one by one on PVM hosts.)
 *
 * It also gives KVM a kvmclock wall-clock structure at 0x301000, as Linux
 * does at boot: KVM writes it when the MSR is written, and again when a
 * destination restores the MSR (KVM_SET_MSRS), so a verified migration
 * must compare memory as it crossed, before the vCPUs are loaded.
 */
	.code64
	.section .text
	.globl _start
	.set	counter, 0x300000
	.set	pattern, 0x400000
	.set	npages, 64
	.set	wallclock, 0x301000
	.set	msr_kvm_wall_clock_new, 0x4b564d00
_start:
	mov	$0x3f0000, %rsp		/* a stack of its own, whatever the boot protocol set */
	mov	$msr_kvm_wall_clock_new, %ecx
	mov	$wallclock, %eax
	xor	%edx, %edx
	wrmsr
	movq	$0, counter
	xor	%rax, %rax		/* page p's seed is p * 512 */
	mov	$pattern, %rdi
	mov	$(npages * 512), %rcx
1:	mov	%rax, (%rdi)
	inc	%rax
	add	$8, %rdi
	loop	1b
next:
	incq	counter
	mov	counter, %rax		/* page (count % npages) gets seed count << 20 */
	mov	%rax, %rdi
	and	$(npages - 1), %rdi
	shl	$12, %rdi
	add	$pattern, %rdi
	shl	$20, %rax
	mov	$512, %ecx
2:	mov	%rax, (%rdi)
	inc	%rax
	add	$8, %rdi
	loop	2b
	mov	counter, %rbx		/* the next page: q[i] == q[0] + i */
	inc	%rbx
	and	$(npages - 1), %rbx
	shl	$12, %rbx
	add	$pattern, %rbx
	mov	$1, %r8d
3:	mov	(%rbx), %rax
	mov	$1, %ecx
4:	lea	(%rax,%rcx), %rdx
	cmp	(%rbx,%rcx,8), %rdx
	jne	bad
	inc	%ecx
	cmp	$512, %ecx
	jb	4b
	add	$4096, %rbx
	dec	%r8d
	jnz	3b
	lea	msg(%rip), %rsi
	mov	$msg_len, %ecx
	call	puts
	mov	counter, %rbx
	mov	$16, %ecx
5:	rol	$4, %rbx
	mov	%bl, %al
	and	$0xf, %al
	add	$'0', %al
	cmp	$'9', %al
	jbe	6f
	add	$('a' - '9' - 1), %al
6:	mov	$0x3f8, %dx
	outb	%al, %dx
	loop	5b
	mov	$'\n', %al
	outb	%al, %dx
	mov	$1000, %ecx
7:	outb	%al, $0x80
	loop	7b
	jmp	next
bad:
	lea	badmsg(%rip), %rsi
	mov	$badmsg_len, %ecx
	call	puts
	jmp	next

/* puts: %ecx bytes at %rsi to COM1. */
puts:
	mov	$0x3f8, %dx
1:	lodsb
	outb	%al, %dx
	loop	1b
	ret

	.section .rodata
msg:	.ascii	"count "
	.set	msg_len, . - msg
badmsg:	.ascii	"pattern BAD\n"
	.set	badmsg_len, . - badmsg
