/*
 * tests/server/test_parts.c — the daemon's small parts: the flag table
 * (defaults, both spellings, bounds, unknown flags), --listen parsing and
 * the loopback rule, the Prometheus page, and the bounded text buffer.
 * Expected texts are written out by hand from the Prometheus exposition
 * format and the flag list.
 */
#include "../unit/check.h"

#include "log.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"
#include "http.h"
#include "prom.h"

/* Keep the output of every server test to PASS/FAIL lines (all files). */
__attribute__((constructor(200))) static void quiet_logs(void)
{
	log_set_level((enum log_level)(LOG_ERROR + 1));
}

TEST(srv_config_defaults_and_parse)
{
	struct config c;
	struct isif_error err = {0};
	config_default(&c);
	CHECK(strcmp(c.listen, "127.0.0.1:8080") == 0);
	CHECK(strcmp(c.state_dir, "./var") == 0);
	CHECK_EQ(c.workers, 1);
	CHECK_EQ(c.max_body, 1 << 20);
	CHECK(c.token_file[0] == '\0');
	char *argv[] = {"isifd", "--workers", "3", "--state-dir=/tmp/x", "--verbose",
			"--max-queued=1", NULL};
	bool printed = true;
	CHECK_EQ(config_parse(&c, 6, argv, &printed, &err), ISIF_OK);
	CHECK(!printed);
	CHECK_EQ(c.workers, 3);
	CHECK(strcmp(c.state_dir, "/tmp/x") == 0);
	CHECK_EQ(c.verbose, 1);
	CHECK_EQ(c.max_queued, 1);
	static const struct { const char *arg, *want; } bad[] = {
		{"--workers=0", "--workers: must be an integer between 1 and 64"},
		{"--workers=65", "--workers: must be"},
		{"--workers=2x", "--workers: must be"},
		{"--max-body=10", "--max-body: must be"},
		/* 0 made every POST /jobs a 429: refused at start instead. */
		{"--max-queued=0", "--max-queued: must be an integer between 1 and 100000"},
		{"--nope", "unknown flag \"--nope\""},
		{"--verbose=1", "--verbose takes no value"},
		{"stray", "unexpected argument"},
		{"--listen", "--listen needs a value"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *av[] = {"isifd", (char *)bad[i].arg, NULL};
		config_default(&c);
		CHECK_EQ(config_parse(&c, 2, av, &printed, &err), ISIF_EINVAL);
		CHECK_MSG(strncmp(err.msg, bad[i].want, strlen(bad[i].want)) == 0, "%s: %s", bad[i].arg, err.msg);
	}
}

TEST(srv_listen_parse_and_loopback)
{
	struct sockaddr_storage a;
	size_t len;
	bool lo;
	CHECK_EQ(http_parse_listen("127.0.0.1:8080", &a, &len, &lo, NULL), ISIF_OK);
	CHECK(lo && a.ss_family == AF_INET);
	CHECK_EQ(ntohs(((struct sockaddr_in *)&a)->sin_port), 8080);
	CHECK_EQ(http_parse_listen("127.9.9.9:0", &a, &len, &lo, NULL), ISIF_OK);
	CHECK(lo);
	CHECK_EQ(http_parse_listen("0.0.0.0:80", &a, &len, &lo, NULL), ISIF_OK);
	CHECK(!lo);
	CHECK_EQ(http_parse_listen("192.168.1.5:80", &a, &len, &lo, NULL), ISIF_OK);
	CHECK(!lo);
	CHECK_EQ(http_parse_listen("[::1]:9000", &a, &len, &lo, NULL), ISIF_OK);
	CHECK(lo && a.ss_family == AF_INET6);
	CHECK_EQ(http_parse_listen("[::]:9000", &a, &len, &lo, NULL), ISIF_OK);
	CHECK(!lo);
	/* localhost is 127.0.0.1 without a resolver, in any case. */
	static const char *const local[] = {"localhost:80", "LocalHost:80"};
	for (size_t i = 0; i < 2; i++) {
		CHECK_EQ(http_parse_listen(local[i], &a, &len, &lo, NULL), ISIF_OK);
		CHECK(lo && a.ss_family == AF_INET &&
		      ntohl(((struct sockaddr_in *)&a)->sin_addr.s_addr) == 0x7f000001 &&
		      ntohs(((struct sockaddr_in *)&a)->sin_port) == 80);
	}
	static const char *const bad[] = {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
					  "127.0.0.1:-1", "[::1]9000", "::1:80", ":80", "1.2.3.4:8x",
					  "localhost", "localhost:", "localhost:+80", "localhost: 80",
					  "localhost:0x50", "localhost:-0", "localhost:000080x",
					  "localhost.:80", " localhost:80", "[localhost]:80", "[::1]",
					  "[127.0.0.1]:80", "127.1:80", "1.2.3.4:80:80", "[]:80",
					  "example.com:80", "localhost:123456"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_MSG(http_parse_listen(bad[i], &a, &len, &lo, NULL) == ISIF_EINVAL, "accepted %s",
			  bad[i]);
	struct isif_error err = {0};
	CHECK_EQ(http_parse_listen("example.com:80", &a, &len, &lo, &err), ISIF_EINVAL);
	CHECK_MSG(strstr(err.msg, "\"example.com\" is a host name") != NULL, "%s", err.msg);
}

TEST(srv_prom_text_format)
{
	static const char *const routes[] = {"/jobs", "/healthz"};
	struct prom *p = prom_create(routes, 2);
	prom_observe_request(p, 0, "POST", 201, 0.003);
	prom_observe_request(p, 0, "POST", 201, 0.2);
	prom_observe_request(p, 1, "GET", 200, 0.0005);
	prom_observe_request(p, 2, "BREW", 404, 0.0001); /* unmatched, odd method */
	prom_add_epoch(p, 512);
	prom_add_epoch(p, 512);
	prom_add_job_finished(p, JOB_SUCCEEDED);
	struct prom_gauges g = {.jobs = {1, 2, 3, 0, 0}, .workers = 2, .workers_busy = 1};
	size_t len;
	char *t = prom_render(p, &g, &len);
	CHECK(t && strlen(t) == len);
	static const char *const want[] = {
		"# TYPE isifd_jobs gauge\n",
		"isifd_jobs{state=\"queued\"} 1\n",
		"isifd_jobs{state=\"succeeded\"} 3\n",
		"isifd_workers_busy 1\n",
		"isifd_epochs_trained_total 2\n",
		"isifd_images_trained_total 1024\n",
		"isifd_jobs_finished_total{state=\"succeeded\"} 1\n",
		"isifd_http_requests_total{route=\"/jobs\",method=\"POST\",code=\"201\"} 2\n",
		"isifd_http_requests_total{route=\"unmatched\",method=\"OTHER\",code=\"404\"} 1\n",
		/* 0.003 falls in le=0.005 and above; 0.2 in le=0.25 and above. */
		"isifd_http_request_duration_seconds_bucket{route=\"/jobs\",le=\"0.001\"} 0\n",
		"isifd_http_request_duration_seconds_bucket{route=\"/jobs\",le=\"0.005\"} 1\n",
		"isifd_http_request_duration_seconds_bucket{route=\"/jobs\",le=\"0.1\"} 1\n",
		"isifd_http_request_duration_seconds_bucket{route=\"/jobs\",le=\"0.25\"} 2\n",
		"isifd_http_request_duration_seconds_bucket{route=\"/jobs\",le=\"+Inf\"} 2\n",
		"isifd_http_request_duration_seconds_count{route=\"/jobs\"} 2\n",
		"isifd_http_request_duration_seconds_sum{route=\"/jobs\"} 0.203\n",
		"# TYPE isifd_http_request_duration_seconds histogram\n",
	};
	for (size_t i = 0; t && i < sizeof want / sizeof want[0]; i++)
		CHECK_MSG(strstr(t, want[i]) != NULL, "missing: %s", want[i]);
	/* Every line is a comment or "name{labels} value". */
	for (char *line = t; line && *line;) {
		char *nl = strchr(line, '\n');
		CHECK(nl != NULL);
		if (!nl)
			break;
		if (line[0] != '#') {
			char *sp = memchr(line, ' ', (size_t)(nl - line));
			CHECK(sp && sp + 1 < nl && strchr("0123456789", sp[1]));
		}
		line = nl + 1;
	}
	free(t);
	prom_free(p);
}

