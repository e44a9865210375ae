/*
 * server/urlguard.c — the address rules of urlguard.h, after the IANA
 * special-purpose address registries (RFC 6890 and its updates): a table
 * of IPv4 prefixes, the IPv6 ranges by their leading bits, and the IPv6
 * forms that embed an IPv4 address judged by that address. Then the
 * exact-address exceptions of --allow-url-addr.
 */
#include "urlguard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct v4_prefix {
	uint32_t net;
	int bits;
};

/* Refused IPv4 ranges. */
static const struct v4_prefix v4_refused[] = {
	{0x00000000u, 8},   /* 0.0.0.0/8 "this network", unspecified */
	{0x0a000000u, 8},   /* 10/8 private */
	{0x64400000u, 10},  /* 100.64/10 carrier-grade NAT */
	{0x7f000000u, 8},   /* 127/8 loopback */
	{0xa9fe0000u, 16},  /* 169.254/16 link-local (cloud metadata lives here) */
	{0xac100000u, 12},  /* 172.16/12 private */
	{0xc0000000u, 24},  /* 192.0.0/24 IETF protocol assignments */
	{0xc0a80000u, 16},  /* 192.168/16 private */
	{0xc6120000u, 15},  /* 198.18/15 benchmarking */
	{0xe0000000u, 4},   /* 224/4 multicast */
	{0xf0000000u, 4},   /* 240/4 reserved, 255.255.255.255 broadcast */
};

/* a: host order. */
static bool v4_allowed(uint32_t a)
{
	for (size_t i = 0; i < sizeof v4_refused / sizeof v4_refused[0]; i++) {
		uint32_t mask = 0xffffffffu << (32 - v4_refused[i].bits);
		if ((a & mask) == v4_refused[i].net)
			return false;
	}
	return true;
}

static uint32_t be32_at(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static bool v6_allowed(const uint8_t b[16])
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
	if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
		return v4_allowed(be32_at(b + 12));           /* ::ffff:a.b.c.d, 64:ff9b::a.b.c.d */
	if (all_zero(b, 12))                                  /* ::, ::1, ::a.b.c.d (deprecated) */
		return !all_zero(b + 12, 3) && v4_allowed(be32_at(b + 12));
	if (b[0] == 0x20 && b[1] == 0x02)                     /* 6to4 2002:a.b.c.d::/48 */
		return v4_allowed(be32_at(b + 2));
	if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0)
		return false;                                 /* Teredo 2001::/32 */
	if (b[0] == 0x01 && b[1] == 0 && all_zero(b + 2, 6))
		return false;                                 /* discard-only 100::/64 */
	if (b[0] == 0xff)
		return false;                                 /* multicast ff00::/8 */
	if ((b[0] & 0xfe) == 0xfc)
		return false;                                 /* unique-local fc00::/7 */
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
		return false;                                 /* link-local fe80::/10 */
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
		return false;                                 /* site-local fec0::/10 */
	return true;
}

bool urlguard_addr_allowed(const struct sockaddr *sa)
{
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return v4_allowed(ntohl(in->sin_addr.s_addr));
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		return v6_allowed(in6->sin6_addr.s6_addr);
	}
	return false;
}

/* One numeric address of an exception list into *out; false if it is not one. */
static bool parse_one(const char *text, size_t n, struct sockaddr_storage *out)
{
	char buf[INET6_ADDRSTRLEN];
	if (n == 0 || n >= sizeof buf)
		return false;
	memcpy(buf, text, n);
	buf[n] = '\0';
	memset(out, 0, sizeof *out);
	struct sockaddr_in *in = (struct sockaddr_in *)out;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
	/* inet_pton takes only the plain forms: four decimal parts for IPv4
	 * (no 127.1, hex or octal), IPv6 text without brackets or a zone. */
	if (inet_pton(AF_INET, buf, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, buf, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		return true;
	}
	return false;
}

enum isif_rc urlguard_exceptions_parse(struct urlguard_exceptions *ex, const char *list,
				       struct isif_error *err)
{
	ex->n = 0;
	if (!list[0])
		return ISIF_OK;
	for (const char *p = list;; p++) {
		size_t n = strcspn(p, ",");
		if (ex->n == URLGUARD_MAX_EXCEPTIONS) {
			ex->n = 0;
			return isif_fail(err, ISIF_EINVAL, "more than %d addresses",
					 URLGUARD_MAX_EXCEPTIONS);
		}
		if (!parse_one(p, n, &ex->addr[ex->n])) {
			ex->n = 0;
			return isif_fail(err, ISIF_EINVAL, "\"%.*s\" is not a numeric IPv4 (a.b.c.d) "
					 "or IPv6 address", (int)(n < 64 ? n : 64), p);
		}
		ex->n++;
		p += n;
		if (!*p)
			return ISIF_OK;
	}
}

bool urlguard_exception_match(const struct urlguard_exceptions *ex, const struct sockaddr *sa)
{
	if (!ex || !sa)
		return false;
	for (int i = 0; i < ex->n; i++) {
		const struct sockaddr *e = (const struct sockaddr *)&ex->addr[i];
		if (e->sa_family != sa->sa_family)
			continue;
		if (sa->sa_family == AF_INET &&
		    ((const struct sockaddr_in *)e)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)sa)->sin_addr.s_addr)
			return true;
		if (sa->sa_family == AF_INET6) {
			const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)e;
			const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)sa;
			if (b->sin6_scope_id == 0 &&
			    memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0)
				return true;
		}
	}
	return false;
}

bool urlguard_addr_permitted(const struct sockaddr *sa, const struct urlguard_exceptions *ex)
{
	return urlguard_addr_allowed(sa) || urlguard_exception_match(ex, sa);
}

void urlguard_addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *a = NULL;
	if (sa && sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa && sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (!a || !inet_ntop(sa->sa_family, a, buf, (socklen_t)len))
		snprintf(buf, len, "(address family %d)", sa ? sa->sa_family : -1);
}
