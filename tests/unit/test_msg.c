/*
 * test_msg.c — the message scanner (msg.c): every RFC 8259 text is
 * accepted as a field value, whatever its numbers and escapes; what is not
 * JSON or not an object is refused; depth is bounded; fields are kept as
 * spans; msg_int, msg_string and msg_value read them.
 */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "tap.h"

static char err[160];

static int
parse(struct msg *m, const char *s)
{
	return msg_parse(m, s, strlen(s), err, sizeof err);
}

/* body_ok: {"body":V} parses, and the body field spans exactly V. */
static bool
body_ok(const char *v)
{
	struct msg m;
	char *s = xprintf("{\"body\":%s}", v);
	bool good = parse(&m, s) == 0 && m.f[MK_BODY].present &&
	    m.f[MK_BODY].len == strlen(v) && memcmp(m.f[MK_BODY].val, v, strlen(v)) == 0;

	if (!good)
		diag("refused body %s: %s", v, err);
	free(s);
	return good;
}

static bool
refused(const char *s, size_t len)
{
	struct msg m;

	if (msg_parse(&m, s, len, err, sizeof err) == 0) {
		diag("accepted: %.*s", (int)len, s);
		return false;
	}
	return true;
}

/* compact: msg_value of the body of {"body":V}. */
static bool
compacts(const char *v, const char *want)
{
	struct msg m;
	struct buf scratch = { 0 };
	char *s = xprintf("{\"body\" : %s }", v);
	const char *out;
	size_t len;
	bool good = false;

	if (parse(&m, s) == 0) {
		out = msg_value(&m.f[MK_BODY], &scratch, &len);
		good = len == strlen(want) && memcmp(out, want, len) == 0;
		if (!good)
			diag("compacted %s to %.*s, want %s", v, (int)len, out, want);
	}
	buf_free(&scratch);
	free(s);
	return good;
}

static bool
int_is(const char *v, bool fits, int64_t want)
{
	struct msg m;
	char *s = xprintf("{\"priority\":%s}", v);
	int64_t got = 0;
	bool good = parse(&m, s) == 0 && m.f[MK_PRIORITY].kind == JK_INT &&
	    msg_int(&m.f[MK_PRIORITY], &got) == fits && (!fits || got == want);

	if (!good)
		diag("msg_int(%s): got %lld", v, (long long)got);
	free(s);
	return good;
}

/* nested: {"body":[[...]]} with levels levels of nesting in all. */
static char *
nested(int levels)
{
	size_t n = (size_t)levels - 1;
	char *s = xmalloc(2 * n + 16), *p = s;

	p += sprintf(p, "{\"body\":");
	memset(p, '[', n);
	p += n;
	memset(p, ']', n);
	p += n;
	strcpy(p, "}");
	return s;
}

int
main(void)
{
	static const char *const accepted[] = {
		"0", "-0", "1", "-1", "0.5", "-0.0e-0", "1e2", "1E+2", "1e-400", "1e400", "-1e400",
		"1.7976931348623157e309", "9223372036854775807", "9223372036854775808",
		"-9223372036854775809", "18446744073709551616", "123456789012345678901234567890",
		"\"\"", "\"a\\u0000b\"", "\"\\u0000\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800x\"",
		"\"\\ud83d\\ude00\"", "\"\\uDBFF\\uDFFF\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
		"\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"", "true", "false", "null",
		"[]", "{}", "[1,[2,[3]],{\"a\":{}}]", "{\"\\u0000\":1,\"a\":2,\"a\":3}",
		"{\"k\\u0000ey\":\"\\u0000\"}", "[ 1 , 2 ]", "{ \"a\" : [ ] }",
	};
	static const char *const refused_texts[] = {
		"", " ", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{,}", "{\"a\":1}x",
		"{\"a\":1}{}", "{'a':1}", "{a:1}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}",
		"{\"a\":-}", "{\"a\":1e}", "{\"a\":1e+}", "{\"a\":+1}", "{\"a\":NaN}",
		"{\"a\":Infinity}", "{\"a\":tru}", "{\"a\":nul}", "{\"a\":\"\\x\"}",
		"{\"a\":\"\\u12\"}", "{\"a\":\"\\u12G4\"}", "{\"a\":\"\t\"}", "{\"a\":\"\n\"}",
		"{\"a\":\"\xff\"}", "{\"a\":\"\xc0\x80\"}", "{\"a\":\"\xed\xa0\x80\"}",
		"{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"\xe2\x82\"}", "{\"a\":\"unterminated}",
		"{\"a\":[1,2}", "{\"a\":[1 2]}", "{\"a\":{\"b\" 1}}", "[]", "1", "\"s\"", "null",
		"\xef\xbb\xbf{}", "{\"a\":1}\x0b",
	};
	struct msg m;
	bool good;
	size_t i, len;
	int64_t v;
	char out[64], *s;

	plan(27);

	good = true;
	for (i = 0; i < sizeof accepted / sizeof accepted[0]; i++)
		good &= body_ok(accepted[i]);
	ok(good, "%zu valid JSON values are accepted as bodies, spans exact", i);

	good = true;
	for (i = 0; i < sizeof refused_texts / sizeof refused_texts[0]; i++)
		good &= refused(refused_texts[i], strlen(refused_texts[i]));
	ok(good, "%zu texts that are not JSON objects are refused", i);
	ok(refused("{\"a\":\"x\0y\"}", 11), "a raw NUL byte in a string is refused");
	ok(refused("{\"a\":1}\0", 8), "a raw NUL byte after the object is refused");
	ok(parse(&m, "[1]") < 0 && strstr(err, "must be a JSON object") != NULL,
	    "a valid non-object is told apart: %s", err);
	ok(parse(&m, "{\"a\":}") < 0 && strstr(err, "at byte 5") != NULL,
	    "the error names the byte: %s", err);

	s = nested(2048);
	ok(parse(&m, s) == 0, "2048 levels of nesting are accepted");
	free(s);
	s = nested(2049);
	ok(parse(&m, s) < 0 && strstr(err, "deep") != NULL, "2049 levels are refused: %s", err);
	free(s);
	s = nested(200000);
	ok(parse(&m, s) < 0, "200000 levels are refused, without exhausting the stack");
	free(s);

	ok(parse(&m, " {\"type\":\"job\",\"id\":7,\"body\":{\"a\":1},\"x\":[1,{\"type\":2}],\"priority\":-3} ") == 0 &&
	    m.f[MK_TYPE].kind == JK_STRING && m.f[MK_ID].kind == JK_INT &&
	    m.f[MK_BODY].kind == JK_OBJECT && m.f[MK_PRIORITY].kind == JK_INT &&
	    !m.f[MK_TIMEOUT].present && !m.f[MK_CHANNEL].present,
	    "known top-level fields are kept with their kinds; unknown ones skipped");
	ok(parse(&m, "{\"id\":1,\"id\":\"two\"}") == 0 && m.f[MK_ID].kind == JK_STRING &&
	    m.f[MK_ID].len == 5, "a repeated key: the last one counts");
	ok(parse(&m, "{\"t\\u0079pe\":\"ping\"}") == 0 && m.f[MK_TYPE].present,
	    "an escaped key names the same field");
	ok(parse(&m, "{\"type\\u0000\":\"ping\"}") == 0 && !m.f[MK_TYPE].present,
	    "a key with \\u0000 appended is another key");
	ok(parse(&m, "{\"a\":1.5,\"b\":1e3,\"body\":2.0}") == 0 && m.f[MK_BODY].kind == JK_REAL,
	    "a fraction or an exponent makes a real");

	ok(int_is("9223372036854775807", true, INT64_MAX) && int_is("-9223372036854775808", true, INT64_MIN) &&
	    int_is("0", true, 0) && int_is("-0", true, 0) && int_is("42", true, 42),
	    "msg_int reads int64 up to its extremes");
	ok(int_is("9223372036854775808", false, 0) && int_is("-9223372036854775809", false, 0) &&
	    int_is("18446744073709551616", false, 0) &&
	    int_is("123456789012345678901234567890", false, 0),
	    "msg_int refuses integers past int64 (JSON accepted, field not)");
	ok(parse(&m, "{\"priority\":1e2}") == 0 && !msg_int(&m.f[MK_PRIORITY], &v),
	    "msg_int refuses a real");

	ok(parse(&m, "{\"type\":\"a\\u00e9\\ud83d\\ude00\\n\"}") == 0 &&
	    msg_string(&m.f[MK_TYPE], out, sizeof out, &len) && len == 8 &&
	    memcmp(out, "a\xc3\xa9\xf0\x9f\x98\x80\n", 9) == 0,
	    "msg_string decodes escapes and surrogate pairs to UTF-8");
	ok(parse(&m, "{\"type\":\"x\\u0000y\"}") == 0 && !msg_string(&m.f[MK_TYPE], out, sizeof out, &len),
	    "msg_string refuses \\u0000");
	ok(parse(&m, "{\"type\":\"x\\ud800y\"}") == 0 && !msg_string(&m.f[MK_TYPE], out, sizeof out, &len) &&
	    parse(&m, "{\"type\":\"\\udc00\"}") == 0 && !msg_string(&m.f[MK_TYPE], out, sizeof out, &len) &&
	    parse(&m, "{\"type\":\"\\ud800\\u0041\"}") == 0 && !msg_string(&m.f[MK_TYPE], out, sizeof out, &len),
	    "msg_string refuses lone surrogates");
	ok(parse(&m, "{\"type\":\"abcdefgh\"}") == 0 && !msg_string(&m.f[MK_TYPE], out, 8, &len) &&
	    msg_string(&m.f[MK_TYPE], out, 9, &len) && len == 8 && strcmp(out, "abcdefgh") == 0,
	    "msg_string needs room for the NUL");
	ok(parse(&m, "{\"type\":7}") == 0 && !msg_string(&m.f[MK_TYPE], out, sizeof out, &len),
	    "msg_string refuses a non-string");

	ok(compacts("[ 1 ,\t2 ,\r\n3 ]", "[1,2,3]") &&
	    compacts("{ \"a b\" : \" x \\\" y \" }", "{\"a b\":\" x \\\" y \"}") &&
	    compacts("\"\\\\\" ", "\"\\\\\""),
	    "msg_value drops white space outside strings only");
	ok(compacts("[1e400 , 18446744073709551616 , \"\\u0000\" ]", "[1e400,18446744073709551616,\"\\u0000\"]"),
	    "msg_value keeps numbers and escapes as written");
	ok(parse(&m, "{\"body\":[1,2]}") == 0 && !m.f[MK_BODY].spaced &&
	    msg_value(&m.f[MK_BODY], NULL, &len) == m.f[MK_BODY].val && len == 5,
	    "an unspaced value is its own span, no copy");
	ok(parse(&m, "{\"body\":\"a b\"}") == 0 && !m.f[MK_BODY].spaced,
	    "white space inside a string does not mark a value spaced");

	/* Every prefix of a valid message but the whole is refused. */
	{
		const char *msg = "{\"type\":\"job\",\"id\":\"\\u00e9\",\"body\":[1e400,{\"k\":null}],\"x\":true}";
		good = parse(&m, msg) == 0;
		for (i = 0; i < strlen(msg); i++)
			good &= refused(msg, i);
		ok(good, "every strict prefix of a valid message is refused");
	}
	return done();
}
