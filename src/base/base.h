/*
 * base.h — what every part of jobfs uses, the CLI included: allocation,
 * byte buffers, the log, the wire framing, the message parser, sockets,
 * ids and type names, tokens (--auth), CRC-32C and the crash points.
 * It depends on nothing else in src/.
 */
#ifndef JOBFS_BASE_H
#define JOBFS_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/types.h>

#include <ev.h>
#include <jansson.h>
#include <uthash.h>

#define JOBFS_VERSION "0.1.0"


/* ------------------------------------------------------------------ util.c */

void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xrealloc(void *, size_t);
char *xstrdup(const char *);
char *xstrndup(const char *, size_t);
char *xprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

/* A byte buffer with a read offset: bytes [off, len) are live. */
struct buf {
	char   *data;
	size_t  off;
	size_t  len;
	size_t  cap;
};

static inline size_t buf_used(const struct buf *b) { return b->len - b->off; }
static inline char *buf_head(const struct buf *b) { return b->data + b->off; }
void  buf_reserve(struct buf *, size_t extra);
void  buf_append(struct buf *, const void *, size_t);
void  buf_append_str(struct buf *, const char *);
void  buf_consume(struct buf *, size_t);
void  buf_compact(struct buf *);
void  buf_free(struct buf *);
int   buf_json_cb(const char *, size_t, void *);  /* json_dump_callback sink */

double now_wall(void);

/* ------------------------------------------------------------------- log.c */

enum log_level { LVL_ERR, LVL_WARN, LVL_INFO, LVL_DEBUG };

void log_init(int level, bool to_syslog);
void log_set_syslog(bool);
int  log_level(void);
void log_msg(enum log_level, const char *, ...) __attribute__((format(printf, 2, 3)));
void fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
#define log_err(...)   log_msg(LVL_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LVL_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_level() >= LVL_DEBUG) log_msg(LVL_DEBUG, __VA_ARGS__); } while (0)

/*
 * A kind of line that may come in floods (a refused connection, a failed
 * attempt) goes through a struct log_limit: the first `burst` lines of
 * each window of log_interval() seconds are logged, the others only
 * counted, and the caller logs that count in one summary line.
 */
struct log_limit {
	double   start;   /* when the window began; 0: none yet */
	unsigned logged;  /* lines logged in it */
	uint64_t missed;  /* lines counted, not logged, since the last summary */
};
double log_interval(void);   /* 10 s; tests: $JOBFS_LOG_INTERVAL */
bool   log_limit_take(struct log_limit *, double now, unsigned burst);

/* ----------------------------------------------------------------- frame.c */

/* The wire framing: a 4-byte big-endian length, then that many bytes. */
#define FRAME_HEADER 4

enum frame_status {
	FRAME_NEED,       /* not a whole frame yet */
	FRAME_OK,         /* *payload, *len describe one frame */
	FRAME_TOO_LARGE,  /* the announced length exceeds the limit */
};

enum frame_status frame_next(const char *data, size_t avail, size_t max,
    const char **payload, uint32_t *len);
void     frame_put_len(char *out, uint32_t len);
uint32_t frame_get_len(const char *in);

/* ------------------------------------------------------------------- msg.c */

/* JSON kinds of a message field. */
enum jkind { JK_STRING, JK_INT, JK_REAL, JK_TRUE, JK_FALSE, JK_NULL, JK_OBJECT, JK_ARRAY };

/* The top-level fields the protocol reads; any others are checked and skipped. */
enum msg_key {
	MK_TYPE, MK_ACTION, MK_JOB_TYPE, MK_ID, MK_BODY, MK_PRIORITY, MK_TIMEOUT,
	MK_DETACH, MK_STREAM, MK_NOTIFY, MK_WORKER, MK_CAPACITY, MK_HEARTBEAT,
	MK_CANCEL, MK_CHANNEL, MK_TOKEN,
	/* the job lifecycle */
	MK_RETRIES, MK_BACKOFF, MK_DELAY, MK_AT, MK_AFTER, MK_LIMIT,
	MK_LOG,       /* a response's or failure's log (jobctl work) */
	/* listings */
	MK_STATE, MK_CURSOR,
	/* repeating jobs */
	MK_NAME, MK_CRON, MK_EVERY,
	MK_COUNT
};

/* One field: a span of the frame, valid while the frame is. */
struct mfield {
	bool        present;
	bool        spaced;   /* holds white space outside strings */
	enum jkind  kind;
	const char *val;
	size_t      len;
};

struct msg {
	struct mfield f[MK_COUNT];
};

int         msg_parse(struct msg *, const char *, size_t, char *err, size_t errlen);
const char *msg_key_name(enum msg_key);
ssize_t     msg_unescape(const char *span, size_t len, char *out, size_t outlen);
bool        msg_string(const struct mfield *, char *out, size_t outlen, size_t *len);
bool        msg_int(const struct mfield *, int64_t *);
const char *msg_value(const struct mfield *, struct buf *scratch, size_t *len);
int         msg_json_compact(const char *, size_t, struct buf *out, char *err, size_t errlen);

/* ------------------------------------------------------------------- net.c */

int  net_listen(const char *addr, int port, char *err, size_t errlen);
int  net_connect(const char *host, int port, char *err, size_t errlen);
int  net_nonblock(int fd);
void net_nodelay(int fd);
void net_peer_name(int fd, char *out, size_t len);
bool net_peer_addr(int fd, char *out, size_t len);  /* true: a loopback peer */
struct sockaddr;
bool net_addr_str(const struct sockaddr *, char *out, size_t len); /* true: loopback */
int  net_local_port(int fd);

/* ---------------------------------------------------------------- crc32c.c */

/* CRC-32C (Castagnoli); crc is 0 to start, or a previous result to continue. */
uint32_t crc32c(uint32_t crc, const void *, size_t);
uint32_t crc32c_soft(uint32_t crc, const void *, size_t);  /* tables only */

/* ----------------------------------------------------------------- crash.c */

/* Crash points (a test seam): JOBFS_CRASH_AT=POINT:N makes the process
 * _exit(137) at the Nth pass through POINT.  See crash.c. */
void crash_init(void);
bool crash_armed(const char *point);
bool crash_due(const char *point);
void crash_now(const char *point) __attribute__((noreturn));
void crash_point(const char *point);

/* -------------------------------------------------------------------- id.c */

#define ID_MAX 255          /* bytes of an id string, and of a type name */
/* Ids and type names as they appear in the tree. */
bool   id_valid(const char *key, size_t len);
bool   type_name_valid(const char *name, size_t len);
size_t id_encoded_len(const char *key);
void   id_encode(const char *key, char *out);   /* out: id_encoded_len + 1 */
char  *id_decode(const char *name);             /* NULL: not an encoded id */

/* ------------------------------------------------------------------ auth.c */

/*
 * Who may do what: the token file of --auth (auth.c), roles,
 * and what a face asks.  auth_check() is the hook for every face (the TCP
 * ports, the web face): a token's name and roles, compared in constant
 * time.  admin may do what master and worker may, and see every job.
 */
#define AUTH_MASTER 0x1
#define AUTH_WORKER 0x2
#define AUTH_ADMIN  0x4
#define AUTH_NAME_MAX 64

struct auth_id {
	char     name[AUTH_NAME_MAX + 1];
	unsigned roles;
};

int      auth_load(const char *path, char *err, size_t errlen);
bool     auth_enabled(void);
size_t   auth_ntokens(void);
bool     auth_check(const char *token, size_t len, struct auth_id *out);
bool     auth_name(const char *name, unsigned *roles);
bool     auth_name_valid(const char *, size_t);
void     auth_free(void);
unsigned auth_peer_count(const char *addr);
void     auth_peer_add(const char *addr);
void     auth_peer_del(const char *addr);
/* Connections a peer address may hold by default (--max-conns-per-addr),
 * TCP and HTTP together: loopback peers are counted only when it is given. */
#define CONNS_PER_ADDR_DEFAULT 256


/* Exit statuses of the daemon, listed in jobfs(8). */
enum {
	EXIT_USAGE  = 1,
	EXIT_LISTEN = 2,
	EXIT_MOUNT  = 3,
	EXIT_START  = 4,
	EXIT_LOCKED = 5,   /* --data DIR is in use by another jobfs */
	EXIT_DATA   = 6,   /* --data DIR cannot be opened or replayed */
};

#endif /* JOBFS_BASE_H */
