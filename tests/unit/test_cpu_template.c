/* CPU templates: Firecracker's format, the named templates, applying and checking them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/cpu_template.h"

static int parse(const char *json, struct cpu_template *t, char *err)
{
	json_object *o = json_tokener_parse(json);
	int ret;

	assert_non_null(o);
	ret = cpu_template_parse(o, t, err, 256);
	json_object_put(o);
	return ret;
}

/* Firecracker's documented example, '_' separators and a contracted bitmap. */
static void test_parse_firecracker_example(void **st)
{
	struct cpu_template t;
	char err[256] = "";

	(void)st;
	assert_int_equal(
	    parse("{\"kvm_capabilities\": [\"!56\", \"171\"], \"cpuid_modifiers\": [{\"leaf\": "
		  "\"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, \"modifiers\": [{\"register\": "
		  "\"eax\", \"bitmap\": \"0bxxxx000000000011xx00011011110010\"}, {\"register\": "
		  "\"edx\", \"bitmap\": \"0b1_0x\"}]}], \"msr_modifiers\": [{\"addr\": \"0x10a\", "
		  "\"bitmap\": "
		  "\"0b0000000000000000000000000000000000000000000000000000000000000000\"}]}",
		  &t, err),
	    0);
	assert_int_equal(t.ncpuid, 2);
	assert_int_equal(t.cpuid[0].leaf, 1);
	assert_int_equal(t.cpuid[0].reg, CPU_EAX);
	/* the documentation's split: clear 0x0ffc390d, set 0x000306f2, keep 0xf000c000 */
	assert_int_equal(t.cpuid[0].mask, 0x0fff3fff);
	assert_int_equal(t.cpuid[0].value, 0x000306f2);
	assert_int_equal(t.cpuid[1].reg, CPU_EDX);
	assert_int_equal(t.cpuid[1].mask, 0x6);
	assert_int_equal(t.cpuid[1].value, 0x4);
	assert_int_equal(t.nmsrs, 1);
	assert_int_equal(t.msrs[0].addr, 0x10a);
	assert_true(t.msrs[0].mask == ~0ULL && t.msrs[0].value == 0);
	assert_int_equal(t.ncaps, 2);
	assert_int_equal(t.caps[0], -56);
	assert_int_equal(t.caps[1], 171);
}

static void test_parse_refuses(void **st)
{
	static const struct {
		const char *json, *msg;
	} bad[] = {
	    {"{\"cpuid_modifier\": []}", "unknown field 'cpuid_modifier'"},
	    {"{\"reg_modifiers\": [{\"addr\": \"0x1\", \"bitmap\": \"0b1\"}]}", "aarch64"},
	    {"{\"cpuid_modifiers\": [{\"leaf\": \"0xg\", \"subleaf\": \"0\", \"modifiers\": []}]}",
	     "'leaf' and 'subleaf' must be numbers"},
	    {"{\"cpuid_modifiers\": [{\"leaf\": \"1\", \"subleaf\": \"0\", \"modifiers\": "
	     "[{\"register\": \"esp\", \"bitmap\": \"0b1\"}]}]}",
	     "'register' must be"},
	    /* 33 bits for a 32-bit register */
	    {"{\"cpuid_modifiers\": [{\"leaf\": \"1\", \"subleaf\": \"0\", \"modifiers\": "
	     "[{\"register\": \"eax\", \"bitmap\": \"0b100000000000000000000000000000000\"}]}]}",
	     "up to 32"},
	    {"{\"cpuid_modifiers\": [{\"leaf\": \"1\", \"subleaf\": \"0\", \"modifiers\": "
	     "[{\"register\": \"eax\", \"bitmap\": \"0b12\"}]}]}",
	     "up to 32"},
	    {"{\"msr_modifiers\": [{\"addr\": \"0x10a\", \"bitmap\": \"1010\"}]}", "up to 64"},
	    {"{\"kvm_capabilities\": [\"!x\"]}", "not a capability number"},
	    {"{\"kvm_capabilities\": [56]}", "must be a string"},
	};
	struct cpu_template t;
	char err[256];

	(void)st;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(parse(bad[i].json, &t, err), -EINVAL);
		if (!strstr(err, bad[i].msg))
			fail_msg("%s: '%s' lacks '%s'", bad[i].json, err, bad[i].msg);
	}
}

/* What cpu_template_to_json writes, cpu_template_parse reads back the same. */
static void test_json_round_trip(void **st)
{
	struct cpu_template a, b;
	json_object *o;
	char err[256];

	(void)st;
	assert_int_equal(cpu_template_named("x86-64-v3", &a), 0);
	a.msrs[a.nmsrs++] = (struct cpu_template_msr){0x1a0, 0x1, 0x1};
	a.caps[a.ncaps++] = -56;
	o = cpu_template_to_json(&a);
	assert_non_null(o);
	assert_int_equal(cpu_template_parse(o, &b, err, sizeof(err)), 0);
	json_object_put(o);
	assert_string_equal(b.name, ""); /* the JSON is a custom template */
	assert_int_equal(b.ncpuid, a.ncpuid);
	assert_memory_equal(b.cpuid, a.cpuid, a.ncpuid * sizeof(a.cpuid[0]));
	assert_int_equal(b.nmsrs, 1);
	assert_true(b.msrs[0].addr == 0x1a0 && b.msrs[0].mask == 1 && b.msrs[0].value == 1);
	assert_int_equal(b.ncaps, 1);
	assert_int_equal(b.caps[0], -56);
}

static struct kvm_cpuid2 *cpuid_new(unsigned int cap)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + cap * sizeof(c->entries[0]));

	assert_non_null(c);
	return c;
}

static void test_apply(void **st)
{
	struct kvm_cpuid2 *c = cpuid_new(3);
	struct cpu_template t = {.ncpuid = 2};

	(void)st;
	c->nent = 1;
	c->entries[0] = (struct kvm_cpuid_entry2){.function = 1, .ecx = 0xffff0000, .edx = 0x5};
	t.cpuid[0] = (struct cpu_template_reg){1, 0, 0, CPU_ECX, 0x00ff00ff, 0x000000f0};
	t.cpuid[1] = (struct cpu_template_reg){6, 0, 0, CPU_ECX, 0x8, 0x8};
	assert_int_equal(cpu_template_apply_cpuid(&t, c, 3), 0);
	assert_int_equal(c->entries[0].ecx, 0xff0000f0); /* kept, cleared, set */
	assert_int_equal(c->entries[0].edx, 0x5);	 /* untouched register */
	assert_int_equal(c->nent, 2);			 /* leaf 6 added */
	assert_int_equal(c->entries[1].function, 6);
	assert_int_equal(c->entries[1].ecx, 0x8);
	/* No room for another leaf: refused rather than written past the array. */
	t.cpuid[0] = (struct cpu_template_reg){7, 0, 1, CPU_EBX, 1, 1};
	t.cpuid[1] = (struct cpu_template_reg){7, 1, 1, CPU_EAX, 1, 1};
	assert_int_equal(cpu_template_apply_cpuid(&t, c, 3), -ENOSPC);
	free(c);
}

/* x86-64-v2 on a host with AVX2 and without SSE4.2: refused, sse4_2 named; avx2 cleared. */
static void test_named_and_check(void **st)
{
	struct kvm_cpuid2 *c = cpuid_new(16);
	struct cpu_template t;
	char missing[256];

	(void)st;
	assert_int_equal(cpu_template_named("x86-64-v4", &t), -ENOENT);
	assert_int_equal(cpu_template_named("x86-64-v2", &t), 0);
	assert_string_equal(t.name, "x86-64-v2");
	c->nent = 3;
	c->entries[0] = (struct kvm_cpuid_entry2){
	    .function = 1, .ecx = 0x00882201 | 1U << 31, .edx = 0x17fbfbff};
	c->entries[1] = (struct kvm_cpuid_entry2){.function = 7, .ebx = 1U << 5 | 1U << 7};
	c->entries[2] = (struct kvm_cpuid_entry2){.function = 0x80000001, .ecx = 1, .edx = ~0U};
	assert_int_equal(cpu_template_check(&t, c, missing, sizeof(missing)), -ENOTSUP);
	assert_string_equal(missing, "sse4_2 (CPUID.1:ECX bit 20)");
	c->entries[0].ecx |= 1U << 20;
	assert_int_equal(cpu_template_check(&t, c, missing, sizeof(missing)), 0);
	assert_int_equal(cpu_template_apply_cpuid(&t, c, 16), 0);
	assert_int_equal(c->entries[1].ebx, 1U << 7);	   /* avx2 cleared, SMEP kept */
	assert_true(c->entries[0].ecx & 1U << 31);	   /* hypervisor kept */
	assert_int_equal(c->entries[0].ecx & 1U << 26, 0); /* no xsave at v2 */
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_firecracker_example), cmocka_unit_test(test_parse_refuses),
	    cmocka_unit_test(test_json_round_trip),	      cmocka_unit_test(test_apply),
	    cmocka_unit_test(test_named_and_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
