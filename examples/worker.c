/*
 * worker.c — a jobfs worker on libjobfs: joins TYPE (default "echo") and
 * answers each job with {"echo": BODY}.  Host, ports, token and TLS come
 * from the environment (JOBFS_HOST, JOBFS_WORKER_PORT, JOBFS_TOKEN, ...);
 * it reconnects when the daemon restarts.
 *
 *   cc -o worker worker.c $(pkg-config --cflags --libs jobfs)
 */
#define _GNU_SOURCE 1	/* asprintf */
#include <stdio.h>
#include <stdlib.h>
#include <jobfs_client.h>

static void
echo(jfc_job *job, void *arg)
{
	char *result;

	(void)arg;
	jfc_job_partial(job, "\"working\"");
	if (asprintf(&result, "{\"echo\":%s}", jfc_job_body(job)) < 0)
		exit(1);
	jfc_job_respond(job, result);
	free(result);
}

int
main(int argc, char **argv)
{
	jfc_client *c = jfc_new();
	jfc_worker *w;

	if (jfc_from_env(c) < 0)
		return fprintf(stderr, "worker: %s\n", jfc_error(c)), 2;
	w = jfc_worker_new(c, argc > 1 ? argv[1] : "echo");
	jfc_worker_on_job(w, echo, NULL);
	return jfc_worker_run(w) == 0 ? 0 : 1;
}
