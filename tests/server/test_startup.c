/*
 * tests/server/test_startup.c — what isifd checks before it touches its
 * state: the state directory's lock (a second holder is refused with the
 * first one's pid; a symlink, FIFO or hard link in the lock file's place
 * is refused and left alone; the lock is free again once closed) and the
 * listen socket (a port in use is named as such). flock locks of two
 * open(2)s conflict within one process too, so one process plays both
 * daemons.
 */
#include "../unit/check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"
#include "statedir.h"

static void state_path(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", test_tmpdir(), name);
}

TEST(srv_statedir_one_holder)
{
	char dir[512], lock[600], want[64];
	struct isif_error err = {0};
	int a = -1, b = -1;
	state_path(dir, sizeof dir, "state-lock");
	CHECK_EQ(statedir_lock(dir, &a, &err), ISIF_OK);
	CHECK(a >= 0);
	CHECK_EQ(statedir_make_jobs(dir, &err), ISIF_OK);
	/* A second holder is refused and told who holds it. */
	CHECK_EQ(statedir_lock(dir, &b, &err), ISIF_ECONFLICT);
	CHECK(b < 0);
	snprintf(want, sizeof want, "in use by isifd pid %ld (started 20", (long)getpid());
	CHECK_MSG(strstr(err.msg, want) != NULL, "%s", err.msg);
	/* Released (as by the holder's exit, kill -9 included): taken again. */
	statedir_unlock(a);
	CHECK_EQ(statedir_lock(dir, &b, &err), ISIF_OK);
	snprintf(lock, sizeof lock, "%s/" STATEDIR_LOCK_NAME, dir);
	struct stat sb;
	CHECK(stat(lock, &sb) == 0 && S_ISREG(sb.st_mode));
	statedir_unlock(b);
}

TEST(srv_statedir_refuses_odd_lock_files)
{
	char dir[512], lock[600], victim[600], buf[32] = "";
	struct isif_error err = {0};
	int fd = -1;
	state_path(dir, sizeof dir, "state-odd");
	mkdir(dir, 0750);
	snprintf(lock, sizeof lock, "%s/" STATEDIR_LOCK_NAME, dir);
	snprintf(victim, sizeof victim, "%s/victim", dir);
	FILE *f = fopen(victim, "w");
	CHECK(f != NULL);
	if (f) {
		fputs("precious\n", f);
		fclose(f);
	}
	/* A symbolic link: refused, its target untouched. */
	CHECK(symlink(victim, lock) == 0);
	CHECK_EQ(statedir_lock(dir, &fd, &err), ISIF_EIO);
	CHECK_MSG(strstr(err.msg, "symbolic link") != NULL, "%s", err.msg);
	f = fopen(victim, "r");
	CHECK(f && fgets(buf, sizeof buf, f) && strcmp(buf, "precious\n") == 0);
	if (f)
		fclose(f);
	/* A hard link to another file: refused (it would be truncated). */
	unlink(lock);
	CHECK(link(victim, lock) == 0);
	CHECK_EQ(statedir_lock(dir, &fd, &err), ISIF_EIO);
	/* A FIFO: refused at once, not waited on. */
	unlink(lock);
	CHECK(mkfifo(lock, 0600) == 0);
	CHECK_EQ(statedir_lock(dir, &fd, &err), ISIF_EIO);
	CHECK_MSG(strstr(err.msg, "not a plain file") != NULL, "%s", err.msg);
	/* A directory. */
	unlink(lock);
	CHECK(mkdir(lock, 0700) == 0);
	CHECK(statedir_lock(dir, &fd, &err) != ISIF_OK);
	CHECK(fd < 0);
	rmdir(lock);
	CHECK_EQ(statedir_lock(dir, &fd, &err), ISIF_OK);
	statedir_unlock(fd);
}

TEST(srv_listen_port_in_use_named)
{
	struct isif_error err = {0};
	int a = -1, b = -1;
	CHECK_EQ(http_listen("127.0.0.1:0", &a, &err), ISIF_OK);
	struct sockaddr_in sa;
	socklen_t sl = sizeof sa;
	CHECK(a >= 0 && getsockname(a, (struct sockaddr *)&sa, &sl) == 0);
	char spec[64], want[128];
	snprintf(spec, sizeof spec, "localhost:%d", ntohs(sa.sin_port));
	CHECK_EQ(http_listen(spec, &b, &err), ISIF_EIO);
	CHECK(b < 0);
	snprintf(want, sizeof want, "--listen %s: address already in use", spec);
	CHECK_MSG(strcmp(err.msg, want) == 0, "%s", err.msg);
	CHECK_EQ(http_listen("example.com:80", &b, &err), ISIF_EINVAL);
	close(a);
}
