/*
 * jobctl.h — shared types of jobctl, the command-line client, each struct
 * next to the functions that own it.
 *
 *   jobctl.c          main, global options, the command table, helpers
 *   jobctl_session.c  struct session: one connection to the daemon (a
 *                     libjobfs connection, with a command's callbacks)
 *   jobctl_cmds.c     submit, status, cancel, stats, ping, publish,
 *                     subscribe, raw
 *   jobctl_work.c     work: run a command per job (libjobfs's worker)
 *   jobctl_ending.c   a job's ending as an exit status (submit, wait)
 *   jobctl_ls.c       ls: the jobs in a state
 *   jobctl_top.c      top: a live view in the terminal
 */
#ifndef JOBCTL_H
#define JOBCTL_H

#include "base/base.h"
#include "client/jobfs_client.h"

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

/* The options live in the libjobfs client; host, ports and token are
 * copied out for what shows them (top). */
struct ctl {
	const char	*host;
	int		 master_port;
	int		 worker_port;
	struct ev_loop	*loop;
	const char	*token;		/* NULL: none */
	jfc_client	*client;
};

struct cmd_entry {
	const char	*name;
	const char	*usage;
	int		(*exec)(struct ctl *, const struct cmd_entry *, int, char **);
};

void	 ctl_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
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
 * A connection to the daemon (libjobfs's jfc_conn).  Output is buffered
 * and written as the socket allows; input is cut into frames and handed to
 * frame(), which returns CTL_RUNNING to go on or the command's exit status
 * to stop.  The optional stdin reader hands over lines (or raw chunks), and
 * pauses while too much output is waiting so that a huge stdin never piles
 * up in memory.
 */
struct session {
	struct ev_loop	*loop;
	jfc_conn	*conn;
	ev_timer	 timer;		/* the command's own deadline */
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
};

/* port: JFC_MASTER or JFC_WORKER */
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
size_t	session_queued(const struct session *);
void	session_dribble(struct session *, bool);

/* ----------------------------------------------------------- jobctl_cmds.c */

int	cmd_submit(struct ctl *, const struct cmd_entry *, int, char **);
int	cmd_status(struct ctl *, const struct cmd_entry *, int, char **);
int	cmd_cancel(struct ctl *, const struct cmd_entry *, int, char **);
/* the job lifecycle */
int	cmd_kick(struct ctl *, const struct cmd_entry *, int, char **);
int	cmd_pause(struct ctl *, const struct cmd_entry *, int, char **);
int	cmd_configure(struct ctl *, const struct cmd_entry *, int, char **);
/* jobctl_sched.c: repeating jobs */
int	cmd_schedule(struct ctl *, const struct cmd_entry *, int, char **);
int	cmd_unschedule(struct ctl *, const struct cmd_entry *, int, char **);
int	cmd_schedules(struct ctl *, const struct cmd_entry *, int, char **);

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
