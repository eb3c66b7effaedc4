/*
 * fuzz_json_diff.c — the message scanner (msg.c) checked against jansson:
 * both must accept or refuse every document alike, and when both accept,
 * the scanner's compact text (msg_value) must decode to the same value.
 *
 * An input whose first byte is below 0x80 is the document itself; any
 * other input seeds a generator of documents (objects, arrays, strings with
 * every kind of escape and UTF-8, numbers of every shape, white space, and
 * sometimes one corrupted byte), so that most runs are near-valid JSON
 * rather than noise.  `make fuzz FUZZ_ARGS=-runs=N` runs N documents.
 *
 * The scanner accepts a JSON value where jansson (json_loadb with
 * JSON_DECODE_ANY | JSON_ALLOW_NUL) does; msg_parse only takes objects, so
 * its "must be a JSON object" answer counts as accepting the value.  Where
 * the two deliberately differ the document is not compared (and counted):
 *   - numbers jansson cannot hold: "too big integer", "too big negative
 *     integer", "real number overflow" (2^64, 1e400): valid JSON, which
 *     jobfs passes through as written;
 *   - lone surrogate escapes ("invalid Unicode '\uD800'"), and \u0000 in an
 *     object key ("NUL byte in object key not supported"): valid by RFC
 *     8259's grammar, passed through as written;
 *   - the depth limit: both stop at 2048 levels, but each reports it (or an
 *     earlier error) in its own way, so a document either calls too deep
 *     is skipped;
 *   - a raw NUL byte, never valid in JSON, that jansson 2.14 lets through
 *     right after a number ("0\0", "[1\0]" are accepted): a document
 *     jansson accepts while it holds a NUL byte is not compared.
 * Every other document must get the same answer from both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define DOC_MAX 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ------------------------------------------------------------ generator */

struct gen {
	const uint8_t *in;
	size_t n, i;
	char *out;
	size_t len;
};

static unsigned
rnd(struct gen *g, unsigned k)
{
	unsigned v;

	if (g->n == 0)
		return 0;
	v = g->in[g->i % g->n] | (unsigned)g->in[(g->i + 1) % g->n] << 8;
	g->i += 2;
	if (g->i > 4 * g->n)       /* entropy used up: wind down */
		return 0;
	return k ? v % k : 0;
}

static void
put(struct gen *g, const char *s)
{
	size_t n = strlen(s);

	if (g->len + n < DOC_MAX) {
		memcpy(g->out + g->len, s, n);
		g->len += n;
	}
}

static void
ws(struct gen *g)
{
	static const char *const w[] = { "", "", "", "", " ", "\n", "\t ", "\r\n  " };

	put(g, w[rnd(g, 8)]);
}

static void
gen_string(struct gen *g)
{
	static const char *const parts[] = {
		"a", "Z", " ", "0", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t",
		"\\u0041", "\\u00e9", "\\u0000", "\\uFFFF", "\\ud83d\\ude00", "\\uDBFF\\uDFFF",
		"\\ud800", "\\udc00", "\\ud800\\u0041", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
		"\xef\xbf\xbf", "\xf4\x8f\xbf\xbf",
		/* invalid: */ "\x01", "\x1f", "\x7f", "\xff", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
		"\xe2\x82", "\\x", "\\u12", "\\u12G4", "\\", "\x80",
	};
	unsigned n = rnd(g, 6), valid_parts = 26;

	put(g, "\"");
	while (n-- > 0)
		put(g, parts[rnd(g, 8) ? rnd(g, valid_parts) : rnd(g, sizeof parts / sizeof parts[0])]);
	put(g, "\"");
}

static void
gen_number(struct gen *g)
{
	static const char *const nums[] = {
		"0", "-0", "1", "-1", "42", "0.5", "-0.0", "1e2", "1E+2", "1e-2", "2.5E-3",
		"9223372036854775807", "-9223372036854775808", "1.7976931348623157e308",
		"5e-324", "1e-400", "123.456e7",
		/* valid, but jansson refuses: */ "9223372036854775808", "18446744073709551616",
		"-9223372036854775809", "1e400", "-1e400", "123456789012345678901234567890",
		/* invalid: */ "01", "-", "1.", ".5", "1e", "1e+", "+1", "0x10", "NaN", "Infinity",
		"--1", "1.2.3", "00",
	};
	unsigned k = rnd(g, 16) ? rnd(g, 17) : rnd(g, sizeof nums / sizeof nums[0]);

	put(g, nums[k]);
}

static void
gen_value(struct gen *g, int depth)
{
	unsigned kind = rnd(g, depth > 6 ? 5 : 8), n;

	ws(g);
	switch (kind) {
	case 0: gen_string(g); break;
	case 1: gen_number(g); break;
	case 2: put(g, "true"); break;
	case 3: put(g, rnd(g, 2) ? "false" : "null"); break;
	case 4: put(g, rnd(g, 30) ? "[]" : "{}"); break;
	case 5: case 6:
		put(g, "{");
		n = rnd(g, 4);
		for (unsigned i = 0; i < n; i++) {
			if (i > 0)
				put(g, ",");
			ws(g);
			gen_string(g);
			ws(g);
			put(g, ":");
			gen_value(g, depth + 1);
		}
		ws(g);
		put(g, "}");
		break;
	default:
		put(g, "[");
		n = rnd(g, 4);
		for (unsigned i = 0; i < n; i++) {
			if (i > 0)
				put(g, ",");
			gen_value(g, depth + 1);
		}
		ws(g);
		put(g, "]");
		break;
	}
	ws(g);
}

/* generate: a document from the bytes in; sometimes one byte corrupted,
 * dropped or the text cut short. */
static size_t
generate(const uint8_t *in, size_t n, char *out)
{
	struct gen g = { in, n, 0, out, 0 };
	unsigned what;

	if (rnd(&g, 2))
		put(&g, "{\"body\":");
	gen_value(&g, 0);
	if (g.out[0] == '{' && g.len >= 8 && memcmp(g.out, "{\"body\":", 8) == 0)
		put(&g, "}");
	what = rnd(&g, 8);
	if (g.len > 0 && what == 1)
		g.out[rnd(&g, (unsigned)g.len)] = (char)rnd(&g, 256);
	else if (g.len > 0 && what == 2) {
		size_t at = rnd(&g, (unsigned)g.len);
		memmove(g.out + at, g.out + at + 1, g.len - at - 1);
		g.len--;
	} else if (g.len > 0 && what == 3)
		g.len = rnd(&g, (unsigned)g.len);
	return g.len;
}

/* ------------------------------------------------------------- compare */

static bool
jansson_differs_by_design(const char *text)
{
	return strstr(text, "too big integer") != NULL ||
	    strstr(text, "too big negative integer") != NULL ||
	    strstr(text, "real number overflow") != NULL ||
	    strncmp(text, "invalid Unicode '", 17) == 0 ||
	    strstr(text, "NUL byte in object key") != NULL ||
	    strstr(text, "maximum parsing depth") != NULL;
}

static unsigned long compared, skipped;

static void
report(void)
{
	fprintf(stderr, "fuzz_json_diff: %lu documents compared with jansson, %lu skipped "
	    "(numbers jansson cannot hold, lone surrogates, NUL in keys or after a number, depth)\n",
	    compared, skipped);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *doc;
	char *copy, err[160];
	size_t len;
	struct msg m;
	json_error_t jerr;
	json_t *jv;
	bool ours, theirs;

	if (doc == NULL) {
		doc = malloc(DOC_MAX);
		atexit(report);
	}
	if (size > 0 && data[0] >= 0x80)
		len = generate(data + 1, size - 1, doc);
	else {
		len = size < DOC_MAX ? size : DOC_MAX;
		memcpy(doc, data, len);
	}
	copy = malloc(len ? len : 1);    /* exactly len bytes: overreads show */
	memcpy(copy, doc, len);

	ours = msg_parse(&m, copy, len, err, sizeof err) == 0 ||
	    strstr(err, "must be a JSON object") != NULL;
	jv = json_loadb(copy, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	theirs = jv != NULL;
	if ((!theirs && jansson_differs_by_design(jerr.text)) ||
	    (theirs && memchr(copy, '\0', len) != NULL) ||
	    (!ours && strstr(err, "too deep") != NULL)) {
		skipped++;
		goto out;
	}
	compared++;
	if (ours != theirs) {
		fprintf(stderr, "disagree on %zu bytes: scanner %s (%s), jansson %s (%s)\n%.*s\n",
		    len, ours ? "accepts" : "refuses", ours ? "-" : err,
		    theirs ? "accepts" : "refuses", theirs ? "-" : jerr.text, (int)len, copy);
		abort();
	}
	if (ours) {
		/* The compact text of the value decodes to the same value. */
		struct buf scratch = { 0 };
		char *wrapped = malloc(len + 9);
		const char *v;
		size_t vlen;
		json_t *again;

		memcpy(wrapped, "{\"body\":", 8);
		memcpy(wrapped + 8, copy, len);
		wrapped[len + 8] = '}';
		if (msg_parse(&m, wrapped, len + 9, err, sizeof err) == 0) {
			v = msg_value(&m.f[MK_BODY], &scratch, &vlen);
			again = json_loadb(v, vlen, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
			if (again == NULL || !json_equal(again, jv)) {
				fprintf(stderr, "compact text differs: %.*s\nfrom: %.*s\n",
				    (int)vlen, v, (int)len, copy);
				abort();
			}
			json_decref(again);
		} else if (strstr(err, "too deep") == NULL)
			abort();
		buf_free(&scratch);
		free(wrapped);
	}
out:
	json_decref(jv);
	free(copy);
	return 0;
}
