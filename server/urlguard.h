/*
 * server/urlguard.h — which network addresses isifd may fetch image URLs
 * from. Only public unicast addresses pass; the fetcher (urlfetch.c) asks
 * at connect time for every address it is about to connect to, after DNS
 * and after each redirect, so neither a hostname nor a redirect can lead
 * it to a refused address. --allow-private-urls skips the check;
 * --allow-url-addr lets through a short list of exact addresses (for tests
 * that fetch from a loopback server) and nothing else.
 */
#ifndef ISIFD_URLGUARD_H
#define ISIFD_URLGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "isif/base/common.h"

/*
 * True for a public unicast IPv4 or IPv6 address. Refused: unspecified
 * (0.0.0.0/8, ::), loopback (127/8, ::1), private (10/8, 172.16/12,
 * 192.168/16), CGNAT (100.64/10), link-local (169.254/16, fe80::/10),
 * IETF protocol assignments (192.0.0/24), benchmarking (198.18/15),
 * multicast (224/4, ff00::/8), reserved and broadcast (240/4),
 * unique-local (fc00::/7), site-local (fec0::/10), discard-only (100::/64),
 * Teredo (2001::/32), and the IPv6 forms that carry an IPv4 address
 * (IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96, NAT64 64:ff9b::/96,
 * 6to4 2002::/16) whenever the carried address is refused. Any other
 * address family is refused. Thread-safe, no I/O.
 */
bool urlguard_addr_allowed(const struct sockaddr *sa);

/*
 * Exceptions to urlguard_addr_allowed: at most URLGUARD_MAX_EXCEPTIONS
 * exact addresses. A connection address matches one when it has the same
 * family and the same 4 or 16 bytes (the port is ignored; an IPv6 address
 * with a zone index never matches). No other normalisation: 127.0.0.1
 * does not match ::ffff:127.0.0.1 nor 127.0.0.2, ::1 does not match
 * 127.0.0.1. Spellings in a URL (127.1, 2130706433, 0x7f.1) are
 * normalised earlier, by the resolver, into the address that is compared.
 */
#define URLGUARD_MAX_EXCEPTIONS 4

struct urlguard_exceptions {
	int n;
	struct sockaddr_storage addr[URLGUARD_MAX_EXCEPTIONS];
};

/*
 * Parses a comma-separated list of numeric addresses into ex (emptied
 * first): each IPv4 in dotted-quad decimal or IPv6 in inet_pton's text
 * form, no brackets, port, zone or spaces. "" gives an empty list.
 * Returns ISIF_OK, or ISIF_EINVAL with err saying which item is wrong (ex
 * left empty).
 */
enum isif_rc urlguard_exceptions_parse(struct urlguard_exceptions *ex, const char *list,
				       struct isif_error *err);

/* True when sa equals one of ex's addresses (see above); ex may be NULL. */
bool urlguard_exception_match(const struct urlguard_exceptions *ex, const struct sockaddr *sa);

/* urlguard_addr_allowed(sa) || urlguard_exception_match(ex, sa). */
bool urlguard_addr_permitted(const struct sockaddr *sa, const struct urlguard_exceptions *ex);

/* The address as text ("192.168.1.2", "::1") into buf, for messages. */
void urlguard_addr_text(const struct sockaddr *sa, char *buf, size_t len);

#endif
