/*
 * server/serve_nice.c — see serve_nice.h. Linux keeps a nice value per
 * thread: setpriority(PRIO_PROCESS, tid) changes that thread alone.
 */
#include "serve_nice.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

static atomic_int serve_nice_value;
static _Thread_local bool applied;

void serve_nice_set(int nice)
{
	atomic_store(&serve_nice_value, nice);
}

void serve_nice_apply(void)
{
	if (applied)
		return;
	applied = true;
	int nice = atomic_load(&serve_nice_value);
	if (nice > 0 && setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice) != 0)
		log_warn("--serve-nice %d: setpriority failed; this thread keeps its priority", nice);
}
