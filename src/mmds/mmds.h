/*
 * The microVM metadata service (MMDS, docs/networking.md): a JSON data
 * store the host fills through the API (PUT/PATCH/GET /mmds) and the guest
 * reads over HTTP at a link-local address (169.254.169.254 by default) on
 * the network cards named in /mmds/config, as Firecracker's does.
 *
 * Two parts:
 * - struct mmds, the store: the data (capped in size), the settings the
 *   guest side follows (version, IMDS compatibility) and the V2 session
 *   tokens. One per process run, owned by the run loop; the API thread and
 *   the cards' device threads share it under its own lock.
 * - struct mmds_net, one card's endpoint: an lwIP network interface the
 *   card's transmit path feeds the guest's frames for the MMDS address to,
 *   and whose output frames the card delivers to the guest. Nothing here
 *   touches the host's network stack.
 *
 * Every byte from the guest (frames, HTTP requests) is hostile input:
 * sizes are capped before anything is kept, and a malformed request ends
 * its connection, never the VMM.
 */
#ifndef BANYAN_MMDS_MMDS_H
#define BANYAN_MMDS_MMDS_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MMDS_DEFAULT_LIMIT 51200       /* bytes of serialized JSON, as Firecracker's default */
#define MMDS_DEFAULT_IPV4  0xa9fea9feu /* 169.254.169.254, host byte order */
#define MMDS_TOKEN_TTL_MAX 21600       /* seconds, as Firecracker's and EC2's */
#define MMDS_MAX_TOKENS	   64	       /* live V2 tokens; the next evicts the nearest to expire */
#define MMDS_REQ_MAX	   4096	       /* bytes of one HTTP request head from the guest */
#define MMDS_ERR_LEN	   160
#define MMDS_MAC                                                                                   \
	{                                                                                          \
		0x02, 0x6d, 0x6d, 0x64, 0x73, 0x00                                                 \
	}						     /* the endpoint's, local unicast */
#define MMDS_LIMIT_MSG "The MMDS patch request doesn't fit." /* Firecracker's wording */

enum mmds_version {
	MMDS_V1 = 1, /* plain GETs; tokens accepted, never required */
	MMDS_V2 = 2, /* GETs need a session token from PUT /latest/api/token */
};

struct mmds;

/* mmds_new - an empty store, V1, limit MMDS_DEFAULT_LIMIT. NULL when out of memory. */
struct mmds *mmds_new(void);

/* mmds_free - release the store (no endpoint may use it any more). NULL is fine. */
void mmds_free(struct mmds *m);

/*
 * mmds_set_limit - the most bytes the data may take serialized (the
 * process flag --mmds-size-limit). Data already stored stays. 0 or -EINVAL
 * for 0.
 */
int mmds_set_limit(struct mmds *m, size_t limit);

/* mmds_configure - what the guest side follows: @version, @imds_compat (text always). */
void mmds_configure(struct mmds *m, enum mmds_version version, bool imds_compat);

/*
 * mmds_put - replace the data with a copy of @data (PUT /mmds). 0, or
 * -EFBIG (MMDS_LIMIT_MSG) over the limit, -ENOMEM; the data is then unchanged.
 */
int mmds_put(struct mmds *m, json_object *data) __attribute__((warn_unused_result));

/*
 * mmds_put_text - the same from @len bytes of JSON text (the process flag
 * --metadata): -EINVAL with the parser's reason in @err (MMDS_ERR_LEN) when
 * it is not JSON, -EFBIG over the limit.
 */
int mmds_put_text(struct mmds *m, const char *text, size_t len, char *err)
    __attribute__((warn_unused_result));

/* mmds_patch - apply @patch as an RFC 7396 merge patch (PATCH /mmds); errors as mmds_put. */
int mmds_patch(struct mmds *m, json_object *patch) __attribute__((warn_unused_result));

/* mmds_get - a copy of the data (GET /mmds): {} when never set; NULL when out of memory. */
json_object *mmds_get(struct mmds *m);

/*
 * mmds_merge_patch - RFC 7396 on @target (consumed): returns the result,
 * a new reference; @patch is only read. NULL when out of memory.
 */
json_object *mmds_merge_patch(json_object *target, json_object *patch);

/* mmds_settings - the version and IMDS compatibility in force, read together. */
void mmds_settings(struct mmds *m, enum mmds_version *version, bool *imds_compat);

/* --- the guest's side --- */

/* One parsed HTTP request head from the guest (mmds_http_parse). */
struct mmds_request {
	char method[8];	 /* "GET", "PUT", ... ("" when longer) */
	char path[1024]; /* the path, query and fragment cut */
	char token[128]; /* X-metadata-token / X-aws-ec2-metadata-token; "" none */
	bool has_token;	 /* a token header was present (even if too long to keep) */
	long ttl;	 /* X-...-token-ttl-seconds; -1 none, 0 invalid */
	bool forwarded;	 /* X-Forwarded-For present */
	bool want_json;	 /* Accept: application/json */
	bool http10;	 /* HTTP/1.0 */
};

/*
 * mmds_http_parse - parse the request head in @buf (@len bytes, at most
 * MMDS_REQ_MAX). Returns the head's length once "\r\n\r\n" is there, 0 when
 * more bytes are needed, -EINVAL when it is malformed or cannot fit
 * MMDS_REQ_MAX. Never allocates.
 */
int mmds_http_parse(const char *buf, size_t len, struct mmds_request *req);

/*
 * mmds_http_respond - the whole HTTP response to @req, in a malloc'd
 * buffer (*@out, *@out_len). Status codes as Firecracker's: 200, 400, 401,
 * 404, 405, 501. 0 or -ENOMEM.
 */
int mmds_http_respond(struct mmds *m, const struct mmds_request *req, char **out, size_t *out_len)
    __attribute__((warn_unused_result));

/*
 * mmds_render - the value at JSON-pointer-like @path ("/a/b", empty
 * segments skipped, ~0 ~1 unescaped) as the guest gets it: JSON text when
 * @json, else IMDS text (strings as they are, objects as their keys one per
 * line, "/" after sub-objects). Returns 200 with a malloc'd *@out, or 404
 * (no such path), 501 (a type IMDS text cannot show), 500 (out of memory).
 */
unsigned int mmds_render(struct mmds *m, const char *path, bool json, char **out, size_t *out_len);

/*
 * mmds_token_new - a fresh V2 token living @ttl seconds (1..MMDS_TOKEN_TTL_MAX)
 * into @tok (at least 48 bytes): 32 bytes from getrandom, base64url. 0,
 * -EINVAL (ttl), or -errno from getrandom.
 */
int mmds_token_new(struct mmds *m, long ttl, char *tok, size_t toklen)
    __attribute__((warn_unused_result));

/* mmds_token_valid - @tok was issued and has not expired. */
bool mmds_token_valid(struct mmds *m, const char *tok);

/* --- one card's endpoint (lwIP) --- */

struct mmds_net;

/*
 * Deliver the endpoint's output to the guest: called (from any thread,
 * lwIP's lock held) when a frame was queued for the card; the card then
 * takes frames with mmds_net_next on its own thread.
 */
typedef void (*mmds_wake_fn)(void *opaque);

/*
 * mmds_net_new - an endpoint for @m at @ipv4 (host byte order) on one
 * card; @wake(@opaque) is called as above. NULL when out of memory or lwIP
 * cannot take another interface.
 */
struct mmds_net *mmds_net_new(struct mmds *m, uint32_t ipv4, mmds_wake_fn wake, void *opaque);

/* mmds_net_free - remove the endpoint (its connections are dropped). NULL is fine. */
void mmds_net_free(struct mmds_net *n);

/*
 * mmds_net_claims - is the Ethernet frame @frame (@len bytes, no virtio
 * header) for the endpoint: ARP naming its address as target, or IPv4 to
 * it? Such frames go to mmds_net_input, never to the TAP.
 */
bool mmds_net_claims(const struct mmds_net *n, const uint8_t *frame, size_t len);

/*
 * mmds_net_input - hand a claimed frame to lwIP (copied; any length, a
 * frame over 1514 bytes is dropped). Answers are queued for mmds_net_next.
 */
void mmds_net_input(struct mmds_net *n, const uint8_t *frame, size_t len);

/*
 * mmds_net_next - move the oldest queued output frame into @buf (@cap
 * bytes); returns its length, 0 when none.
 */
size_t mmds_net_next(struct mmds_net *n, uint8_t *buf, size_t cap);

/*
 * mmds_net_timer_fd - a timerfd that becomes readable when lwIP's timers
 * (TCP retransmission, ARP ageing) are due: watch it and call
 * mmds_net_timers. Owned by the endpoint.
 */
int mmds_net_timer_fd(const struct mmds_net *n);

/* mmds_net_timers - run lwIP's due timers and re-arm the timerfd. */
void mmds_net_timers(struct mmds_net *n);

#endif
