/*
 * backend.h — part of the core's public header (broker.h): the broker's
 * side of cluster mode, which a backend store (Redis) drives.
 */
#ifndef JOBFS_BACKEND_H
#define JOBFS_BACKEND_H

#include "core/broker.h"

/*
 * Cluster mode (backend.c, store_redis.c).
 * With a backend set, queues live in the backend, not in local heaps: the
 * broker keeps its policy (slots, stale keys, events, retention of local
 * copies) and sends intents to the backend (be.*), which answers with the
 * broker_be_* verdicts below.  A job known here is a local copy: one
 * submitted here (its master is here), one running on a local worker, or
 * both.  Without a backend none of this is used.
 *
 *   submit    j is new, in the table, queued nowhere: answer with
 *             broker_be_accepted (the submission returned BERR_PENDING)
 *   want      t has workers with free slots: offer them jobs with
 *             broker_be_dispatch (broker_idle_each lists them)
 *   complete  j, run by a local worker, ended (done, or failed by report);
 *             it has already ended here
 *   partial   a partial result of j from its local worker
 *   requeue   j's local worker went (lost) or could not take it
 *   end       j was ended here (cancel, timeout); if_queued: only if it is
 *             still queued (its master went)
 *   forget    j was removed here (rmdir): everywhere
 *   pin       t was made (or unmade) in the tree: listed in every tree
 *   lookup    a job not known here, for a face (broker_lookup)
 *   query     the cluster's counters, queues, workers, jobs (broker_query)
 *
 * Among the verdicts, broker_be_gone(j, reason) says the backend lost j
 * (Redis lost the cluster's data): it ends failed here with that reason.
 *
 * A job's attempt number (the backend's lease token) lives in heap_index,
 * which a shared job never uses.
 */
#define job_att(j) ((j)->heap_index)
bool  broker_shared(const struct broker *);   /* a backend is set */
void  broker_set_backend(struct broker *, const struct broker_backend *);
typedef bool broker_idle_cb(void *ctx, struct worker *, unsigned free_slots);
void  broker_idle_each(struct broker *, struct jtype *, broker_idle_cb *, void *ctx);
void  broker_worker_hold(struct worker *);
void  broker_worker_release(struct worker *);
void  broker_type_hold(struct jtype *);
void  broker_be_accepted(struct broker *, struct job *, int berr);
struct job *broker_be_dispatch(struct broker *, struct worker *, const struct restore_req *,
    uint32_t att);
void  broker_be_running(struct broker *, struct job *, const char *worker);
void  broker_be_partial(struct broker *, struct job *, const char *, size_t);
void  broker_be_finished(struct broker *, struct job *, enum job_state,
    const char *result, size_t len);
void  broker_be_lost(struct broker *, struct job *);
void  broker_be_gone(struct broker *, struct job *, const char *reason);
void  broker_be_forget(struct broker *, struct job *);
/* broker_be_config: a type's settings as another daemon set them (not
 * sent back to the backend). */
void  broker_be_config(struct broker *, const char *type, int paused, int64_t limit,
    int64_t retries, int64_t backoff);
struct job *broker_be_view(struct broker *, const struct restore_req *);
/* broker_lookup: the job of key, here or (cluster mode) known to the
 * backend, which makes a local copy of it (a view, kept up to date by the
 * backend's events, forgotten like any finished job): cb(ctx, j, 0), now
 * or later; j NULL if there is none; BERR_UNAVAILABLE if the backend
 * cannot be asked now. */
typedef void broker_lookup_cb(void *ctx, struct job *, int berr);
void  broker_lookup(struct broker *, const char *key, broker_lookup_cb *, void *ctx);
void  broker_master_hold(struct master *);
void  broker_master_release(struct master *);
/*
 * broker_query: what the whole cluster shows, as text, for the tree on
 * every host (cluster mode only): cb(ctx, text, len, 0) once the backend
 * answers, or BERR_UNAVAILABLE.  what (arg):
 *   "stats"            cluster counters, "cluster_NAME VALUE" lines
 *   "type_stats" (T)   T's counters across daemons, "NAME VALUE" lines
 *   "queue" (T)        T's queued job keys in dispatch order, one a line
 *   "jobs"             every job's key in submission order, one a line
 *   "workers" (T)      T's workers on every daemon, "NAME@N idle|busy IDS"
 */
typedef void broker_query_cb(void *ctx, const char *text, size_t len, int berr);
void  broker_query(struct broker *, const char *what, const char *arg,
    broker_query_cb *, void *ctx);


#endif /* JOBFS_BACKEND_H */
