/*
 * test_auth.c — the token file of --auth (src/base/auth.c): what it accepts and
 * refuses, roles, the check, a reload that fails keeping the old tokens;
 * and a JOB record's owner across sj_encode/sj_decode, with a record
 * written before the owner field still read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "store/store_journal.h"
#include "tap.h"

static char path[] = "/tmp/test_auth.XXXXXX";

static void
write_file(const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static int
load(const char *text, mode_t mode, char *err, size_t len)
{
	write_file(text, mode);
	return auth_load(path, err, len);
}

static bool
check(const char *tok, const char *name, unsigned roles)
{
	struct auth_id id;

	if (!auth_check(tok, strlen(tok), &id))
		return name == NULL;
	return name != NULL && strcmp(id.name, name) == 0 && id.roles == roles;
}

int
main(void)
{
	char err[512];
	struct sj_rec r, d;
	struct buf b = { 0 };
	unsigned roles;
	int fd = mkstemp(path);

	plan(17);
	close(fd);
	ok(!auth_enabled(), "no table before --auth");
	ok(load("# tokens\n\nalice master 0123456789abcdef\n"
	    "  wk worker 1111111111111111x\nroot admin master 2222222222222222\n",
	    0600, err, sizeof err) == 0, "a good file loads (%s)", err);
	ok(auth_ntokens() == 3, "three tokens");
	ok(check("0123456789abcdef", "alice", AUTH_MASTER), "alice's token is alice, master");
	ok(check("1111111111111111x", "wk", AUTH_WORKER), "wk is a worker");
	ok(check("2222222222222222", "root", AUTH_ADMIN | AUTH_MASTER), "roles add up");
	ok(check("0123456789abcdeF", NULL, 0) && check("", NULL, 0) &&
	    check("0123456789abcdef0", NULL, 0), "near misses are no token");
	ok(auth_name("wk", &roles) && roles == AUTH_WORKER && !auth_name("bob", &roles),
	    "names are found by name");
	ok(load("alice master 0123456789abcdef\n", 0640, err, sizeof err) < 0 &&
	    strstr(err, "chmod 600") != NULL, "group-readable is refused: %s", err);
	ok(load("alice master 0123456789abcdef\n", 0602, err, sizeof err) < 0,
	    "world-writable is refused");
	ok(load("alice boss 0123456789abcdef\n", 0600, err, sizeof err) < 0 &&
	    strstr(err, "line 1") != NULL, "an unknown role is refused: %s", err);
	ok(load("alice master short\n", 0600, err, sizeof err) < 0,
	    "a short token is refused");
	ok(load("a master 0123456789abcdef\nb worker 0123456789abcdef\n", 0600,
	    err, sizeof err) < 0 && strstr(err, "line 2") != NULL,
	    "a token twice is refused: %s", err);
	ok(load("alice master\n", 0600, err, sizeof err) < 0, "a line without roles");
	ok(check("0123456789abcdef", "alice", AUTH_MASTER) && auth_ntokens() == 3,
	    "failed loads kept the old table");
	auth_free();
	unlink(path);

	/* The owner is the last field of a JOB record. */
	memset(&r, 0, sizeof r);
	r.kind = SJ_JOB;
	r.key.p = "k1"; r.key.n = 2;
	r.type.p = "t"; r.type.n = 1;
	r.body.p = "{}"; r.body.n = 2;
	r.owner.p = "alice"; r.owner.n = 5;
	sj_encode(&r, &b);
	ok(sj_decode(SJ_JOB, buf_head(&b), (uint32_t)buf_used(&b), &d) == 0 &&
	    d.owner.p != NULL && strcmp(d.owner.p, "alice") == 0, "the owner is kept");
	/* A record from before: no SJ_F_OWNER, no last string. */
	buf_head(&b)[8 + 8 + 4] &= (char)~SJ_F_OWNER;
	ok(sj_decode(SJ_JOB, buf_head(&b), (uint32_t)buf_used(&b) - (4 + 5 + 1), &d) == 0 &&
	    d.owner.p == NULL && strcmp(d.key.p, "k1") == 0,
	    "a record written before owners existed reads without one");
	buf_free(&b);
	return done();
}
