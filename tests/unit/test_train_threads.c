/*
 * tests/unit/test_train_threads.c — trainers in one process do not change
 * each other's threads. Two trainers training at once, each on a thread of
 * its own, get bit for bit what they get training alone at the same thread
 * count: every epoch's loss and kNN accuracy, the last epoch's embeddings,
 * and the checkpoint and optimizer files (weights, BN statistics, momentum).
 * And each trainer's team keeps the size its caller asked for while the
 * other trains (the engine once set OpenBLAS's and OpenMP's process-wide
 * thread counts when a trainer started, so the job that started last chose
 * the BLAS and evaluation threads of both).
 *
 * Checks run on the test's own thread only; the trainer threads just record.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dataset_testutil.h"
#include "isif/data/dataset.h"
#include "isif/train/train.h"

#define EPOCHS 2

/* What one training run produced. */
struct outcome {
	int rc;
	struct isif_error err;
	int threads_seen[EPOCHS];     /* isif_trainer_threads() during each on_epoch */
	double loss[EPOCHS], top1[EPOCHS];
	int epochs;                   /* on_epoch calls */
	float *train_emb, *test_emb;  /* the last epoch's embeddings */
	size_t train_len, test_len;   /* in floats */
	void *ckpt, *optim;           /* the files the last epoch wrote */
	size_t ckpt_len, optim_len;
};

struct run {
	const struct isif_dataset *ds;
	uint64_t seed;
	int threads;
	char dir[4096];
	pthread_barrier_t *start;     /* both trainers created: train (NULL: alone) */
	struct isif_trainer *t;
	struct outcome out;
};

/* n 1×16×16 images, image i a gradient offset by i, labels i mod 3. */
static struct isif_split make_split(int n, int offset)
{
	struct isif_split s = { .n = n, .c = 1, .h = 16, .w = 16 };
	s.pixels = malloc((size_t)n * 256);
	s.labels = malloc((size_t)n * sizeof(int32_t));
	for (int i = 0; i < n; i++) {
		for (int p = 0; p < 256; p++)
			s.pixels[i * 256 + p] = (uint8_t)((i + offset) * 7 + p * (1 + i % 3));
		s.labels[i] = i % 3;
	}
	return s;
}

static float *copy_floats(const float *src, size_t n)
{
	float *dst = malloc((n ? n : 1) * sizeof(float));
	if (dst && n)
		memcpy(dst, src, n * sizeof(float));
	return dst;
}

static void record_epoch(void *user, const struct isif_epoch_metrics *m, const char *ckpt,
			 const float *train_emb, int64_t n_train, const float *test_emb,
			 int64_t n_test, int D)
{
	struct run *r = user;
	struct outcome *o = &r->out;
	(void)ckpt;
	if (o->epochs >= EPOCHS)
		return;
	o->threads_seen[o->epochs] = isif_trainer_threads(r->t);
	o->loss[o->epochs] = m->loss;
	o->top1[o->epochs] = m->knn_top1;
	o->epochs++;
	free(o->train_emb);
	free(o->test_emb);
	o->train_len = (size_t)n_train * D;
	o->test_len = (size_t)n_test * D;
	o->train_emb = copy_floats(train_emb, o->train_len);
	o->test_emb = copy_floats(test_emb, o->test_len);
}

/* One trainer: convnet, batches of 8, EPOCHS epochs with evaluation. */
static void *train_one(void *p)
{
	struct run *r = p;
	struct isif_job_spec spec;
	isif_spec_default(&spec);
	snprintf(spec.dataset, sizeof spec.dataset, "synthetic");
	snprintf(spec.model, sizeof spec.model, "convnet");
	spec.batch_size = 8;
	spec.epochs = EPOCHS;
	spec.knn_k = 5;
	spec.seed = r->seed;
	r->out.rc = tu_mkdirs(r->dir) ? ISIF_EIO : ISIF_OK;
	if (!r->out.rc)
		r->out.rc = isif_trainer_create(&r->t, &spec, r->ds, r->dir, r->threads, &r->out.err);
	if (r->start)
		pthread_barrier_wait(r->start);
	struct isif_train_callbacks cb = { .user = r, .on_epoch = record_epoch };
	if (!r->out.rc)
		r->out.rc = isif_trainer_run(r->t, &cb, NULL, &r->out.err);
	isif_trainer_free(r->t);
	r->t = NULL;
	char path[4200];
	snprintf(path, sizeof path, "%s/checkpoint-latest.safetensors", r->dir);
	r->out.ckpt = tu_read(path, &r->out.ckpt_len);
	snprintf(path, sizeof path, "%s/optim-%06d.safetensors", r->dir, EPOCHS);
	r->out.optim = tu_read(path, &r->out.optim_len);
	return NULL;
}

static void free_outcome(struct outcome *o)
{
	free(o->train_emb);
	free(o->test_emb);
	free(o->ckpt);
	free(o->optim);
}

static int same_bytes(const void *a, size_t na, const void *b, size_t nb)
{
	return a && b && na == nb && memcmp(a, b, na) == 0;
}

/* Run r trained on r->threads threads throughout and got what `alone` got. */
static void check_run(const struct run *r, const struct outcome *alone, const char *tag)
{
	const struct outcome *o = &r->out;
	CHECK_MSG(o->rc == ISIF_OK, "%s: %s", tag, o->err.msg);
	CHECK_EQ(o->epochs, EPOCHS);
	for (int e = 0; e < o->epochs; e++)
		CHECK_MSG(o->threads_seen[e] == r->threads, "%s epoch %d: team of %d, asked for %d",
			  tag, e + 1, o->threads_seen[e], r->threads);
	if (o == alone)
		return;
	CHECK_MSG(same_bytes(o->loss, sizeof o->loss, alone->loss, sizeof alone->loss),
		  "%s: losses %.17g %.17g, alone %.17g %.17g", tag, o->loss[0], o->loss[1],
		  alone->loss[0], alone->loss[1]);
	CHECK_MSG(same_bytes(o->top1, sizeof o->top1, alone->top1, sizeof alone->top1),
		  "%s: kNN top-1 differs from the run alone", tag);
	CHECK_MSG(same_bytes(o->train_emb, o->train_len * sizeof(float), alone->train_emb,
			     alone->train_len * sizeof(float)) &&
		  same_bytes(o->test_emb, o->test_len * sizeof(float), alone->test_emb,
			     alone->test_len * sizeof(float)),
		  "%s: embeddings differ from the run alone", tag);
	CHECK_MSG(same_bytes(o->ckpt, o->ckpt_len, alone->ckpt, alone->ckpt_len),
		  "%s: checkpoint differs from the run alone", tag);
	CHECK_MSG(same_bytes(o->optim, o->optim_len, alone->optim, alone->optim_len),
		  "%s: optimizer state differs from the run alone", tag);
}

/* Trainers A (threads ta) and B (tb), each alone and then both at once. */
static void check_pair(int ta, int tb)
{
	struct isif_dataset ds = { 0 };
	ds.train = make_split(64, 0);
	ds.test = make_split(18, 100);
	ds.num_classes = 3;
	ds.std[0] = ds.std[1] = ds.std[2] = 1;
	struct run alone[2], both[2];
	const int threads[2] = { ta, tb };
	pthread_barrier_t start;
	CHECK(pthread_barrier_init(&start, NULL, 2) == 0);
	for (int i = 0; i < 2; i++) {
		struct run r = { .ds = &ds, .seed = 11 + (uint64_t)i, .threads = threads[i] };
		alone[i] = both[i] = r;
		snprintf(alone[i].dir, sizeof alone[i].dir, "%s/threads-%d-%d/alone-%d",
			 test_tmpdir(), ta, tb, i);
		snprintf(both[i].dir, sizeof both[i].dir, "%s/threads-%d-%d/both-%d",
			 test_tmpdir(), ta, tb, i);
		both[i].start = &start;
		train_one(&alone[i]);
	}
	/* A on a thread of its own, B on this one (both wait at the barrier) */
	pthread_t a;
	int started = pthread_create(&a, NULL, train_one, &both[0]) == 0;
	CHECK(started);
	if (started) {
		train_one(&both[1]);
		pthread_join(a, NULL);
	}
	for (int i = 0; i < 2 && started; i++) {
		char tag[64];
		snprintf(tag, sizeof tag, "trainer %c on %d threads alone", 'A' + i, threads[i]);
		check_run(&alone[i], &alone[i].out, tag);
		snprintf(tag, sizeof tag, "trainer %c on %d threads beside %d", 'A' + i, threads[i],
			 threads[1 - i]);
		check_run(&both[i], &alone[i].out, tag);
	}
	for (int i = 0; i < 2; i++) {
		free_outcome(&alone[i].out);
		free_outcome(&both[i].out);
	}
	pthread_barrier_destroy(&start);
	isif_dataset_free(&ds);
}

/* Two threads each, as two jobs of `isifd --workers 2` on four cores. */
TEST(trainer_two_at_once_same_as_alone)
{
	check_pair(2, 2);
}

/* Different counts: neither trainer may take the other's. */
TEST(trainer_two_at_once_keep_own_threads)
{
	check_pair(1, 3);
}
