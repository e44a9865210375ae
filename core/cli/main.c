/*
 * core/cli/main.c — `isif`, the engine on the command line (no daemon):
 * dispatches to the sub-commands.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
	const char *name, *what;
	int (*run)(int argc, char **argv);
} commands[] = {
	{ "init", "write a freshly initialised model checkpoint", cmd_init },
	{ "embed", "embed a .npy batch or a dataset split with a checkpoint", cmd_embed },
	{ "step", "one ISIF training step on two given view batches", cmd_step },
	{ "train", "train on a dataset, evaluating with kNN each epoch", cmd_train },
	{ "group", "train a grid of jobs (seeds, settings) and summarise each point", cmd_group },
	{ "knn", "kNN accuracy of a checkpoint (or of raw pixels)", cmd_knn },
	{ "unseen", "Recall@K, NMI, similarity of a checkpoint on held-out classes", cmd_unseen },
	{ "probe", "linear probe top-1 of a checkpoint's embedding and backbone features", cmd_probe },
	{ "index", "build an approximate (FAISS) index from an .npy, or grow a gallery", cmd_index },
	{ "bench", "time training steps of a model", cmd_bench },
	{ "spec-doc", "print docs/API.md's job-spec table (from the spec's field table)", cmd_spec_doc },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: isif COMMAND [options]   (isif COMMAND --help for its options)\n"
		   "Unsupervised embedding learning with the Invariant and Spreading\n"
		   "Instance Feature loss (Ye et al., CVPR 2019) on the CPU.\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].what);
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 2, argv + 2);
	fprintf(stderr, "isif: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
