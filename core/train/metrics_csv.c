/*
 * core/train/metrics_csv.c — the metrics CSV: one column list, written by
 * `isif train` (metrics.csv) and by the daemon (GET /jobs/{id}/metrics?
 * format=csv), so the two files always have the same columns in the same
 * order. A field an epoch does not have (kNN accuracy without evaluation,
 * recall and NMI outside the unseen-category protocol, the similarity
 * means without evaluation) is left empty. isif_metrics_csv_parse reads
 * such a file back (`isif group` summarises its jobs' metrics.csv).
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "isif/base/strbuf.h"
#include "isif/train/train.h"

/* Which epochs have the column. */
enum presence { ALWAYS, WITH_KNN, UNSEEN, WITH_SIM, WITH_PROBE };

struct column {
	const char *name;
	enum presence when;
	double (*value)(const struct isif_epoch_metrics *m);
};

static double c_loss(const struct isif_epoch_metrics *m) { return m->loss; }
static double c_top1(const struct isif_epoch_metrics *m) { return m->knn_top1; }
static double c_top5(const struct isif_epoch_metrics *m) { return m->knn_top5; }
static double c_lr(const struct isif_epoch_metrics *m) { return m->lr; }
static double c_seconds(const struct isif_epoch_metrics *m) { return m->seconds; }
static double c_ips(const struct isif_epoch_metrics *m) { return m->images_per_sec; }
static double c_r1(const struct isif_epoch_metrics *m) { return m->recall_at[0]; }
static double c_r2(const struct isif_epoch_metrics *m) { return m->recall_at[1]; }
static double c_r4(const struct isif_epoch_metrics *m) { return m->recall_at[2]; }
static double c_r8(const struct isif_epoch_metrics *m) { return m->recall_at[3]; }
static double c_nmi(const struct isif_epoch_metrics *m) { return m->nmi; }
static double c_probe(const struct isif_epoch_metrics *m) { return m->probe_top1; }
static double c_probe_bb(const struct isif_epoch_metrics *m) { return m->probe_backbone_top1; }
static double c_wait(const struct isif_epoch_metrics *m) { return m->data_wait_frac; }
static double c_same(const struct isif_epoch_metrics *m) { return m->sim_same_mean; }
static double c_diff(const struct isif_epoch_metrics *m) { return m->sim_diff_mean; }

/* After `epoch`, in this order. */
static const struct column columns[] = {
	{"loss", ALWAYS, c_loss},
	{"knn_top1", WITH_KNN, c_top1},
	{"knn_top5", WITH_KNN, c_top5},
	{"lr", ALWAYS, c_lr},
	{"seconds", ALWAYS, c_seconds},
	{"images_per_sec", ALWAYS, c_ips},
	{"recall_at_1", UNSEEN, c_r1},
	{"recall_at_2", UNSEEN, c_r2},
	{"recall_at_4", UNSEEN, c_r4},
	{"recall_at_8", UNSEEN, c_r8},
	{"nmi", UNSEEN, c_nmi},
	{"data_wait", ALWAYS, c_wait},
	{"sim_same_mean", WITH_SIM, c_same},
	{"sim_diff_mean", WITH_SIM, c_diff},
	{"probe_top1", WITH_PROBE, c_probe},
	{"probe_backbone_top1", WITH_PROBE, c_probe_bb},
};
#define N_COLUMNS ((int)(sizeof columns / sizeof columns[0]))

void isif_metrics_csv_header(struct isif_strbuf *b)
{
	isif_strbuf_puts(b, "epoch");
	for (int i = 0; i < N_COLUMNS; i++)
		isif_strbuf_printf(b, ",%s", columns[i].name);
	isif_strbuf_puts(b, "\n");
}

void isif_metrics_csv_row(struct isif_strbuf *b, const struct isif_epoch_metrics *m)
{
	isif_strbuf_printf(b, "%d", m->epoch);
	for (int i = 0; i < N_COLUMNS; i++) {
		const struct column *c = &columns[i];
		bool present = c->when == ALWAYS || (c->when == WITH_KNN && m->has_knn) ||
			       (c->when == UNSEEN && m->unseen) ||
			       (c->when == WITH_SIM && m->has_simhist) ||
			       (c->when == WITH_PROBE && m->has_probe);
		double v = present ? c->value(m) : NAN;
		if (isfinite(v))
			isif_strbuf_printf(b, ",%.15g", v);
		else
			isif_strbuf_puts(b, ",");
	}
	isif_strbuf_puts(b, "\n");
}

/* Where column i's value goes in m, and the flag its presence sets (NULL:
 * none). */
static double *column_field(struct isif_epoch_metrics *m, int i, bool **flag)
{
	*flag = NULL;
	switch (columns[i].when) {
	case WITH_KNN: *flag = &m->has_knn; break;
	case UNSEEN: *flag = &m->unseen; break;
	case WITH_PROBE: *flag = &m->has_probe; break;
	default: break;
	}
	double *f[] = { &m->loss, &m->knn_top1, &m->knn_top5, &m->lr, &m->seconds,
			&m->images_per_sec, &m->recall_at[0], &m->recall_at[1], &m->recall_at[2],
			&m->recall_at[3], &m->nmi, &m->data_wait_frac, &m->sim_same_mean,
			&m->sim_diff_mean, &m->probe_top1, &m->probe_backbone_top1 };
	_Static_assert(sizeof f / sizeof f[0] == N_COLUMNS, "a field per column");
	return f[i];
}

#define CSV_MAX_FIELDS 64
#define ISIF_METRICS_CSV_MAX_EPOCH 10000   /* the spec's most epochs */

/* Splits line (modified) at commas into f[0..*n). */
static void split(char *line, char **f, int *n)
{
	*n = 0;
	for (char *p = line; *n < CSV_MAX_FIELDS;) {
		f[(*n)++] = p;
		p = strchr(p, ',');
		if (!p)
			break;
		*p++ = '\0';
	}
}

/* Column index per header field (-1: epoch -2: not ours). */
static enum isif_rc parse_header(char *line, int *col, int *nf, struct isif_error *err)
{
	char *f[CSV_MAX_FIELDS];
	split(line, f, nf);
	bool epoch = false;
	for (int k = 0; k < *nf; k++) {
		col[k] = -2;
		if (strcmp(f[k], "epoch") == 0) {
			col[k] = -1;
			epoch = true;
		}
		for (int i = 0; i < N_COLUMNS; i++)
			if (strcmp(f[k], columns[i].name) == 0)
				col[k] = i;
	}
	return epoch ? ISIF_OK : isif_fail(err, ISIF_EINVAL, "metrics CSV: no epoch column");
}

static enum isif_rc parse_row(char *line, const int *col, int nf, int lineno,
			      struct isif_epoch_metrics *m, struct isif_error *err)
{
	char *f[CSV_MAX_FIELDS];
	int n;
	split(line, f, &n);
	if (n != nf)
		return isif_fail(err, ISIF_EINVAL, "metrics CSV line %d: %d fields, the header has %d",
				 lineno, n, nf);
	memset(m, 0, sizeof *m);
	m->data_wait_frac = m->sim_same_mean = m->sim_diff_mean = NAN;
	for (int k = 0; k < nf; k++) {
		if (col[k] == -2 || (f[k][0] == '\0' && col[k] >= 0))
			continue;
		char *end;
		double v = strtod(f[k], &end);
		if (end == f[k] || *end)
			return isif_fail(err, ISIF_EINVAL, "metrics CSV line %d: \"%.32s\" is not a "
					 "number", lineno, f[k]);
		if (col[k] == -1) {
			if (!(v >= 1 && v <= ISIF_METRICS_CSV_MAX_EPOCH) || v != (int)v)
				return isif_fail(err, ISIF_EINVAL, "metrics CSV line %d: epoch %.32s is "
						 "not an integer in 1..%d", lineno, f[k],
						 ISIF_METRICS_CSV_MAX_EPOCH);
			m->epoch = (int)v;
			continue;
		}
		bool *flag;
		*column_field(m, col[k], &flag) = v;
		if (flag)
			*flag = true;
	}
	return ISIF_OK;
}

enum isif_rc isif_metrics_csv_parse(const char *text, struct isif_epoch_metrics **rows, int *n,
				    struct isif_error *err)
{
	*rows = NULL;
	*n = 0;
	char *copy = strdup(text), *save = NULL;
	int col[CSV_MAX_FIELDS], nf = 0, lines = 0, cap = 0;
	enum isif_rc rc = copy ? ISIF_OK : isif_fail(err, ISIF_ENOMEM, "out of memory");
	for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; line && rc == ISIF_OK;
	     line = strtok_r(NULL, "\n", &save)) {
		if (++lines == 1) {
			rc = parse_header(line, col, &nf, err);
			continue;
		}
		if (*n == cap) {
			cap = cap ? 2 * cap : 16;
			struct isif_epoch_metrics *r = realloc(*rows, sizeof *r * (size_t)cap);
			if (!r) {
				rc = isif_fail(err, ISIF_ENOMEM, "out of memory");
				break;
			}
			*rows = r;
		}
		rc = parse_row(line, col, nf, lines, &(*rows)[*n], err);
		*n += rc == ISIF_OK;
	}
	if (rc == ISIF_OK && lines == 0)
		rc = isif_fail(err, ISIF_EINVAL, "metrics CSV: empty");
	free(copy);
	if (rc) {
		free(*rows);
		*rows = NULL;
		*n = 0;
	}
	return rc;
}
