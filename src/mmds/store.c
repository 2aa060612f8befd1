/*
 * The MMDS data store: the JSON the host puts, patches and reads, the
 * guest's view of it (mmds_render), and the V2 session tokens.
 *
 * m->lock protects everything in struct mmds: the API thread writes, the
 * cards' device threads read and issue tokens. json-c objects are not
 * thread-safe (serializing caches a buffer in the object), so every use of
 * m->data, reads included, holds the lock.
 */
#include "mmds/mmds.h"

#include "util/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct mmds_token {
	char tok[48];	 /* base64url of 32 random bytes; "" free */
	uint64_t expiry; /* now_ns() at which it stops being valid */
};

struct mmds {
	pthread_mutex_t lock;
	json_object *data; /* NULL until the first PUT */
	size_t limit;
	enum mmds_version version;
	bool imds_compat;
	struct mmds_token tokens[MMDS_MAX_TOKENS];
};

struct mmds *mmds_new(void)
{
	struct mmds *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	m->limit = MMDS_DEFAULT_LIMIT;
	m->version = MMDS_V1;
	return m;
}

void mmds_free(struct mmds *m)
{
	if (!m)
		return;
	json_object_put(m->data);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

int mmds_set_limit(struct mmds *m, size_t limit)
{
	if (!limit)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	m->limit = limit;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

void mmds_configure(struct mmds *m, enum mmds_version version, bool imds_compat)
{
	pthread_mutex_lock(&m->lock);
	m->version = version;
	m->imds_compat = imds_compat;
	pthread_mutex_unlock(&m->lock);
}

/* Serialized size, as the limit counts it (Firecracker: its compact JSON). */
static size_t json_size(json_object *o)
{
	size_t len = 0;

	json_object_to_json_string_length(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	return len;
}

/* Take @o (a new reference) as the data if it fits; lock held. */
static int store_locked(struct mmds *m, json_object *o)
{
	if (!o)
		return -ENOMEM;
	if (json_size(o) > m->limit) {
		json_object_put(o);
		return -EFBIG;
	}
	json_object_put(m->data);
	m->data = o;
	return 0;
}

int mmds_put(struct mmds *m, json_object *data)
{
	json_object *copy = NULL;
	int ret;

	if (json_object_deep_copy(data, &copy, NULL) < 0)
		return -ENOMEM;
	pthread_mutex_lock(&m->lock);
	ret = store_locked(m, copy);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

int mmds_put_text(struct mmds *m, const char *text, size_t len, char *err)
{
	struct json_tokener *tok = json_tokener_new_ex(64);
	json_object *o = NULL;
	int ret = -EINVAL;

	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	if (len <= INT32_MAX)
		o = json_tokener_parse_ex(tok, text, (int)len);
	if (!o || json_tokener_get_parse_end(tok) != len)
		snprintf(err, MMDS_ERR_LEN, "the metadata is not one JSON value: %s",
			 json_tokener_error_desc(json_tokener_get_error(tok)));
	else
		ret = mmds_put(m, o);
	if (ret == -EFBIG)
		snprintf(err, MMDS_ERR_LEN, "%s", MMDS_LIMIT_MSG);
	json_object_put(o);
	json_tokener_free(tok);
	return ret;
}

json_object *mmds_merge_patch(json_object *target, json_object *patch)
{
	json_object *copy = NULL;

	if (!json_object_is_type(patch, json_type_object)) {
		json_object_put(target);
		return json_object_deep_copy(patch, &copy, NULL) < 0 ? NULL : copy;
	}
	if (!json_object_is_type(target, json_type_object)) {
		json_object_put(target);
		target = json_object_new_object();
		if (!target)
			return NULL;
	}
	json_object_object_foreach(patch, key, val)
	{
		json_object *old = NULL, *merged;

		if (!val) { /* JSON null: remove */
			json_object_object_del(target, key);
			continue;
		}
		json_object_object_get_ex(target, key, &old);
		merged = mmds_merge_patch(json_object_get(old), val);
		if (!merged || json_object_object_add(target, key, merged) < 0) {
			json_object_put(merged);
			json_object_put(target);
			return NULL;
		}
	}
	return target;
}

int mmds_patch(struct mmds *m, json_object *patch)
{
	json_object *copy = NULL;
	int ret;

	pthread_mutex_lock(&m->lock);
	/* Patch a copy, so a patch that does not fit leaves the data as it was. */
	if (m->data && json_object_deep_copy(m->data, &copy, NULL) < 0)
		ret = -ENOMEM;
	else
		ret = store_locked(m, mmds_merge_patch(copy, patch));
	pthread_mutex_unlock(&m->lock);
	return ret;
}

json_object *mmds_get(struct mmds *m)
{
	json_object *copy = NULL;

	pthread_mutex_lock(&m->lock);
	if (!m->data)
		copy = json_object_new_object();
	else if (json_object_deep_copy(m->data, &copy, NULL) < 0)
		copy = NULL;
	pthread_mutex_unlock(&m->lock);
	return copy;
}

/* --- the guest's view --- */

/* One path segment (@len bytes) with ~1 -> '/', ~0 -> '~' (RFC 6901) into @key. */
static bool unescape_segment(const char *s, size_t len, char *key, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '~') {
			if (i + 1 >= len || (s[i + 1] != '0' && s[i + 1] != '1'))
				return false;
			c = s[++i] == '0' ? '~' : '/';
		}
		if (o + 1 >= cap)
			return false;
		key[o++] = c;
	}
	key[o] = '\0';
	return true;
}

/* An array index: digits only, no leading zero, in range. */
static json_object *array_at(json_object *a, const char *key)
{
	char *end;
	unsigned long i;

	if (!*key || (key[0] == '0' && key[1]) || key[0] < '0' || key[0] > '9')
		return NULL;
	i = strtoul(key, &end, 10);
	if (*end || i >= json_object_array_length(a))
		return NULL;
	return json_object_array_get_idx(a, i);
}

/* Walk @path from @o; NULL when a segment names nothing. Borrowed reference. */
static json_object *walk(json_object *o, const char *path)
{
	char key[1024];

	while (o && *path) {
		const char *end = strchr(path, '/');
		size_t len = end ? (size_t)(end - path) : strlen(path);

		if (len) {
			if (!unescape_segment(path, len, key, sizeof(key)))
				return NULL;
			if (json_object_is_type(o, json_type_object)) {
				json_object *next = NULL;

				o = json_object_object_get_ex(o, key, &next) ? next : NULL;
			} else if (json_object_is_type(o, json_type_array)) {
				o = array_at(o, key);
			} else {
				return NULL;
			}
		}
		path += len + (end ? 1 : 0);
	}
	return o;
}

/* Objects as their keys, one a line, "/" after sub-objects (IMDS listings). */
static char *imds_listing(json_object *o, size_t *len)
{
	size_t cap = 1, off = 0;
	char *s;

	json_object_object_foreach(o, k1, v1)
	{
		(void)v1;
		cap += strlen(k1) + 2;
	}
	s = malloc(cap);
	if (!s)
		return NULL;
	json_object_object_foreach(o, key, val)
	{
		bool dir = json_object_is_type(val, json_type_object);

		off += (size_t)snprintf(s + off, cap - off, "%s%s%s", off ? "\n" : "", key,
					dir ? "/" : "");
	}
	s[off] = '\0';
	*len = off;
	return s;
}

static unsigned int render_locked(json_object *v, bool json, char **out, size_t *out_len)
{
	const char *s;
	size_t len = 0;

	if (json) {
		s = json_object_to_json_string_length(
		    v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
		*out = s ? strndup(s, len) : NULL;
	} else if (json_object_is_type(v, json_type_string)) {
		len = (size_t)json_object_get_string_len(v);
		*out = malloc(len + 1);
		if (*out) {
			memcpy(*out, json_object_get_string(v), len);
			(*out)[len] = '\0';
		}
	} else if (json_object_is_type(v, json_type_object)) {
		*out = imds_listing(v, &len);
	} else {
		return 501;
	}
	*out_len = len;
	return *out ? 200 : 500;
}

unsigned int mmds_render(struct mmds *m, const char *path, bool json, char **out, size_t *out_len)
{
	json_object *v;
	unsigned int status;

	*out = NULL;
	*out_len = 0;
	pthread_mutex_lock(&m->lock);
	v = m->data ? walk(m->data, path) : NULL;
	status = v ? render_locked(v, json && !m->imds_compat, out, out_len) : 404;
	pthread_mutex_unlock(&m->lock);
	return status;
}

void mmds_settings(struct mmds *m, enum mmds_version *version, bool *imds_compat)
{
	pthread_mutex_lock(&m->lock);
	*version = m->version;
	*imds_compat = m->imds_compat;
	pthread_mutex_unlock(&m->lock);
}

/* --- V2 session tokens --- */

static void base64url(const uint8_t *in, size_t n, char *out)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = tab[(acc >> bits) & 63];
		}
	}
	if (bits)
		out[o++] = tab[(acc << (6 - bits)) & 63];
	out[o] = '\0';
}

/* The slot a new token takes: a free or expired one, else the nearest to expire. */
static struct mmds_token *token_slot(struct mmds *m, uint64_t now)
{
	struct mmds_token *best = &m->tokens[0];

	for (unsigned int i = 0; i < MMDS_MAX_TOKENS; i++) {
		struct mmds_token *t = &m->tokens[i];

		if (!t->tok[0] || t->expiry <= now)
			return t;
		if (t->expiry < best->expiry)
			best = t;
	}
	return best;
}

int mmds_token_new(struct mmds *m, long ttl, char *tok, size_t toklen)
{
	uint8_t raw[32];
	uint64_t now = now_ns();
	struct mmds_token *t;

	if (ttl < 1 || ttl > MMDS_TOKEN_TTL_MAX || toklen < sizeof(t->tok))
		return -EINVAL;
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return errno ? -errno : -EIO;
	pthread_mutex_lock(&m->lock);
	t = token_slot(m, now);
	base64url(raw, sizeof(raw), t->tok);
	t->expiry = now + (uint64_t)ttl * 1000000000ULL;
	snprintf(tok, toklen, "%s", t->tok);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* Compare without leaking where two tokens first differ. */
static bool token_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;

	for (size_t i = 0; i < la && i < lb; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

bool mmds_token_valid(struct mmds *m, const char *tok)
{
	uint64_t now = now_ns();
	bool ok = false;

	if (!tok || !*tok)
		return false;
	pthread_mutex_lock(&m->lock);
	for (unsigned int i = 0; i < MMDS_MAX_TOKENS; i++) {
		const struct mmds_token *t = &m->tokens[i];

		if (t->tok[0] && t->expiry > now && token_equal(t->tok, tok))
			ok = true;
	}
	pthread_mutex_unlock(&m->lock);
	return ok;
}
