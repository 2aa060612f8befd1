/*
 * CPU templates (cpu_template.h): Firecracker's custom template format,
 * the built-in named templates, and applying and checking them against
 * what KVM supports. Pure functions of their arguments: no ioctl here.
 */
#include "arch/x86/cpu_template.h"
#include "util/errmsg.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEEP_ALL 0xffffffffU

/*
 * A named template's register: @set is what it shows, @keep what passes
 * through from the host (platform bits the VMM or the host decides:
 * topology, APIC, speculation controls); every other bit is cleared.
 */
struct named_reg {
	uint32_t leaf, subleaf;
	enum cpu_reg reg;
	uint32_t set_v2, set_v3, keep;
};

/*
 * x86-64-v2 and -v3 are the psABI's levels: v2 adds CMPXCHG16B, LAHF/SAHF,
 * POPCNT, SSE3, SSSE3, SSE4.1 and SSE4.2 to x86-64; v3 adds AVX, AVX2,
 * BMI1, BMI2, F16C, FMA, LZCNT, MOVBE and XSAVE. Everything else in the
 * feature registers (AVX-512, AES, SHA, TSX, ...) is cleared, so two hosts
 * that can provide a level show their guests the same instruction set.
 */
static const struct named_reg named_regs[] = {
    {0x1, 0, CPU_EDX, 0x07888111, 0x07888111, 0x10037aee},
    {0x1, 0, CPU_ECX, 0x00982201, 0x34d83201, 0x89220000},
    {0x7, 0, CPU_EBX, 0, 0x00000128, 0x00100080}, /* keep SMEP, SMAP */
    {0x7, 0, CPU_ECX, 0, 0, 0},
    {0x7, 0, CPU_EDX, 0, 0, 0xfc000400}, /* keep MD_CLEAR and the speculation controls */
    {0x7, 1, CPU_EAX, 0, 0, 0},
    {0x80000001, 0, CPU_ECX, 0x1, 0x21, 0x00400002}, /* keep CmpLegacy, TOPOEXT */
    {0x80000001, 0, CPU_EDX, 0x20100800, 0x20100800, 0x0d83f3ff},
};

static const char *const named[] = {"x86-64-v2", "x86-64-v3"};

/* The feature registers: what cpu_template_check compares. */
static const struct {
	uint32_t leaf, subleaf;
	enum cpu_reg reg;
	uint32_t vmm_bits; /* set by the VMM or by the guest's own state, not by the host */
	const char *name;
} feature_regs[] = {
    {0x1, 0, CPU_ECX, 1U << 31 | 1U << 27, "CPUID.1:ECX"}, /* hypervisor, OSXSAVE */
    {0x1, 0, CPU_EDX, 1U << 28 | 1U << 9, "CPUID.1:EDX"},  /* HTT, APIC */
    {0x7, 0, CPU_EBX, 0, "CPUID.7.0:EBX"},
    {0x7, 0, CPU_ECX, 1U << 4, "CPUID.7.0:ECX"}, /* OSPKE */
    {0x7, 0, CPU_EDX, 0, "CPUID.7.0:EDX"},
    {0x7, 1, CPU_EAX, 0, "CPUID.7.1:EAX"},
    {0xd, 1, CPU_EAX, 0, "CPUID.D.1:EAX"},
    {0x80000001, 0, CPU_ECX, 0, "CPUID.80000001:ECX"},
    {0x80000001, 0, CPU_EDX, 0, "CPUID.80000001:EDX"},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Linux's names (/proc/cpuinfo) for the feature bits named templates and tests use. */
static const struct {
	uint32_t leaf, subleaf;
	enum cpu_reg reg;
	unsigned int bit;
	const char *name;
} feature_names[] = {
    {1, 0, CPU_EDX, 0, "fpu"},		{1, 0, CPU_EDX, 4, "tsc"},
    {1, 0, CPU_EDX, 8, "cx8"},		{1, 0, CPU_EDX, 15, "cmov"},
    {1, 0, CPU_EDX, 19, "clflush"},	{1, 0, CPU_EDX, 23, "mmx"},
    {1, 0, CPU_EDX, 24, "fxsr"},	{1, 0, CPU_EDX, 25, "sse"},
    {1, 0, CPU_EDX, 26, "sse2"},	{1, 0, CPU_ECX, 0, "pni"},
    {1, 0, CPU_ECX, 1, "pclmulqdq"},	{1, 0, CPU_ECX, 9, "ssse3"},
    {1, 0, CPU_ECX, 12, "fma"},		{1, 0, CPU_ECX, 13, "cx16"},
    {1, 0, CPU_ECX, 19, "sse4_1"},	{1, 0, CPU_ECX, 20, "sse4_2"},
    {1, 0, CPU_ECX, 21, "x2apic"},	{1, 0, CPU_ECX, 22, "movbe"},
    {1, 0, CPU_ECX, 23, "popcnt"},	{1, 0, CPU_ECX, 25, "aes"},
    {1, 0, CPU_ECX, 26, "xsave"},	{1, 0, CPU_ECX, 28, "avx"},
    {1, 0, CPU_ECX, 29, "f16c"},	{1, 0, CPU_ECX, 30, "rdrand"},
    {7, 0, CPU_EBX, 0, "fsgsbase"},	{7, 0, CPU_EBX, 3, "bmi1"},
    {7, 0, CPU_EBX, 5, "avx2"},		{7, 0, CPU_EBX, 7, "smep"},
    {7, 0, CPU_EBX, 8, "bmi2"},		{7, 0, CPU_EBX, 9, "erms"},
    {7, 0, CPU_EBX, 16, "avx512f"},	{7, 0, CPU_EBX, 18, "rdseed"},
    {7, 0, CPU_EBX, 19, "adx"},		{7, 0, CPU_EBX, 20, "smap"},
    {7, 0, CPU_EBX, 29, "sha_ni"},	{7, 0, CPU_ECX, 9, "vaes"},
    {7, 0, CPU_ECX, 22, "rdpid"},	{0x80000001, 0, CPU_ECX, 0, "lahf_lm"},
    {0x80000001, 0, CPU_ECX, 5, "abm"}, {0x80000001, 0, CPU_EDX, 11, "syscall"},
    {0x80000001, 0, CPU_EDX, 20, "nx"}, {0x80000001, 0, CPU_EDX, 27, "rdtscp"},
    {0x80000001, 0, CPU_EDX, 29, "lm"},
};

const char *cpu_template_feature_name(uint32_t leaf, uint32_t subleaf, enum cpu_reg reg,
				      unsigned int bit)
{
	for (size_t i = 0; i < NELEM(feature_names); i++)
		if (feature_names[i].leaf == leaf && feature_names[i].subleaf == subleaf &&
		    feature_names[i].reg == reg && feature_names[i].bit == bit)
			return feature_names[i].name;
	return NULL;
}

const char *cpu_template_names(void)
{
	return "x86-64-v2, x86-64-v3";
}

int cpu_template_named(const char *name, struct cpu_template *t)
{
	size_t level;

	for (level = 0; level < NELEM(named); level++)
		if (strcmp(name, named[level]) == 0)
			break;
	if (level == NELEM(named))
		return -ENOENT;
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	for (size_t i = 0; i < NELEM(named_regs); i++) {
		const struct named_reg *r = &named_regs[i];

		t->cpuid[t->ncpuid++] = (struct cpu_template_reg){
		    .leaf = r->leaf,
		    .subleaf = r->subleaf,
		    .flags = r->leaf == 7 ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0,
		    .reg = r->reg,
		    .mask = ~r->keep,
		    .value = (level ? r->set_v3 : r->set_v2) & ~r->keep,
		};
	}
	return 0;
}

/* --- parsing Firecracker's format --- */

#define perr(...) errmsg_set(err, len, -EINVAL, __VA_ARGS__)

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;

	json_object_object_get_ex(o, key, &v);
	return v;
}

/* "0x1f", "0b101", "31" or a JSON integer, at most @max. */
static int parse_num(json_object *v, uint64_t max, uint64_t *out)
{
	const char *s;
	char *end;
	int base = 10;

	if (json_object_is_type(v, json_type_int)) {
		int64_t n = json_object_get_int64(v);

		if (n < 0 || (uint64_t)n > max)
			return -EINVAL;
		*out = (uint64_t)n;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return -EINVAL;
	s = json_object_get_string(v);
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		base = 16, s += 2;
	else if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B'))
		base = 2, s += 2;
	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, base);
	return errno || *end || *out > max ? -EINVAL : 0;
}

/* "0b" then up to @width of [01x] ('_' separates; missing leading bits are x). */
static int parse_bitmap(json_object *v, unsigned int width, uint64_t *mask, uint64_t *value)
{
	const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
	unsigned int n = 0;

	if (!s || s[0] != '0' || s[1] != 'b')
		return -EINVAL;
	*mask = *value = 0;
	for (s += 2; *s; s++) {
		if (*s == '_')
			continue;
		if ((*s != '0' && *s != '1' && *s != 'x') || ++n > width)
			return -EINVAL;
		*mask = *mask << 1 | (*s != 'x');
		*value = *value << 1 | (*s == '1');
	}
	return n ? 0 : -EINVAL;
}

static int parse_register(json_object *v, enum cpu_reg *reg)
{
	static const char *const names[] = {"eax", "ebx", "ecx", "edx"};
	const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";

	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0) {
			*reg = (enum cpu_reg)i;
			return 0;
		}
	return -EINVAL;
}

/* Only the listed keys: a misspelt one would otherwise be a silent no-op. */
static int only_keys(json_object *o, const char *const keys[], const char *what, char *err,
		     size_t len)
{
	if (!json_object_is_type(o, json_type_object))
		return perr("cpu-config: %s must be an object", what);
	json_object_object_foreach(o, key, val)
	{
		size_t i;

		(void)val;
		for (i = 0; keys[i] && strcmp(keys[i], key) != 0; i++)
			;
		if (!keys[i])
			return perr("cpu-config: %s: unknown field '%s'", what, key);
	}
	return 0;
}

static int parse_reg_modifier(struct cpu_template *t, const struct cpu_template_reg *leaf,
			      json_object *m, char *err, size_t len)
{
	static const char *const keys[] = {"register", "bitmap", NULL};
	struct cpu_template_reg r = *leaf;
	uint64_t mask, value;
	int ret = only_keys(m, keys, "a CPUID register modifier", err, len);

	if (ret < 0)
		return ret;
	if (parse_register(get(m, "register"), &r.reg) < 0)
		return perr("cpu-config: leaf %#x: 'register' must be eax, ebx, ecx or edx",
			    leaf->leaf);
	if (parse_bitmap(get(m, "bitmap"), 32, &mask, &value) < 0)
		return perr("cpu-config: leaf %#x: 'bitmap' must be \"0b\" and up to 32 of 0, 1, x",
			    leaf->leaf);
	if (t->ncpuid == CPU_TEMPLATE_MAX_CPUID)
		return perr("cpu-config: more than %d CPUID register modifiers",
			    CPU_TEMPLATE_MAX_CPUID);
	r.mask = (uint32_t)mask;
	r.value = (uint32_t)value;
	t->cpuid[t->ncpuid++] = r;
	return 0;
}

static int parse_leaf(struct cpu_template *t, json_object *o, char *err, size_t len)
{
	static const char *const keys[] = {"leaf", "subleaf", "flags", "modifiers", NULL};
	struct cpu_template_reg r = {0};
	json_object *mods = get(o, "modifiers");
	uint64_t leaf, subleaf, flags = 0;
	int ret = only_keys(o, keys, "a cpuid_modifiers entry", err, len);

	if (ret < 0)
		return ret;
	if (parse_num(get(o, "leaf"), UINT32_MAX, &leaf) < 0 ||
	    parse_num(get(o, "subleaf"), UINT32_MAX, &subleaf) < 0)
		return perr("cpu-config: a CPUID modifier's 'leaf' and 'subleaf' must be numbers "
			    "(\"0x1\")");
	if (get(o, "flags") && parse_num(get(o, "flags"), UINT32_MAX, &flags) < 0)
		return perr("cpu-config: leaf %#llx: 'flags' must be a number",
			    (unsigned long long)leaf);
	if (!json_object_is_type(mods, json_type_array))
		return perr("cpu-config: leaf %#llx: 'modifiers' must be an array",
			    (unsigned long long)leaf);
	r.leaf = (uint32_t)leaf;
	r.subleaf = (uint32_t)subleaf;
	r.flags = (uint32_t)flags;
	for (size_t i = 0; ret == 0 && i < json_object_array_length(mods); i++)
		ret = parse_reg_modifier(t, &r, json_object_array_get_idx(mods, i), err, len);
	return ret;
}

static int parse_msr(struct cpu_template *t, json_object *o, char *err, size_t len)
{
	static const char *const keys[] = {"addr", "bitmap", NULL};
	struct cpu_template_msr m;
	uint64_t addr;
	int ret = only_keys(o, keys, "an msr_modifiers entry", err, len);

	if (ret < 0)
		return ret;
	if (parse_num(get(o, "addr"), UINT32_MAX, &addr) < 0)
		return perr("cpu-config: an MSR modifier's 'addr' must be a number (\"0x10a\")");
	if (parse_bitmap(get(o, "bitmap"), 64, &m.mask, &m.value) < 0)
		return perr(
		    "cpu-config: MSR %#llx: 'bitmap' must be \"0b\" and up to 64 of 0, 1, x",
		    (unsigned long long)addr);
	if (t->nmsrs == CPU_TEMPLATE_MAX_MSRS)
		return perr("cpu-config: more than %d MSR modifiers", CPU_TEMPLATE_MAX_MSRS);
	m.addr = (uint32_t)addr;
	t->msrs[t->nmsrs++] = m;
	return 0;
}

/* "171" (the capability must be there) or "!56" (Firecracker drops a check of its own). */
static int parse_cap(struct cpu_template *t, json_object *o, char *err, size_t len)
{
	const char *s = json_object_is_type(o, json_type_string) ? json_object_get_string(o) : NULL;
	bool neg = s && s[0] == '!';
	json_object *num;
	uint64_t n;
	int ret;

	if (!s)
		return perr(
		    "cpu-config: kvm_capabilities: each must be a string (\"171\", \"!56\")");
	num = json_object_new_string(s + neg);
	ret = num ? parse_num(num, INT32_MAX, &n) : -ENOMEM;
	json_object_put(num);
	if (ret < 0 || n == 0)
		return perr("cpu-config: kvm_capabilities: '%s' is not a capability number", s);
	if (t->ncaps == CPU_TEMPLATE_MAX_CAPS)
		return perr("cpu-config: more than %d kvm_capabilities", CPU_TEMPLATE_MAX_CAPS);
	t->caps[t->ncaps++] = neg ? -(int32_t)n : (int32_t)n;
	return 0;
}

static int parse_array(struct cpu_template *t, json_object *body, const char *key,
		       int (*one)(struct cpu_template *, json_object *, char *, size_t), char *err,
		       size_t len)
{
	json_object *a = get(body, key);
	int ret = 0;

	if (!a)
		return 0;
	if (!json_object_is_type(a, json_type_array))
		return perr("cpu-config: '%s' must be an array", key);
	for (size_t i = 0; ret == 0 && i < json_object_array_length(a); i++)
		ret = one(t, json_object_array_get_idx(a, i), err, len);
	return ret;
}

int cpu_template_parse(json_object *body, struct cpu_template *t, char *err, size_t len)
{
	static const char *const keys[] = {"cpuid_modifiers", "msr_modifiers", "kvm_capabilities",
					   "reg_modifiers",   "vcpu_features", NULL};
	int ret = only_keys(body, keys, "the template", err, len);

	memset(t, 0, sizeof(*t));
	if (ret < 0)
		return ret;
	for (int i = 3; keys[i]; i++) {
		json_object *v = get(body, keys[i]);

		if (v &&
		    !(json_object_is_type(v, json_type_array) && json_object_array_length(v) == 0))
			return perr("cpu-config: '%s' is for aarch64 hosts", keys[i]);
	}
	ret = parse_array(t, body, "cpuid_modifiers", parse_leaf, err, len);
	if (ret == 0)
		ret = parse_array(t, body, "msr_modifiers", parse_msr, err, len);
	if (ret == 0)
		ret = parse_array(t, body, "kvm_capabilities", parse_cap, err, len);
	return ret;
}

/* --- back to JSON --- */

static json_object *bitmap_json(uint64_t mask, uint64_t value, unsigned int width)
{
	char s[2 + 64 + 1] = "0b";

	for (unsigned int i = 0; i < width; i++) {
		uint64_t bit = 1ULL << (width - 1 - i);

		s[2 + i] = !(mask & bit) ? 'x' : (value & bit) ? '1' : '0';
	}
	s[2 + width] = '\0';
	return json_object_new_string(s);
}

static json_object *hex_json(uint32_t v)
{
	char s[16];

	snprintf(s, sizeof(s), "%#x", v);
	return json_object_new_string(v ? s : "0x0");
}

/* One cpuid_modifiers entry per run of registers of the same leaf. */
static json_object *cpuid_json(const struct cpu_template *t)
{
	static const char *const regs[] = {"eax", "ebx", "ecx", "edx"};
	json_object *arr = json_object_new_array(), *leaf = NULL, *mods = NULL;

	for (unsigned int i = 0; arr && i < t->ncpuid; i++) {
		const struct cpu_template_reg *r = &t->cpuid[i], *p = i ? r - 1 : NULL;
		json_object *m = json_object_new_object();

		if (!p || p->leaf != r->leaf || p->subleaf != r->subleaf || p->flags != r->flags) {
			leaf = json_object_new_object();
			mods = json_object_new_array();
			json_object_object_add(leaf, "leaf", hex_json(r->leaf));
			json_object_object_add(leaf, "subleaf", hex_json(r->subleaf));
			json_object_object_add(leaf, "flags", json_object_new_int64(r->flags));
			json_object_object_add(leaf, "modifiers", mods);
			json_object_array_add(arr, leaf);
		}
		json_object_object_add(m, "register", json_object_new_string(regs[r->reg]));
		json_object_object_add(m, "bitmap", bitmap_json(r->mask, r->value, 32));
		json_object_array_add(mods, m);
	}
	return arr;
}

json_object *cpu_template_to_json(const struct cpu_template *t)
{
	json_object *o = json_object_new_object(), *msrs = json_object_new_array();
	json_object *caps = json_object_new_array();

	for (unsigned int i = 0; msrs && i < t->nmsrs; i++) {
		json_object *m = json_object_new_object();

		json_object_object_add(m, "addr", hex_json(t->msrs[i].addr));
		json_object_object_add(m, "bitmap",
				       bitmap_json(t->msrs[i].mask, t->msrs[i].value, 64));
		json_object_array_add(msrs, m);
	}
	for (unsigned int i = 0; caps && i < t->ncaps; i++) {
		char s[16];

		snprintf(s, sizeof(s), "%s%d", t->caps[i] < 0 ? "!" : "",
			 t->caps[i] < 0 ? -t->caps[i] : t->caps[i]);
		json_object_array_add(caps, json_object_new_string(s));
	}
	if (!o) {
		json_object_put(msrs);
		json_object_put(caps);
		return NULL;
	}
	json_object_object_add(o, "kvm_capabilities", caps);
	json_object_object_add(o, "cpuid_modifiers", cpuid_json(t));
	json_object_object_add(o, "msr_modifiers", msrs);
	return o;
}

/* --- applying and checking --- */

static uint32_t *entry_reg(struct kvm_cpuid_entry2 *e, enum cpu_reg reg)
{
	return reg == CPU_EAX	? &e->eax
	       : reg == CPU_EBX ? &e->ebx
	       : reg == CPU_ECX ? &e->ecx
				: &e->edx;
}

/* The index of (@leaf, @subleaf) in @c, or -1. */
static int find_entry(const struct kvm_cpuid2 *c, uint32_t leaf, uint32_t subleaf)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == leaf && c->entries[i].index == subleaf)
			return (int)i;
	return -1;
}

static uint32_t reg_value(const struct kvm_cpuid_entry2 *e, enum cpu_reg reg)
{
	return reg == CPU_EAX ? e->eax : reg == CPU_EBX ? e->ebx : reg == CPU_ECX ? e->ecx : e->edx;
}

int cpu_template_apply_cpuid(const struct cpu_template *t, struct kvm_cpuid2 *c, unsigned int cap)
{
	for (unsigned int i = 0; i < t->ncpuid; i++) {
		const struct cpu_template_reg *r = &t->cpuid[i];
		int at = find_entry(c, r->leaf, r->subleaf);
		uint32_t *v;

		if (at < 0) {
			if (c->nent >= cap)
				return -ENOSPC;
			at = (int)c->nent++;
			c->entries[at] = (struct kvm_cpuid_entry2){
			    .function = r->leaf, .index = r->subleaf, .flags = r->flags};
		}
		v = entry_reg(&c->entries[at], r->reg);
		*v = (*v & ~r->mask) | (r->value & r->mask);
	}
	return 0;
}

/* Append "name (REG bit N)" for each bit of @bits to @missing. */
static void name_bits(char *missing, size_t len, size_t i, uint32_t bits)
{
	for (unsigned int b = 0; b < 32; b++) {
		const char *name;
		size_t used = strlen(missing);

		if (!(bits & 1U << b) || used + 1 >= len)
			continue;
		name = cpu_template_feature_name(feature_regs[i].leaf, feature_regs[i].subleaf,
						 feature_regs[i].reg, b);
		snprintf(missing + used, len - used, "%s%s (%s bit %u)", used ? ", " : "",
			 name ? name : "?", feature_regs[i].name, b);
	}
}

int cpu_template_check(const struct cpu_template *t, const struct kvm_cpuid2 *supported,
		       char *missing, size_t len)
{
	if (len)
		missing[0] = '\0';
	for (size_t i = 0; i < NELEM(feature_regs); i++) {
		int at = find_entry(supported, feature_regs[i].leaf, feature_regs[i].subleaf);
		uint32_t want = 0,
			 have =
			     at < 0 ? 0 : reg_value(&supported->entries[at], feature_regs[i].reg);

		for (unsigned int j = 0; j < t->ncpuid; j++) {
			const struct cpu_template_reg *r = &t->cpuid[j];

			if (r->leaf == feature_regs[i].leaf &&
			    r->subleaf == feature_regs[i].subleaf && r->reg == feature_regs[i].reg)
				want = (want & ~r->mask) | (r->value & r->mask);
		}
		name_bits(missing, len, i, want & ~have & ~feature_regs[i].vmm_bits);
	}
	return len && missing[0] ? -ENOTSUP : 0;
}
