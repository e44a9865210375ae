/*
 * server/jobcheck.c — a job's checks at submit (see jobcheck.h): the
 * dataset's shape from the registry or a probe, isif_spec_check_dataset,
 * and isif_train_memory_estimate against the memory bound.
 */
#include "jobcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isif/data/dataset.h"
#include "log.h"
#include "store_retrieval.h"

#define UNLIMITED ((int64_t)1 << 62)   /* cgroup files say "max" or ~2^63 for none */

/* The first integer in a file (or "max"), or 0 when unreadable or unlimited. */
static int64_t read_limit(const char *path)
{
	char text[64] = "";
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	bool got = fgets(text, sizeof text, f) != NULL;
	fclose(f);
	long long v = got ? strtoll(text, NULL, 10) : 0;
	return v > 0 && v < UNLIMITED ? (int64_t)v : 0;
}

/* The lowest limit in file `name` of dir and its ancestors up to root. */
static int64_t cgroup_limit(const char *root, const char *dir, const char *name)
{
	char rel[1024], path[2200];
	int64_t best = 0;
	snprintf(rel, sizeof rel, "%s", dir);
	for (;;) {
		snprintf(path, sizeof path, "%s%s/%s", root, strcmp(rel, "/") == 0 ? "" : rel, name);
		int64_t v = read_limit(path);
		if (v > 0 && (best == 0 || v < best))
			best = v;
		char *slash = strrchr(rel, '/');
		if (!slash || slash == rel) {
			if (strcmp(rel, "/") == 0)
				break;
			snprintf(rel, sizeof rel, "/");
		} else {
			*slash = '\0';
		}
	}
	return best;
}

/* This process's cgroup memory limit (v2 memory.max, v1
 * memory.limit_in_bytes), 0 when there is none. */
static int64_t cgroup_memory(void)
{
	char line[1200];
	int64_t best = 0;
	FILE *f = fopen("/proc/self/cgroup", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		char *ctl = strchr(line, ':'), *dir = ctl ? strchr(ctl + 1, ':') : NULL;
		if (!dir)
			continue;
		*dir++ = '\0';
		ctl++;
		int64_t v = 0;
		if (*ctl == '\0')                       /* v2: "0::/path" */
			v = cgroup_limit("/sys/fs/cgroup", dir, "memory.max");
		else if (strstr(ctl, "memory"))         /* v1: "4:memory:/path" */
			v = cgroup_limit("/sys/fs/cgroup/memory", dir, "memory.limit_in_bytes");
		if (v > 0 && (best == 0 || v < best))
			best = v;
	}
	fclose(f);
	return best;
}

int64_t jobcheck_machine_memory(void)
{
	char line[256];
	int64_t total = 0;
	FILE *f = fopen("/proc/meminfo", "r");
	if (f) {
		while (fgets(line, sizeof line, f))
			if (strncmp(line, "MemTotal:", 9) == 0)
				total = (int64_t)strtoll(line + 9, NULL, 10) * 1024;
		fclose(f);
	}
	int64_t cg = cgroup_memory();
	return cg > 0 && (total == 0 || cg < total) ? cg : total;
}

static double gib(int64_t bytes)
{
	return (double)bytes / (1024.0 * 1024 * 1024);
}

void jobcheck_memory_bound(long max_job_mib, long workers, struct job_memory_bound *out)
{
	if (max_job_mib > 0) {
		out->bytes = (int64_t)max_job_mib << 20;
		snprintf(out->how, sizeof out->how, "--max-job-memory %ld MiB", max_job_mib);
		return;
	}
	int64_t machine = jobcheck_machine_memory();
	if (workers < 1)
		workers = 1;
	if (machine <= 0) {
		out->bytes = INT64_MAX;   /* nothing to go by: no bound */
		snprintf(out->how, sizeof out->how, "no bound (the machine's memory is unknown; "
			 "set --max-job-memory)");
		return;
	}
	out->bytes = machine / 2 / workers;
	snprintf(out->how, sizeof out->how, "half of the machine's %.1f GiB / %ld worker%s "
		 "(--max-job-memory 0)", gib(machine), workers, workers == 1 ? "" : "s");
}

/* The dataset's shape as the registry recorded it; false while unknown. */
static bool registry_shape(struct store *st, const char *name, struct isif_dataset_shape *out)
{
	json_t *d = NULL;
	if (store_dataset_json(st, name, &d, NULL) != ISIF_OK)
		return false;
	static const char *const keys[] = {"train_images", "test_images", "channels", "height",
					   "width", "classes"};
	json_int_t v[6];
	bool known = true;
	for (int k = 0; k < 6; k++) {
		json_t *x = json_object_get(d, keys[k]);
		known = known && json_is_integer(x);
		v[k] = json_integer_value(x);
	}
	json_decref(d);
	if (known)
		*out = (struct isif_dataset_shape){v[0], v[1], (int)v[2], (int)v[3], (int)v[4],
						   (int)v[5]};
	return known;
}

/* The largest parts of an estimate, "activations 7.9 GiB, dataset 1.1 GiB". */
static void largest_parts(const struct isif_memory_estimate *m, char *out, size_t len)
{
	const struct { const char *name; int64_t bytes; } parts[] = {
		{"activations", m->activations}, {"model", m->model}, {"optimizer", m->optimizer},
		{"loss", m->loss}, {"loader", m->loader}, {"dataset", m->dataset},
		{"evaluation", m->evaluation},
	};
	const int n = (int)(sizeof parts / sizeof parts[0]);
	bool used[7] = {false};
	out[0] = '\0';
	for (int round = 0; round < 3; round++) {
		int best = -1;
		for (int i = 0; i < n; i++)
			if (!used[i] && (best < 0 || parts[i].bytes > parts[best].bytes))
				best = i;
		used[best] = true;
		size_t at = strlen(out);
		snprintf(out + at, len - at, "%s%s %.2f GiB", round ? ", " : "", parts[best].name,
			 gib(parts[best].bytes));
	}
}

enum isif_rc jobcheck_run(struct store *st, const struct isif_job_spec *spec, const char *format,
			  const char *path, int threads, const struct job_memory_bound *bound,
			  struct job_check *out, struct isif_error *err)
{
	memset(out, 0, sizeof *out);
	out->shape_known = registry_shape(st, spec->dataset, &out->shape);
	if (!out->shape_known) {
		struct isif_error e_probe = {0};
		int fmt = isif_dataset_format_parse(format);
		struct isif_dataset_options opt;
		isif_dataset_options_default(&opt);
		int size = store_dataset_image_size(st, spec->dataset);
		if (size > 0)
			opt.image_size = size;
		out->shape_known = fmt >= 0 &&
			isif_dataset_probe(path, (enum isif_dataset_format)fmt, &opt, &out->shape,
					   &e_probe) == ISIF_OK;
		if (!out->shape_known) {
			log_warn("dataset %s: cannot read its size now (%s); the job is checked when "
				 "it starts", spec->dataset, e_probe.msg);
			return ISIF_OK;
		}
	}
	enum isif_rc rc = isif_spec_check_dataset(spec, &out->shape, spec->dataset, err);
	if (rc)
		return rc;
	struct isif_error e_est = {0};
	if (isif_train_memory_estimate(spec, &out->shape, threads, &out->memory, &e_est))
		return isif_fail(err, ISIF_EINVAL, "%s", e_est.msg);
	if (out->memory.total <= bound->bytes)
		return ISIF_OK;
	return isif_fail(err, ISIF_ERANGE, "memory: about %.2f GiB, more than %.2f GiB",
			 gib(out->memory.total), gib(bound->bytes));
}

void jobcheck_memory_refusal(const struct job_check *c, const struct job_memory_bound *bound,
			     char *out, size_t len)
{
	char parts[160];
	largest_parts(&c->memory, parts, sizeof parts);
	snprintf(out, len, "memory: this job needs about %.2f GiB at its peak (estimate: %s, ...), "
		 "more than the %.2f GiB a job may use (%s); lower batch_size, embedding_dim or "
		 "train_subset, or choose a smaller model", gib(c->memory.total), parts,
		 gib(bound->bytes), bound->how);
}
