/*
 * fs_write.c — the tree's line sinks (queue, submit, kick, channels/C
 * written, the numbers of a type): each newline-ended line is one JSON
 * text; a write(2) with a bad line fails whole (EINVAL).  Writes that
 * submit wait for the store (fs_release_held).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include <linux/fuse.h>    /* struct fuse_open_out, FOPEN_STREAM */

#include "tree/fs.h"

/* ----------------------------------------------------------- line sinks */

/* ------------------------------------------- the job lifecycle */

/* kick_line: one line written to types/T/kick: a dead job's id as listed
 * in types/T/dead (its file name: percent-encoded where need be), or as
 * JSON (a string or an integer).  ENOENT: no such job of T; EINVAL: it is
 * not dead. */
static int
kick_line(struct fs *fs, struct handle *h, const char *text, size_t len)
{
	struct broker *b = fs->srv->broker;
	json_t *v = json_loadb(text, len, JSON_DECODE_ANY, NULL);
	char key[ID_MAX + 1], name[3 * ID_MAX + 1], *dec = NULL;
	struct job *j;

	key[0] = '\0';
	if (json_is_string(v) && json_string_length(v) <= ID_MAX)
		snprintf(key, sizeof key, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(key, sizeof key, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (len < sizeof name) {
		memcpy(name, text, len);
		name[len] = '\0';
		if ((dec = id_decode(name)) != NULL && strlen(dec) <= ID_MAX)
			snprintf(key, sizeof key, "%s", dec);
		free(dec);
	}
	json_decref(v);
	if ((j = broker_find(b, key)) == NULL || j->type != broker_type(b, h->owner->name, false)) {
		fs_why(fs, "no job of %s has id %.*s", h->owner->name,
		    (int)(len < 100 ? len : 100), text);
		return -ENOENT;
	}
	if (broker_kick(b, j) != BERR_OK) {
		fs_why(fs, "job %s is %s, not dead", j->key, job_status(j));
		return -EINVAL;
	}
	return 0;
}

/* kick_write: each line of a write to types/T/kick (see kick_line); the
 * first that fails stops it (those before are kicked). */
static int
kick_write(struct fs *fs, struct handle *h, const char *data, size_t size)
{
	const char *p = data, *end = data + size, *nl;
	int rc = 0;

	while (p < end && rc == 0) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		while (p < nl && (*p == ' ' || *p == '\t'))
			p++;
		if (nl > p)
			rc = kick_line(fs, h, p, (size_t)(nl - p));
		p = nl + 1;
	}
	return rc;
}

/* The fields an envelope may have. */
static const char *const envelope_keys[] = {
	"body", "priority", "delay", "at", "retries", "backoff", "after", "id",
	"timeout", NULL,
};

/* env_int: an optional integer field; false if present and not one. */
static bool
env_int(json_t *o, const char *k, int64_t *v, bool *set)
{
	json_t *x = json_object_get(o, k);

	*v = 0;
	if (set != NULL)
		*set = x != NULL;
	if (x == NULL)
		return true;
	if (!json_is_integer(x))
		return false;
	*v = json_integer_value(x);
	return true;
}

/* env_id: an id (string or integer) as a key and its JSON text. */
static bool
env_id(json_t *x, char *key, char **idjson)
{
	if (json_is_integer(x))
		snprintf(key, ID_MAX + 1, "%" JSON_INTEGER_FORMAT, json_integer_value(x));
	else if (json_is_string(x) && json_string_length(x) <= ID_MAX &&
	    id_valid(json_string_value(x), json_string_length(x)))
		memcpy(key, json_string_value(x), json_string_length(x) + 1);
	else
		return false;
	if (idjson != NULL)
		*idjson = json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT);
	return true;
}

/*
 * berr_errno: the errno of a broker call's answer (0: none), for every
 * code (no default: -Wswitch finds a code missed here); a refusal's
 * reason, the broker's, goes to fs_why.
 */
static int
berr_errno(struct fs *fs, enum broker_err err)
{
	struct broker *b = fs->srv->broker;

	if (err != BERR_OK && err != BERR_PENDING)
		fs_why(fs, "%s", broker_err_reason(b, err));
	switch (err) {
	case BERR_OK:
	case BERR_PENDING:
		return 0;
	case BERR_ID_EXISTS:
		return -EEXIST;
	case BERR_UNKNOWN_ID:
		return -ENOENT;
	case BERR_FULL_JOBS:
	case BERR_FULL_MEMORY:
		return -ENOSPC;
	case BERR_UNAVAILABLE:   /* a full disk says so */
		return broker_store_error(b) == ENOSPC || broker_store_error(b) == EDQUOT ?
		    -ENOSPC : -EIO;
	case BERR_SELF:
	case BERR_INVALID:
	case BERR_STATE:
		return -EINVAL;
	}
	return -EIO;
}

/*
 * envelope_submit: one line written to types/T/submit, a JSON object
 * {"body":B, and any of "priority", "delay", "at", "retries", "backoff",
 * "after", "id", "timeout"} (the options of a TCP submit, the same
 * checks).  EINVAL: not such an object; ENOENT: "after" names no job;
 * EEXIST: "id" names an unfinished job; ENOSPC: full.
 */
static int
envelope_submit(struct fs *fs, struct handle *h, const char *text, size_t len)
{
	struct broker *b = fs->srv->broker;
	json_t *o = json_loadb(text, len, 0, NULL), *x;
	static char keys[LIFE_AFTER_MAX][ID_MAX + 1];
	const char *after[LIFE_AFTER_MAX];
	char key[ID_MAX + 1], *idjson = NULL, *body = NULL;
	struct submit_req r;
	const char *k;
	struct job *j;
	size_t i;
	int rc = -EINVAL;

	memset(&r, 0, sizeof r);
	if (!json_is_object(o) || (x = json_object_get(o, "body")) == NULL) {
		fs_why(fs, "an envelope is a JSON object with \"body\"");
		goto out;
	}
	json_object_foreach(o, k, x) {
		for (i = 0; envelope_keys[i] != NULL && strcmp(envelope_keys[i], k) != 0; i++)
			;
		if (envelope_keys[i] == NULL) {
			fs_why(fs, "unknown field \"%.100s\"", k);
			goto out;   /* a misspelt option is not ignored */
		}
	}
	if (!env_int(o, "priority", &r.priority, NULL) ||
	    !env_int(o, "delay", &r.delay_ms, NULL) ||
	    !env_int(o, "at", &r.at_ms, NULL) ||
	    !env_int(o, "retries", &r.retries, &r.retries_set) ||
	    !env_int(o, "backoff", &r.backoff_ms, NULL) ||
	    !env_int(o, "timeout", &r.timeout_ms, NULL) || r.timeout_ms < 0) {
		fs_why(fs, "priority, delay, at, retries, backoff and timeout are "
		    "integers (timeout not negative)");
		goto out;
	}
	if (json_object_get(o, "backoff") != NULL && r.backoff_ms == 0)
		r.backoff_ms = -1;   /* refused by the broker, as over TCP */
	if ((x = json_object_get(o, "id")) != NULL) {
		if (!env_id(x, key, &idjson)) {
			fs_why(fs, "\"id\" is a string or an integer of at most %d bytes", ID_MAX);
			goto out;
		}
		r.key = key;
		r.idjson = idjson;
	}
	if ((x = json_object_get(o, "after")) != NULL) {
		if (!json_is_array(x) || json_array_size(x) > LIFE_AFTER_MAX) {
			fs_why(fs, "\"after\" is an array of at most %d job ids", LIFE_AFTER_MAX);
			goto out;
		}
		for (i = 0; i < json_array_size(x); i++) {
			if (!env_id(json_array_get(x, i), keys[i], NULL)) {
				fs_why(fs, "\"after\" is an array of job ids (strings or integers)");
				goto out;
			}
			after[i] = keys[i];
		}
		r.after = after;
		r.nafter = json_array_size(x);
	}
	body = json_dumps(json_object_get(o, "body"), JSON_ENCODE_ANY | JSON_COMPACT);
	r.type = h->owner->name;
	r.body = body;
	r.body_len = strlen(body);
	/* (cluster mode, BERR_PENDING: the reply waits for Redis (reply_ok)) */
	if ((rc = berr_errno(fs, broker_submit(b, &r, &j))) != 0)
		goto out;
	log_debug("job %s: submitted in the tree (an envelope)", j->key);
	if (h->accmode == O_RDWR)
		append_id(&h->data, j->key, "\n");
out:
	free(body);
	free(idjson);
	json_decref(o);
	return rc;
}

/* num_write: a number (or two) written to types/T/limit or retries. */
static int
num_write(struct fs *fs, struct handle *h, const char *data, size_t size)
{
	struct broker *b = fs->srv->broker;
	char text[64], *end;
	long long v, w = -1;

	fs_why(fs, "%s", h->kind == NK_TYPE_RETRIES ? "write a number of retries "
	    "[and a backoff in ms]" : "write a number");
	if (size == 0 || size >= sizeof text)
		return -EINVAL;
	memcpy(text, data, size);
	text[size] = '\0';
	errno = 0;
	v = strtoll(text, &end, 10);
	if (end == text || errno != 0)
		return -EINVAL;
	if (h->kind == NK_TYPE_RETRIES && *end == ' ') {
		w = strtoll(end, &end, 10);
		if (errno != 0 || w < 0)
			return -EINVAL;
	}
	while (*end == '\n' || *end == ' ')
		end++;
	if (*end != '\0')
		return -EINVAL;
	if (broker_type(b, h->owner->name, false) == NULL) {
		fs_why(fs, "no type is named %s", h->owner->name);
		return -ENOENT;
	}
	if (v < 0)
		v = -2;   /* refused */
	if (broker_type_configure(b, h->owner->name, h->kind == NK_TYPE_LIMIT ? v : -1,
	    h->kind == NK_TYPE_RETRIES ? v : -1, w) != BERR_OK) {
		fs_why(fs, "%s", broker_err_detail(b));
		return -EINVAL;
	}
	fs->why[0] = '\0';
	return 0;
}

/* sink_deliver: submit one job body, or publish one message.  -ENOSPC:
 * the broker is full (--max-jobs, --max-memory); -EIO (-ENOSPC for a full
 * disk): the store cannot take writes (berr_errno). */
static int
sink_deliver(struct fs *fs, struct handle *h, const char *text, size_t len)
{
	struct broker *b = fs->srv->broker;
	struct submit_req r;
	struct job *j;
	int rc;

	if (h->kind == NK_CHAN) {
		if (chan_publish(fs->srv->broker, h->owner->name, text, len) != SIZE_MAX)
			return 0;
		fs_why(fs, "%s", broker_store_reason(b));   /* cluster mode: Redis is away */
		return -EIO;
	}
	if (h->kind == NK_TYPE_SUBMIT)
		return envelope_submit(fs, h, text, len);
	memset(&r, 0, sizeof r);
	r.type = h->owner->name;
	r.body = text;
	r.body_len = len;
	/* (cluster mode, BERR_PENDING: the reply waits for Redis (reply_ok)) */
	if ((rc = berr_errno(fs, broker_submit(b, &r, &j))) != 0)
		return rc;
	log_debug("job %s: submitted in the tree", j->key);
	if (h->accmode == O_RDWR)
		append_id(&h->data, j->key, "\n");
	return 0;
}

/*
 * fs_sink_write: the written bytes cut into lines by lines_feed() (see
 * fs_lines.c: every complete line checked before any is delivered, so a
 * bad line fails the whole write, EINVAL, and drops the unfinished line;
 * a line longer than --max-frame is EFBIG), then each delivered.
 */
int
fs_sink_write(struct fs *fs, struct handle *h, const char *data, size_t size,
    bool final)
{
	struct buf texts = { 0 };
	const char *p, *nl;
	size_t n;
	int rc;

	rc = lines_feed(&h->lines, data, size, final, fs->srv->opt.max_frame,
	    &texts, &n, fs->why, sizeof fs->why);
	if (rc == 0 && n > 0) {
		if (h->kind == NK_CHAN)
			chan_get(fs->srv->broker, h->owner->name, true);  /* a write makes the channel */
		/* A refusal (ENOSPC) stops here: the lines before it stay submitted. */
		for (p = texts.data; p < texts.data + texts.len && rc == 0; p = nl + 1) {
			nl = memchr(p, '\n', (size_t)(texts.data + texts.len - p));
			rc = sink_deliver(fs, h, p, (size_t)(nl - p));
		}
		if (h->accmode == O_RDWR)
			handle_wake(fs, h);
	}
	buf_free(&texts);
	return rc;
}

/*
 * reply_ok: a write (or close) that submitted jobs returns once they are
 * durable: while the store is behind, the reply waits in fs->held for the
 * durable event (fs_release_held).  Without a store it goes at once.
 */
static void
reply_ok(struct fs *fs, fuse_req_t req, bool write, size_t size)
{
	struct broker *b = fs->srv->broker;
	struct held_reply *r;

	if (broker_held(b)) {
		r = xcalloc(1, sizeof *r);
		r->req = req;
		r->write = write;
		r->size = size;
		r->mark = broker_mark(b);
		TAILQ_INSERT_TAIL(&fs->held, r, entry);
	} else if (write)
		fuse_reply_write(req, size);
	else
		fuse_reply_err(req, 0);
}

/* fs_release_held: answer the replies the store made durable (all of them,
 * failing with err if non-zero: unmounting). */
void
fs_release_held(struct fs *fs, uint64_t durable, int err)
{
	struct held_reply *r;

	while ((r = TAILQ_FIRST(&fs->held)) != NULL && (err != 0 || r->mark <= durable)) {
		TAILQ_REMOVE(&fs->held, r, entry);
		if (err != 0 && r->mark > durable)
			fuse_reply_err(r->req, err);
		else if (r->write)
			fuse_reply_write(r->req, r->size);
		else
			fuse_reply_err(r->req, 0);
		free(r);
	}
}

/* fs_write: lines to a queue or a channel; all or nothing per write(2). */
void
fs_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size,
    off_t off, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	int rc;

	(void)ino;
	(void)off;
	fs->why[0] = '\0';
	if (h->kind == NK_TYPE_LIMIT || h->kind == NK_TYPE_RETRIES)
		rc = num_write(fs, h, data, size);
	else if (h->kind == NK_TYPE_KICK)
		rc = kick_write(fs, h, data, size);
	else if (h->kind == NK_TYPE_PAUSED)
		rc = 0;   /* what is written to it does not matter */
	else if (!NK_TYPE_WRITABLE(h->kind) && h->kind != NK_CHAN)
		rc = -EBADF;
	else
		rc = fs_sink_write(fs, h, data, size, false);
	if (rc != 0) {
		fs_refused(fs, h, rc);
		fuse_reply_err(req, -rc);
	} else
		reply_ok(fs, req, true, size);
}

/* fs_flush: close(2): a last line without newline counts now, and can
 * fail; only a close that submitted waits for the store (any close may
 * come while the store is behind, or failing). */
void
fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	bool submitted = false;
	int rc = 0;

	(void)ino;
	fs->why[0] = '\0';
	if (buf_used(&h->lines.pending) > 0) {
		rc = fs_sink_write(fs, h, NULL, 0, true);
		submitted = true;
	}
	if (rc != 0) {
		fs_refused(fs, h, rc);
		fuse_reply_err(req, -rc);
	} else if (submitted)
		reply_ok(fs, req, false, 0);
	else
		fuse_reply_err(req, 0);  /* nothing to make durable: no wait */
}

