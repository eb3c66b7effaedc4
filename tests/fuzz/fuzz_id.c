/*
 * fuzz_id.c — ids as file names (id.c).  The input as an id: if valid, its
 * name has no '/', is not . or .., fits 255 bytes and decodes back to it.
 * The input as a name: it decodes only if it is the canonical name of what
 * it decodes to.
 */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *name, *key;
	size_t n;

	memcpy(s, data, size);
	s[size] = '\0';
	n = strlen(s);
	if (n > 0) {
		name = malloc(id_encoded_len(s) + 1);
		id_encode(s, name);
		if (strlen(name) != id_encoded_len(s) || strchr(name, '/') != NULL ||
		    strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			abort();
		if (id_valid(s, n) && strlen(name) > ID_MAX)
			abort();
		key = id_decode(name);
		if (key == NULL || strcmp(key, s) != 0)
			abort();
		free(key);
		free(name);
	}
	(void)id_valid(s, size);
	if (type_name_valid(s, size) &&
	    (size == 0 || size > ID_MAX || strchr(s, '/') != NULL || strcmp(s, ".") == 0 ||
	     strcmp(s, "..") == 0))
		abort();
	key = id_decode(s);
	if (key != NULL) {
		name = malloc(id_encoded_len(key) + 1);
		id_encode(key, name);
		if (strcmp(name, s) != 0)
			abort();
		free(name);
		free(key);
	}
	free(s);
	return 0;
}
