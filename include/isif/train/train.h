/*
 * isif/train/train.h — the training loop a job runs: shuffled epochs of m images ×
 * 2 augmented views, ISIF loss, SGD, lr schedule, evaluation every
 * eval.every epochs, an atomic checkpoint at each epoch end, exact resume,
 * cancellation between batches and progress callbacks. Batches are decoded
 * and augmented on loader threads while the current one trains.
 * One trainer per job; two trainers in one process share nothing.
 */
#ifndef ISIF_TRAIN_H
#define ISIF_TRAIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "isif/data/dataset.h"
#include "isif/eval/simhist.h"
#include "isif/train/spec.h"

struct isif_trainer;

struct isif_epoch_metrics {
	int epoch;                 /* 1-based: epochs completed */
	double loss;               /* mean loss over the epoch's steps */
	bool has_knn;              /* evaluation ran this epoch */
	double knn_top1, knn_top5; /* fractions */
	bool unseen;               /* unseen-category protocol */
	double recall_at[4];       /* R@1, 2, 4, 8 */
	double nmi;
	bool has_simhist;          /* evaluation ran: sim holds the test split's pairs */
	struct isif_simhist sim;   /* same-/different-class cosine similarity histograms */
	double sim_same_mean, sim_diff_mean; /* their means (NAN: no pairs of that kind) */
	bool has_probe;            /* the linear probe ran this epoch (eval.linear_probe) */
	double probe_top1;         /* its test top-1 on the embedding (fraction) */
	double probe_backbone_top1;/* on the pooled backbone features */
	double probe_seconds;      /* wall time of both probes */
	double lr;                 /* lr at the epoch's last step */
	double seconds;            /* wall time of the epoch including evaluation */
	double train_seconds;      /* training part only */
	double images_per_sec;     /* source images per second of training */
	double data_wait_frac;     /* fraction of training time spent waiting for data */
	/* A run of several processes: seconds of the epoch's training spent in
	 * the embeddings' allgather and the gradients' allreduce, over `steps`
	 * steps run (0 in one process). */
	double allgather_seconds, allreduce_seconds;
	int steps;
};

/* What a job is doing: its epoch's training steps, or the evaluation after
 * them (embedding the gallery and the test split, then the kNN search or
 * the recall and NMI of the unseen-category protocol). */
enum isif_phase {
	ISIF_PHASE_TRAINING = 0,
	ISIF_PHASE_EVALUATING,
};

/* "training" or "evaluating". */
const char *isif_phase_name(enum isif_phase phase);

struct isif_progress {
	int epoch;                 /* current epoch, 1-based */
	int epochs;
	enum isif_phase phase;
	int64_t images_done;       /* training: source images done in this epoch;
				    * evaluating: images embedded so far */
	int64_t images_total;      /* training: per epoch; evaluating: gallery + test */
	double images_per_sec;     /* of the phase: trained or embedded */
	double eta_seconds;        /* whole run, evaluations included; < 0: not known yet */
	double loss;               /* running mean of this epoch */
	double step_loss;          /* training: the loss of the step just done */
};

struct isif_train_callbacks {
	void *user;
	/* After each step, and while evaluating: at its start, after each
	 * block of images embedded and before the search (cheap; may be
	 * rate-limited by the callee). */
	void (*on_progress)(void *user, const struct isif_progress *p);
	/* After each epoch's checkpoint is on disk; embeddings of the evaluated
	 * splits are passed when evaluation ran (else NULL): [n,D] floats. */
	void (*on_epoch)(void *user, const struct isif_epoch_metrics *m,
			 const char *checkpoint_path,
			 const float *train_emb, int64_t n_train,
			 const float *test_emb, int64_t n_test, int D);
	/* A line of log text (no newline). */
	void (*on_log)(void *user, const char *line);
	/* After a stop request (ISIF_STOP_CHECKPOINT): the mid-epoch checkpoint
	 * is on disk; epoch epochs are complete and step batches of the next. */
	void (*on_stop)(void *user, int epoch, int step, const char *checkpoint_path);
};

/* Values of the cancel flag isif_trainer_run polls between batches. */
enum isif_cancel {
	ISIF_RUN = 0,
	ISIF_CANCEL = 1,          /* stop; the last epoch checkpoint stays */
	ISIF_STOP_CHECKPOINT = 2, /* stop after a checkpoint at this batch (shutdown) */
};

/*
 * Creates a trainer for spec over a loaded dataset (borrowed, must outlive
 * the trainer). Checkpoints go to out_dir/checkpoint-latest.safetensors,
 * with the optimizer state beside it in optim-EEEEEE.safetensors
 * (optim-EEEEEE-SSSSSS.safetensors for a stop inside an epoch), the name
 * the checkpoint's "optim" metadata gives; older optim files are removed.
 * out_dir must exist. threads is the caller's budget (at least 1):
 * the trainer's thread team gets isif_train_threads(spec, threads), on which
 * the model's ops, the kNN search and k-means run (the caller of
 * isif_trainer_run is one member), and it sizes the batch loader's threads
 * (isif_train_loader_threads). Nothing process-wide is read or set:
 * trainers on different threads do not change each other's counts.
 * The spec is checked against the dataset (isif_spec_check_dataset, with
 * the counts of the chosen classes) and refused with its message.
 */
enum isif_rc isif_trainer_create(struct isif_trainer **out, const struct isif_job_spec *spec,
			const struct isif_dataset *ds, const char *out_dir,
			int threads, struct isif_error *err);

/*
 * isif_trainer_create for rank `rank` of a data-parallel run of `size`
 * processes (isif/train/dist.h, initialised by the caller). Each rank makes
 * its 2m/size rows of every batch (view seeds of their global rows), gathers
 * the whole batch's embeddings for the loss, back-propagates its rows and
 * sums gradients over ranks: the run computes what one process with
 * isif_train_bn_groups(spec, size) BN groups computes. Rank 0 writes the
 * checkpoints and alone calls on_epoch and on_stop; every rank must call
 * isif_trainer_resume with the same checkpoint and isif_trainer_run.
 * A checkpoint does not depend on size: any size resumes it.
 */
enum isif_rc isif_trainer_create_ranked(struct isif_trainer **out,
			const struct isif_job_spec *spec, const struct isif_dataset *ds,
			const char *out_dir, int threads, int rank, int size,
			struct isif_error *err);

/* The BN groups a run of `size` processes normalises the batch in, counted as
 * one process would: each rank's rows are its own statistics, so bn_groups 1
 * becomes size; other values must be multiples of size. */
int isif_train_bn_groups(const struct isif_job_spec *spec, int size);

/* Loads model, optimizer, epoch counter and (for a checkpoint written on a
 * stop request) the position inside the epoch from a checkpoint written by an
 * earlier run of the same spec; training continues exactly where it was. */
enum isif_rc isif_trainer_resume(struct isif_trainer *t, const char *checkpoint_path,
			struct isif_error *err);

/* A fresh run's starting weights from a pretrained checkpoint (the spec's
 * init.checkpoint, resolved to a path by the caller): the backbone's
 * tensors are copied (isif_checkpoint_init_backbone's strict checks, its
 * message prefixed with "init.checkpoint: "), the embedding layer keeps its
 * seeded initialisation. Call before isif_trainer_run, never after resume
 * (a resumed run's checkpoint already holds the trained backbone). */
enum isif_rc isif_trainer_init(struct isif_trainer *t, const char *path, struct isif_error *err);

/* The trainer's model (borrowed: valid until isif_trainer_free). */
const struct isif_model *isif_trainer_model(const struct isif_trainer *t);

/* Epochs completed so far (after resume: the checkpoint's epoch). */
int isif_trainer_epoch(const struct isif_trainer *t);

/* Members of the trainer's thread team (its threads, at most 64). */
int isif_trainer_threads(const struct isif_trainer *t);

/*
 * The line a run logs about its precision on this CPU (static string):
 * "precision fp32", "precision bf16 (AVX512_BF16 ...)", or, for bf16 where
 * the CPU has no AVX512_BF16 or ISIF_CPU=portable, a line saying bf16 was
 * asked for and the run is exact fp32 instead (no slow emulation).
 */
const char *isif_train_precision_line(enum isif_precision asked);

/* Trains until spec.epochs are done. Returns ISIF_ECANCELLED when *cancel
 * became non-zero (polled between batches): with ISIF_CANCEL the last
 * complete epoch's checkpoint stays; with ISIF_STOP_CHECKPOINT a checkpoint
 * of the current batch is written first (on_stop). cancel may be NULL. */
enum isif_rc isif_trainer_run(struct isif_trainer *t, const struct isif_train_callbacks *cb,
		     atomic_int *cancel, struct isif_error *err);

void isif_trainer_free(struct isif_trainer *t);

/* The team a trainer gets from a budget of `budget` threads: spec.threads
 * when it asks for fewer, else the whole budget (at least 1; the team is
 * capped at 64 as isif_model_set_threads caps it). */
int isif_train_threads(const struct isif_job_spec *spec, int budget);

/* The batch loader's threads beside a team of `threads`. */
int isif_train_loader_threads(int threads);

/* A job's estimated peak memory in bytes, by what holds it. */
struct isif_memory_estimate {
	int64_t model;        /* parameters, their gradients, BN statistics */
	int64_t optimizer;    /* SGD momentum */
	int64_t activations;  /* the model's plan: activations, their gradients, workspace */
	int64_t loss;         /* the loss's workspace (B×B), dL/d(embeddings), NPID's bank */
	int64_t loader;       /* the loader threads' batch slots and scratch */
	int64_t dataset;      /* both splits' pixels and labels, the trainer's index lists */
	int64_t evaluation;   /* gallery and test embeddings, embedding batch, kNN scratch */
	int64_t total;
};

/*
 * Estimates the memory a trainer for spec takes at its peak on a dataset of
 * this shape with a budget of `threads`, from the sizes isif_trainer_create
 * and the evaluation allocate (the model's plan through isif_model_memory),
 * without allocating them: the plan for B = 2·batch_size rows, parameters,
 * gradients and momentum, the loss workspace, the loader's slots, the
 * dataset itself (counted in full, though jobs on one dataset share it) and
 * the evaluation's embeddings. The memory touched (resident), not merely
 * reserved. Errors as isif_model_memory.
 */
enum isif_rc isif_train_memory_estimate(const struct isif_job_spec *spec,
					const struct isif_dataset_shape *shape, int threads,
					struct isif_memory_estimate *out, struct isif_error *err);

/* The metrics CSV (isif train's metrics.csv and GET /jobs/{id}/metrics?format=csv):
 * its header line and one row per epoch, each ending in a newline, appended
 * to b; fields absent in an epoch (no evaluation, no unseen-category
 * protocol) are empty. The one column list both writers use. */
struct isif_strbuf;
void isif_metrics_csv_header(struct isif_strbuf *b);
void isif_metrics_csv_row(struct isif_strbuf *b, const struct isif_epoch_metrics *m);

/* Reads such a CSV back (columns found by name in the header, others
 * ignored): *rows (malloc'd, *n of them) with the presence flags set from
 * the non-empty fields (has_knn, unseen, has_probe; the similarity means and
 * data_wait NAN when empty; no histograms). ISIF_EINVAL naming the line. */
enum isif_rc isif_metrics_csv_parse(const char *text, struct isif_epoch_metrics **rows, int *n,
				    struct isif_error *err);

/* train_subset: reorders idx[0..count) by a fixed seeded shuffle (the same
 * for every job, so jobs with different seeds share the subset) and returns
 * how many of its first entries to keep: n, or count when n ≤ 0 or n ≥ count. */
int64_t isif_train_subset(int32_t *idx, int64_t count, int64_t n);

#endif
