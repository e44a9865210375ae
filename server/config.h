/*
 * server/config.h — every flag and limit of isifd in one table (name,
 * default, min, max, help), parsed from the command line and printed by
 * --help. Nothing else in the daemon has a tunable constant of its own.
 */
#ifndef ISIFD_CONFIG_H
#define ISIFD_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "isif/base/common.h"

#define CONFIG_STR_LEN 1024

struct config {
	char listen[CONFIG_STR_LEN];      /* host:port, [v6]:port; port 0 = any free port */
	char state_dir[CONFIG_STR_LEN];
	char web_dir[CONFIG_STR_LEN];
	char token_file[CONFIG_STR_LEN];  /* "" = no authentication */
	long workers;
	long cores;                       /* 0: detected */
	long max_queued;
	long max_group_jobs;     /* jobs one POST /groups may create */
	long max_processes;               /* spec.processes allowed; 1: no MPI jobs */
	char mpi_hostfile[CONFIG_STR_LEN]; /* "" = this machine */
	char mpirun_args[CONFIG_STR_LEN];  /* extra mpirun arguments, space-separated */
	char isif_path[CONFIG_STR_LEN];    /* "" = isif beside isifd */
	long max_job_memory;              /* MiB; 0: from the machine's memory and --workers */
	long max_attempts;
	long max_body;
	long http_threads;
	long max_connections;
	long max_connections_per_ip;
	long connection_memory;
	long connection_timeout;
	long request_timeout;
	long sse_keepalive;
	long progress_interval_ms;
	long shutdown_timeout;
	long verbose;
	/* retrieval (issue 5) */
	long allow_private_urls;
	char allow_url_addr[CONFIG_STR_LEN]; /* "" or up to 4 numeric addresses, comma-separated */
	long max_image_bytes;
	long max_checkpoint_bytes;
	long max_image_side;
	long max_image_pixels;
	long url_timeout;
	long url_max_redirects;
	long max_k;
	long max_batch;
	long max_batch_urls;
	long index_cache;
	long search_threads, search_batch, search_wait_us;
	long serve_nice;                  /* nice of the serving threads (0..19) */
	char search_scan[CONFIG_STR_LEN];   /* auto | fp32 | bf16 */
	long search_share;               /* % of one core the passes may use while a job runs; 0: no cap */
	/* collections that grow (POST /jobs/{id}/items) */
	long max_items, max_items_request, max_item_metadata, max_item_id;
	long dataset_cache;
	long folder_cache_mib;            /* STATE/folder-cache bound; 0: no cache */
	/* blocking work off the HTTP threads (http_defer) */
	long work_threads;
	long fetch_threads;
	long work_queue;
	long max_fetches;
	char dataset_root[CONFIG_STR_LEN]; /* comma-separated directories POST /datasets may use */
};

/* Fills cfg with every flag's default. */
void config_default(struct config *cfg);

/*
 * Parses argv over cfg. Returns ISIF_OK, with *printed true when --help or
 * --version was printed (exit 0), or ISIF_EINVAL with the message in err
 * (exit 2).
 */
enum isif_rc config_parse(struct config *cfg, int argc, char **argv, bool *printed,
			  struct isif_error *err);

/* The --help text: usage and one line per flag with default and bounds. */
void config_usage(FILE *out);

/* --search-scan as an enum isif_gallery_scan (0 auto, 1 fp32, 2 bf16), −1
 * when it names none. */
int config_search_scan(const struct config *cfg);

#endif
