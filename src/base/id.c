/*
 * id.c — job ids and type names, and how ids become file names.
 *
 * A job id is shown in the tree as itself unless that is not a usable file
 * name or would not stay one line in a listing: '/', '%' and control
 * characters (C0, DEL, and the two bytes of a C1) are percent-encoded
 * (uppercase hex) and the ids "." and ".." become "%2E" and "%2E%2E".
 * Decoding accepts only the canonical encoding, so each id has exactly one
 * name.
 */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

/* id_char_encoded: is the byte at p shown percent-encoded? (p[-1] for C1) */
static bool
id_char_encoded(const unsigned char *p, const unsigned char *start)
{
	if (*p == '/' || *p == '%' || *p < 0x20 || *p == 0x7f)
		return true;
	/* U+0080-U+009F are C2 80 to C2 9F in UTF-8: both bytes go encoded. */
	if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
		return true;
	return *p >= 0x80 && *p <= 0x9f && p > start && p[-1] == 0xc2;
}

static bool
id_is_dots(const char *key)
{
	return strcmp(key, ".") == 0 || strcmp(key, "..") == 0;
}

size_t
id_encoded_len(const char *key)
{
	const unsigned char *start = (const unsigned char *)key, *p;
	size_t n = 0;

	if (id_is_dots(key))
		return 3 * strlen(key);
	for (p = start; *p != '\0'; p++)
		n += id_char_encoded(p, start) ? 3 : 1;
	return n;
}

void
id_encode(const char *key, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *start = (const unsigned char *)key, *p;
	bool dots = id_is_dots(key);

	for (p = start; *p != '\0'; p++) {
		unsigned char ch = *p;
		if (dots || id_char_encoded(p, start)) {
			*out++ = '%';
			*out++ = hex[ch >> 4];
			*out++ = hex[ch & 15];
		} else
			*out++ = (char)ch;
	}
	*out = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
id_decode(const char *name)
{
	const char *s = name;
	char *key = xmalloc(strlen(name) + 1), *p = key, *check;
	bool canonical;

	while (*s != '\0') {
		if (*s == '%') {
			int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto bad;
			*p++ = (char)(hi << 4 | lo);
			s += 3;
		} else
			*p++ = *s++;
	}
	*p = '\0';
	/* Only the canonical spelling names the job: "%41" is not "A". */
	check = xmalloc(id_encoded_len(key) + 1);
	id_encode(key, check);
	canonical = strcmp(check, name) == 0;
	free(check);
	if (canonical)
		return key;
bad:
	free(key);
	return NULL;
}

/*
 * utf8_valid: len bytes of well-formed UTF-8 (RFC 3629): no overlong
 * forms, no surrogates, nothing past U+10FFFF.  Ids and type names come
 * from JSON strings (the scanner checks those) but also from file names
 * made in the tree, which the kernel passes as any bytes: so both are
 * checked here.
 */
static bool
utf8_valid(const unsigned char *p, size_t len)
{
	const unsigned char *end = p + len;
	unsigned char lo, hi;
	size_t n, k;

	while (p < end) {
		if (p[0] < 0x80) {
			p++;
			continue;
		}
		lo = 0x80, hi = 0xbf;
		if (p[0] >= 0xc2 && p[0] <= 0xdf)
			n = 2;
		else if (p[0] >= 0xe0 && p[0] <= 0xef) {
			n = 3;
			if (p[0] == 0xe0)
				lo = 0xa0;       /* overlong */
			else if (p[0] == 0xed)
				hi = 0x9f;       /* surrogates */
		} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
			n = 4;
			if (p[0] == 0xf0)
				lo = 0x90;       /* overlong */
			else if (p[0] == 0xf4)
				hi = 0x8f;       /* past U+10FFFF */
		} else
			return false;
		if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
			return false;
		for (k = 2; k < n; k++)
			if (p[k] < 0x80 || p[k] > 0xbf)
				return false;
		p += n;
	}
	return true;
}

/*
 * id_valid: a job id (also a worker name): 1-255 bytes of UTF-8 without
 * NUL (it is a C string and a file name), at most 255 bytes once encoded
 * as a file name.
 */
bool
id_valid(const char *key, size_t len)
{
	return len >= 1 && len <= ID_MAX && strlen(key) == len &&
	    utf8_valid((const unsigned char *)key, len) &&
	    id_encoded_len(key) <= ID_MAX;
}

/*
 * type_name_valid: a directory name: 1-255 bytes of UTF-8, no '/', NUL,
 * C0/C1 control or DEL, not . or ..
 */
bool
type_name_valid(const char *name, size_t len)
{
	const unsigned char *p = (const unsigned char *)name;
	size_t i;

	if (len < 1 || len > ID_MAX || strlen(name) != len ||
	    !utf8_valid(p, len))
		return false;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (i = 0; i < len; i++) {
		if (p[i] == '/' || p[i] < 0x20 || p[i] == 0x7f)
			return false;
		if (p[i] == 0xc2 && i + 1 < len && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f)
			return false;
	}
	return true;
}
