/*
 * jobctl.h — shared types of jobctl, the command-line client, each struct
 * next to the functions that own it.
 *
 *   jobctl.c          main, global options, the command table, helpers
 *   jobctl_session.c  struct session: one connection to the daemon
 *   jobctl_cmds.c     submit, status, cancel, stats, ping, publish,
 *                     subscribe, raw
 *   jobctl_work.c     work: run a command per job
 *   jobctl_ending.c   a job's ending as an exit status (submit, wait)
 *   jobctl_ls.c       ls: the jobs in a state
 *   jobctl_top.c      top: a live view in the terminal
 */
#ifndef JOBCTL_H
#define JOBCTL_H

#include "base/base.h"

/* Exit statuses, listed in jobctl(1). */
enum {
	CTL_OK = 0,
	CTL_FAIL = 1,		/* the job or the daemon reported an error */
	CTL_USAGE = 2,
	CTL_LOST = 3,		/* could not connect, or the connection closed */
	CTL_TIMEOUT = 4,	/* gave up waiting */
	/* how a job ended, for submit and wait (0: done, with a result) */
	CTL_FAILED = 5,		/* job_failed, with no retries */
	CTL_CANCELLED = 6,
	CTL_TIMEDOUT = 7,	/* the job's own timeout */
	CTL_DEAD = 8,		/* job_failed after every one of its retries */
};
#define CTL_RUNNING (-1)	/* a callback's "not finished yet" */

#define READ_CHUNK	65536
#define JSON_OUT	(JSON_COMPACT | JSON_ENCODE_ANY)

/* ---------------------------------------------------------------- jobctl.c */

struct ctl {
	const char	*host;
	int		 master_port;
	int		 worker_port;
	struct ev_loop	*loop;
	char		*token;		/* JOBFS_TOKEN or --token-file; NULL: none */
	const char	*token_file;	/* --token-file, read again on reconnects */
	bool		 tls;		/* --tls */
	const char	*ca, *cert, *key;	/* --ca, --cert, --key */
	void		*tls_ctx;	/* SSL_CTX, made at the first connection */
};

struct cmd_entry {
	const char	*name;
	const char	*usage;
	int		(*exec)(struct ctl *, const struct cmd_entry *, int, char **);
};

void	 ctl_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 ctl_warn_capture(char *, size_t);
int	 ctl_usage(const struct cmd_entry *, bool asked);
int	 ctl_number(const char *, long long min, long long max, long long *out);
char	*ctl_text(const json_t *);
int	 ctl_print(const char *prefix, const json_t *, size_t flags);
int	 ctl_report(const json_t *);
json_t	*ctl_parse(const char *, size_t);
json_t	*ctl_body(const char *arg);
int	 ctl_args(const struct cmd_entry *, int argc, char **argv, int nargs);

/* -------------------------------------------------------- jobctl_session.c */

/*
 * A connection to the daemon.  Output is buffered and written as the socket
 * allows; input is cut into frames and handed to frame(), which returns
 * CTL_RUNNING to go on or the command's exit status to stop.  The optional
 * stdin reader hands over lines (or raw chunks), and pauses while too much
 * output is waiting so that a huge stdin never piles up in memory.
 */
struct session {
	struct ev_loop	*loop;
	int		 fd;
	ev_io		 rio, wio;
	ev_timer	 drip;		/* --dribble: one byte per tick */
	ev_timer	 timer;		/* the command's own deadline */
	struct buf	 in, out;
	bool		 dribble;
	int		 status;	/* CTL_RUNNING until the command ends */
	int		(*frame)(struct session *, const char *, size_t);
	int		(*lost)(struct session *, const char *);
	int		(*timeout)(struct session *);
	void		(*flushed)(struct session *);
	void		*arg;

	ev_io		 sin;
	struct buf	 line;
	size_t		 scan;		/* bytes of line already searched */
	bool		 sin_lines;	/* hand over lines, not chunks */
	bool		 sin_paused;
	bool		 sin_eof;
	void		(*input)(struct session *, const char *, size_t);
	void		(*input_end)(struct session *);
	void		*ssl;		/* SSL with --tls; NULL: plain */
};

int	session_open(struct session *, struct ctl *, int port, void *arg);
#define SESSION_REFUSED	(-2)	/* session_open: the daemon refused the token */
void	session_input(struct session *, bool lines,
	    void (*input)(struct session *, const char *, size_t),
	    void (*input_end)(struct session *));
void	session_deadline(struct session *, long long ms);
int	session_run(struct session *);
int	session_call(struct ctl *, json_t *req,
	    int (*frame)(struct session *, const char *, size_t), void *arg);
void	session_done(struct session *, int status);
void	session_close(struct session *);
void	session_free(struct session *);
void	session_bytes(struct session *, const char *, size_t);
void	session_frame(struct session *, const char *, size_t);
void	session_send(struct session *, json_t *);	/* steals the reference */

/* ------------------------------------------------------------ jobctl_tls.c */

/* TLS (--tls) and the token (JOBFS_TOKEN, --token-file) of a session:
 * set up blocking, right after connecting; then reads and writes. */
int	ctl_tls_start(struct ctl *, struct session *, char *err, size_t errlen);
int	ctl_auth(struct ctl *, struct session *);
ssize_t	ctl_io_read(struct session *, void *, size_t);
ssize_t	ctl_io_write(struct session *, const void *, size_t);
void	ctl_tls_close(struct session *);
bool	ctl_io_pending(struct session *);
char	*ctl_read_token(const char *path);
void	ctl_tls_free(struct ctl *);

/* ----------------------------------------------------------- jobctl_cmds.c */

int	cmd_submit(struct ctl *, const struct cmd_entry *, int, char **);
int	cmd_status(struct ctl *, const struct cmd_entry *, int, char **);
int	cmd_cancel(struct ctl *, const struct cmd_entry *, int, char **);
/* the job lifecycle */
int	cmd_kick(struct ctl *, const struct cmd_entry *, int, char **);
int	cmd_pause(struct ctl *, const struct cmd_entry *, int, char **);
int	cmd_configure(struct ctl *, const struct cmd_entry *, int, char **);

/* ------------------------------------------------------------ jobctl_top.c */

int	cmd_top(struct ctl *, const struct cmd_entry *, int, char **);
int	cmd_wait(struct ctl *, const struct cmd_entry *, int, char **);
int	cmd_stats(struct ctl *, const struct cmd_entry *, int, char **);
int	cmd_ls(struct ctl *, const struct cmd_entry *, int, char **);	/* jobctl_ls.c */
int	cmd_ping(struct ctl *, const struct cmd_entry *, int, char **);
int	cmd_publish(struct ctl *, const struct cmd_entry *, int, char **);
int	cmd_subscribe(struct ctl *, const struct cmd_entry *, int, char **);
int	cmd_raw(struct ctl *, const struct cmd_entry *, int, char **);

/* --------------------------------------------------------- jobctl_ending.c */

/* The jobs a command follows to their ends, each by its id as text. */
struct ending {
	char	*key;		/* the id: a string bare, a number as written */
	int	 status;	/* CTL_RUNNING until its ending is judged */
	json_t	*failed;	/* its job_failed frame while its status is asked */
};

struct endings {
	struct ending	*e;
	size_t		 n, open;	/* jobs, and those not ended yet */
	bool		 prefix;	/* results start with the id and a tab */
};

void	endings_init(struct endings *, char **ids, size_t n, bool prefix);
void	endings_free(struct endings *);
int	endings_frame(struct session *, struct endings *, json_t *);
int	ctl_worst(int, int);

/* ----------------------------------------------------------- jobctl_work.c */

int	cmd_work(struct ctl *, const struct cmd_entry *, int, char **);

#endif /* JOBCTL_H */
