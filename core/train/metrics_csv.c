/*
 * core/train/metrics_csv.c — the metrics CSV: one column list, written by
 * `isif train` (metrics.csv) and by the daemon (GET /jobs/{id}/metrics?
 * format=csv), so the two files always have the same columns in the same
 * order. A field an epoch does not have (kNN accuracy without evaluation,
 * recall and NMI outside the unseen-category protocol, the similarity
 * means without evaluation) is left empty.
 */
#include <math.h>
#include <stdbool.h>

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
