/*
 * tests/unit/test_model.c — the four architectures: state_dict names,
 * order, shapes and counts as PyTorch has them; initialisation bounds;
 * forward invariants; BN modes and groups; and gradient checks of whole
 * models and of BasicBlocks with and without a projection shortcut.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "isif/nn/model.h"
#include "nn/model_impl.h"

static struct isif_model *make(const char *name, int C)
{
	struct isif_model *m = NULL;
	struct isif_error err = {0};
	int rc = isif_model_create(&m, name, C, 128, 7, &err);
	CHECK_MSG(rc == ISIF_OK, "create %s: %s", name, err.msg);
	return m;
}

static void check_shape(struct isif_model *m, const char *name, int ndim,
			int64_t a, int64_t b, int64_t c, int64_t d)
{
	const struct isif_model_tensor *t = isif_model_find(m, name);
	CHECK_MSG(t != NULL, "missing %s", name);
	if (!t)
		return;
	int64_t want[4] = { a, b, c, d };
	CHECK_EQ(t->ndim, ndim);
	for (int i = 0; i < ndim && i < 4; i++)
		CHECK_MSG(t->shape[i] == want[i], "%s dim %d: %lld != %lld", name, i,
			  (long long)t->shape[i], (long long)want[i]);
}

/* Entry counts: resnet18 = stem conv + bn (6) + 8 blocks × 12 + 3 shortcuts × 6
 * + linear 2 = 122; resnet20 = 6 + 9 × 12 + 2 × 6 + 2 = 128; convnet = 3 convs +
 * 3 BNs × 5 + 2 = 20. Parameter counts: the CIFAR ResNet-18 has 11,173,962
 * parameters with a 10-way linear layer (5,130 of them); with 512→128 it has
 * 11,173,962 − 5,130 + 65,664 = 11,234,496. */
TEST(model_resnet18_state_dict_matches_pytorch)
{
	struct isif_model *m = make("resnet18", 3);
	if (!m)
		return;
	CHECK_EQ(isif_model_num_tensors(m), 122);
	CHECK_EQ(isif_model_num_params(m), 11234496);
	CHECK(strcmp(isif_model_tensor(m, 0)->name, "conv1.weight") == 0);
	CHECK(strcmp(isif_model_tensor(m, 1)->name, "bn1.weight") == 0);
	CHECK(strcmp(isif_model_tensor(m, 5)->name, "bn1.num_batches_tracked") == 0);
	CHECK(strcmp(isif_model_tensor(m, 6)->name, "layer1.0.conv1.weight") == 0);
	CHECK(strcmp(isif_model_tensor(m, 120)->name, "linear.weight") == 0);
	CHECK(strcmp(isif_model_tensor(m, 121)->name, "linear.bias") == 0);
	check_shape(m, "conv1.weight", 4, 64, 3, 3, 3);
	check_shape(m, "layer2.0.conv1.weight", 4, 128, 64, 3, 3);
	check_shape(m, "layer2.0.shortcut.0.weight", 4, 128, 64, 1, 1);
	check_shape(m, "layer2.0.shortcut.1.running_var", 1, 128, 0, 0, 0);
	check_shape(m, "layer4.1.bn2.bias", 1, 512, 0, 0, 0);
	check_shape(m, "linear.weight", 2, 128, 512, 0, 0);
	check_shape(m, "bn1.num_batches_tracked", 0, 0, 0, 0, 0);
	CHECK(isif_model_find(m, "layer1.0.shortcut.0.weight") == NULL);
	CHECK(isif_model_find(m, "bn1.num_batches_tracked")->dtype == ISIF_I64);
	isif_model_free(m);
}

TEST(model_resnet20_and_convnet_names)
{
	struct isif_model *m = make("resnet20", 1);
	if (m) {
		CHECK_EQ(isif_model_num_tensors(m), 128);
		check_shape(m, "conv1.weight", 4, 16, 1, 3, 3);
		check_shape(m, "layer1.2.conv2.weight", 4, 16, 16, 3, 3);
		check_shape(m, "layer3.0.shortcut.0.weight", 4, 64, 32, 1, 1);
		check_shape(m, "layer3.2.bn2.running_mean", 1, 64, 0, 0, 0);
		check_shape(m, "linear.weight", 2, 128, 64, 0, 0);
		CHECK(isif_model_find(m, "layer2.1.shortcut.0.weight") == NULL);
		isif_model_free(m);
	}
	m = make("convnet", 3);
	if (m) {
		CHECK_EQ(isif_model_num_tensors(m), 20);
		check_shape(m, "features.0.weight", 4, 32, 3, 3, 3);
		check_shape(m, "features.5.running_var", 1, 64, 0, 0, 0);
		check_shape(m, "features.8.weight", 4, 128, 64, 3, 3);
		check_shape(m, "linear.bias", 1, 128, 0, 0, 0);
		/* 864 + 18432 + 73728 conv + 2·(32+64+128) BN + 16512 linear */
		CHECK_EQ(isif_model_num_params(m), 864 + 18432 + 73728 + 448 + 16512);
		isif_model_free(m);
	}
	struct isif_model *bad = NULL;
	CHECK(isif_model_create(&bad, "vgg", 3, 128, 1, NULL) == ISIF_ENOTFOUND);
	CHECK(bad == NULL);
}

TEST(model_init_follows_pytorch_defaults)
{
	struct isif_model *m = make("resnet20", 3);
	if (!m)
		return;
	const struct isif_model_tensor *w = isif_model_find(m, "layer2.0.conv1.weight");
	const float *d = w->data;
	float bound = 1.0f / sqrtf(16 * 9), lo = 1, hi = -1;
	for (int i = 0; i < 32 * 16 * 9; i++) {
		lo = fminf(lo, d[i]);
		hi = fmaxf(hi, d[i]);
	}
	CHECK(lo >= -bound && hi <= bound);
	CHECK(lo < -0.9f * bound && hi > 0.9f * bound); /* really spread over ±bound */
	const float *g = isif_model_find(m, "bn1.weight")->data;
	const float *rv = isif_model_find(m, "layer3.2.bn2.running_var")->data;
	CHECK(g[0] == 1 && g[15] == 1 && rv[63] == 1);
	const float *lb = isif_model_find(m, "linear.bias")->data;
	for (int i = 0; i < 128; i++)
		CHECK(fabsf(lb[i]) <= 1.0f / 8.0f);
	/* same seed, same weights; another seed, others */
	struct isif_model *m2 = make("resnet20", 3), *m3 = NULL;
	isif_model_create(&m3, "resnet20", 3, 128, 8, NULL);
	CHECK(memcmp(isif_model_params(m), isif_model_params(m2),
		     isif_model_num_params(m) * sizeof(float)) == 0);
	CHECK(memcmp(isif_model_params(m), isif_model_params(m3),
		     isif_model_num_params(m) * sizeof(float)) != 0);
	isif_model_free(m);
	isif_model_free(m2);
	isif_model_free(m3);
}

TEST(model_forward_rows_are_unit_and_bn_modes_differ)
{
	const char *names[] = { "convnet", "resnet20", "resnet18" };
	for (int k = 0; k < 3; k++) {
		struct isif_model *m = make(names[k], 1);
		if (!m)
			continue;
		int N = 4, H = 16, W = 20;
		float *x = malloc(sizeof(float) * N * H * W);
		gc_fill_uniform(x, (size_t)N * H * W, -1, 1, 3);
		const float *out;
		struct isif_error err = {0};
		CHECK(isif_model_forward(m, x, N, H, W, true, 1, &out, &err) == ISIF_OK);
		float *train_out = malloc(sizeof(float) * N * 128);
		memcpy(train_out, out, sizeof(float) * N * 128);
		for (int i = 0; i < N; i++) {
			double s = 0;
			for (int j = 0; j < 128; j++)
				s += (double)out[i * 128 + j] * out[i * 128 + j];
			CHECK_NEAR(s, 1.0, 1e-5);
		}
		const int64_t *tracked = isif_model_find(
			m, k == 0 ? "features.1.num_batches_tracked" : "bn1.num_batches_tracked")->data;
		CHECK_EQ(*tracked, 1);
		CHECK(isif_model_forward(m, x, N, H, W, false, 1, &out, &err) == ISIF_OK);
		CHECK_EQ(*tracked, 1); /* eval mode leaves statistics alone */
		CHECK(memcmp(out, train_out, sizeof(float) * N * 128) != 0);
		CHECK(isif_model_forward(m, x, N, 8, 8, false, 1, &out, &err) == ISIF_EINVAL);
		free(x);
		free(train_out);
		isif_model_free(m);
	}
}

/* --- gradient checks ------------------------------------------------- */

struct model_obj {
	struct isif_model *m;
	const float *x;
	const float *r;
	int N, H, W, groups;
};

/* Objective r·f(x): a train-mode forward (BN with batch statistics). */
static double model_objective(void *ctx)
{
	struct model_obj *o = ctx;
	const float *out;
	if (isif_model_forward(o->m, o->x, o->N, o->H, o->W, true, o->groups, &out, NULL))
		return NAN;
	return gc_dot(o->r, out, (size_t)o->N * isif_model_embed_dim(o->m));
}

/* Checks every parameter tensor of m (a subset of elements of each). */
static void check_model_grads(struct isif_model *m, int N, int C, int H, int W,
			      int groups, size_t per_tensor)
{
	int D = isif_model_embed_dim(m);
	float *x = malloc(sizeof(float) * N * C * H * W);
	float *r = malloc(sizeof(float) * N * D);
	gc_fill_uniform(x, (size_t)N * C * H * W, -1, 1, 11);
	gc_fill_uniform(r, (size_t)N * D, -1, 1, 12);
	struct model_obj o = { m, x, r, N, H, W, groups };
	const float *out;
	struct isif_error err = {0};

	isif_model_zero_grad(m);
	CHECK(isif_model_forward(m, x, N, H, W, true, groups, &out, &err) == ISIF_OK);
	CHECK_MSG(isif_model_backward(m, r, &err) == ISIF_OK, "%s", err.msg);
	size_t n = isif_model_num_params(m);
	float *ana = malloc(sizeof(float) * n);
	memcpy(ana, isif_model_grads(m), sizeof(float) * n);

	/* Hold ReLU patterns and max-pool winners at this point: with thousands of
	 * units a finite step would cross kinks in nearly every coordinate. */
	CHECK(model_freeze_kinks(m, 1) == 0);
	struct gc_opts opts = gc_defaults();
	opts.eps = 1e-2;
	opts.max_elems = per_tensor;
	for (size_t i = 0; i < isif_model_num_tensors(m); i++) {
		const struct isif_model_tensor *t = isif_model_tensor(m, i);
		if (!t->is_param)
			continue;
		size_t numel = 1;
		for (int d = 0; d < t->ndim; d++)
			numel *= (size_t)t->shape[d];
		size_t off = (size_t)((float *)t->data - isif_model_params(m));
		int bad = gradcheck(t->name, t->data, ana + off, numel, model_objective, &o, &opts);
		CHECK_MSG(bad == 0, "%s: %d mismatches", t->name, bad);
	}
	model_freeze_kinks(m, 0);
	free(ana);
	free(x);
	free(r);
}

TEST(model_gradcheck_convnet)
{
	struct isif_model *m = make("convnet", 2);
	if (m)
		check_model_grads(m, 4, 2, 16, 16, 1, 12);
	isif_model_free(m);
}

TEST(model_gradcheck_resnet20)
{
	struct isif_model *m = make("resnet20", 1);
	if (m)
		check_model_grads(m, 4, 1, 16, 16, 1, 4);
	isif_model_free(m);
}

TEST(model_gradcheck_bn_groups)
{
	struct isif_model *m = make("convnet", 1);
	if (m)
		check_model_grads(m, 8, 1, 16, 16, 2, 8);
	isif_model_free(m);
}

/* One BasicBlock between a stem and the head. The stem matters: the block's
 * input then needs a gradient, which sums the main path and the shortcut. */
static struct isif_model *block_model(int in_planes, int planes, int stride)
{
	struct isif_model *m = calloc(1, sizeof *m);
	snprintf(m->name, sizeof m->name, "block");
	m->in_channels = 2;
	m->embed_dim = 8;
	m->n_acts = 1;
	int a = model_add_conv(m, "stem", 0, 2, in_planes, 3, 1, 1);
	a = model_add_basic_block(m, "block", a, in_planes, planes, stride);
	a = model_add_simple(m, NODE_AVGPOOL, a, -1);
	a = model_add_linear(m, "linear", a, planes, 8);
	a = model_add_simple(m, NODE_L2NORM, a, -1);
	CHECK(a > 0);
	CHECK(model_finish(m, 5) == 0);
	return m;
}

TEST(model_gradcheck_basic_block_identity)
{
	struct isif_model *m = block_model(4, 4, 1);
	CHECK(isif_model_find(m, "block.shortcut.0.weight") == NULL);
	check_model_grads(m, 4, 2, 16, 16, 1, 40);
	isif_model_free(m);
}

TEST(model_gradcheck_basic_block_projection)
{
	struct isif_model *m = block_model(4, 6, 2);
	CHECK(isif_model_find(m, "block.shortcut.0.weight") != NULL);
	check_model_grads(m, 4, 2, 16, 16, 1, 40);
	isif_model_free(m);
}

/* torchvision's resnet18 state_dict (122 entries, 11,689,512 parameters of
 * which fc holds 513,000) with fc replaced by the 512→128 `linear`:
 * 11,689,512 − 513,000 + 65,664 = 11,242,176 parameters, 122 entries. */
TEST(model_resnet18_imagenet_state_dict_matches_torchvision)
{
	struct isif_model *m = make("resnet18_imagenet", 3);
	if (!m)
		return;
	CHECK_EQ(isif_model_num_tensors(m), 122);
	CHECK_EQ(isif_model_num_params(m), 11242176);
	CHECK(strcmp(isif_model_tensor(m, 0)->name, "conv1.weight") == 0);
	CHECK(strcmp(isif_model_tensor(m, 6)->name, "layer1.0.conv1.weight") == 0);
	CHECK(strcmp(isif_model_tensor(m, 120)->name, "linear.weight") == 0);
	check_shape(m, "conv1.weight", 4, 64, 3, 7, 7);
	check_shape(m, "layer2.0.downsample.0.weight", 4, 128, 64, 1, 1);
	check_shape(m, "layer2.0.downsample.1.running_var", 1, 128, 0, 0, 0);
	check_shape(m, "layer4.0.downsample.1.num_batches_tracked", 0, 0, 0, 0, 0);
	check_shape(m, "linear.weight", 2, 128, 512, 0, 0);
	CHECK(isif_model_find(m, "layer2.0.shortcut.0.weight") == NULL);
	CHECK(isif_model_find(m, "layer1.0.downsample.0.weight") == NULL);
	/* 224×224 → stem 112 → pool 56 → 56, 28, 14, 7; at 32×32 → 16, 8, ..., 1 */
	struct isif_error err = {0};
	CHECK_MSG(model_infer_shapes(m, 224, 224, &err) == ISIF_OK, "%s", err.msg);
	CHECK_EQ(m->nodes[0].P, 112);
	CHECK_EQ(m->nodes[3].kind, NODE_MAXPOOL3);
	CHECK_EQ(m->nodes[3].P, 56);
	/* torchvision resnet18: 1.814 GMACs per 224×224 image (fc 0.5 M of them) */
	double macs = isif_model_flops_per_image(m, 224, 224);
	CHECK_MSG(fabs(macs - 1.8136e9) < 0.01e9, "MACs %g", macs);
	isif_model_free(m);
}

TEST(model_resnet18_imagenet_forward_small_input)
{
	struct isif_model *m = make("resnet18_imagenet", 3);
	if (!m)
		return;
	enum { N = 2, H = 32, W = 40 };
	float *x = malloc(sizeof(float) * N * 3 * H * W);
	gc_fill_uniform(x, (size_t)N * 3 * H * W, -1, 1, 3);
	const float *out;
	struct isif_error err = {0};
	CHECK_MSG(isif_model_forward(m, x, N, H, W, false, 1, &out, &err) == ISIF_OK, "%s", err.msg);
	for (int n = 0; n < N; n++) {
		double s = 0;
		for (int j = 0; j < 128; j++)
			s += (double)out[n * 128 + j] * out[n * 128 + j];
		CHECK_MSG(fabs(s - 1) < 1e-5, "row %d norm² %g", n, s);
	}
	free(x);
	isif_model_free(m);
}

/* The ImageNet stem on its own (7×7/2 conv, BN, ReLU, 3×3/2 max-pool) and a
 * downsample block: the new shapes' gradients through the executor's fast
 * paths. */
TEST(model_gradcheck_imagenet_stem)
{
	struct isif_model *m = calloc(1, sizeof *m);
	snprintf(m->name, sizeof m->name, "stem");
	m->in_channels = 3;
	m->embed_dim = 8;
	m->n_acts = 1;
	int a = model_add_conv(m, "conv1", 0, 3, 4, 7, 2, 3);
	a = model_add_bn(m, "bn1", a, 4);
	a = model_add_simple(m, NODE_RELU, a, -1);
	a = model_add_simple(m, NODE_MAXPOOL3, a, -1);
	a = model_add_basic_block(m, "layer2.0", a, 4, 6, 2);
	a = model_add_simple(m, NODE_AVGPOOL, a, -1);
	a = model_add_linear(m, "linear", a, 6, 8);
	a = model_add_simple(m, NODE_L2NORM, a, -1);
	CHECK(a > 0);
	CHECK(model_finish(m, 5) == 0);
	check_model_grads(m, 4, 3, 18, 22, 1, 40);
	isif_model_free(m);
}

/* BN groups: a forward with 2 groups equals two separate 1-group forwards of
 * the halves (train-mode outputs depend only on each group's statistics). */
TEST(model_bn_groups_match_separate_halves)
{
	struct isif_model *m = make("convnet", 1);
	if (!m)
		return;
	int N = 8, H = 16, W = 16, half = N / 2 * H * W;
	float *x = malloc(sizeof(float) * N * H * W), *both = malloc(sizeof(float) * N * 128);
	gc_fill_uniform(x, (size_t)N * H * W, -1, 1, 21);
	const float *out;
	CHECK(isif_model_forward(m, x, N, H, W, true, 2, &out, NULL) == ISIF_OK);
	memcpy(both, out, sizeof(float) * N * 128);
	for (int g = 0; g < 2; g++) {
		CHECK(isif_model_forward(m, x + g * half, N / 2, H, W, true, 1, &out, NULL) == ISIF_OK);
		for (int i = 0; i < N / 2 * 128; i++)
			CHECK_NEAR(out[i], both[g * N / 2 * 128 + i], 1e-5);
	}
	CHECK(isif_model_forward(m, x, N, H, W, true, 3, &out, NULL) == ISIF_EINVAL);
	free(x);
	free(both);
	isif_model_free(m);
}

/* isif_model_features: the pooled backbone features of an eval-mode forward
 * run in cache-sized groups of rows are every row's own (the same as a
 * forward of that row alone), and they are the final linear's input: the
 * embedding is L2norm(W·feature + b). */
TEST(model_features_are_the_final_linear_input)
{
	struct isif_model *m;
	struct isif_error err = { 0 };
	CHECK_EQ(isif_model_create(&m, "convnet", 1, 16, 5, &err), ISIF_OK);
	CHECK_EQ(isif_model_feature_dim(m), 128);
	int N = 96, F = 128, D = 16;
	float *x = malloc((size_t)N * 28 * 28 * sizeof(float));
	float *feat = malloc((size_t)N * F * sizeof(float)), *emb = malloc((size_t)N * D * sizeof(float));
	gc_fill_uniform(x, (size_t)N * 28 * 28, -1, 1, 3);
	const float *out;
	int dim = 0;
	CHECK_EQ(isif_model_forward(m, x, N, 28, 28, false, 1, &out, &err), ISIF_OK);
	CHECK(m->last_rows < N);   /* the forward ran in several groups */
	memcpy(emb, out, (size_t)N * D * sizeof(float));
	const float *f = isif_model_features(m, &dim);
	CHECK(f != NULL && dim == F);
	memcpy(feat, f, (size_t)N * F * sizeof(float));
	const float *w = isif_model_find(m, "linear.weight")->data, *b = isif_model_find(m, "linear.bias")->data;
	double worst_emb = 0, worst_alone = 0;
	for (int i = 0; i < N; i++) {
		double z[16], norm = 0;
		for (int k = 0; k < D; k++) {
			z[k] = b[k];
			for (int j = 0; j < F; j++)
				z[k] += (double)w[k * F + j] * feat[i * F + j];
			norm += z[k] * z[k];
		}
		for (int k = 0; k < D; k++)
			worst_emb = fmax(worst_emb, fabs(z[k] / sqrt(norm) - emb[i * D + k]));
	}
	for (int i = 0; i < N; i += 17) {
		CHECK_EQ(isif_model_forward(m, x + (size_t)i * 28 * 28, 1, 28, 28, false, 1, &out, &err),
			 ISIF_OK);
		f = isif_model_features(m, &dim);
		for (int j = 0; j < F; j++)
			worst_alone = fmax(worst_alone, fabs(f[j] - feat[i * F + j]));
	}
	CHECK_MSG(worst_emb < 1e-4, "embedding vs L2norm(W·feature + b): %g", worst_emb);
	CHECK_MSG(worst_alone < 1e-4, "features in a batch vs alone: %g", worst_alone);
	free(x);
	free(feat);
	free(emb);
	isif_model_free(m);
}
