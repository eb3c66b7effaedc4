/*
 * slow_fsync.c — LD_PRELOAD for web_durable.bats: fdatasync and fsync
 * block while the file named by $SLOW_FSYNC_GATE exists, so that a test
 * can see what the daemon sends while its store is behind.  Only the
 * journal's sync thread calls them; the loop keeps running.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

static void
hold(void)
{
	const char *gate = getenv("SLOW_FSYNC_GATE");

	while (gate != NULL && access(gate, F_OK) == 0)
		usleep(10000);
}

int
fdatasync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");

	hold();
	return real(fd);
}

int
fsync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");

	hold();
	return real(fd);
}
