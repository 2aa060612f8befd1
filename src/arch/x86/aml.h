/*
 * A small AML writer: just enough of the ACPI Machine Language to describe
 * Banyan's devices in the DSDT (names, integers, strings, packages, scopes,
 * devices, methods and resource templates).
 *
 * The writer appends to a caller-supplied, fixed-size buffer and never
 * allocates. Objects with a PkgLength (Scope, Device, Method, Package,
 * Buffer) are written in two steps: *_begin() notes where the object's body
 * starts, the body is appended, and aml_end() inserts the PkgLength (whose
 * own size, 1 to 4 bytes, depends on the body) by moving the body up.
 * Objects may nest; they must be ended innermost first.
 *
 * Every function returns 0 or -errno. The first error is also kept in
 * struct aml (a->err) and makes every later call a no-op that returns it,
 * so a caller may emit a whole table and check once at the end.
 * Nothing here aborts on bad input.
 */
#ifndef BANYAN_ARCH_X86_AML_H
#define BANYAN_ARCH_X86_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AML_PKGLENGTH_MAX 0x0fffffffu /* largest value four PkgLength bytes hold */

struct aml {
	uint8_t *buf;
	size_t len;	    /* bytes written so far */
	size_t cap;	    /* size of buf: never written past */
	unsigned int depth; /* objects begun and not yet ended */
	int err;	    /* first error, 0 if none */
};

enum aml_pkg_kind {
	AML_PKG_PLAIN,	     /* Scope, Device, Method, Package: just a PkgLength */
	AML_PKG_BUFFER,	     /* Buffer: PkgLength then BufferSize */
	AML_PKG_RESTEMPLATE, /* Buffer closed by an EndTag */
};

/* An object begun and not yet ended. Filled by *_begin(), read by aml_end(). */
struct aml_pkg {
	size_t start;	    /* offset where the PkgLength goes */
	unsigned int depth; /* nesting level, to catch ends out of order */
	enum aml_pkg_kind kind;
};

enum aml_trigger { AML_EDGE, AML_LEVEL };
enum aml_polarity { AML_ACTIVE_HIGH, AML_ACTIVE_LOW };

/* aml_init - start writing at @buf, at most @cap bytes. @buf may be NULL if @cap is 0. */
void aml_init(struct aml *a, uint8_t *buf, size_t cap);

/*
 * aml_raw - append @n bytes as they are, for encodings this writer has no
 * function for. Returns 0, -ENOSPC or the earlier error.
 */
int aml_raw(struct aml *a, const void *bytes, size_t n);

/*
 * aml_pkglength - encode the PkgLength of an object whose body (what follows
 * the PkgLength) is @body bytes long into @out. The encoded value counts
 * its own bytes. Returns the number of bytes used (1..4), or -E2BIG when the
 * object would exceed AML_PKGLENGTH_MAX.
 */
int aml_pkglength(size_t body, uint8_t out[4]) __attribute__((warn_unused_result));

/*
 * aml_namestring - append a NameString such as "_HID", "\\_SB.COM1" or
 * "^PCI0.S00". A leading '\\' is the root, each leading '^' the parent
 * scope; segments are separated by '.', hold 1 to 4 characters from
 * [A-Z0-9_] (not starting with a digit) and are padded with '_'.
 * Returns -EINVAL for anything else (lower case, empty segments, ...).
 */
int aml_namestring(struct aml *a, const char *name);

/*
 * aml_integer - append @v in its smallest encoding: ZeroOp, OneOp, OnesOp
 * (all 64 bits set), or a Byte/Word/DWord/QWord constant.
 */
int aml_integer(struct aml *a, uint64_t v);

/* aml_string - append a String; -EINVAL for characters outside 0x01..0x7f. */
int aml_string(struct aml *a, const char *s);

/*
 * aml_eisaid - compress a 7-character EISA id ("PNP0501": three letters A-Z,
 * four hex digits) into the 32-bit value ASL's EISAID() produces, in *@out.
 * Returns 0 or -EINVAL; writes nothing.
 */
int aml_eisaid(const char *id, uint32_t *out) __attribute__((warn_unused_result));

/*
 * aml_name - append NameOp and @name; the caller appends exactly one data
 * object next (an integer, a string, a Package or a Buffer).
 */
int aml_name(struct aml *a, const char *name);

/* aml_name_integer - Name(@name, @v). */
int aml_name_integer(struct aml *a, const char *name, uint64_t v);

/* aml_name_string - Name(@name, "@s"). */
int aml_name_string(struct aml *a, const char *name, const char *s);

/* aml_name_eisaid - Name(@name, EISAID("@id")). */
int aml_name_eisaid(struct aml *a, const char *name, const char *id);

/* aml_scope_begin - Scope(@name) { ... }: the body follows, then aml_end(). */
int aml_scope_begin(struct aml *a, const char *name, struct aml_pkg *p);

/* aml_device_begin - Device(@name) { ... }: the body follows, then aml_end(). */
int aml_device_begin(struct aml *a, const char *name, struct aml_pkg *p);

/*
 * aml_method_begin - Method(@name, @nargs, Serialized/NotSerialized) { ... }
 * with sync level 0. @nargs is at most 7 (-EINVAL otherwise).
 */
int aml_method_begin(struct aml *a, const char *name, unsigned int nargs, bool serialized,
		     struct aml_pkg *p);

/* aml_notify - Notify(@target, @value): tell the OS about an event on a device. */
int aml_notify(struct aml *a, const char *target, uint64_t value);

/* aml_return - append ReturnOp; the caller appends the returned term next. */
int aml_return(struct aml *a);

/*
 * aml_package_begin - Package() { ... } of exactly @nelems elements (at most
 * 255), which the caller appends before aml_end(). The writer does not count
 * them: a wrong @nelems gives a package the guest will misread.
 */
int aml_package_begin(struct aml *a, unsigned int nelems, struct aml_pkg *p);

/* aml_buffer_begin - Buffer() { bytes }: append the bytes, then aml_end(). */
int aml_buffer_begin(struct aml *a, struct aml_pkg *p);

/*
 * aml_restemplate_begin - ResourceTemplate() { ... }: a Buffer of resource
 * descriptors (aml_res_*). aml_end() appends the EndTag with a checksum
 * over the descriptors, then closes the Buffer.
 */
int aml_restemplate_begin(struct aml *a, struct aml_pkg *p);

/*
 * aml_end - close the innermost object begun: insert its PkgLength (and, for
 * a Buffer, its BufferSize). Returns -EINVAL if @p is not the innermost open
 * object, -ENOSPC, -E2BIG for an object too long to encode.
 */
int aml_end(struct aml *a, struct aml_pkg *p);

/*
 * aml_res_io - IO(Decode16, @min, @max, @align, @len): an I/O port range
 * descriptor with 16-bit decoding.
 */
int aml_res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len);

/* aml_res_irq_noflags - IRQNoFlags() { @irq } (an ISA IRQ 0..15, else -EINVAL). */
int aml_res_irq_noflags(struct aml *a, unsigned int irq);

/* aml_res_mem32_fixed - Memory32Fixed(ReadWrite or ReadOnly, @base, @len). */
int aml_res_mem32_fixed(struct aml *a, bool writable, uint32_t base, uint32_t len);

/*
 * aml_res_interrupt - Interrupt(ResourceConsumer, @trigger, @polarity,
 * Exclusive) { @gsi }: the extended interrupt descriptor, any GSI.
 */
int aml_res_interrupt(struct aml *a, enum aml_trigger trigger, enum aml_polarity polarity,
		      uint32_t gsi);

#endif
