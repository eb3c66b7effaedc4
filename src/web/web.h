/*
 * web.h — the web face's public header: start, stop and reload it.
 * Its insides are in web_int.h, private to src/web/.
 */
#ifndef JOBFS_WEB_H
#define JOBFS_WEB_H

#include "server.h"

/* ------------------------------------------------------------------- web.c */

/* The web face: HTTP on libmicrohttpd, in this loop. */
struct web;
int      web_start(struct server *);  /* after server_start; 0 or an exit status */
void     web_stop(struct server *);   /* before the broker shuts down */
void     web_tls_reload(struct server *); /* SIGHUP: the web face's certificates */
int      web_port(const struct server *);
unsigned web_connections(void);
extern const struct module web_module;


#endif /* JOBFS_WEB_H */
