/*
 * tests/server/test_mpi_retry.c — which failed MPI attempts are retried:
 * mpirun.log texts as Open MPI 4 writes them (copied from real runs). A
 * rank killed by a signal, or a failure with no message of isif's own, may
 * pass on another attempt; a rank's own error ("isif train: ..." or, from
 * the dataset load, "isif: ...") would repeat and is not retried.
 */
#include "../unit/check.h"

#include <stdio.h>
#include <string.h>

#include "jobmpi.h"

static const char *const MPI_EXIT1 =
	"--------------------------------------------------------------------------\n"
	"Primary job  terminated normally, but 1 process returned\n"
	"a non-zero exit code. Per user-direction, the job has been aborted.\n"
	"--------------------------------------------------------------------------\n"
	"mpirun detected that one or more processes exited with non-zero status, thus causing\n"
	"the job to be terminated. The first process to do so was:\n\n"
	"  Process name: [[10072,1],0]\n  Exit code:    1\n";

static bool retry_for(const char *name, const char *own, const char *tail)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (!f)
		return false;
	fputs(own, f);
	fputs(tail, f);
	fclose(f);
	return jobmpi_worth_retrying(path);
}

TEST(srv_mpi_retry_classifies_failures)
{
	/* a bad dataset seen by the ranks: both say so, nothing died */
	CHECK(!retry_for("ds.log", "isif: /d/train/a/zz.png: corrupt PNG: truncated before IEND\n"
			 "isif: /d/train/a/zz.png: corrupt PNG: truncated before IEND\n", MPI_EXIT1));
	CHECK(!retry_for("spec.log", "isif train: invalid job spec: epochs: must be >= 1\n",
			 MPI_EXIT1));
	/* no message of isif's own: retried */
	CHECK(retry_for("quiet.log", "", MPI_EXIT1));
	/* a rank killed: retried even though the survivor then reports a failure */
	CHECK(retry_for("killed.log", "isif train: rank failed: peer disconnected\n",
			"mpirun noticed that process rank 1 with PID 0 on node h exited on signal "
			"9 (Killed).\n"));
	/* "isif: " only at a line's start: a path holding it is not isif's message */
	CHECK(retry_for("path.log", "dataset cache: hit /c/isif: x.isifds\n", MPI_EXIT1));
}
