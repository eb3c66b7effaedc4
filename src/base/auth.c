/*
 * auth.c — who may do what: the token file of --auth, its roles, the
 * token check, and the count of connections per peer address.
 *
 * The token file holds one token a line, "NAME ROLE... TOKEN", with roles
 * master (may submit and ask about its jobs), worker (may join and
 * answer) and admin (both, and may ask about and cancel anyone's job);
 * blank lines and lines starting with '#' are skipped.  A file that its
 * group or others may read or write is refused: the tokens are passwords.
 *
 * Tokens are kept as their SHA-256 only, and auth_check() hashes the
 * candidate and compares it with every entry with CRYPTO_memcmp, never
 * stopping early, so the time it takes says nothing about which bytes of
 * which token matched.  The daemon reloads the file on SIGHUP
 * (auth_load again): a file that cannot be loaded leaves the old tokens.
 *
 * The table is one per process (the daemon has one token file) so that
 * any face, the web face included, asks auth_check() without a handle.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "base/base.h"

#define AUTH_HASH 32           /* SHA-256 */
#define AUTH_TOKEN_MIN 16      /* bytes: a shorter token is refused */
#define AUTH_LINE_MAX 4096

struct auth_entry {
	char          name[AUTH_NAME_MAX + 1];
	unsigned      roles;
	unsigned char hash[AUTH_HASH];
};

struct auth_table {
	struct auth_entry *v;
	size_t             n;
};

static struct auth_table *table;   /* NULL: no --auth */

static void
auth_hash(const char *token, size_t len, unsigned char out[AUTH_HASH])
{
	unsigned int n = AUTH_HASH;

	if (!EVP_Digest(token, len, out, &n, EVP_sha256(), NULL))
		fatalx("SHA-256 is not available");
}

static void
table_free(struct auth_table *t)
{
	if (t == NULL)
		return;
	OPENSSL_cleanse(t->v, t->n * sizeof *t->v);
	free(t->v);
	free(t);
}

static int
role_bit(const char *w)
{
	if (strcmp(w, "master") == 0)
		return AUTH_MASTER;
	if (strcmp(w, "worker") == 0)
		return AUTH_WORKER;
	if (strcmp(w, "admin") == 0)
		return AUTH_ADMIN;
	return 0;
}

/* auth_name_valid: 1 to AUTH_NAME_MAX printable ASCII bytes, no space. */
bool
auth_name_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > AUTH_NAME_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (!isgraph((unsigned char)s[i]) || s[i] == '"' || s[i] == '\\')
			return false;
	return true;
}

/* parse_line: one "NAME ROLE... TOKEN" line into e; -1 with err set. */
static int
parse_line(char *line, struct auth_entry *e, char *err, size_t errlen)
{
	char *w[34], *save = NULL, *p;
	int n = 0, i, bit;

	for (p = strtok_r(line, " \t\r\n", &save); p != NULL && n < 34;
	    p = strtok_r(NULL, " \t\r\n", &save))
		w[n++] = p;
	if (n < 3) {
		snprintf(err, errlen, "expected NAME ROLE... TOKEN");
		return -1;
	}
	if (!auth_name_valid(w[0], strlen(w[0]))) {
		snprintf(err, errlen, "a name is 1 to %d printable characters",
		    AUTH_NAME_MAX);
		return -1;
	}
	memset(e, 0, sizeof *e);
	strcpy(e->name, w[0]);
	for (i = 1; i < n - 1; i++) {
		if ((bit = role_bit(w[i])) == 0) {
			snprintf(err, errlen, "unknown role \"%.32s\" (master, worker "
			    "or admin)", w[i]);
			return -1;
		}
		e->roles |= (unsigned)bit;
	}
	if (strlen(w[n - 1]) < AUTH_TOKEN_MIN) {
		snprintf(err, errlen, "token shorter than %d characters (make one "
		    "with: openssl rand -hex 32)", AUTH_TOKEN_MIN);
		return -1;
	}
	auth_hash(w[n - 1], strlen(w[n - 1]), e->hash);
	OPENSSL_cleanse(w[n - 1], strlen(w[n - 1]));
	return 0;
}

/*
 * auth_load: read the token file at path and make it the table in use.
 * -1 with a message in err (the table in use, if any, stays) when the
 * file cannot be read, is open to group or others, or has a bad line, a
 * token twice, or a name twice with different roles.
 */
int
auth_load(const char *path, char *err, size_t errlen)
{
	struct auth_table *t;
	struct auth_entry e;
	char line[AUTH_LINE_MAX], why[160];
	struct stat st;
	size_t i, lineno = 0;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) < 0 || (st.st_mode & (S_IRWXG | S_IRWXO))) {
		snprintf(err, errlen, "%s: group or others may read or write it "
		    "(it holds passwords: chmod 600 %s)", path, path);
		fclose(f);
		return -1;
	}
	t = xcalloc(1, sizeof *t);
	while (fgets(line, sizeof line, f) != NULL) {
		char *s = line;

		lineno++;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '#' || *s == '\n' || *s == '\r' || *s == '\0')
			continue;
		if (parse_line(s, &e, why, sizeof why) < 0)
			goto bad;
		for (i = 0; i < t->n; i++) {
			if (CRYPTO_memcmp(t->v[i].hash, e.hash, AUTH_HASH) == 0) {
				snprintf(why, sizeof why, "the same token as line of %s",
				    t->v[i].name);
				goto bad;
			}
			if (strcmp(t->v[i].name, e.name) == 0 &&
			    t->v[i].roles != e.roles) {
				snprintf(why, sizeof why, "%s again with other roles",
				    e.name);
				goto bad;
			}
		}
		t->v = xrealloc(t->v, (t->n + 1) * sizeof *t->v);
		t->v[t->n++] = e;
	}
	OPENSSL_cleanse(line, sizeof line);
	fclose(f);
	table_free(table);
	table = t;
	return 0;
bad:
	OPENSSL_cleanse(line, sizeof line);
	OPENSSL_cleanse(&e, sizeof e);
	snprintf(err, errlen, "%s line %zu: %s", path, lineno, why);
	fclose(f);
	table_free(t);
	return -1;
}

bool
auth_enabled(void)
{
	return table != NULL;
}

size_t
auth_ntokens(void)
{
	return table != NULL ? table->n : 0;
}

/*
 * auth_check: the name and roles of the token of len bytes, if it is in
 * the file.  Constant time in the token: its hash is compared with every
 * entry's with CRYPTO_memcmp and the loop never exits early.
 */
bool
auth_check(const char *token, size_t len, struct auth_id *out)
{
	unsigned char h[AUTH_HASH];
	size_t i, found = SIZE_MAX;

	if (table == NULL)
		return false;
	auth_hash(token, len, h);
	for (i = 0; i < table->n; i++) {
		int differ = CRYPTO_memcmp(h, table->v[i].hash, AUTH_HASH);

		/* Keeps the first match; no branch leaves the loop. */
		found = (differ == 0 && found == SIZE_MAX) ? i : found;
	}
	OPENSSL_cleanse(h, sizeof h);
	if (found == SIZE_MAX)
		return false;
	memcpy(out->name, table->v[found].name, sizeof out->name);
	out->roles = table->v[found].roles;
	return true;
}

/* auth_name: the roles of a name in the file (a certificate's subject
 * stands for it, and a reload keeps connections by name). */
bool
auth_name(const char *name, unsigned *roles)
{
	size_t i;

	if (table == NULL)
		return false;
	for (i = 0; i < table->n; i++)
		if (strcmp(table->v[i].name, name) == 0) {
			*roles = table->v[i].roles;
			return true;
		}
	return false;
}

void
auth_free(void)
{
	table_free(table);
	table = NULL;
}

/* -------------------------------------------------------- peer addresses */

/* Connections at once per peer address (--max-conns-per-addr). */
struct peer_count {
	UT_hash_handle hh;
	unsigned       n;
	char           addr[];
};

static struct peer_count *peers;

unsigned
auth_peer_count(const char *addr)
{
	struct peer_count *p;

	HASH_FIND_STR(peers, addr, p);
	return p != NULL ? p->n : 0;
}

void
auth_peer_add(const char *addr)
{
	struct peer_count *p;
	size_t len;

	HASH_FIND_STR(peers, addr, p);
	if (p == NULL) {
		len = strlen(addr);
		p = xcalloc(1, sizeof *p + len + 1);
		memcpy(p->addr, addr, len + 1);
		HASH_ADD(hh, peers, addr[0], len, p);
	}
	p->n++;
}

void
auth_peer_del(const char *addr)
{
	struct peer_count *p;

	HASH_FIND_STR(peers, addr, p);
	if (p != NULL && --p->n == 0) {
		HASH_DEL(peers, p);
		free(p);
	}
}
