/*
 * The metadata service without a guest: the store (PUT, RFC 7396 merge
 * patch, the size limit), the guest's view of it (the path walker, IMDS
 * and JSON output), V2 tokens, the HTTP request parser on well-formed and
 * hostile heads, and a whole exchange through lwIP: the guest's ARP, TCP
 * handshake and GET as frames, the answer read back from the endpoint's
 * output frames.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmds_frames.h"
#include "mmds/mmds.h"

#define DATA                                                                                       \
	"{\"latest\":{\"meta-data\":{\"ami-id\":\"ami-12345678\",\"reservation-id\":\"r-1\","      \
	"\"net\":{\"mac\":\"02:00\"},\"count\":3,\"list\":[\"zero\",\"one\"],\"a/b\":\"slash\"}}}"

static struct mmds *store_with(const char *text)
{
	struct mmds *m = mmds_new();
	char err[MMDS_ERR_LEN];

	assert_non_null(m);
	assert_int_equal(mmds_put_text(m, text, strlen(text), err), 0);
	return m;
}

static char *render(struct mmds *m, const char *path, bool json, unsigned int *status)
{
	char *out = NULL;
	size_t len = 0;

	*status = mmds_render(m, path, json, &out, &len);
	if (out)
		assert_int_equal(strlen(out), len);
	return out;
}

static void expect_render(struct mmds *m, const char *path, bool json, const char *want)
{
	unsigned int status;
	char *out = render(m, path, json, &status);

	assert_int_equal(status, 200);
	assert_string_equal(out, want);
	free(out);
}

static void expect_status(struct mmds *m, const char *path, bool json, unsigned int want)
{
	unsigned int status;

	free(render(m, path, json, &status));
	assert_int_equal(status, want);
}

/* --- the walker and the output formats --- */

static void test_walk_imds(void **state)
{
	struct mmds *m = store_with(DATA);

	(void)state;
	expect_render(m, "/latest", false, "meta-data/");
	expect_render(m, "/latest/meta-data/ami-id", false, "ami-12345678");
	expect_render(m, "//latest//meta-data/ami-id/", false, "ami-12345678");
	expect_render(m, "/latest/meta-data/net", false, "mac");
	expect_render(m, "/latest/meta-data/list/1", false, "one");
	expect_render(m, "/latest/meta-data/a~1b", false, "slash");
	expect_status(m, "/latest/meta-data/count", false, 501); /* numbers: no IMDS text */
	expect_status(m, "/latest/meta-data/list", false, 501);
	expect_status(m, "/latest/meta-data/nothing", false, 404);
	expect_status(m, "/latest/meta-data/ami-id/deeper", false, 404);
	expect_status(m, "/latest/meta-data/list/2", false, 404);
	expect_status(m, "/latest/meta-data/list/01", false, 404);
	expect_status(m, "/latest/meta-data/a~2b", false, 404);
	mmds_free(m);
}

static void test_walk_listing(void **state)
{
	struct mmds *m = store_with(DATA);
	unsigned int status;
	char *out = render(m, "/latest/meta-data/", false, &status);

	(void)state;
	assert_int_equal(status, 200);
	/* keys one a line, "/" after sub-objects, no trailing newline */
	assert_non_null(strstr(out, "ami-id\n"));
	assert_non_null(strstr(out, "net/"));
	assert_null(strstr(out, "ami-id/"));
	assert_int_not_equal(out[strlen(out) - 1], '\n');
	free(out);
	mmds_free(m);
}

static void test_walk_json(void **state)
{
	struct mmds *m = store_with(DATA);

	(void)state;
	expect_render(m, "/latest/meta-data/ami-id", true, "\"ami-12345678\"");
	expect_render(m, "/latest/meta-data/net", true, "{\"mac\":\"02:00\"}");
	expect_render(m, "/latest/meta-data/count", true, "3");
	/* imds_compat: text whatever the guest accepts */
	mmds_configure(m, MMDS_V1, true);
	expect_render(m, "/latest/meta-data/ami-id", true, "ami-12345678");
	mmds_free(m);
}

/* --- the store --- */

static char *get_text(struct mmds *m)
{
	json_object *o = mmds_get(m);
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));

	json_object_put(o);
	return s;
}

static void test_merge_patch(void **state)
{
	struct mmds *m = store_with("{\"a\":{\"b\":1,\"c\":2},\"d\":[1],\"e\":\"x\"}");
	json_object *patch =
	    json_tokener_parse("{\"a\":{\"b\":null,\"f\":{\"g\":3}},\"d\":{\"h\":4},"
			       "\"e\":null,\"i\":\"new\"}");
	char *s;

	(void)state;
	assert_int_equal(mmds_patch(m, patch), 0);
	s = get_text(m);
	assert_string_equal(s, "{\"a\":{\"c\":2,\"f\":{\"g\":3}},\"d\":{\"h\":4},\"i\":\"new\"}");
	free(s);
	json_object_put(patch);
	/* a non-object patch replaces the whole document (RFC 7396) */
	patch = json_tokener_parse("[1,2]");
	assert_int_equal(mmds_patch(m, patch), 0);
	s = get_text(m);
	assert_string_equal(s, "[1,2]");
	free(s);
	json_object_put(patch);
	mmds_free(m);
}

static void test_empty_store(void **state)
{
	struct mmds *m = mmds_new();
	json_object *patch = json_tokener_parse("{\"k\":\"v\"}");
	char *s = get_text(m);

	(void)state;
	assert_string_equal(s, "{}");
	free(s);
	expect_status(m, "/", false, 404); /* nothing to walk yet */
	assert_int_equal(mmds_patch(m, patch), 0);
	expect_render(m, "/k", false, "v");
	json_object_put(patch);
	mmds_free(m);
}

static void test_size_limit(void **state)
{
	struct mmds *m = mmds_new();
	static char big[MMDS_DEFAULT_LIMIT + 64];
	char err[MMDS_ERR_LEN], *s;
	json_object *patch;
	size_t n;

	(void)state;
	/* {"k":"xxx..."}: exactly the limit fits, one byte more does not */
	n = MMDS_DEFAULT_LIMIT - 8;
	memcpy(big, "{\"k\":\"", 6);
	memset(big + 6, 'x', n);
	memcpy(big + 6 + n, "\"}", 3);
	assert_int_equal(mmds_put_text(m, big, strlen(big), err), 0);
	memcpy(big + 6 + n, "x\"}", 4);
	assert_int_equal(mmds_put_text(m, big, strlen(big), err), -EFBIG);
	assert_string_equal(err, MMDS_LIMIT_MSG);
	/* a patch that would not fit leaves the data as it was */
	patch = json_tokener_parse("{\"more\":\"data\"}");
	assert_int_equal(mmds_patch(m, patch), -EFBIG);
	s = get_text(m);
	assert_int_equal(strlen(s), MMDS_DEFAULT_LIMIT);
	free(s);
	/* a larger limit (--mmds-size-limit) lets it in */
	assert_int_equal(mmds_set_limit(m, MMDS_DEFAULT_LIMIT * 2), 0);
	assert_int_equal(mmds_patch(m, patch), 0);
	assert_int_equal(mmds_set_limit(m, 0), -EINVAL);
	json_object_put(patch);
	assert_int_equal(mmds_put_text(m, "{\"a\":", 5, err), -EINVAL);
	mmds_free(m);
}

/* --- tokens --- */

static void test_tokens(void **state)
{
	struct mmds *m = mmds_new();
	char a[64], b[64];

	(void)state;
	assert_int_equal(mmds_token_new(m, 0, a, sizeof(a)), -EINVAL);
	assert_int_equal(mmds_token_new(m, MMDS_TOKEN_TTL_MAX + 1, a, sizeof(a)), -EINVAL);
	assert_int_equal(mmds_token_new(m, 1, a, sizeof(a)), 0);
	assert_int_equal(mmds_token_new(m, 60, b, sizeof(b)), 0);
	assert_true(strlen(a) >= 43);
	assert_string_not_equal(a, b);
	assert_true(mmds_token_valid(m, a));
	assert_true(mmds_token_valid(m, b));
	assert_false(mmds_token_valid(m, ""));
	b[5] ^= 1;
	assert_false(mmds_token_valid(m, b));
	usleep(1100 * 1000); /* a's 1 s runs out */
	assert_false(mmds_token_valid(m, a));
	mmds_free(m);
}

static void test_tokens_bounded(void **state)
{
	struct mmds *m = mmds_new();
	char first[64], t[64];

	(void)state;
	assert_int_equal(mmds_token_new(m, 10, first, sizeof(first)), 0);
	for (int i = 0; i < MMDS_MAX_TOKENS; i++)
		assert_int_equal(mmds_token_new(m, 100, t, sizeof(t)), 0);
	/* the table is full: the one nearest to expiry made room */
	assert_false(mmds_token_valid(m, first));
	assert_true(mmds_token_valid(m, t));
	mmds_free(m);
}

/* --- the HTTP parser --- */

static int parse(const char *s, struct mmds_request *req)
{
	return mmds_http_parse(s, strlen(s), req);
}

static void test_parse_ok(void **state)
{
	struct mmds_request r;
	const char *s = "GET /latest/meta-data?x=1 HTTP/1.1\r\nHost: 169.254.169.254\r\n"
			"accept:  application/json \r\nX-Metadata-Token: abc\r\n\r\nbody";

	(void)state;
	assert_int_equal(parse(s, &r), (int)(strstr(s, "body") - s));
	assert_string_equal(r.method, "GET");
	assert_string_equal(r.path, "/latest/meta-data");
	assert_true(r.want_json);
	assert_true(r.has_token);
	assert_string_equal(r.token, "abc");
	assert_int_equal(r.ttl, -1);
	assert_false(r.http10);
	assert_int_equal(parse("PUT /latest/api/token HTTP/1.0\r\n"
			       "X-aws-ec2-metadata-token-ttl-seconds: 21600\r\n"
			       "X-Forwarded-For: 1.2.3.4\r\n\r\n",
			       &r) > 0,
			 1);
	assert_int_equal(r.ttl, 21600);
	assert_true(r.forwarded);
	assert_true(r.http10);
	assert_int_equal(
	    parse("PUT / HTTP/1.1\r\nX-metadata-token-ttl-seconds: 21601\r\n\r\n", &r) > 0, 1);
	assert_int_equal(r.ttl, 0);
	assert_int_equal(
	    parse("PUT / HTTP/1.1\r\nX-metadata-token-ttl-seconds: -5\r\n\r\n", &r) > 0, 1);
	assert_int_equal(r.ttl, 0);
}

static void test_parse_incomplete_and_hostile(void **state)
{
	static const char *const bad[] = {
	    "GET /x HTTP/2.0\r\n\r\n",
	    "get /x HTTP/1.1\r\n\r\n",
	    "GET x HTTP/1.1\r\n\r\n",
	    "GET /x\r\n\r\n",
	    " GET /x HTTP/1.1\r\n\r\n",
	    "GET /x HTTP/1.1\r\nNoColon\r\n\r\n",
	    "GET /x HTTP/1.1\r\n folded: x\r\n\r\n",
	    "GET /a\x01 HTTP/1.1\r\n\r\n",
	};
	struct mmds_request r;
	static char big[MMDS_REQ_MAX + 16];

	(void)state;
	assert_int_equal(parse("GET /x HTTP/1.1\r\nHost: a\r\n", &r), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(bad[i], &r), -EINVAL);
	/* a NUL byte is a byte: length-delimited, never a terminator */
	assert_int_equal(mmds_http_parse("GET /a\0b HTTP/1.1\r\n\r\n", 22, &r), -EINVAL);
	/* a head that cannot end within MMDS_REQ_MAX is refused, not waited for */
	memset(big, 'a', MMDS_REQ_MAX + 16);
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	assert_int_equal(mmds_http_parse(big, MMDS_REQ_MAX, &r), -EINVAL);
	assert_int_equal(mmds_http_parse(big, MMDS_REQ_MAX - 1, &r), 0);
	/* a path longer than the request's buffer */
	memset(big, 'a', MMDS_REQ_MAX);
	memcpy(big, "GET /", 5);
	memcpy(big + 2000, " HTTP/1.1\r\n\r\n", 13);
	assert_int_equal(mmds_http_parse(big, 2013, &r), -EINVAL);
	/* an over-long token is remembered as present but kept as none */
	memset(big, 'a', 400);
	memcpy(big, "GET / HTTP/1.1\r\nX-metadata-token: ", 34);
	memcpy(big + 300, "\r\n\r\n", 4);
	assert_int_equal(mmds_http_parse(big, 304, &r), 304);
	assert_true(r.has_token);
	assert_string_equal(r.token, "");
}

/* --- responses --- */

static char *respond(struct mmds *m, const char *head)
{
	struct mmds_request r;
	char *out = NULL;
	size_t len;

	assert_true(mmds_http_parse(head, strlen(head), &r) > 0);
	assert_int_equal(mmds_http_respond(m, &r, &out, &len), 0);
	out = realloc(out, len + 1);
	out[len] = '\0';
	return out;
}

static void expect_response(struct mmds *m, const char *head, const char *status, const char *body)
{
	char *out = respond(m, head);

	assert_non_null(strstr(out, status));
	if (body)
		assert_string_equal(strstr(out, "\r\n\r\n") + 4, body);
	free(out);
}

static void test_respond_v1_v2(void **state)
{
	struct mmds *m = store_with(DATA);
	char head[256], *out, *tok;

	(void)state;
	expect_response(m, "GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK",
			"ami-12345678");
	expect_response(m, "GET /nothing HTTP/1.1\r\n\r\n", " 404 ", NULL);
	expect_response(m, "POST /latest HTTP/1.1\r\n\r\n", " 405 ", NULL);
	expect_response(m, "PUT /latest/api/token HTTP/1.1\r\n\r\n", " 400 ", NULL);
	expect_response(m, "PUT /other HTTP/1.1\r\nX-metadata-token-ttl-seconds: 5\r\n\r\n",
			" 404 ", NULL);
	expect_response(m,
			"PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 5\r\n"
			"X-Forwarded-For: 10.0.0.1\r\n\r\n",
			" 400 ", NULL);
	mmds_configure(m, MMDS_V2, false);
	expect_response(m, "GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n", " 401 ", NULL);
	expect_response(m,
			"GET /latest/meta-data/ami-id HTTP/1.1\r\nX-metadata-token: nope\r\n\r\n",
			" 401 ", NULL);
	out = respond(m,
		      "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n");
	assert_non_null(strstr(out, " 200 "));
	tok = strstr(out, "\r\n\r\n") + 4;
	snprintf(head, sizeof(head),
		 "GET /latest/meta-data/ami-id HTTP/1.1\r\nX-aws-ec2-metadata-token: %s\r\n\r\n",
		 tok);
	expect_response(m, head, " 200 ", "ami-12345678");
	snprintf(head, sizeof(head),
		 "GET /latest/meta-data/net HTTP/1.1\r\nAccept: application/json\r\n"
		 "X-metadata-token: %s\r\n\r\n",
		 tok);
	expect_response(m, head, "Content-Type: application/json", "{\"mac\":\"02:00\"}");
	free(out);
	mmds_free(m);
}

/* --- a whole exchange through lwIP --- */

struct guest {
	struct mmds_net *n;
	uint8_t frame[1600];
	uint32_t seq, srv_next;
	char reply[8192];
	size_t reply_len;
	bool fin;
	int wakes;
};

static void on_wake(void *opaque)
{
	((struct guest *)opaque)->wakes++;
}

/* Read the endpoint's output: TCP payload in order into reply. Returns the ARP replies seen. */
static int guest_read(struct guest *g)
{
	uint8_t out[1514];
	size_t len;
	int arps = 0;

	while ((len = mmds_net_next(g->n, out, sizeof(out)))) {
		uint8_t flags;
		uint32_t seq, ack;
		const uint8_t *data;
		size_t dlen;

		/* every answer is for the guest; ARP may broadcast */
		if (out[12] != 0x08 || out[13] != 0x06)
			assert_memory_equal(out, mf_guest_mac, 6);
		if (out[12] == 0x08 && out[13] == 0x06 && out[21] == 2 &&
		    memcmp(out + 22, mf_mmds_mac, 6) == 0)
			arps++;
		if (!mf_parse_tcp(out, len, &flags, &seq, &ack, &data, &dlen))
			continue;
		assert_true(mf_tcp_csum_ok(out, len)); /* the guest drops anything else */
		if (flags & MF_TCP_SYN)
			g->srv_next = seq + 1;
		if (dlen && seq == g->srv_next && g->reply_len + dlen < sizeof(g->reply)) {
			memcpy(g->reply + g->reply_len, data, dlen);
			g->reply_len += dlen;
			g->srv_next += (uint32_t)dlen;
		}
		if (flags & MF_TCP_FIN) {
			g->fin = true;
			g->srv_next++;
		}
	}
	return arps;
}

static void guest_send(struct guest *g, uint8_t flags, const char *data)
{
	size_t dlen = data ? strlen(data) : 0;
	size_t len =
	    mf_tcp(g->frame, MMDS_DEFAULT_IPV4, 40001, g->seq, g->srv_next, flags, data, dlen);

	assert_true(mmds_net_claims(g->n, g->frame, len));
	mmds_net_input(g->n, g->frame, len);
	g->seq += (uint32_t)dlen + ((flags & (MF_TCP_SYN | MF_TCP_FIN)) ? 1 : 0);
}

static void test_lwip_exchange(void **state)
{
	struct mmds *m = store_with(DATA);
	struct guest *g = calloc(1, sizeof(*g));
	size_t len;

	(void)state;
	g->n = mmds_net_new(m, MMDS_DEFAULT_IPV4, on_wake, g);
	assert_non_null(g->n);
	(void)guest_read(g); /* the gratuitous ARP of an interface coming up */
	/* a frame for another address is not the endpoint's */
	len = mf_arp_request(g->frame, 0x0a000001);
	assert_false(mmds_net_claims(g->n, g->frame, len));
	len = mf_tcp(g->frame, 0x0a000001, 1, 1, 0, MF_TCP_SYN, NULL, 0);
	assert_false(mmds_net_claims(g->n, g->frame, len));
	len = mf_arp_request(g->frame, MMDS_DEFAULT_IPV4);
	assert_true(mmds_net_claims(g->n, g->frame, len));
	mmds_net_input(g->n, g->frame, len);
	assert_int_equal(guest_read(g), 1);
	assert_true(g->wakes > 0);
	g->seq = 5000;
	guest_send(g, MF_TCP_SYN, NULL);
	(void)guest_read(g);
	assert_int_not_equal(g->srv_next, 0);
	guest_send(g, MF_TCP_ACK | MF_TCP_PSH, "GET /latest/meta-data/ami-id HTTP/1.1\r\n");
	guest_send(g, MF_TCP_ACK | MF_TCP_PSH, "Host: 169.254.169.254\r\n\r\n");
	(void)guest_read(g);
	guest_send(g, MF_TCP_ACK, NULL);
	g->reply[g->reply_len] = '\0';
	assert_non_null(strstr(g->reply, "HTTP/1.1 200 OK\r\n"));
	assert_string_equal(strstr(g->reply, "\r\n\r\n") + 4, "ami-12345678");
	assert_true(g->fin); /* one request per connection */
	mmds_net_free(g->n);
	free(g);
	mmds_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_walk_imds),
	    cmocka_unit_test(test_walk_listing),
	    cmocka_unit_test(test_walk_json),
	    cmocka_unit_test(test_merge_patch),
	    cmocka_unit_test(test_empty_store),
	    cmocka_unit_test(test_size_limit),
	    cmocka_unit_test(test_tokens),
	    cmocka_unit_test(test_tokens_bounded),
	    cmocka_unit_test(test_parse_ok),
	    cmocka_unit_test(test_parse_incomplete_and_hostile),
	    cmocka_unit_test(test_respond_v1_v2),
	    cmocka_unit_test(test_lwip_exchange),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
