/*
 * The guest's HTTP requests to the metadata service: a parser for one
 * request head and the response to it, as Firecracker's MMDS answers.
 *
 * The head is hostile input: it is parsed in place, length-delimited (a NUL
 * byte is just a byte), every field copied into a fixed-size buffer or
 * refused, and nothing is allocated from a size the guest chose. A body is
 * never read: each connection serves one request and is closed.
 */
#include "mmds/mmds.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TOKEN_PATH "/latest/api/token"

/* @a (@alen bytes) equals the NUL-terminated @b ignoring ASCII case. */
static bool field_is(const char *a, size_t alen, const char *b)
{
	return strlen(b) == alen && strncasecmp(a, b, alen) == 0;
}

/* A copy of @len bytes into @dst (@cap), refused when it does not fit or holds a control byte. */
static bool copy_field(char *dst, size_t cap, const char *s, size_t len)
{
	if (len >= cap)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return true;
}

/* "GET /path HTTP/1.1" (@len bytes, no CRLF). */
static int parse_request_line(const char *s, size_t len, struct mmds_request *req)
{
	const char *sp1 = memchr(s, ' ', len), *sp2, *cut;
	size_t plen;

	if (!sp1 || sp1 == s)
		return -EINVAL;
	sp2 = memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - s));
	if (!sp2 || sp1[1] != '/')
		return -EINVAL;
	for (const char *p = s; p < sp1; p++)
		if (*p < 'A' || *p > 'Z')
			return -EINVAL;
	if (!copy_field(req->method, sizeof(req->method), s, (size_t)(sp1 - s)))
		req->method[0] = '\0'; /* a long method: answered 405 */
	plen = (size_t)(sp2 - sp1 - 1);
	cut = memchr(sp1 + 1, '?', plen);
	if (!cut)
		cut = memchr(sp1 + 1, '#', plen);
	if (cut)
		plen = (size_t)(cut - sp1 - 1);
	if (!copy_field(req->path, sizeof(req->path), sp1 + 1, plen) ||
	    memchr(req->path, ' ', plen))
		return -EINVAL;
	if (field_is(sp2 + 1, len - (size_t)(sp2 + 1 - s), "HTTP/1.1"))
		return 0;
	if (!field_is(sp2 + 1, len - (size_t)(sp2 + 1 - s), "HTTP/1.0"))
		return -EINVAL;
	req->http10 = true;
	return 0;
}

/* Seconds as decimal digits only: 1..MMDS_TOKEN_TTL_MAX, else 0 (invalid). */
static long parse_ttl(const char *v, size_t len)
{
	long ttl = 0;

	if (!len || len > 6)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return 0;
		ttl = ttl * 10 + (v[i] - '0');
	}
	return ttl >= 1 && ttl <= MMDS_TOKEN_TTL_MAX ? ttl : 0;
}

/* Does @v (@len bytes) name application/json among its media types? */
static bool accepts_json(const char *v, size_t len)
{
	static const char want[] = "application/json";
	size_t n = sizeof(want) - 1;

	for (size_t i = 0; i + n <= len; i++)
		if (strncasecmp(v + i, want, n) == 0)
			return true;
	return false;
}

static int parse_header(const char *s, size_t len, struct mmds_request *req)
{
	const char *colon = memchr(s, ':', len);
	const char *v;
	size_t nlen, vlen;

	if (!colon || colon == s || s[0] == ' ' || s[0] == '\t')
		return -EINVAL; /* no name, or obsolete line folding */
	nlen = (size_t)(colon - s);
	v = colon + 1;
	vlen = len - nlen - 1;
	while (vlen && (*v == ' ' || *v == '\t'))
		v++, vlen--;
	while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	if (field_is(s, nlen, "X-metadata-token") ||
	    field_is(s, nlen, "X-aws-ec2-metadata-token")) {
		req->has_token = true;
		if (!copy_field(req->token, sizeof(req->token), v, vlen))
			req->token[0] = '\0'; /* too long to be one of ours */
	} else if (field_is(s, nlen, "X-metadata-token-ttl-seconds") ||
		   field_is(s, nlen, "X-aws-ec2-metadata-token-ttl-seconds")) {
		req->ttl = parse_ttl(v, vlen);
	} else if (field_is(s, nlen, "X-Forwarded-For")) {
		req->forwarded = true;
	} else if (field_is(s, nlen, "Accept")) {
		req->want_json = accepts_json(v, vlen);
	}
	return 0;
}

int mmds_http_parse(const char *buf, size_t len, struct mmds_request *req)
{
	const char *end = len >= 4 ? memmem(buf, len, "\r\n\r\n", 4) : NULL;
	const char *line = buf;
	size_t head;
	int ret;

	if (!end)
		return len >= MMDS_REQ_MAX ? -EINVAL : 0;
	head = (size_t)(end - buf) + 4;
	if (head > MMDS_REQ_MAX)
		return -EINVAL;
	memset(req, 0, sizeof(*req));
	req->ttl = -1;
	for (bool first = true; line < end + 2; first = false) {
		const char *eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
		size_t llen;

		if (!eol) /* cannot happen: the head ends in CRLF CRLF; the compiler cannot know */
			return -EINVAL;
		llen = (size_t)(eol - line);
		ret = first ? parse_request_line(line, llen, req) : parse_header(line, llen, req);
		if (ret < 0)
			return ret;
		line = eol + 2;
	}
	return (int)head;
}

/* --- the response --- */

static const char *reason(unsigned int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 501:
		return "Not Implemented";
	default:
		return "Internal Server Error";
	}
}

/* Status line, headers and @body (taken: freed here) into *@out. */
static int build(const struct mmds_request *req, unsigned int status, const char *ctype, char *body,
		 size_t blen, char **out, size_t *out_len)
{
	char head[256];
	int hlen = snprintf(head, sizeof(head),
			    "HTTP/1.%c %u %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
			    "Connection: close\r\n\r\n",
			    req->http10 ? '0' : '1', status, reason(status), ctype, blen,
			    status == 405 ? "Allow: GET, PUT\r\n" : "");

	*out = blen && !body ? NULL : malloc((size_t)hlen + blen);
	if (!*out) {
		free(body);
		return -ENOMEM;
	}
	memcpy(*out, head, (size_t)hlen);
	if (blen)
		memcpy(*out + hlen, body, blen);
	*out_len = (size_t)hlen + blen;
	free(body);
	return 0;
}

__attribute__((format(printf, 4, 5))) static int text(const struct mmds_request *req, char **out,
						      size_t *out_len, const char *fmt, ...);

/* A plain-text message; the status is the message's first three digits. */
static int text(const struct mmds_request *req, char **out, size_t *out_len, const char *fmt, ...)
{
	char msg[1200];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 4)
		return -EINVAL;
	n = n >= (int)sizeof(msg) ? (int)sizeof(msg) - 1 : n;
	return build(req, (unsigned int)strtoul(msg, NULL, 10), "text/plain",
		     strndup(msg + 4, (size_t)n - 4), (size_t)n - 4, out, out_len);
}

/* The path with empty segments dropped ("//a/b/" is "/a/b"), for the token path. */
static bool is_token_path(const char *path)
{
	char norm[sizeof(((struct mmds_request *)0)->path)];
	size_t o = 0;

	for (const char *p = path; *p && o + 1 < sizeof(norm); p++)
		if (*p != '/' || (p[1] && p[1] != '/'))
			norm[o++] = *p;
	norm[o] = '\0';
	return strcmp(norm, TOKEN_PATH) == 0;
}

static int respond_put(struct mmds *m, const struct mmds_request *req, char **out, size_t *len)
{
	char tok[64];

	if (!is_token_path(req->path))
		return text(req, out, len, "404 Resource not found: %s.", req->path);
	if (req->forwarded)
		return text(
		    req, out, len,
		    "400 Invalid header. Reason: Unsupported header name. Key: X-Forwarded-For");
	if (req->ttl < 0)
		return text(
		    req, out, len,
		    "400 Token time to live value not found. Use `X-metadata-token-ttl-seconds` "
		    "header to specify the token's lifetime.");
	if (req->ttl == 0)
		return text(
		    req, out, len,
		    "400 Invalid time to live value provided for token. Please provide a value "
		    "between 1 and %d.",
		    MMDS_TOKEN_TTL_MAX);
	if (mmds_token_new(m, req->ttl, tok, sizeof(tok)) < 0)
		return text(req, out, len, "500 Cannot generate a token.");
	return build(req, 200, "text/plain", strdup(tok), strlen(tok), out, len);
}

static int respond_get(struct mmds *m, const struct mmds_request *req, char **out, size_t *len)
{
	enum mmds_version version;
	bool compat, json;
	char *body;
	size_t blen;
	unsigned int status;

	mmds_settings(m, &version, &compat);
	if (version == MMDS_V2 && !req->has_token)
		return text(
		    req, out, len,
		    "401 No MMDS token provided. Use `X-metadata-token` header to specify the "
		    "session token.");
	if (version == MMDS_V2 && !mmds_token_valid(m, req->token))
		return text(req, out, len, "401 MMDS token not valid.");
	json = req->want_json && !compat;
	status = mmds_render(m, req->path, json, &body, &blen);
	if (status == 404)
		return text(req, out, len, "404 Resource not found: %s.", req->path);
	if (status == 501)
		return text(req, out, len,
			    "501 Cannot retrieve value. The value has an unsupported type.");
	if (status != 200)
		return text(req, out, len, "500 Out of memory.");
	return build(req, 200, json ? "application/json" : "text/plain", body, blen, out, len);
}

int mmds_http_respond(struct mmds *m, const struct mmds_request *req, char **out, size_t *out_len)
{
	if (strcmp(req->method, "GET") == 0)
		return respond_get(m, req, out, out_len);
	if (strcmp(req->method, "PUT") == 0)
		return respond_put(m, req, out, out_len);
	return text(req, out, out_len, "405 Not allowed HTTP method.");
}
