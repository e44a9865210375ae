/*
 * tests/fuzz/fuzz_urlguard.c — the SSRF guard of the URL fetcher without
 * any network: urlguard_addr_allowed on arbitrary IPv4/IPv6 addresses and
 * urlfetch_url_check on arbitrary URL text. Bit 0 of the first byte picks
 * which. Invariants (consistency, not a second copy of the table): an IPv4
 * address and every IPv6 form that carries it (IPv4-mapped ::ffff:a,
 * NAT64 64:ff9b::a, 6to4 2002:a::) get the same verdict; loopback,
 * private, link-local and metadata addresses are refused in every form;
 * an accepted URL is http(s), at most FETCH_MAX_URL bytes, with a host and
 * no space or control character.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_util.h"
#include "urlfetch.h"
#include "urlguard.h"

static bool v4(uint32_t a)
{
	struct sockaddr_in in = {.sin_family = AF_INET};
	in.sin_addr.s_addr = htonl(a);
	return urlguard_addr_allowed((struct sockaddr *)&in);
}

static bool v6(const uint8_t b[16])
{
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
	memcpy(in6.sin6_addr.s6_addr, b, 16);
	return urlguard_addr_allowed((struct sockaddr *)&in6);
}

/* The IPv6 forms that embed a: mapped, NAT64, 6to4. */
static void embed(uint8_t out[3][16], uint32_t a)
{
	uint8_t be[4] = {a >> 24, a >> 16, a >> 8, a};
	memset(out, 0, 3 * 16);
	out[0][10] = out[0][11] = 0xff;
	memcpy(out[0] + 12, be, 4);
	out[1][1] = 0x64, out[1][2] = 0xff, out[1][3] = 0x9b;
	memcpy(out[1] + 12, be, 4);
	out[2][0] = 0x20, out[2][1] = 0x02;
	memcpy(out[2] + 2, be, 4);
	out[2][15] = 1;
}

static void check_address(const uint8_t *d, size_t n)
{
	uint8_t b[16] = {0}, forms[3][16];
	memcpy(b, d, n < 16 ? n : 16);
	uint32_t a = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	bool ok = v4(a);
	embed(forms, a);
	for (int i = 0; i < 3; i++)
		if (v6(forms[i]) != ok)
			abort();
	/* Always refused, whatever the table says about neighbours. */
	uint8_t top = b[0];
	if (ok && (top == 127 || top == 10 || top == 0 || (top == 169 && b[1] == 254) ||
		   (top == 192 && b[1] == 168) || (top == 172 && (b[1] & 0xf0) == 16) || top >= 224))
		abort();
	(void)v6(b); /* any 16 bytes: must not crash */
	if ((b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || (b[0] & 0xfe) == 0xfc || b[0] == 0xff)
		if (v6(b))
			abort(); /* link-local, unique-local, multicast */
}

static void check_url(const uint8_t *d, size_t n)
{
	char *url = malloc(n + 1);
	struct isif_error err = {0};
	if (!url)
		return;
	memcpy(url, d, n);
	url[n] = '\0';
	if (urlfetch_url_check(url, &err) == ISIF_OK) {
		size_t len = strlen(url), skip = strncasecmp(url, "https://", 8) == 0 ? 8 : 7;
		if ((strncasecmp(url, "http://", 7) && strncasecmp(url, "https://", 8)) ||
		    len > FETCH_MAX_URL || !url[skip] || url[skip] == '/')
			abort();
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
				abort();
	} else if (!err.msg[0]) {
		abort();
	}
	free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		check_url(data + 1, size - 1);
	else
		check_address(data + 1, size - 1);
	return 0;
}
