/*
 * test_redis_codec.c — cluster mode's small pieces (redis_codec.c): the
 * --redis URL (host, port, password with %XX escapes, database, IPv6, and
 * what is refused; redis-sentinel:// too) and the queue member's priority prefix, whose byte
 * order must be the dispatch order for every int64 priority.
 */
#include <stdint.h>
#include <string.h>

#include "server.h"
#include "store/store_redis.h"
#include "tap.h"

static bool
parses(const char *url, const char *host, int port, const char *pw, int db)
{
	struct redis_url u;
	char err[300];

	if (redis_url_parse(url, &u, err, sizeof err) < 0) {
		diag("%s: %s", url, err);
		return false;
	}
	if (strcmp(u.host, host) != 0 || u.port != port || strcmp(u.password, pw) != 0 ||
	    u.db != db) {
		diag("%s: host %s port %d password %s db %d", url, u.host, u.port, u.password, u.db);
		return false;
	}
	return true;
}

static bool
refused(const char *url)
{
	struct redis_url u;
	char err[300] = "";

	return redis_url_parse(url, &u, err, sizeof err) < 0 && err[0] != '\0';
}

/* sentinels: a redis-sentinel:// URL's master name, password and
 * sentinels, as "h:p,h:p". */
static bool
sentinels(const char *url, const char *name, const char *pw, const char *list)
{
	struct redis_url u;
	char err[300], got[600] = "";
	int i;

	if (redis_url_parse(url, &u, err, sizeof err) < 0) {
		diag("%s: %s", url, err);
		return false;
	}
	for (i = 0; i < u.nsentinels; i++)
		snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s:%d", i ? "," : "",
		    u.sentinels[i].host, u.sentinels[i].port);
	if (strcmp(u.master, name) != 0 || strcmp(u.password, pw) != 0 || strcmp(got, list) != 0) {
		diag("%s: master %s password %s sentinels %s", url, u.master, u.password, got);
		return false;
	}
	return true;
}

int
main(void)
{
	static const int64_t prios[] = {
		INT64_MIN, INT64_MIN + 1, -1000000, -1, 0, 1, 2, 1000000, INT64_MAX - 1, INT64_MAX,
	};
	char a[17], b[17];
	size_t i;
	bool order = true;

	plan(19);
	ok(parses("redis://localhost", "localhost", 6379, "", 0), "host alone: port 6379, db 0");
	ok(parses("redis://10.0.0.5:6380/3", "10.0.0.5", 6380, "", 3), "port and database");
	ok(parses("redis://:s3cret@h:1", "h", 1, "s3cret", 0), ":PASSWORD@");
	ok(parses("redis://user:pw@h", "h", 6379, "pw", 0), "a user name is ignored");
	ok(parses("redis://:a%40b%2Fc%25@h/", "h", 6379, "a@b/c%", 0), "%XX escapes in the password");
	ok(parses("redis://[::1]:7000", "::1", 7000, "", 0), "an IPv6 address in brackets");
	ok(refused("http://h"), "another scheme is refused");
	ok(refused("redis://"), "no host is refused");
	ok(refused("redis://h:0") && refused("redis://h:65536") && refused("redis://h:x"),
	    "a port outside 1..65535 is refused");
	ok(refused("redis://h/x"), "a database that is not a number is refused");
	ok(refused("redis://:%4@h") && refused("redis://:%zz@h") && refused("redis://:%00@h"),
	    "a bad escape is refused");
	ok(refused("redis://[::1"), "an unclosed [ is refused");
	ok(sentinels("redis-sentinel://a,b:2,[::1]:3/mm", "mm", "", "a:26379,b:2,::1:3"),
	    "sentinels: port 26379 by default, IPv6 in brackets");
	ok(sentinels("redis-sentinel://:p%40w@a:1/m-1", "m-1", "p@w", "a:1"),
	    "sentinels: the password, with %%XX escapes");
	ok(refused("redis-sentinel://a:1") && refused("redis-sentinel:///m") &&
	    refused("redis-sentinel://a:1,/m") && refused("redis-sentinel://a:0/m") &&
	    refused("redis-sentinel://a/m m") && refused("redis-sentinel://[::1/m"),
	    "sentinels: no name, no sentinel, an empty one, a bad port or name are refused");

	redis_prio16(INT64_MAX, a);
	ok(strcmp(a, "0000000000000000") == 0, "INT64_MAX sorts first: %s", a);
	redis_prio16(0, a);
	ok(strcmp(a, "7fffffffffffffff") == 0, "0: %s", a);
	redis_prio16(INT64_MIN, a);
	ok(strcmp(a, "ffffffffffffffff") == 0, "INT64_MIN sorts last: %s", a);
	for (i = 0; i + 1 < sizeof prios / sizeof *prios; i++) {
		redis_prio16(prios[i], a);
		redis_prio16(prios[i + 1], b);
		if (!(strlen(a) == 16 && memcmp(a, b, 16) > 0))
			order = false;
	}
	ok(order, "a higher priority has a smaller prefix, byte by byte");
	return done();
}
