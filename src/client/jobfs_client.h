/*
 * jobfs_client.h — libjobfs, the C client library of jobfs: the whole of
 * its API.  Link with `pkg-config --cflags --libs jobfs`; see libjobfs(3).
 *
 * Three levels, all on one struct jfc_client (the options: host, ports,
 * token, TLS files):
 *
 *   blocking calls   jfc_submit, jfc_wait, jfc_status, jfc_cancel,
 *                    jfc_publish, jfc_subscribe, jfc_next_message: one
 *                    master connection, opened on first use.
 *   the worker       jfc_worker_*: joins a type, hands each job to a
 *                    callback, answers heartbeats, passes cancels on,
 *                    sends partials, responses and failure reports, and
 *                    reconnects with backoff (answers of jobs that end
 *                    while the daemon is away are kept and sent after).
 *                    jfc_worker_run blocks; jfc_worker_start runs it on a
 *                    libev loop of the caller's.
 *   connections      jfc_conn_*: a framed, buffered, non-blocking
 *                    connection on a libev loop (TLS and the token done),
 *                    for programs that speak frames themselves (jobctl).
 *
 * JSON crosses this API as text (UTF-8, one value), so the header needs
 * no JSON library.  Strings the library returns through char ** are the
 * caller's, to free(3).  Every function is for one thread at a time per
 * client.  With TLS, a program should ignore SIGPIPE (OpenSSL's writes
 * cannot ask send(2) not to raise it); ev_child watchers need the default
 * loop, so a worker that runs processes uses jfc_worker_start on it.
 */
#ifndef JOBFS_CLIENT_H
#define JOBFS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ev_loop;		/* libev's, for jfc_worker_start and jfc_conn_open */

typedef struct jfc_client jfc_client;
typedef struct jfc_conn jfc_conn;
typedef struct jfc_worker jfc_worker;
typedef struct jfc_job jfc_job;

/* Results: 0, or one of these (jfc_error says more). */
enum {
	JFC_OK = 0,
	JFC_ERR = -1,		/* bad argument, or the daemon's error frame */
	JFC_ELOST = -2,		/* could not connect, or the connection closed */
	JFC_EREFUSED = -3,	/* the daemon refused the token */
	JFC_ETIMEOUT = -4,	/* gave up waiting */
	JFC_EFAILED = -5,	/* the job ended without a result */
	JFC_ETOOBIG = -6,	/* an answer over the daemon's largest frame */
};

/* Options of jfc_set / jfc_get; values are text. */
enum jfc_opt {
	JFC_HOST,		/* default 127.0.0.1 */
	JFC_MASTER_PORT,	/* default 9998 */
	JFC_WORKER_PORT,	/* default 9999 */
	JFC_TOKEN,		/* the token itself */
	JFC_TOKEN_FILE,		/* a file whose first line is the token; read
				   now and again on every reconnect */
	JFC_TLS,		/* "1": TLS on */
	JFC_CA,			/* CA file that verifies the daemon (TLS on) */
	JFC_CERT,		/* client certificate, with JFC_KEY (TLS on) */
	JFC_KEY,
};

/* ------------------------------------------------------------ the client */

jfc_client	*jfc_new(void);		/* the defaults, no environment */
/* jfc_from_env: JOBFS_HOST, JOBFS_MASTER_PORT, JOBFS_WORKER_PORT,
 * JOBFS_TOKEN (or JOBFS_TOKEN_FILE; JOBFS_TOKEN wins), JOBFS_TLS=1,
 * JOBFS_CA, JOBFS_CERT, JOBFS_KEY.  JFC_ERR on a bad value. */
int		 jfc_from_env(jfc_client *);
int		 jfc_set(jfc_client *, enum jfc_opt, const char *value);
const char	*jfc_get(const jfc_client *, enum jfc_opt);
/* jfc_set_log: where the library's messages go (reconnects, TLS errors);
 * default: stderr, each line starting "libjobfs: ". */
void		 jfc_set_log(jfc_client *, void (*log)(const char *, void *),
		    void *arg);
const char	*jfc_error(const jfc_client *);	/* the last error, as text */
void		 jfc_free(jfc_client *);

/* --------------------------------------------------- blocking master calls */

/* jfc_submit: a job of type with body (JSON text; NULL: null) and options
 * (a JSON object merged into the frame: "id", "priority", "timeout",
 * "detach", "stream", "notify", "worker", "retries", "backoff", "delay",
 * "at", "after", ...; NULL: none).  Returns once the daemon has taken it,
 * with its id (generated unless options give one) in *id if not NULL. */
int	jfc_submit(jfc_client *, const char *type, const char *body,
	    const char *options, char **id);
/* jfc_wait: the result of a job submitted on this client (or any job:
 * then asked for with a wait request); timeout_ms < 0: for ever.  0 with
 * the result in *result; JFC_EFAILED with the ending frame in *result. */
int	jfc_wait(jfc_client *, const char *id, int timeout_ms, char **result);
/* jfc_next_partial: the next partial of a job submitted with "stream". */
int	jfc_next_partial(jfc_client *, const char *id, int timeout_ms,
	    char **body);
int	jfc_status(jfc_client *, const char *id, char **info);
int	jfc_cancel(jfc_client *, const char *id);
int	jfc_publish(jfc_client *, const char *channel, const char *body);
int	jfc_subscribe(jfc_client *, const char *channel);
int	jfc_next_message(jfc_client *, int timeout_ms, char **channel,
	    char **body);
/* jfc_request: any master request (a JSON object) and its one reply. */
int	jfc_request(jfc_client *, const char *request, char **reply);

/* ------------------------------------------------------------ the worker */

jfc_worker	*jfc_worker_new(jfc_client *, const char *type);
void	 jfc_worker_set_capacity(jfc_worker *, int jobs);	/* default 1 */
void	 jfc_worker_set_heartbeat(jfc_worker *, int ms);	/* 0: none */
void	 jfc_worker_set_name(jfc_worker *, const char *);
/* jfc_worker_set_retry_for: seconds to keep reconnecting after a loss;
 * < 0 (the default): for ever; 0: not at all. */
void	 jfc_worker_set_retry_for(jfc_worker *, double seconds);
/* on_job: each job, called on the loop; answer it then or later with
 * jfc_job_respond / jfc_job_fail.  on_cancel (asks the daemon for
 * cancels): the daemon ended the job; the worker should stop and call
 * jfc_job_drop (an answer after a cancel is dropped too).  on_error: an
 * error frame the worker cannot place; before the first job it ends the
 * run (a refused join). */
void	 jfc_worker_on_job(jfc_worker *, void (*)(jfc_job *, void *), void *);
void	 jfc_worker_on_cancel(jfc_worker *, void (*)(jfc_job *, void *));
void	 jfc_worker_on_error(jfc_worker *, void (*)(const char *, void *));
/* jfc_worker_run: on a loop of its own until jfc_worker_stop, a refused
 * token, or (with a retry limit) an outage outlasting it.  Returns the
 * stop's status, JFC_ELOST, JFC_EREFUSED or JFC_ERR (a refused join). */
int	 jfc_worker_run(jfc_worker *);
/* jfc_worker_start: the same on the caller's loop (ev_run it); the end
 * breaks that loop, and jfc_worker_result tells how it ended. */
int	 jfc_worker_start(jfc_worker *, struct ev_loop *);
int	 jfc_worker_result(const jfc_worker *);	/* 1: still running */
void	 jfc_worker_stop(jfc_worker *, int status);
void	 jfc_worker_free(jfc_worker *);	/* drops jobs not answered */

const char	*jfc_job_id(const jfc_job *);	/* a string bare, else JSON */
const char	*jfc_job_body(const jfc_job *);	/* JSON text */
bool		 jfc_job_cancelled(const jfc_job *);
void		 jfc_job_set_data(jfc_job *, void *);
void		*jfc_job_data(const jfc_job *);
int		 jfc_job_partial(jfc_job *, const char *body);
/* jfc_job_answer: the answer, then the job is freed (unless JFC_ETOOBIG,
 * when the caller may answer again, smaller).  log: text the daemon keeps
 * as the job's log, or NULL. */
int		 jfc_job_answer(jfc_job *, bool failed, const char *body,
		    const char *log);
int		 jfc_job_respond(jfc_job *, const char *result);
int		 jfc_job_fail(jfc_job *, const char *error);
void		 jfc_job_drop(jfc_job *);

/* ----------------------------------------------------------- connections */

enum { JFC_MASTER = 0, JFC_WORKER = 1 };

struct jfc_conn_ops {
	/* one frame; nonzero stops handling the frames read so far */
	int	(*frame)(jfc_conn *, const char *, size_t, void *);
	/* the connection closed or broke (it is closed now) */
	void	(*lost)(jfc_conn *, const char *why, void *);
	/* output was written; left bytes are still queued */
	void	(*wrote)(jfc_conn *, size_t left, void *);
};

/* jfc_conn_open: connect (TLS, token) to the master or worker port; 0,
 * JFC_ELOST or JFC_EREFUSED (the message went to the log and jfc_error). */
int	 jfc_conn_open(jfc_client *, struct ev_loop *, int port,
	    const struct jfc_conn_ops *, void *arg, jfc_conn **);
void	 jfc_conn_frame(jfc_conn *, const char *, size_t);	/* framed */
void	 jfc_conn_bytes(jfc_conn *, const char *, size_t);	/* as is */
void	 jfc_conn_dribble(jfc_conn *, bool);	/* one byte per ms */
size_t	 jfc_conn_queued(const jfc_conn *);
bool	 jfc_conn_up(const jfc_conn *);
void	 jfc_conn_close(jfc_conn *);
void	 jfc_conn_free(jfc_conn *);

#ifdef __cplusplus
}
#endif

#endif /* JOBFS_CLIENT_H */
