/*
 * core/cli/cli.h — shared helpers of the `isif` command line: option
 * scanning, loading a model from a checkpoint, and the sub-commands.
 * The command line talks to the engine only through include/isif/.
 */
#ifndef ISIF_CLI_H
#define ISIF_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "isif/nn/model.h"

/* A sub-command's options: "--name value" pairs and "--flag" switches. */
struct cli_args {
	int argc;
	char **argv;
	bool *used;     /* which argv entries were consumed */
	bool bad;       /* an option lacked its value (reported already) */
};

int cli_args_init(struct cli_args *a, int argc, char **argv);
void cli_args_free(struct cli_args *a);

/* Value of --name (NULL if absent); n_values > 1 takes that many words. */
const char *cli_opt(struct cli_args *a, const char *name);
const char *cli_opt_nth(struct cli_args *a, const char *name, int n_values, int k);
bool cli_flag(struct cli_args *a, const char *name);
bool cli_help(struct cli_args *a);

/* Reports the first unconsumed argument as an error; 0 when all were used. */
int cli_check_unused(struct cli_args *a, const char *cmd);

/* Number parsing with range checks; print an error and return -1 on failure. */
int cli_int(const char *name, const char *text, long min, long max, long *out);
int cli_double(const char *name, const char *text, double min, double max, double *out);

/* Threads the commands compute on: one per online core. */
int cli_threads(void);

/* Creates the model a checkpoint holds (name from its metadata unless
 * `model` is given; channels and embedding width from its tensors), loads
 * the weights and sets its threads to cli_threads(). Prints the error and
 * returns non-zero on failure. */
enum isif_rc cli_load_model(const char *checkpoint, const char *model, struct isif_model **out,
			    int *crop);

/* Starts csv (initialised here; 64 MiB bound) with the metrics header and
 * the rows of epochs <= upto that DIR/metrics.csv already holds, so a
 * resumed run keeps its earlier epochs (isif train --resume, isif group). */
struct isif_strbuf;
void cli_metrics_csv_start(struct isif_strbuf *csv, const char *dir, int upto);

/* Loads dataset `name` (a known name or a directory) in format (NULL:
 * auto), folder images at image_size (NULL: default); prints the error and
 * returns -1 on failure. */
struct isif_dataset;
int cli_load_dataset(const char *name, const char *format, const char *image_size,
		     struct isif_dataset *ds);

/* Keeps the train_subset images of s (the same N `isif train --train-subset N`
 * trains on), in place, labels too; unchanged when memory runs out. */
struct isif_split;
void cli_keep_subset(struct isif_split *s, int64_t n);

/* Prints `isif train`'s spec flags from the spec's field table: per flag its
 * help, then the field, its allowed values and default. */
void cli_spec_flags_help(FILE *out);

/* One line of JSON for similarity histograms, as GET /jobs/{id}/similarity
 * has them ("epoch" first when epoch > 0; no job, no epochs list). */
struct isif_strbuf;
struct isif_simhist;
void cli_simhist_json(struct isif_strbuf *b, int epoch, const struct isif_simhist *h);

/* A job of `isif group` as its report needs it (strings borrowed). */
struct cli_group_job {
	int point;                  /* grid point index */
	const char *values;         /* its grid values, compact JSON */
	const char *point_values;   /* the same without seed */
	const char *dir;            /* its output directory (metrics.csv) */
	bool failed;
};

/* Summarises the jobs from their metrics.csv files per grid point
 * (isif_group_summary), writes out/summary.json and out/summary.csv and
 * prints a table of `metric` (mean ± std per point and epoch). 0, or 1
 * when a file cannot be written (printed). */
struct isif_group_grid;
int cli_group_report(const char *out, const struct isif_group_grid *g,
		     const struct cli_group_job *jobs, long n, const char *metric);

int cmd_init(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_step(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_group(int argc, char **argv);
int cmd_knn(int argc, char **argv);
int cmd_unseen(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_spec_doc(int argc, char **argv);
int cmd_index(int argc, char **argv);

#endif
