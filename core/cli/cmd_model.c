/*
 * core/cli/cmd_model.c — `isif init`, `isif embed` and `isif step`: the
 * engine on explicit tensors, for scripts and the PyTorch crosscheck.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "isif/eval/embed.h"
#include "isif/data/dataset.h"
#include "isif/nn/loss.h"
#include "isif/base/npy.h"
#include "isif/nn/optim.h"
#include "isif/train/checkpoint.h"
#include "isif/train/train.h"

static const char init_help[] =
	"usage: isif init --model M --in-channels C --seed S --out CK.safetensors\n"
	"                 [--embedding-dim D] [--init BACKBONE.safetensors]\n"
	"Writes a freshly initialised model (PyTorch's default initialisation) as a\n"
	"safetensors checkpoint.\n"
	"  --model M          resnet18 | resnet20 | convnet | resnet18_imagenet\n"
	"  --in-channels C    input channels, 1..64 (1 for Fashion-MNIST, 3 for RGB)\n"
	"  --seed S           initialisation seed, 0 to 2^53 as a job spec's seed (default 1)\n"
	"  --embedding-dim D  width of the embedding (default 128)\n"
	"  --out FILE         checkpoint to write (atomically)\n"
	"  --init FILE        backbone from this checkpoint (all but linear.*, as a\n"
	"                     job's init.checkpoint; e.g. isif_torch.py from-torchvision)\n";

int cmd_init(int argc, char **argv)
{
	struct cli_args a;
	cli_args_init(&a, argc, argv);
	if (cli_help(&a)) {
		fputs(init_help, stdout);
		cli_args_free(&a);
		return 0;
	}
	const char *model = cli_opt(&a, "--model"), *out = cli_opt(&a, "--out");
	const char *ch = cli_opt(&a, "--in-channels"), *seed_s = cli_opt(&a, "--seed");
	const char *dim_s = cli_opt(&a, "--embedding-dim"), *from = cli_opt(&a, "--init");
	long channels = 0, seed = 1, dim = 128;
	int rc = 2;
	if (cli_check_unused(&a, "init"))
		goto out;
	if (!model || !out || !ch) {
		fprintf(stderr, "isif init: --model, --in-channels and --out are required\n%s",
			init_help);
		goto out;
	}
	if (cli_int("--in-channels", ch, 1, 64, &channels) ||
	    (seed_s && cli_int("--seed", seed_s, 0, 1L << 53, &seed)) ||
	    (dim_s && cli_int("--embedding-dim", dim_s, 2, 4096, &dim)))
		goto out;
	struct isif_model *m = NULL;
	struct isif_error err = {0};
	if (isif_model_create(&m, model, (int)channels, (int)dim, (uint64_t)seed, &err) ||
	    (from && isif_checkpoint_init_backbone(m, from, &err)) ||
	    isif_checkpoint_save(m, out, NULL, &err)) {
		fprintf(stderr, "isif init: %s\n", err.msg);
		rc = 1;
	} else {
		printf("wrote %s: %s, %zu parameters\n", out, model, isif_model_num_params(m));
		rc = 0;
	}
	isif_model_free(m);
out:
	cli_args_free(&a);
	return rc;
}

static const char embed_help[] =
	"usage: isif embed --checkpoint CK [--model M] --in X.npy --out F.npy [--train-bn] [--bf16]\n"
	"       isif embed --checkpoint CK --dataset NAME|PATH [--format F]\n"
	"                  [--split train|test] --out F.npy\n"
	"Embeds images with a trained model: F is N×D float32, L2-normalised rows.\n"
	"  --in X.npy      float32 N×C×H×W, already normalised (no preprocessing)\n"
	"  --train-bn      BN uses the batch's statistics (train mode) instead of running ones\n"
	"  --dataset NAME  embed a dataset split with evaluation preprocessing\n"
	"  --format F      idx | cifar10 | cifar100 | stl10 | folder | auto (default auto)\n"
	"  --split S       train | test (default test)\n"
	"  --model M       override the model name stored in the checkpoint\n"
	"  --bf16          precision bf16 (as a job's \"precision\": \"bf16\"; fp32 without AVX512_BF16)\n";

static int embed_array(struct isif_model *m, const char *in, const char *out, bool train_bn)
{
	struct isif_error err = {0};
	struct isif_npy x = { 0 };
	int rc = isif_npy_read(in, &x, &err);
	if (rc) {
		fprintf(stderr, "isif embed: %s\n", err.msg);
		return 1;
	}
	if (x.ndim != 4 || x.shape[1] != isif_model_in_channels(m) || x.shape[0] < 1 ||
	    x.shape[0] > 1000000) {
		fprintf(stderr, "isif embed: %s: expected N×%d×H×W float32, got %d dimensions\n",
			in, isif_model_in_channels(m), x.ndim);
		free(x.data);
		return 1;
	}
	const float *emb;
	int N = (int)x.shape[0], D = isif_model_embed_dim(m);
	rc = isif_model_forward(m, x.data, N, (int)x.shape[2], (int)x.shape[3], train_bn, 1,
				&emb, &err);
	int64_t shape[2] = { N, D };
	if (!rc)
		rc = isif_npy_write(out, emb, 2, shape, &err);
	free(x.data);
	if (rc) {
		fprintf(stderr, "isif embed: %s\n", err.msg);
		return 1;
	}
	return 0;
}

static int embed_dataset(struct isif_model *m, int crop, const char *name, const char *format,
			 const char *split, const char *out)
{
	struct isif_error err = {0};
	int fmt = isif_dataset_format_parse(format ? format : "auto");
	if (fmt < 0) {
		fprintf(stderr, "isif embed: unknown --format '%s'\n", format);
		return 2;
	}
	if (strcmp(split, "train") && strcmp(split, "test")) {
		fprintf(stderr, "isif embed: --split must be train or test\n");
		return 2;
	}
	struct isif_dataset ds;
	if (isif_dataset_load(&ds, name, fmt, NULL, &err)) {
		fprintf(stderr, "isif embed: %s\n", err.msg);
		return 1;
	}
	const struct isif_split *s = strcmp(split, "train") == 0 ? &ds.train : &ds.test;
	int D = isif_model_embed_dim(m), rc = 1;
	float *emb = malloc((size_t)(s->n ? s->n : 1) * D * sizeof(float));
	if (!emb)
		fprintf(stderr, "isif embed: out of memory\n");
	else if (isif_embed_split(m, s, crop, ds.mean, ds.std, 256, emb, &err) ||
		 isif_npy_write(out, emb, 2, (int64_t[]){ s->n, D }, &err))
		fprintf(stderr, "isif embed: %s\n", err.msg);
	else
		rc = 0;
	free(emb);
	isif_dataset_free(&ds);
	return rc;
}

int cmd_embed(int argc, char **argv)
{
	struct cli_args a;
	cli_args_init(&a, argc, argv);
	if (cli_help(&a)) {
		fputs(embed_help, stdout);
		cli_args_free(&a);
		return 0;
	}
	const char *ck = cli_opt(&a, "--checkpoint"), *model = cli_opt(&a, "--model");
	const char *in = cli_opt(&a, "--in"), *out = cli_opt(&a, "--out");
	const char *dataset = cli_opt(&a, "--dataset"), *format = cli_opt(&a, "--format");
	const char *split = cli_opt(&a, "--split");
	bool train_bn = cli_flag(&a, "--train-bn"), bf16 = cli_flag(&a, "--bf16");
	int rc = 2;
	struct isif_model *m = NULL;
	if (cli_check_unused(&a, "embed"))
		goto out;
	if (!ck || !out || (!in == !dataset)) {
		fprintf(stderr, "isif embed: needs --checkpoint, --out and one of --in or --dataset\n%s",
			embed_help);
		goto out;
	}
	int crop = 0;
	if (cli_load_model(ck, model, &m, &crop)) {
		rc = 1;
		goto out;
	}
	if (bf16)
		isif_model_set_precision(m, ISIF_PREC_BF16);
	rc = in ? embed_array(m, in, out, train_bn)
		: embed_dataset(m, crop, dataset, format, split ? split : "test", out);
out:
	isif_model_free(m);
	cli_args_free(&a);
	return rc;
}

static const char step_help[] =
	"usage: isif step --checkpoint CK [--model M] --views A.npy B.npy --out CK2\n"
	"                 [--lr 0.03] [--momentum 0.9] [--weight-decay 5e-4] [--tau 0.1]\n"
	"                 [--gradient reference|full] [--nesterov] [--bn-groups 1]\n"
	"                 [--optim-in O.safetensors] [--optim-out O2.safetensors] [--bf16]\n"
	"One ISIF training step: the views A (view 1) and B (view 2), float32 m×C×H×W,\n"
	"are stacked into 2m rows and go through one forward pass with BN in train mode;\n"
	"prints the loss and writes the updated weights and BN statistics to CK2.\n"
	"Momentum buffers start empty (PyTorch's first step) unless --optim-in gives them.\n"
	"--bf16: precision bf16 (fp32 where the CPU lacks AVX512_BF16).\n";

static int read_views(const char *pa, const char *pb, struct isif_npy *a, struct isif_npy *b,
		      float **x)
{
	struct isif_error err = {0};
	if (isif_npy_read(pa, a, &err) || isif_npy_read(pb, b, &err)) {
		fprintf(stderr, "isif step: %s\n", err.msg);
		return 1;
	}
	if (a->ndim != 4 || b->ndim != 4 || memcmp(a->shape, b->shape, sizeof(int64_t) * 4) ||
	    a->shape[0] < 1 || a->shape[0] > 4096) {
		fprintf(stderr, "isif step: the views must both be m×C×H×W with the same shape\n");
		return 1;
	}
	size_t half = (size_t)(a->shape[0] * a->shape[1] * a->shape[2] * a->shape[3]);
	*x = malloc(2 * half * sizeof(float));
	if (!*x)
		return 1;
	memcpy(*x, a->data, half * sizeof(float));
	memcpy(*x + half, b->data, half * sizeof(float));
	return 0;
}

struct step_opts {
	double lr, momentum, wd, tau;
	long groups;
	enum isif_gradient_mode mode;
	bool nesterov;
};

static int parse_step_opts(struct cli_args *a, struct step_opts *o)
{
	const char *v;
	*o = (struct step_opts){ 0.03, 0.9, 5e-4, 0.1, 1, ISIF_GRAD_REFERENCE, false };
	if ((v = cli_opt(a, "--lr")) && cli_double("--lr", v, 0, 10, &o->lr))
		return -1;
	if ((v = cli_opt(a, "--momentum")) && cli_double("--momentum", v, 0, 0.999999, &o->momentum))
		return -1;
	if ((v = cli_opt(a, "--weight-decay")) && cli_double("--weight-decay", v, 0, 1, &o->wd))
		return -1;
	if ((v = cli_opt(a, "--tau")) && cli_double("--tau", v, 1e-4, 10, &o->tau))
		return -1;
	if ((v = cli_opt(a, "--bn-groups")) && cli_int("--bn-groups", v, 1, 64, &o->groups))
		return -1;
	if ((v = cli_opt(a, "--gradient"))) {
		if (strcmp(v, "full") == 0)
			o->mode = ISIF_GRAD_FULL;
		else if (strcmp(v, "reference") != 0) {
			fprintf(stderr, "isif step: --gradient must be reference or full\n");
			return -1;
		}
	}
	o->nesterov = cli_flag(a, "--nesterov");
	return 0;
}

/* Forward, loss, backward and one SGD update; returns the loss or NaN. */
static double train_step(struct isif_model *m, struct isif_sgd *opt, const float *x, int B,
			 int H, int W, const struct step_opts *o, struct isif_error *err)
{
	int D = isif_model_embed_dim(m);
	float *ws = malloc(isif_loss_workspace(B) * sizeof(float));
	float *dout = malloc((size_t)B * D * sizeof(float));
	double loss = NAN;
	const float *emb;
	if (!ws || !dout)
		goto out;
	if (isif_model_forward(m, x, B, H, W, true, (int)o->groups, &emb, err))
		goto out;
	loss = isif_loss_forward_backward(dout, emb, B, D, (float)o->tau, o->mode, ws);
	isif_model_zero_grad(m);
	if (isif_model_backward(m, dout, err)) {
		loss = NAN;
		goto out;
	}
	isif_sgd_step(opt, isif_model_params(m), isif_model_grads(m), (float)o->lr);
out:
	free(ws);
	free(dout);
	return loss;
}

int cmd_step(int argc, char **argv)
{
	struct cli_args a;
	cli_args_init(&a, argc, argv);
	if (cli_help(&a)) {
		fputs(step_help, stdout);
		cli_args_free(&a);
		return 0;
	}
	const char *ck = cli_opt(&a, "--checkpoint"), *model = cli_opt(&a, "--model");
	const char *va = cli_opt_nth(&a, "--views", 2, 0), *vb = cli_opt_nth(&a, "--views", 2, 1);
	const char *out = cli_opt(&a, "--out"), *optim_in = cli_opt(&a, "--optim-in");
	const char *optim_out = cli_opt(&a, "--optim-out");
	struct step_opts o;
	struct isif_npy A = { 0 }, Bv = { 0 };
	struct isif_model *m = NULL;
	struct isif_sgd opt = { 0 };
	float *x = NULL;
	struct isif_error err = {0};
	int rc = 2;
	bool bf16 = cli_flag(&a, "--bf16");
	if (parse_step_opts(&a, &o) || cli_check_unused(&a, "step"))
		goto out;
	if (!ck || !va || !out) {
		fprintf(stderr, "isif step: --checkpoint, --views and --out are required\n%s", step_help);
		goto out;
	}
	rc = 1;
	if (cli_load_model(ck, model, &m, NULL) || read_views(va, vb, &A, &Bv, &x))
		goto out;
	if (bf16)
		isif_model_set_precision(m, ISIF_PREC_BF16);
	int B = 2 * (int)A.shape[0];
	if (isif_sgd_init(&opt, isif_model_num_params(m), (float)o.momentum, 0, (float)o.wd,
			  o.nesterov) ||
	    (optim_in && isif_optim_load(&opt, m, optim_in, &err))) {
		fprintf(stderr, "isif step: %s\n", err.msg[0] ? err.msg : "out of memory");
		goto out;
	}
	double loss = train_step(m, &opt, x, B, (int)A.shape[2], (int)A.shape[3], &o, &err);
	if (loss != loss) {
		fprintf(stderr, "isif step: %s\n", err.msg[0] ? err.msg : "step failed");
		goto out;
	}
	if (isif_checkpoint_save(m, out, NULL, &err) ||
	    (optim_out && isif_optim_save(&opt, m, optim_out, &err))) {
		fprintf(stderr, "isif step: %s\n", err.msg);
		goto out;
	}
	printf("loss %.9g\n", loss);
	rc = 0;
out:
	free(x);
	free(A.data);
	free(Bv.data);
	isif_sgd_free(&opt);
	isif_model_free(m);
	cli_args_free(&a);
	return rc;
}
