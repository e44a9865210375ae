/*
 * server/config.c — the flag table of isifd. Each entry names a flag, its
 * default, its bounds and a line of help; parsing, defaults and --help are
 * all driven from it (after redis's standardConfig).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum opt_kind { OPT_STR, OPT_INT, OPT_FLAG };

struct opt {
	const char *name;
	enum opt_kind kind;
	size_t offset;
	const char *def_str;   /* OPT_STR */
	long def, min, max;    /* OPT_INT; OPT_FLAG uses def only */
	const char *help;
};

#define O(m) offsetof(struct config, m)

static const struct opt opts[] = {
	{"listen", OPT_STR, O(listen), "127.0.0.1:8080", 0, 0, 0,
	 "address:port to serve on: IPv4, [IPv6] or localhost (127.0.0.1; no name is looked "
	 "up); port 0: any free port; a non-loopback address needs --token-file"},
	{"state-dir", OPT_STR, O(state_dir), "./var", 0, 0, 0,
	 "directory of isifd.db, checkpoints and artefacts (created if missing); locked: one "
	 "isifd per directory"},
	{"web-dir", OPT_STR, O(web_dir), "web", 0, 0, 0,
	 "directory of the dashboard files served under / (regular files only, reached "
	 "without symbolic links)"},
	{"token-file", OPT_STR, O(token_file), "", 0, 0, 0,
	 "file holding the bearer token every request but GET /healthz must send"},
	{"workers", OPT_INT, O(workers), NULL, 1, 1, 64,
	 "training jobs run at once (worker threads)"},
	{"cores", OPT_INT, O(cores), NULL, 0, 0, 4096,
	 "cores shared by the workers (0: all online cores); a job gets cores/workers threads; an approximate-index build (POST /jobs/{id}/index, one at a time, nice 10) gets all of them"},
	{"max-queued", OPT_INT, O(max_queued), NULL, 100, 1, 100000,
	 "waiting jobs allowed (at least 1); POST /jobs answers 429 beyond"},
	{"max-group-jobs", OPT_INT, O(max_group_jobs), NULL, 64, 1, 10000,
	 "jobs one POST /groups may create (the product of its grid's value counts); more is "
	 "refused with 400"},
	{"max-job-memory", OPT_INT, O(max_job_memory), NULL, 0, 0, 1L << 40,
	 "MiB a job's estimated peak memory may reach; POST /jobs refuses more (0: half of "
	 "the machine's memory, MemTotal or the cgroup's limit if lower, divided by --workers)"},
	{"max-attempts", OPT_INT, O(max_attempts), NULL, 5, 0, 1000,
	 "runs in a row a job may be interrupted by isifd dying before it completes an epoch; "
	 "then it ends failed (0: no bound)"},
	{"max-processes", OPT_INT, O(max_processes), NULL, 1, 1, 1024,
	 "MPI processes a job's spec may ask for (processes); POST /jobs refuses more "
	 "(1: no MPI jobs). Jobs above 1 run under mpirun, which needs an isif built with MPI"},
	{"mpi-hostfile", OPT_STR, O(mpi_hostfile), "", 0, 0, 0,
	 "Open MPI hostfile naming where MPI jobs' processes run (hosts, slots); \"\": this "
	 "machine. The state directory must be shared with those hosts at the same path"},
	{"mpirun-args", OPT_STR, O(mpirun_args), "", 0, 0, 0,
	 "extra arguments for mpirun, space-separated (e.g. --mca btl tcp,self)"},
	{"isif", OPT_STR, O(isif_path), "", 0, 0, 0,
	 "the isif executable MPI jobs run under mpirun (\"\": isif beside isifd)"},
	{"max-body", OPT_INT, O(max_body), NULL, 1 << 20, 1024, 64 << 20,
	 "largest request body in bytes (413 beyond)"},
	{"http-threads", OPT_INT, O(http_threads), NULL, 4, 1, 64,
	 "HTTP thread pool size"},
	{"max-connections", OPT_INT, O(max_connections), NULL, 256, 1, 65536,
	 "concurrent HTTP connections; new ones beyond are closed at once"},
	{"max-connections-per-ip", OPT_INT, O(max_connections_per_ip), NULL, 64, 1, 65536,
	 "concurrent HTTP connections from one address"},
	{"connection-memory", OPT_INT, O(connection_memory), NULL, 128 << 10, 16 << 10, 16 << 20,
	 "bytes of memory per connection for headers and buffers"},
	{"connection-timeout", OPT_INT, O(connection_timeout), NULL, 60, 1, 3600,
	 "seconds an idle connection is kept"},
	{"request-timeout", OPT_INT, O(request_timeout), NULL, 60, 1, 3600,
	 "seconds a client has to send a whole request (headers and body), from the "
	 "connection's start or the previous answer's end; then the connection is closed"},
	{"sse-keepalive", OPT_INT, O(sse_keepalive), NULL, 15, 1, 3600,
	 "seconds between keep-alive comments on idle event streams"},
	{"progress-interval-ms", OPT_INT, O(progress_interval_ms), NULL, 500, 0, 60000,
	 "least milliseconds between two progress events of a job"},
	{"shutdown-timeout", OPT_INT, O(shutdown_timeout), NULL, 8, 1, 60,
	 "seconds SIGTERM waits for running jobs to stop; isifd exits within this + 1 s "
	 "(at once on a second signal)"},
	{"verbose", OPT_FLAG, O(verbose), NULL, 0, 0, 1,
	 "also log every request and debug detail"},
	/* retrieval: /neighbors, image uploads and URL fetches */
	{"allow-private-urls", OPT_FLAG, O(allow_private_urls), NULL, 0, 0, 1,
	 "let image URLs reach loopback, private, link-local and unique-local addresses"},
	{"allow-url-addr", OPT_STR, O(allow_url_addr), "", 0, 0, 0,
	 "for tests: let image URLs reach exactly these numeric addresses (comma-separated, "
	 "at most 4; 127.0.0.1 allows neither 127.0.0.2 nor ::ffff:127.0.0.1), nothing else private"},
	{"max-image-bytes", OPT_INT, O(max_image_bytes), NULL, 10 << 20, 1024, 64 << 20,
	 "largest uploaded or fetched query image in bytes (413 / 422 beyond)"},
	{"max-checkpoint-bytes", OPT_INT, O(max_checkpoint_bytes), NULL, 256 << 20, 1 << 20,
	 1L << 31, "largest checkpoint POST /checkpoints takes, in bytes (413 beyond)"},
	{"max-image-side", OPT_INT, O(max_image_side), NULL, 4096, 16, 65535,
	 "largest width or height of a query image (422 beyond)"},
	{"max-image-pixels", OPT_INT, O(max_image_pixels), NULL, 16 << 20, 256, 1 << 28,
	 "largest width x height of a query image (422 beyond)"},
	{"url-timeout", OPT_INT, O(url_timeout), NULL, 10, 1, 120,
	 "seconds an image URL fetch may take in all"},
	{"url-max-redirects", OPT_INT, O(url_max_redirects), NULL, 3, 0, 20,
	 "redirects an image URL fetch follows"},
	{"max-k", OPT_INT, O(max_k), NULL, 1000, 1, 100000,
	 "most neighbours one query may ask for"},
	{"max-batch", OPT_INT, O(max_batch), NULL, 256, 1, 100000,
	 "most images in one POST /neighbors/batch"},
	{"max-batch-urls", OPT_INT, O(max_batch_urls), NULL, 8, 0, 1000,
	 "most URLs (fetched one after another) in one POST /neighbors/batch"},
	{"index-cache", OPT_INT, O(index_cache), NULL, 4, 1, 1024,
	 "jobs whose embedding index (and model) stay loaded for queries"},
	{"search-threads", OPT_INT, O(search_threads), NULL, 1, 1, 256,
	 "threads of the exact-search pass that answers queued /neighbors queries together "
	 "(their own, beside each job's --cores share: give a training host --cores N-S)"},
	{"search-batch", OPT_INT, O(search_batch), NULL, 64, 1, 4096,
	 "most queries one pass over a gallery answers (queries that arrive together)"},
	{"search-wait-us", OPT_INT, O(search_wait_us), NULL, 0, 0, 100000,
	 "microseconds a pass may wait for more queries before it starts (0: none; queries "
	 "queue by themselves while a pass runs)"},
	{"search-scan", OPT_STR, O(search_scan), "auto", 0, 0, 0,
	 "how a pass finds the exact neighbours: auto (bf16 candidates re-ranked in fp32 where "
	 "the CPU has AVX512_BF16, else fp32), fp32 (the fp32 scan alone) or bf16 (emulated "
	 "where the CPU lacks it); every choice gives the same answer"},
	{"search-share", OPT_INT, O(search_share), NULL, 30, 0, 25600,
	 "percent of one core the search passes may use while a job trains (a duty cycle over "
	 "the last second: queries wait and are searched together in larger batches); 0: no cap. "
	 "No cap while no job runs"},
	{"serve-nice", OPT_INT, O(serve_nice), NULL, 5, 0, 19,
	 "nice value of the threads that serve queries (HTTP, work and fetch lanes, search): "
	 "above a training job's 0, queries take the cores a job leaves rather than an equal "
	 "share (0: the same priority as jobs)"},
	{"max-items", OPT_INT, O(max_items), NULL, 10000, 0, 1000000,
	 "most items a job's collection holds (POST /jobs/{id}/items; 0: adding refused)"},
	{"max-items-request", OPT_INT, O(max_items_request), NULL, 64, 1, 4096,
	 "most items one POST /jobs/{id}/items adds"},
	{"max-item-metadata", OPT_INT, O(max_item_metadata), NULL, 4096, 2, 1 << 20,
	 "largest item metadata, in bytes of compact JSON"},
	{"max-item-id", OPT_INT, O(max_item_id), NULL, 128, 1, 1024,
	 "longest item id, in bytes (letters, digits and ._:-)"},
	{"dataset-cache", OPT_INT, O(dataset_cache), NULL, 2, 1, 64,
	 "datasets kept loaded for thumbnails and queries by dataset image"},
	{"folder-cache-mib", OPT_INT, O(folder_cache_mib), NULL, 16384, 0, 1L << 30,
	 "MiB the decoded image-folder cache (STATE/folder-cache) may hold; older files are "
	 "removed to make room, a dataset larger than the bound is decoded at every load "
	 "(0: no cache)"},
	{"work-threads", OPT_INT, O(work_threads), NULL, 4, 1, 256,
	 "threads that decode and embed query images and load datasets, off the HTTP threads"},
	{"fetch-threads", OPT_INT, O(fetch_threads), NULL, 8, 1, 256,
	 "queries whose image URLs are fetched at once (each fetches its URLs together: at most "
	 "fetch-threads x max-batch-urls transfers)"},
	{"work-queue", OPT_INT, O(work_queue), NULL, 64, 0, 65536,
	 "queries waiting for work or fetch threads, per kind; 503 beyond"},
	{"max-fetches", OPT_INT, O(max_fetches), NULL, 16, 1, 4096,
	 "image URL transfers in flight at once, in all (each holds up to --max-image-bytes); "
	 "more wait, within --url-timeout"},
	{"dataset-root", OPT_STR, O(dataset_root), "/usr/share/datasets", 0, 0, 0,
	 "directories POST /datasets may register datasets under (comma-separated; symlinks "
	 "and .. resolved first)"},
};

#define N_OPTS (sizeof opts / sizeof opts[0])

void config_default(struct config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	for (size_t i = 0; i < N_OPTS; i++) {
		char *dst = (char *)cfg + opts[i].offset;
		if (opts[i].kind == OPT_STR)
			snprintf(dst, CONFIG_STR_LEN, "%s", opts[i].def_str);
		else
			*(long *)dst = opts[i].def;
	}
}

void config_usage(FILE *out)
{
	fprintf(out,
		"usage: isifd [--flag value | --flag=value]...\n"
		"isifd trains image embeddings (Invariant and Spreading Instance Feature)\n"
		"behind an HTTP/JSON API. Flags (default, bounds):\n");
	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt *o = &opts[i];
		char head[64];
		if (o->kind == OPT_FLAG)
			snprintf(head, sizeof head, "--%s", o->name);
		else
			snprintf(head, sizeof head, "--%s %s", o->name,
				 o->kind == OPT_STR ? "S" : "N");
		fprintf(out, "  %-30s %s\n", head, o->help);
		if (o->kind == OPT_STR)
			fprintf(out, "  %-30s default \"%s\"\n", "", o->def_str);
		else if (o->kind == OPT_INT)
			fprintf(out, "  %-30s default %ld, min %ld, max %ld\n", "", o->def,
				o->min, o->max);
		else
			fprintf(out, "  %-30s default off\n", "");
	}
	fprintf(out, "  %-30s %s\n  %-30s %s\n", "--help", "this text", "--version",
		"print the version");
}

static enum isif_rc set_value(struct config *cfg, const struct opt *o, const char *val,
		     struct isif_error *err)
{
	char *dst = (char *)cfg + o->offset;
	if (o->kind == OPT_STR) {
		if (strlen(val) >= CONFIG_STR_LEN)
			return isif_fail(err, ISIF_EINVAL, "--%s: longer than %d bytes", o->name,
					 CONFIG_STR_LEN - 1);
		snprintf(dst, CONFIG_STR_LEN, "%s", val);
		return ISIF_OK;
	}
	char *end;
	errno = 0;
	long long x = strtoll(val, &end, 10);
	if (errno || end == val || *end || x < o->min || x > o->max)
		return isif_fail(err, ISIF_EINVAL, "--%s: must be an integer between %ld and %ld "
				 "(got \"%s\")", o->name, o->min, o->max, val);
	*(long *)dst = (long)x;
	return ISIF_OK;
}

enum isif_rc config_parse(struct config *cfg, int argc, char **argv, bool *printed,
			  struct isif_error *err)
{
	*printed = false;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			config_usage(stdout);
			*printed = true;
			return ISIF_OK;
		}
		if (strcmp(arg, "--version") == 0) {
			printf("isifd 0.1\n");
			*printed = true;
			return ISIF_OK;
		}
		if (strncmp(arg, "--", 2) != 0)
			return isif_fail(err, ISIF_EINVAL, "unexpected argument \"%s\" (see --help)", arg);
		const char *name = arg + 2, *eq = strchr(name, '=');
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		const struct opt *o = NULL;
		for (size_t k = 0; k < N_OPTS && !o; k++)
			if (strlen(opts[k].name) == nlen && strncmp(opts[k].name, name, nlen) == 0)
				o = &opts[k];
		if (!o)
			return isif_fail(err, ISIF_EINVAL, "unknown flag \"%.*s\" (see --help)",
					 (int)nlen + 2, arg);
		if (o->kind == OPT_FLAG) {
			if (eq)
				return isif_fail(err, ISIF_EINVAL, "--%s takes no value", o->name);
			*(long *)((char *)cfg + o->offset) = 1;
			continue;
		}
		const char *val = eq ? eq + 1 : NULL;
		if (!val) {
			if (i + 1 >= argc)
				return isif_fail(err, ISIF_EINVAL, "--%s needs a value", o->name);
			val = argv[++i];
		}
		enum isif_rc rc = set_value(cfg, o, val, err);
		if (rc)
			return rc;
	}
	if (config_search_scan(cfg) < 0)
		return isif_fail(err, ISIF_EINVAL, "--search-scan: must be auto, fp32 or bf16 "
				 "(got \"%s\")", cfg->search_scan);
	return ISIF_OK;
}

int config_search_scan(const struct config *cfg)
{
	static const char *const names[] = {"auto", "fp32", "bf16"};  /* isif_gallery_scan */
	for (int i = 0; i < 3; i++)
		if (strcmp(cfg->search_scan, names[i]) == 0)
			return i;
	return -1;
}
