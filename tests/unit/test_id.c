/*
 * test_id.c — ids as file names (id.c): encoding round trips for random
 * ids, one canonical name per id, and the validity rules of ids and type
 * names.
 */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "tap.h"

static bool
encodes(const char *key, const char *want)
{
	char *out = xmalloc(id_encoded_len(key) + 1);
	bool good;

	id_encode(key, out);
	good = strcmp(out, want) == 0 && id_encoded_len(key) == strlen(want);
	if (!good)
		diag("id_encode(%s) = %s, want %s", key, out, want);
	free(out);
	return good;
}

/* round_trip: key encodes to a name with no '/' that decodes to key. */
static bool
round_trip(const char *key)
{
	size_t n = id_encoded_len(key);
	char *name = xmalloc(n + 1), *back;
	bool good;

	id_encode(key, name);
	back = id_decode(name);
	good = strlen(name) == n && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
	    strcmp(name, "..") != 0 && back != NULL && strcmp(back, key) == 0;
	if (!good)
		diag("round trip of a %zu-byte id failed", strlen(key));
	free(back);
	free(name);
	return good;
}

static bool
no_decode(const char *name)
{
	char *key = id_decode(name);

	if (key != NULL) {
		diag("%s decoded", name);
		free(key);
		return false;
	}
	return true;
}

int
main(void)
{
	char key[300], *name, *back;
	bool good;
	int i, n;

	plan(13);

	ok(encodes("abc", "abc") && encodes("a b:c~\xc3\xa9", "a b:c~\xc3\xa9"),
	    "ordinary ids are their own names");
	ok(encodes("a/b", "a%2Fb") && encodes("100%", "100%25") && encodes("/%/", "%2F%25%2F"),
	    "'/' and '%%' are percent-encoded, uppercase hex");
	ok(encodes(".", "%2E") && encodes("..", "%2E%2E") && encodes("...", "...") && encodes(".a", ".a"),
	    "only the ids . and .. have their dots encoded");

	good = true;
	srand(1);
	for (i = 0; i < 20000 && good; i++) {
		n = 1 + rand() % 40;
		for (int k = 0; k < n; k++) {
			/* Mostly the bytes that matter: '/', '%', '.', hex digits. */
			static const char pick[] = "/%.AaF0f9";
			key[k] = rand() % 2 ? pick[rand() % 9] : (char)(1 + rand() % 255);
		}
		key[n] = '\0';
		good = round_trip(key);
	}
	ok(good, "20000 random ids round trip through their names");
	ok(round_trip(".") && round_trip("..") && round_trip("%2E") && round_trip("%") && round_trip("%%"),
	    "dots and literal percent sequences round trip");

	good = true;
	srand(2);
	for (i = 0; i < 20000 && good; i++) {
		/* Any name decodes to nothing, or to the id whose name it is. */
		n = 1 + rand() % 12;
		for (int k = 0; k < n; k++) {
			static const char pick[] = "%%%2EFf0A.a/";
			key[k] = pick[rand() % 12];
		}
		key[n] = '\0';
		if ((back = id_decode(key)) != NULL) {
			name = xmalloc(id_encoded_len(back) + 1);
			id_encode(back, name);
			good = strcmp(name, key) == 0;
			if (!good)
				diag("%s decodes to an id named %s", key, name);
			free(name);
			free(back);
		}
	}
	ok(good, "20000 random names: each decodes only if it is the canonical name");
	ok(no_decode("%41") && no_decode("%2f") && no_decode("%2e") && no_decode("%00") &&
	    no_decode("%") && no_decode("%2") && no_decode("%G0") && no_decode("a%2") &&
	    no_decode(".") && no_decode("..") && no_decode("%2E.") && no_decode("%2Ea"),
	    "non-canonical spellings, bad escapes and . or .. name no job");
	back = id_decode("a%2Fb%25");
	ok(back != NULL && strcmp(back, "a/b%") == 0, "a canonical name decodes");
	free(back);

	memset(key, 'x', sizeof key);
	key[ID_MAX] = '\0';
	ok(id_valid(key, ID_MAX) && id_valid("a", 1) && !id_valid("", 0), "ids are 1 to 255 bytes");
	key[ID_MAX] = 'x';
	key[ID_MAX + 1] = '\0';
	ok(!id_valid(key, ID_MAX + 1), "a 256-byte id is refused");
	memset(key, '/', 85);
	key[85] = '\0';
	ok(id_valid(key, 85) && (key[85] = '/', key[86] = '\0', !id_valid(key, 86)),
	    "an id whose name would pass 255 bytes is refused (85 '/' ok, 86 not)");
	ok(!id_valid("a\0b", 3), "a length that disagrees with the C string (an embedded NUL) is refused");

	ok(type_name_valid("echo", 4) && type_name_valid("caf\xc3\xa9 1", 7) &&
	    !type_name_valid("", 0) && !type_name_valid(".", 1) && !type_name_valid("..", 2) &&
	    !type_name_valid("a/b", 3) && !type_name_valid("a\nb", 3) && !type_name_valid("a\x7f", 2) &&
	    !type_name_valid("a\xc2\x85", 3) && !type_name_valid("a\0b", 3) &&
	    (memset(key, 't', 256), key[256] = '\0', !type_name_valid(key, 256)),
	    "type names: 1-255 bytes, no '/', control characters, DEL, . or ..");
	return done();
}
