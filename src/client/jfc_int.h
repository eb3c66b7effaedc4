/*
 * jfc_int.h — libjobfs's private header: the structs behind the opaque
 * types of jobfs_client.h, and what its files share.
 *
 *   client.c   options, the environment, messages; the blocking calls
 *   conn.c     struct jfc_conn: framing and buffers on a libev loop
 *   tls.c      TLS (OpenSSL) and the token, right after connecting
 *   worker.c   the worker: jobs, answers, heartbeats, reconnecting
 */
#ifndef JFC_INT_H
#define JFC_INT_H

#include "base/base.h"
#include "client/jobfs_client.h"

#define JFC_READ_CHUNK	65536
#define JFC_JSON	(JSON_COMPACT | JSON_ENCODE_ANY)
#define JFC_FRAME_MAX	(16u << 20)	/* the daemon's default --max-frame */

struct jfc_client {
	char		*host;
	int		 master_port, worker_port;
	char		*token;		/* NULL: none */
	char		*token_file;	/* read again before each reconnect */
	bool		 tls;
	char		*ca, *cert, *key;
	void		*tls_ctx;	/* SSL_CTX, made at the first connection */
	char		 err[512];	/* jfc_error */
	char		*capture;	/* jfci_capture: messages go here */
	size_t		 capturelen;
	void		(*log)(const char *, void *);
	void		*log_arg;
	char		 portbuf[16];	/* jfc_get's answer for a port */

	/* the blocking calls: one master connection on a loop of its own */
	struct ev_loop	*loop;
	jfc_conn	*master;
	json_t		*inbox;		/* frames read, not yet asked for */
	unsigned	 serial;	/* generated ids */
};

struct jfc_conn {
	jfc_client	*c;
	struct ev_loop	*loop;
	int		 fd;
	ev_io		 rio, wio;
	ev_timer	 drip;		/* dribble: one byte per tick */
	struct buf	 in, out;
	bool		 dribble;
	bool		 busy;		/* inside the frame loop */
	bool		 stopped;	/* a callback asked to stop the loop */
	struct jfc_conn_ops ops;
	void		*arg;
	void		*ssl;		/* SSL with TLS; NULL: plain */
};

/* client.c */
void	jfci_warn(jfc_client *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	jfci_capture(jfc_client *, char *, size_t);
char	*jfci_read_token(jfc_client *, const char *path);
char	*jfci_text(const json_t *);

/* conn.c */
void	jfci_conn_dispatch(jfc_conn *);

/* tls.c */
int	jfci_tls_start(jfc_client *, jfc_conn *, char *err, size_t errlen);
int	jfci_auth(jfc_client *, jfc_conn *);
ssize_t	jfci_io_read(jfc_conn *, void *, size_t);
ssize_t	jfci_io_write(jfc_conn *, const void *, size_t);
void	jfci_tls_close(jfc_conn *);
bool	jfci_io_pending(jfc_conn *);
void	jfci_tls_free(jfc_client *);

#endif /* JFC_INT_H */
