/* fs.c — placeholder until the FUSE tree lands. */
#include "jobfs.h"

int fs_mount(struct server *srv, const char *mnt, const char *opts)
{ (void)srv; (void)opts; log_err("%s: the file tree is not built yet", mnt); return -1; }
int fs_start(struct server *srv) { (void)srv; return 0; }
void fs_unmount(struct server *srv) { (void)srv; }
void fs_job_changed(struct server *srv, struct job *j) { (void)srv; (void)j; }
void fs_job_forgotten(struct server *srv, struct job *j) { (void)srv; (void)j; }
void fs_type_changed(struct server *srv, struct jtype *t) { (void)srv; (void)t; }
void fs_chan_message(struct server *srv, const char *n, const char *b, size_t l)
{ (void)srv; (void)n; (void)b; (void)l; }
