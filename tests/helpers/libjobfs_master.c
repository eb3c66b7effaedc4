/*
 * libjobfs_master.c — the blocking calls of libjobfs, driven from the
 * command line for tests/libjobfs.bats; each prints its answer on stdout:
 *
 *   submit TYPE BODY [OPTIONS]   the id, then (after a wait) the result
 *   submit-nowait TYPE BODY [OPTIONS]   the id
 *   stream TYPE BODY             the first partial, then the result
 *   status ID | cancel ID | wait ID
 *   pubsub CHANNEL BODY          subscribe, publish, print the message
 *   request JSON                 any request and its reply
 *
 * Exit status: 0, or 10 minus the library's negative result.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobfs_client.h>

static int
done(jfc_client *c, int rc, char *out)
{
	if (out != NULL)
		printf("%s\n", out);
	if (rc < 0)
		fprintf(stderr, "libjobfs_master: %s\n", jfc_error(c));
	free(out);
	jfc_free(c);
	return rc < 0 ? 10 - rc : 0;
}

int
main(int argc, char **argv)
{
	jfc_client *c = jfc_new();
	char *id = NULL, *out = NULL, *ch = NULL;
	const char *cmd = argc > 1 ? argv[1] : "";
	int rc;

	if (jfc_from_env(c) < 0 || argc < 3)
		return done(c, JFC_ERR, NULL);
	if (strcmp(cmd, "submit") == 0 || strcmp(cmd, "submit-nowait") == 0 ||
	    strcmp(cmd, "stream") == 0) {
		rc = jfc_submit(c, argv[2], argc > 3 ? argv[3] : NULL,
		    strcmp(cmd, "stream") == 0 ? "{\"stream\":true}" :
		    argc > 4 ? argv[4] : NULL, &id);
		if (rc < 0 || strcmp(cmd, "submit-nowait") == 0)
			return done(c, rc, id);
		if (strcmp(cmd, "submit") == 0)
			printf("%s\n", id);
		if (strcmp(cmd, "stream") == 0 &&
		    (rc = jfc_next_partial(c, id, 10000, &out)) == 0)
			printf("%s\n", out);
		free(out);
		rc = jfc_wait(c, id, 10000, &out);
		free(id);
		return done(c, rc, out);
	}
	if (strcmp(cmd, "status") == 0)
		return rc = jfc_status(c, argv[2], &out), done(c, rc, out);
	if (strcmp(cmd, "cancel") == 0)
		return done(c, jfc_cancel(c, argv[2]), NULL);
	if (strcmp(cmd, "wait") == 0)
		return rc = jfc_wait(c, argv[2], 10000, &out), done(c, rc, out);
	if (strcmp(cmd, "request") == 0)
		return rc = jfc_request(c, argv[2], &out), done(c, rc, out);
	if (strcmp(cmd, "pubsub") == 0 && argc > 3) {
		if ((rc = jfc_subscribe(c, argv[2])) < 0 ||
		    (rc = jfc_publish(c, argv[2], argv[3])) < 0 ||
		    (rc = jfc_next_message(c, 10000, &ch, &out)) < 0)
			return done(c, rc, NULL);
		printf("%s\t", ch);
		free(ch);
		return done(c, 0, out);
	}
	return done(c, JFC_ERR, NULL);
}
