/*
 * tests/server/test_ssrf_forms.c — the URL guard against the ways one
 * address can be spelled in a URL host: the 40 forms of loopback, private,
 * link-local, metadata and other refused addresses. Refusal is tested on
 * the guard itself, never by letting the daemon connect anywhere but
 * loopback (urlfetch's own test shows a refused address is turned away in
 * the open-socket callback, before any socket exists). Each host is
 * turned into addresses the way libcurl's resolver does (getaddrinfo,
 * whose IPv4 parsing is inet_aton's: decimal, octal and hex parts, 1 to 4
 * of them), numerically so that nothing is looked up on the network, and
 * every address must be refused by urlguard_addr_allowed. The expected
 * address of each form is written next to it, worked out by hand, and
 * checked too, so a form that stopped meaning what the comment says fails.
 */
#include "../unit/check.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>

#include "urlguard.h"

struct form {
	const char *host;   /* as in the URL, brackets stripped */
	const char *means;  /* the address it denotes */
};

static const struct form forms[] = {
	{"127.0.0.1", "127.0.0.1"}, {"127.1", "127.0.0.1"}, {"127.0.1", "127.0.0.1"},
	{"2130706433", "127.0.0.1"},                 /* 127·2^24 + 1 */
	{"0x7f000001", "127.0.0.1"}, {"0x7f.0.0.1", "127.0.0.1"},
	{"0177.0.0.1", "127.0.0.1"},                 /* octal 0177 = 127 */
	{"017700000001", "127.0.0.1"},               /* octal of 0x7f000001 */
	{"0x7f.1", "127.0.0.1"}, {"127.255.255.254", "127.255.255.254"},
	{"0.0.0.0", "0.0.0.0"}, {"0", "0.0.0.0"},
	{"localhost", NULL},                         /* /etc/hosts: 127.0.0.1 and/or ::1 */
	{"169.254.169.254", "169.254.169.254"},
	{"2852039166", "169.254.169.254"},           /* 0xa9fea9fe */
	{"0xa9fea9fe", "169.254.169.254"},
	{"0251.0376.0251.0376", "169.254.169.254"},  /* octal 0251 = 169, 0376 = 254 */
	{"0xa9.0xfe.0xa9.0xfe", "169.254.169.254"}, {"169.254.0.1", "169.254.0.1"},
	{"10.0.0.1", "10.0.0.1"}, {"167772161", "10.0.0.1"},  /* 10·2^24 + 1 */
	{"012.0.0.1", "10.0.0.1"}, {"0xa.0.0.1", "10.0.0.1"},
	{"172.16.0.1", "172.16.0.1"}, {"172.31.255.254", "172.31.255.254"},
	{"192.168.0.1", "192.168.0.1"}, {"3232235521", "192.168.0.1"}, /* 0xc0a80001 */
	{"100.64.0.1", "100.64.0.1"},
	{"::1", "::1"}, {"0:0:0:0:0:0:0:1", "::1"},
	{"::ffff:127.0.0.1", "::ffff:127.0.0.1"}, {"::ffff:7f00:1", "::ffff:127.0.0.1"},
	{"::ffff:169.254.169.254", "::ffff:169.254.169.254"},
	{"::ffff:a9fe:a9fe", "::ffff:169.254.169.254"}, {"::ffff:10.0.0.1", "::ffff:10.0.0.1"},
	{"::127.0.0.1", "::127.0.0.1"}, {"fd00::1", "fd00::1"}, {"fe80::1", "fe80::1"},
	{"64:ff9b::a9fe:a9fe", "64:ff9b::a9fe:a9fe"},  /* NAT64 of 169.254.169.254 */
	{"2002:a9fe:a9fe::1", "2002:a9fe:a9fe::1"},
};

/* Every address host resolves to must be refused; returns how many there were. */
static int check_form(const struct form *f)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	hints.ai_flags = f->means ? AI_NUMERICHOST : 0;
	int rc = getaddrinfo(f->host, "80", &hints, &res);
	CHECK_MSG(rc == 0, "%s: getaddrinfo: %s", f->host, gai_strerror(rc));
	int n = 0;
	for (struct addrinfo *a = res; a; a = a->ai_next, n++) {
		char text[INET6_ADDRSTRLEN] = "";
		urlguard_addr_text(a->ai_addr, text, sizeof text);
		CHECK_MSG(!urlguard_addr_allowed(a->ai_addr), "%s (%s) allowed", f->host, text);
		if (f->means)
			CHECK_MSG(strcmp(text, f->means) == 0, "%s means %s, not %s", f->host, text,
				  f->means);
	}
	if (res)
		freeaddrinfo(res);
	return n;
}

TEST(srv_ssrf_40_host_forms_refused_by_the_guard)
{
	CHECK_EQ(sizeof forms / sizeof forms[0], 40);
	for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
		CHECK_MSG(check_form(&forms[i]) >= 1, "%s resolved to nothing", forms[i].host);
}
