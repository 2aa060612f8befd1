/*
 * bench/migrate's guest: prints its sequence number (8 hex digits and a
 * newline) on COM1 about once a millisecond, paced by PACE writes to the
 * POST port (each a trip to the VMM), and between two lines writes one
 * qword into each of DIRTY pages of a 64 MiB area at 16 MiB, in turn
 * (memory dirtied at a set rate: DIRTY pages a line). PACE and DIRTY are
 * the two quads after the "BMIGPARM" marker; bench/migrate/run patches
 * them into a copy of the ELF.
 *
 * Two entries: Banyan and QEMU both boot it through its PVH note (32-bit
 * protected mode, paging off: QEMU loads no other plain ELF), where
 * pvh_start maps the first GiB with 2 MiB pages and enters 64-bit mode at
 * _start, the 64-bit entry a loader without PVH would use.
 */
	.set	area, 0x1000000
	.set	npages, 16384
	.set	pml4, 0x380000		/* then the PDPT and the page directory */

	.pushsection .note.Xen, "a", @note
	.balign	4
	.long	4, 4, 18		/* "Xen", 4 bytes, XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz	"Xen"
	.long	pvh_start
	.popsection

	.section .text
	.code32
	.globl pvh_start
pvh_start:
	mov	$pml4, %edi
	xor	%eax, %eax
	mov	$(3 * 1024), %ecx
	rep stosl
	movl	$(pml4 + 0x1003), pml4
	movl	$(pml4 + 0x2003), pml4 + 0x1000
	mov	$(pml4 + 0x2000), %edi
	mov	$0x83, %eax		/* present, writable, 2 MiB */
	mov	$512, %ecx
1:	mov	%eax, (%edi)
	add	$0x200000, %eax
	add	$8, %edi
	loop	1b
	mov	$pml4, %eax
	mov	%eax, %cr3
	mov	%cr4, %eax
	or	$0x20, %eax		/* PAE */
	mov	%eax, %cr4
	mov	$0xc0000080, %ecx	/* EFER.LME */
	rdmsr
	or	$0x100, %eax
	wrmsr
	mov	%cr0, %eax
	or	$0x80000001, %eax	/* PG, PE */
	mov	%eax, %cr0
	lgdt	gdt_desc
	ljmp	$0x08, $_start

	.balign	8
gdt:	.quad	0, 0x00af9a000000ffff, 0x00cf92000000ffff
gdt_desc:
	.word	23
	.long	gdt

	.code64
	.globl _start
_start:
	mov	$0x3f0000, %rsp
	xor	%r12, %r12		/* the sequence */
	xor	%r13, %r13		/* the next page to dirty */
line:
	inc	%r12
	mov	$0x3f8, %dx
	mov	%r12, %rbx
	shl	$32, %rbx
	mov	$8, %ecx
1:	rol	$4, %rbx
	mov	%bl, %al
	and	$0xf, %al
	add	$'0', %al
	cmp	$'9', %al
	jbe	2f
	add	$('a' - '9' - 1), %al
2:	outb	%al, %dx
	loop	1b
	mov	$'\n', %al
	outb	%al, %dx
	mov	dirty(%rip), %rcx
	test	%rcx, %rcx
	jz	4f
3:	mov	%r13, %rax
	shl	$12, %rax
	add	$area, %rax
	mov	%r12, (%rax)
	inc	%r13
	and	$(npages - 1), %r13
	loop	3b
4:	mov	pace(%rip), %rcx
	test	%rcx, %rcx
	jz	line
5:	outb	%al, $0x80
	loop	5b
	jmp	line

	.balign	8
	.ascii	"BMIGPARM"
pace:	.quad	50
dirty:	.quad	0
