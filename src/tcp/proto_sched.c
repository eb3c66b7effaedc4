/*
 * proto_sched.c — the master port's repeating jobs: schedule (add or
 * replace a schedule), unschedule, schedules (list).  The broker owns
 * the schedules (core/schedule.c); here are the fields and the replies.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tcp/tcp.h"

#define CRON_TEXT_MAX 200

/*
 * h_schedule: {"schedule","job_type","name","cron"|"every"[,"body",
 * "priority","retries"]}.  Reply: the schedule, as "schedules" lists it.
 */
void
h_schedule(struct conn *c, const struct msg_ctx *ctx)
{
	enum msg_key type_key = ctx->dialect == DIALECT_ACTION ? MK_TYPE : MK_JOB_TYPE;
	struct broker *b = c->srv->broker;
	char type[ID_MAX + 1], name[ID_MAX + 1], cron[CRON_TEXT_MAX + 1];
	struct sched_req r = { 0 };
	enum broker_err err;
	size_t len;

	if (!type_check(c, ctx, type_key, type))
		return;
	if (!field_name(ctx, MK_NAME, name, &len)) {
		conn_send_error(c, "invalid_type", NULL, "\"name\" must be 1 to %d of "
		    "A-Z a-z 0-9 . _ -", SCHED_NAME_MAX);
		return;
	}
	if (field(ctx, MK_CRON) != NULL) {
		if (!msg_string(field(ctx, MK_CRON), cron, sizeof cron, &len) ||
		    strlen(cron) != len) {
			conn_send_error(c, "invalid_type", NULL, "\"cron\" must be a "
			    "string of at most %d bytes", CRON_TEXT_MAX);
			return;
		}
		r.cron = cron;
	}
	if (field(ctx, MK_EVERY) != NULL && (r.every_ms = field_int(ctx, MK_EVERY)) <= 0) {
		conn_send_error(c, "invalid_type", NULL, "\"every\" must be a positive "
		    "number of milliseconds");
		return;
	}
	r.type = type;
	r.name = name;
	if (field(ctx, MK_BODY) != NULL)
		r.body = field_json(ctx, MK_BODY, &r.body_len);
	r.priority = field_int(ctx, MK_PRIORITY);
	if (field(ctx, MK_RETRIES) != NULL) {
		r.retries_set = true;
		r.retries = field_int(ctx, MK_RETRIES);
		if (r.retries < 0 || r.retries > LIFE_RETRIES_MAX) {
			conn_send_error(c, "invalid_type", NULL, "\"retries\" must be 0 to %d",
			    LIFE_RETRIES_MAX);
			return;
		}
	}
	if ((err = broker_schedule(b, &r)) != BERR_OK) {
		conn_send_error(c, berr_frame(err), NULL, "%s", broker_err_detail(b));
		return;
	}
	conn_send_json(c, broker_schedule_get(b, type, name));
}

/* h_unschedule: reply {"unscheduled":1,"job_type","name"}; a name that
 * names no schedule of the type: unknown_schedule. */
void
h_unschedule(struct conn *c, const struct msg_ctx *ctx)
{
	enum msg_key type_key = ctx->dialect == DIALECT_ACTION ? MK_TYPE : MK_JOB_TYPE;
	struct broker *b = c->srv->broker;
	char type[ID_MAX + 1], name[ID_MAX + 1];
	enum broker_err err;
	size_t len;

	if (!type_check(c, ctx, type_key, type))
		return;
	if (!field_name(ctx, MK_NAME, name, &len)) {
		conn_send_error(c, "unknown_schedule", NULL, "type %s has no schedule "
		    "so named", type);
		return;
	}
	if ((err = broker_unschedule(b, type, name)) != BERR_OK) {
		conn_send_error(c, err == BERR_UNKNOWN_ID ? "unknown_schedule" :
		    berr_frame(err), NULL, "%s", broker_err_detail(b));
		return;
	}
	conn_send_json(c, json_pack("{s:i,s:s,s:s}", "unscheduled", 1,
	    "job_type", type, "name", name));
}

/* h_schedules: reply {"schedules":[...]}, of one type or all. */
void
h_schedules(struct conn *c, const struct msg_ctx *ctx)
{
	enum msg_key type_key = ctx->dialect == DIALECT_ACTION ? MK_TYPE : MK_JOB_TYPE;
	char type[ID_MAX + 1];

	if (field(ctx, type_key) != NULL && !type_check(c, ctx, type_key, type))
		return;
	conn_send_json(c, json_pack("{s:o}", "schedules", broker_schedules(c->srv->broker,
	    field(ctx, type_key) != NULL ? type : NULL)));
}
