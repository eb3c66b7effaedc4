/*
 * core.h — private to src/core/: the heaps, the job table and the
 * state lists the broker keeps; no face or store includes it.
 */
#ifndef JOBFS_CORE_H
#define JOBFS_CORE_H

#include "core/broker.h"

/* heap.c: a job queue (struct heap, in job.h) */
void        heap_push(struct heap *, struct job *);
struct job *heap_pop(struct heap *);
void        heap_remove(struct heap *, struct job *);
void        heap_free(struct heap *);
static inline struct job *heap_top(const struct heap *h) { return h->len ? h->items[0] : NULL; }

/* jobtab.c: every known job by key (struct jobtab, in broker.h) */
uint32_t    jobtab_hash(const char *key);
struct job *jobtab_find(const struct jobtab *, const char *key, uint32_t hash);
void        jobtab_add(struct jobtab *, struct job *);
void        jobtab_del(struct jobtab *, struct job *);
struct job *jobtab_next(const struct jobtab *, size_t *pos);
void        jobtab_free(struct jobtab *);

/* broker_states.c: the lists of jobs by state */
void  broker_states_type_init(struct jtype *);
void  broker_state_sync(struct broker *, struct job *);   /* broker.c: j's state
                                   may have changed: move it to its list */
void  broker_state_drop(struct broker *, struct job *);   /* j is forgotten */
void  broker_state_dead_leaving(struct broker *, struct job *);

/* ----------------------------------------------------------------- delay.c */

/* The due-time heap of delayed jobs (broker->delays): soonest first. */
void        delay_push(struct delay_heap *, struct job *);
struct job *delay_pop(struct delay_heap *);
void        delay_remove(struct delay_heap *, struct job *);
void        delay_free(struct delay_heap *);
static inline struct job *delay_top(const struct delay_heap *h) { return h->len ? h->items[0] : NULL; }


#endif /* JOBFS_CORE_H */
