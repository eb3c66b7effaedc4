/*
 * tree.h — the tree face's public header: mount, start and unmount
 * the FUSE tree.  Its insides are in fs.h, private to src/tree/.
 */
#ifndef JOBFS_TREE_H
#define JOBFS_TREE_H

#include "server.h"

/* -------------------------------------------------------------------- fs.c */

int  fs_mount(struct server *, const char *mountpoint, const char *opts);
int  fs_start(struct server *);   /* after daemonising: threads, watchers */
void fs_unmount(struct server *);
extern const struct module tree_module;   /* wanted with a mountpoint */


#endif /* JOBFS_TREE_H */
