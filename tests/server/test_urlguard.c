/*
 * tests/server/test_urlguard.c — which addresses image URLs may reach
 * (urlguard_addr_allowed), checked on the function alone with a table of
 * addresses whose verdicts are written out by hand from the IANA IPv4 and
 * IPv6 special-purpose registries (RFC 6890, 6598 CGNAT, 4193 ULA, 4291
 * link-local / mapped, 6052 NAT64, 3056 6to4, 4380 Teredo), and the URL
 * checks of urlfetch that need no connection: the accepted URL forms, and
 * refused addresses turned away by the open-socket callback before any
 * socket exists (so nothing is ever connected to).
 */
#include "../unit/check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "urlfetch.h"
#include "urlguard.h"

static bool allowed(const char *text)
{
	struct sockaddr_in in4 = {.sin_family = AF_INET};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
	if (inet_pton(AF_INET, text, &in4.sin_addr) == 1)
		return urlguard_addr_allowed((struct sockaddr *)&in4);
	if (inet_pton(AF_INET6, text, &in6.sin6_addr) == 1)
		return urlguard_addr_allowed((struct sockaddr *)&in6);
	test_fail_at(__FILE__, __LINE__, "bad test address %s", text);
	return true;
}

struct verdict {
	const char *addr;
	bool ok;
};

static void check_table(const struct verdict *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		CHECK_MSG(allowed(t[i].addr) == t[i].ok, "%s: want %s", t[i].addr,
			  t[i].ok ? "allowed" : "refused");
}

TEST(srv_urlguard_ipv4)
{
	static const struct verdict t[] = {
		{"0.0.0.0", false}, {"0.1.2.3", false},                 /* this network */
		{"10.0.0.1", false}, {"10.255.255.255", false},         /* private */
		{"11.0.0.1", true}, {"9.255.255.255", true},
		{"100.63.255.255", true}, {"100.64.0.1", false},        /* CGNAT 100.64/10 */
		{"100.127.255.255", false}, {"100.128.0.0", true},
		{"127.0.0.1", false}, {"127.255.255.254", false},       /* loopback */
		{"169.254.169.254", false}, {"169.254.0.1", false},     /* link-local, cloud metadata */
		{"169.253.255.255", true}, {"169.255.0.0", true},
		{"172.15.255.255", true}, {"172.16.0.1", false},        /* private 172.16/12 */
		{"172.31.255.255", false}, {"172.32.0.0", true},
		{"192.0.0.8", false}, {"192.0.1.1", true},              /* IETF 192.0.0/24 */
		{"192.167.255.255", true}, {"192.168.1.1", false},      /* private */
		{"192.169.0.0", true},
		{"198.17.255.255", true}, {"198.18.0.1", false},        /* benchmarking 198.18/15 */
		{"198.19.255.255", false}, {"198.20.0.0", true},
		{"224.0.0.1", false}, {"239.255.255.250", false},       /* multicast */
		{"240.0.0.1", false}, {"255.255.255.255", false},       /* reserved, broadcast */
		{"8.8.8.8", true}, {"1.1.1.1", true}, {"93.184.216.34", true},
		{"223.255.255.255", true},
	};
	check_table(t, sizeof t / sizeof t[0]);
}

TEST(srv_urlguard_ipv6)
{
	static const struct verdict t[] = {
		{"::", false}, {"::1", false},                          /* unspecified, loopback */
		{"fe80::1", false}, {"febf:ffff::1", false},            /* link-local fe80::/10 */
		{"fec0::1", false},                                     /* site-local (deprecated) */
		{"fc00::1", false}, {"fd12:3456:789a::1", false},       /* unique-local fc00::/7 */
		{"ff02::1", false}, {"ff0e::1", false},                 /* multicast */
		{"::ffff:127.0.0.1", false}, {"::ffff:10.1.2.3", false}, /* IPv4-mapped */
		{"::ffff:169.254.169.254", false}, {"::ffff:8.8.8.8", true},
		{"::127.0.0.1", false}, {"::8.8.8.8", true},            /* IPv4-compatible */
		{"64:ff9b::192.168.0.1", false}, {"64:ff9b::8.8.4.4", true}, /* NAT64 */
		{"2002:7f00:1::", false}, {"2002:c0a8:101::1", false},  /* 6to4 of 127.0.0.1, 192.168.1.1 */
		{"2002:808:808::1", true},                              /* 6to4 of 8.8.8.8 */
		{"2001::1", false}, {"2001:0:4136:e378::1", false},     /* Teredo 2001::/32 */
		{"100::1", false},                                      /* discard-only 100::/64 */
		{"2001:4860:4860::8888", true}, {"2606:4700:4700::1111", true},
		{"2a00:1450:4001:80b::200e", true}, {"fbff::1", true},
	};
	check_table(t, sizeof t / sizeof t[0]);
}

TEST(srv_urlguard_other_families_refused)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct sockaddr none = {.sa_family = AF_UNSPEC};
	CHECK(!urlguard_addr_allowed((struct sockaddr *)&un));
	CHECK(!urlguard_addr_allowed(&none));
	CHECK(!urlguard_addr_allowed(NULL));
	char text[64];
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
	inet_pton(AF_INET6, "fe80::1", &in6.sin6_addr);
	urlguard_addr_text((struct sockaddr *)&in6, text, sizeof text);
	CHECK(strcmp(text, "fe80::1") == 0);
}

TEST(srv_urlfetch_url_forms)
{
	struct isif_error err = {0};
	static const char *const good[] = {
		"http://example.com/a.png", "https://example.com:8443/x?y=1", "HTTP://EXAMPLE.COM/",
		"http://127.0.0.1:9/x", "http://[::1]/x",
	};
	static const char *const bad[] = {
		"ftp://example.com/a.png", "file:///etc/passwd", "gopher://x/", "dict://x:11211/",
		"http:/example.com", "http:///a.png", "https://", "http://exa mple.com/",
		"http://example.com/\r\nHost: x", "example.com/a.png", "//example.com/a.png",
		"javascript:alert(1)", "",
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		CHECK_MSG(urlfetch_url_check(good[i], &err) == ISIF_OK, "%s: %s", good[i], err.msg);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_MSG(urlfetch_url_check(bad[i], &err) == ISIF_EINVAL, "%s accepted", bad[i]);
	char longurl[FETCH_MAX_URL + 16];
	snprintf(longurl, sizeof longurl, "http://x/%0*d", FETCH_MAX_URL, 0);
	CHECK(urlfetch_url_check(longurl, &err) == ISIF_EINVAL);
}

/* Literal refused addresses: the open-socket callback says no before any
 * socket is made, so these fail at once without touching the network. */
TEST(srv_urlfetch_refuses_before_connecting)
{
	static const char *const urls[] = {
		"http://127.0.0.1:9/x.png", "http://169.254.169.254/latest/meta-data/",
		"http://10.0.0.1/x.png", "http://[::1]:9/x.png", "http://[fd00::1]/x.png",
		"http://[::ffff:192.168.0.1]/x.png", "http://0x7f.0.0.1:9/x.png",
	};
	struct fetch_limits lim = {.max_bytes = 1 << 20, .timeout_s = 2, .max_redirects = 3};
	char ctype[64];
	struct isif_error err = {0};
	for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
		void *body = NULL;
		size_t len = 0;
		enum isif_rc rc = urlfetch(urls[i], &lim, &body, &len, ctype, sizeof ctype, &err);
		CHECK_MSG(rc == ISIF_EFORBIDDEN, "%s: rc %d (%s)", urls[i], rc, err.msg);
		CHECK(body == NULL && len == 0);
	}
	void *body = NULL;
	size_t len = 0;
	CHECK_EQ(urlfetch("ftp://127.0.0.1/x", &lim, &body, &len, ctype, sizeof ctype, &err),
		 ISIF_EINVAL);
	CHECK(strstr(err.msg, "only http:// and https://") != NULL);
}

/* ---- --allow-url-addr: exact-address exceptions ---------------------------------- */

/* The address text parsed numerically into *ss (family AF_INET or AF_INET6). */
static const struct sockaddr *addr_of(const char *text, struct sockaddr_storage *ss)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, text, &in4->sin_addr) == 1)
		in4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1)
		in6->sin6_family = AF_INET6;
	else
		test_fail_at(__FILE__, __LINE__, "bad test address %s", text);
	return (const struct sockaddr *)ss;
}

static bool permitted(const struct urlguard_exceptions *ex, const char *text)
{
	struct sockaddr_storage ss;
	return urlguard_addr_permitted(addr_of(text, &ss), ex);
}

TEST(srv_urlguard_exceptions_parse)
{
	struct urlguard_exceptions ex;
	struct isif_error err = {0};
	CHECK_EQ(urlguard_exceptions_parse(&ex, "", &err), ISIF_OK);
	CHECK_EQ(ex.n, 0);
	CHECK_EQ(urlguard_exceptions_parse(&ex, "127.0.0.1", &err), 0);
	CHECK_EQ(ex.n, 1);
	CHECK_EQ(ex.addr[0].ss_family, AF_INET);
	CHECK_EQ(urlguard_exceptions_parse(&ex, "127.0.0.1,::1,10.1.2.3,fd00::7", &err), 0);
	CHECK_EQ(ex.n, 4);
	CHECK(ex.addr[1].ss_family == AF_INET6 && ex.addr[3].ss_family == AF_INET6);
	/* Only the plain numeric forms: the URL spellings of 127.0.0.1 (127.1,
	 * hex, octal, decimal), brackets, ports, zones, names, spaces, empty
	 * items and a fifth address are refused, and leave the list empty. */
	static const char *const bad[] = {
		"127.1", "0x7f000001", "2130706433", "0177.0.0.1", "127.0.0.01", "[::1]",
		"127.0.0.1:80", "fe80::1%eth0", "localhost", " 127.0.0.1", "127.0.0.1 ",
		"127.0.0.1,", ",127.0.0.1", "127.0.0.1,,::1", "256.0.0.1", "1.1.1.1,2.2.2.2,::1,::2,::3",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err.msg[0] = '\0';
		CHECK_MSG(urlguard_exceptions_parse(&ex, bad[i], &err) == ISIF_EINVAL && ex.n == 0 &&
			  err.msg[0], "\"%s\" accepted", bad[i]);
	}
	CHECK(urlguard_exceptions_parse(&ex, "127.0.0.1,127.1", &err) == ISIF_EINVAL &&
	      strstr(err.msg, "\"127.1\"") != NULL);
}

TEST(srv_urlguard_exception_is_exact)
{
	struct urlguard_exceptions ex;
	struct isif_error err = {0};
	CHECK_EQ(urlguard_exceptions_parse(&ex, "127.0.0.1", &err), 0);
	/* Verdicts by the rule of urlguard.h: the exception admits the very
	 * address 127.0.0.1 and nothing else the guard refuses. */
	CHECK(permitted(&ex, "127.0.0.1"));
	static const char *const still_refused[] = {
		"127.0.0.2", "127.0.0.0", "127.255.255.255",
		"0.0.0.0", "::1", "::", "::ffff:127.0.0.1", "::127.0.0.1", "64:ff9b::7f00:1",
		"2002:7f00:1::", "10.0.0.1", "169.254.169.254", "fe80::1",
	};
	for (size_t i = 0; i < sizeof still_refused / sizeof still_refused[0]; i++)
		CHECK_MSG(!permitted(&ex, still_refused[i]), "%s let through by 127.0.0.1",
			  still_refused[i]);
	CHECK(permitted(&ex, "8.8.8.8"));                 /* public addresses unchanged */
	CHECK(permitted(&ex, "126.255.255.255"));
	CHECK(permitted(&ex, "2001:4860:4860::8888"));
	/* The port does not matter; a zone index does (no exception has one). */
	struct sockaddr_storage ss;
	struct sockaddr_in *in4 = (struct sockaddr_in *)addr_of("127.0.0.1", &ss);
	in4->sin_port = htons(8080);
	CHECK(urlguard_exception_match(&ex, (struct sockaddr *)in4));
	CHECK(!urlguard_exception_match(NULL, (struct sockaddr *)in4));
	CHECK(!urlguard_exception_match(&ex, NULL));

	CHECK_EQ(urlguard_exceptions_parse(&ex, "::1,fe80::1", &err), 0);
	CHECK(permitted(&ex, "::1"));
	CHECK(permitted(&ex, "fe80::1"));
	CHECK(!permitted(&ex, "127.0.0.1"));
	CHECK(!permitted(&ex, "::2"));
	CHECK(!permitted(&ex, "fe80::2"));
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)addr_of("fe80::1", &ss);
	in6->sin6_scope_id = 2;
	CHECK(!urlguard_addr_permitted((struct sockaddr *)in6, &ex));
	/* An empty list changes nothing. */
	CHECK_EQ(urlguard_exceptions_parse(&ex, "", &err), ISIF_OK);
	CHECK(!permitted(&ex, "127.0.0.1"));
	CHECK(permitted(&ex, "1.1.1.1"));
}

/* With --allow-url-addr 127.0.0.1 in force, every other loopback spelling
 * is still turned away in the open-socket callback, before any socket. */
TEST(srv_urlfetch_exception_refuses_the_rest)
{
	static const char *const urls[] = {
		"http://127.0.0.2:9/x.png", "http://2130706434:9/x.png", "http://0x7f000002:9/x.png",
		"http://[::1]:9/x.png", "http://[::ffff:127.0.0.1]:9/x.png", "http://0.0.0.0:9/x.png",
		"http://169.254.169.254/x.png",
	};
	struct fetch_limits lim = {.max_bytes = 1 << 20, .timeout_s = 2, .max_redirects = 3};
	char ctype[64];
	struct isif_error err = {0};
	CHECK_EQ(urlfetch_allow_addrs("127.0.0.1", &err), 0);
	for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
		void *body = NULL;
		size_t len = 0;
		enum isif_rc rc = urlfetch(urls[i], &lim, &body, &len, ctype, sizeof ctype, &err);
		CHECK_MSG(rc == ISIF_EFORBIDDEN && strstr(err.msg, "not a public address"),
			  "%s: rc %d (%s)", urls[i], rc, err.msg);
		CHECK(body == NULL);
	}
	CHECK_EQ(urlfetch_allow_addrs("127.1", &err), ISIF_EINVAL);
	CHECK_EQ(urlfetch_allow_addrs("", &err), 0);   /* back to none */
}
