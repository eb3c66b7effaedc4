/*
 * msg.c — read one message: a validating scan of a JSON object that builds
 * no tree.
 *
 * Every frame is checked to be one valid JSON object (RFC 8259, strict
 * UTF-8), but only the top-level fields the protocol knows are kept, as
 * spans of the frame.  A body is passed on as the bytes the master sent
 * (less insignificant white space), so it is never decoded and re-encoded:
 * that is most of a broker's work per job, and it keeps numbers and escapes
 * exactly as sent.  So any RFC 8259 text is accepted as a value, whatever a
 * given parser would make of it: \u0000 and lone surrogate escapes in
 * strings, integers past 64 bits, 1e400.  Only nesting depth (here) and size
 * (the frame limit) are bounded.  The protocol's own fields are checked
 * where they are read: msg_int() refuses an integer that int64 cannot hold,
 * msg_string() a string holding U+0000 or a lone surrogate.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define MSG_MAX_DEPTH 2048   /* levels of arrays and objects; jansson's limit too */

struct scan {
	const char *p, *end;
	const char *err;
	size_t      err_at;
	const char *start;
	bool        ws;          /* saw white space inside the current value */
};

static const char *const msg_key_names[MK_COUNT] = {
	[MK_TYPE] = "type", [MK_ACTION] = "action", [MK_JOB_TYPE] = "job_type",
	[MK_ID] = "id", [MK_BODY] = "body", [MK_PRIORITY] = "priority",
	[MK_TIMEOUT] = "timeout", [MK_DETACH] = "detach", [MK_STREAM] = "stream",
	[MK_NOTIFY] = "notify", [MK_WORKER] = "worker", [MK_CAPACITY] = "capacity",
	[MK_HEARTBEAT] = "heartbeat", [MK_CANCEL] = "cancel", [MK_CHANNEL] = "channel",
	[MK_TOKEN] = "token",
	[MK_RETRIES] = "retries", [MK_BACKOFF] = "backoff", [MK_DELAY] = "delay",
	[MK_AT] = "at", [MK_AFTER] = "after", [MK_LIMIT] = "limit",
	[MK_LOG] = "log",
	[MK_STATE] = "state", [MK_CURSOR] = "cursor",
	[MK_NAME] = "name", [MK_CRON] = "cron", [MK_EVERY] = "every",
};

const char *
msg_key_name(enum msg_key k)
{
	return msg_key_names[k];
}

static bool
scan_fail(struct scan *s, const char *why)
{
	if (s->err == NULL) {
		s->err = why;
		s->err_at = (size_t)(s->p - s->start);
	}
	return false;
}

static void
scan_ws(struct scan *s)
{
	while (s->p < s->end &&
	    (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) {
		s->p++;
		s->ws = true;
	}
}

static int
hex4(const char *p)
{
	int v = 0, i;

	for (i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* utf8_len: length of the valid UTF-8 sequence at p, or 0. */
static size_t
utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0];
	size_t n, i;
	unsigned lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0) lo = 0xa0;       /* no overlongs */
		if (c == 0xed) hi = 0x9f;       /* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0) lo = 0x90;
		if (c == 0xf4) hi = 0x8f;       /* nothing past U+10FFFF */
	} else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/*
 * plain_run: how many bytes from p on (up to end) are plain string bytes:
 * ASCII, not a control character, not '"' and not '\\'.  The scanner
 * skips such a run in 64-byte then 16-byte steps (8 without SSE2), so a
 * large body costs a few instructions per 16 bytes rather than a branch
 * per byte, and one branch per 64.
 */
static size_t
plain_run(const unsigned char *p, const unsigned char *end)
{
	const unsigned char *s = p;
#ifdef __SSE2__
	const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
	const __m128i space = _mm_set1_epi8(0x20);

/* Signed compare: bytes >= 0x80 are negative, so "< 0x20" catches control
 * characters and non-ASCII together. */
#define PLAIN_BAD(v) _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8((v), quote), \
	_mm_cmpeq_epi8((v), bslash)), _mm_cmplt_epi8((v), space))
	while (end - p >= 64) {
		const __m128i *q = (const __m128i *)(const void *)p;
		__m128i bad = _mm_or_si128(
		    _mm_or_si128(PLAIN_BAD(_mm_loadu_si128(q)), PLAIN_BAD(_mm_loadu_si128(q + 1))),
		    _mm_or_si128(PLAIN_BAD(_mm_loadu_si128(q + 2)), PLAIN_BAD(_mm_loadu_si128(q + 3))));

		if (_mm_movemask_epi8(bad) != 0)
			break;    /* the 16-byte steps find where */
		p += 64;
	}
#undef PLAIN_BAD
	while (end - p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		/* Signed compare: bytes >= 0x80 are negative, so "< 0x20"
		 * catches control characters and non-ASCII together. */
		__m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote),
		    _mm_cmpeq_epi8(v, bslash)), _mm_cmplt_epi8(v, space));
		unsigned m = (unsigned)_mm_movemask_epi8(bad);

		if (m != 0)
			return (size_t)(p - s) + (size_t)__builtin_ctz(m);
		p += 16;
	}
#else
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;

	while (end - p >= 8) {
		uint64_t x, q, b;

		memcpy(&x, p, 8);
		q = x ^ (ones * '"');
		b = x ^ (ones * '\\');
		if (((x | ((q - ones) & ~q) | ((b - ones) & ~b) |
		    ((x - ones * 0x20) & ~x)) & highs) != 0)
			break;
		p += 8;
	}
#endif
	while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
		p++;
	return (size_t)(p - s);
}

/* scan_string: at the opening quote; leaves p after the closing one. */
static bool
scan_string(struct scan *s, bool *escaped)
{
	const unsigned char *p = (const unsigned char *)s->p + 1;
	const unsigned char *end = (const unsigned char *)s->end;

	*escaped = false;
	while (p < end) {
		unsigned char c;

		p += plain_run(p, end);
		if (p >= end)
			break;
		c = *p;
		if (c == '"') {
			s->p = (const char *)p + 1;
			return true;
		}
		if (c < 0x20) {
			s->p = (const char *)p;
			return scan_fail(s, "control character in a string");
		}
		if (c == '\\') {
			*escaped = true;
			if (p + 1 >= end)
				break;
			switch (p[1]) {
			case '"': case '\\': case '/': case 'b': case 'f':
			case 'n': case 'r': case 't':
				p += 2;
				continue;
			case 'u':
				/* Any code unit: RFC 8259's grammar allows U+0000 and
				 * lone surrogates; msg_unescape() tells them apart. */
				if (end - p < 6 || hex4((const char *)p + 2) < 0) {
					s->p = (const char *)p;
					return scan_fail(s, "invalid \\u escape");
				}
				p += 6;
				continue;
			default:
				s->p = (const char *)p;
				return scan_fail(s, "invalid escape");
			}
		}
		if (c < 0x80) {
			p++;
			continue;
		}
		size_t n = utf8_len(p, end);
		if (n == 0) {
			s->p = (const char *)p;
			return scan_fail(s, "invalid UTF-8");
		}
		p += n;
	}
	s->p = s->end;
	return scan_fail(s, "unterminated string");
}

static bool
scan_digits(struct scan *s)
{
	const char *start = s->p;

	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	return s->p > start;
}

/*
 * scan_number: a JSON number, by its syntax alone.  Its magnitude is not
 * judged: a body's numbers pass through as sent, and an integer field the
 * protocol reads is range-checked by msg_int().
 */
static bool
scan_number(struct scan *s, enum jkind *kind)
{
	*kind = JK_INT;
	if (*s->p == '-')
		s->p++;
	if (s->p < s->end && *s->p == '0')
		s->p++;
	else if (!scan_digits(s))
		return scan_fail(s, "invalid number");
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		*kind = JK_REAL;
		if (!scan_digits(s))
			return scan_fail(s, "invalid number");
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		*kind = JK_REAL;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (!scan_digits(s))
			return scan_fail(s, "invalid number");
	}
	return true;
}

static bool
scan_word(struct scan *s, const char *w, size_t n)
{
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
		return scan_fail(s, "invalid literal");
	s->p += n;
	return true;
}

static bool scan_value(struct scan *, enum jkind *, int depth);

/* scan_container: an object or array, at its opening bracket. */
static bool
scan_container(struct scan *s, bool object, int depth)
{
	char close = object ? '}' : ']';
	enum jkind kind;
	bool escaped;

	if (depth > MSG_MAX_DEPTH)
		return scan_fail(s, "nested too deep");
	s->p++;
	scan_ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		return true;
	}
	for (;;) {
		if (object) {
			if (s->p >= s->end || *s->p != '"')
				return scan_fail(s, "expected a string key");
			if (!scan_string(s, &escaped))
				return false;
			scan_ws(s);
			if (s->p >= s->end || *s->p != ':')
				return scan_fail(s, "expected ':'");
			s->p++;
			scan_ws(s);
		}
		if (!scan_value(s, &kind, depth + 1))
			return false;
		scan_ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			scan_ws(s);
			continue;
		}
		if (s->p < s->end && *s->p == close) {
			s->p++;
			return true;
		}
		return scan_fail(s, object ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

static bool
scan_value(struct scan *s, enum jkind *kind, int depth)
{
	bool escaped;

	if (s->p >= s->end)
		return scan_fail(s, "unexpected end of input");
	switch (*s->p) {
	case '{': *kind = JK_OBJECT; return scan_container(s, true, depth);
	case '[': *kind = JK_ARRAY; return scan_container(s, false, depth);
	case '"': *kind = JK_STRING; return scan_string(s, &escaped);
	case 't': *kind = JK_TRUE; return scan_word(s, "true", 4);
	case 'f': *kind = JK_FALSE; return scan_word(s, "false", 5);
	case 'n': *kind = JK_NULL; return scan_word(s, "null", 4);
	default:
		if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
			return scan_number(s, kind);
		return scan_fail(s, "invalid token");
	}
}

/*
 * msg_unescape: decode the JSON string at span (with its quotes) into out
 * (NUL-terminated).  Returns the byte length, or -1 if it does not fit or
 * holds a lone surrogate escape (which no UTF-8 can carry).  A \u0000 is
 * decoded as a NUL byte, counted in the length.
 */
ssize_t
msg_unescape(const char *span, size_t len, char *out, size_t outlen)
{
	const char *p = span + 1, *end = span + len - 1;
	size_t n = 0;

	while (p < end) {
		unsigned v;
		char buf[4];
		size_t k;

		if (*p != '\\') {
			if (n + 1 >= outlen)
				return -1;
			out[n++] = *p++;
			continue;
		}
		switch (p[1]) {
		case 'b': v = '\b'; p += 2; break;
		case 'f': v = '\f'; p += 2; break;
		case 'n': v = '\n'; p += 2; break;
		case 'r': v = '\r'; p += 2; break;
		case 't': v = '\t'; p += 2; break;
		case 'u':
			v = (unsigned)hex4(p + 2);
			p += 6;
			if (v >= 0xdc00 && v <= 0xdfff)
				return -1;
			if (v >= 0xd800 && v <= 0xdbff) {
				int lo = end - p >= 6 && p[0] == '\\' && p[1] == 'u' ?
				    hex4(p + 2) : -1;
				if (lo < 0xdc00 || lo > 0xdfff)
					return -1;
				v = 0x10000 + ((v - 0xd800) << 10) + ((unsigned)lo - 0xdc00);
				p += 6;
			}
			break;
		default: v = (unsigned char)p[1]; p += 2; break;
		}
		if (v < 0x80) {
			buf[0] = (char)v; k = 1;
		} else if (v < 0x800) {
			buf[0] = (char)(0xc0 | v >> 6); buf[1] = (char)(0x80 | (v & 0x3f)); k = 2;
		} else if (v < 0x10000) {
			buf[0] = (char)(0xe0 | v >> 12); buf[1] = (char)(0x80 | ((v >> 6) & 0x3f));
			buf[2] = (char)(0x80 | (v & 0x3f)); k = 3;
		} else {
			buf[0] = (char)(0xf0 | v >> 18); buf[1] = (char)(0x80 | ((v >> 12) & 0x3f));
			buf[2] = (char)(0x80 | ((v >> 6) & 0x3f)); buf[3] = (char)(0x80 | (v & 0x3f)); k = 4;
		}
		if (n + k >= outlen)
			return -1;
		memcpy(out + n, buf, k);
		n += k;
	}
	if (n >= outlen)
		return -1;
	out[n] = '\0';
	return (ssize_t)n;
}

static int
msg_key_lookup(const char *span, size_t len, bool escaped)
{
	char key[16];
	const char *k = span + 1;
	size_t klen = len - 2;
	int i;

	if (escaped) {
		ssize_t n = msg_unescape(span, len, key, sizeof key);
		if (n < 0)
			return -1;
		k = key;
		klen = (size_t)n;
	}
	for (i = 0; i < MK_COUNT; i++)
		if (strlen(msg_key_names[i]) == klen && memcmp(msg_key_names[i], k, klen) == 0)
			return i;
	return -1;
}

/*
 * msg_parse: scan one frame.  Returns 0, or -1 with a reason in err: not
 * JSON, or not an object.
 */
int
msg_parse(struct msg *m, const char *p, size_t len, char *err, size_t errlen)
{
	struct scan s = { .p = p, .end = p + len, .start = p };
	enum jkind kind;
	bool escaped;

	memset(m->f, 0, sizeof m->f);
	scan_ws(&s);
	if (s.p >= s.end || *s.p != '{') {
		/* Tell "not JSON" from "JSON, but not an object". */
		if (s.p >= s.end)
			snprintf(err, errlen, "no JSON value");
		else if (scan_value(&s, &kind, 1) && (scan_ws(&s), s.p == s.end))
			snprintf(err, errlen, "a message must be a JSON object");
		else
			snprintf(err, errlen, "%s at byte %zu", s.err ? s.err : "trailing data", s.err_at);
		return -1;
	}
	s.p++;
	scan_ws(&s);
	if (s.p < s.end && *s.p == '}')
		s.p++;
	else for (;;) {
		const char *kstart, *vstart;
		int key;

		if (s.p >= s.end || *s.p != '"') {
			scan_fail(&s, "expected a string key");
			goto bad;
		}
		kstart = s.p;
		if (!scan_string(&s, &escaped))
			goto bad;
		key = msg_key_lookup(kstart, (size_t)(s.p - kstart), escaped);
		scan_ws(&s);
		if (s.p >= s.end || *s.p != ':') {
			scan_fail(&s, "expected ':'");
			goto bad;
		}
		s.p++;
		scan_ws(&s);
		vstart = s.p;
		s.ws = false;
		if (!scan_value(&s, &kind, 2))  /* the object is level 1 */
			goto bad;
		if (key >= 0) {  /* a repeated key: the last one counts, as in jansson */
			m->f[key].present = true;
			m->f[key].kind = kind;
			m->f[key].val = vstart;
			m->f[key].len = (size_t)(s.p - vstart);
			m->f[key].spaced = s.ws;
		}
		scan_ws(&s);
		if (s.p < s.end && *s.p == ',') {
			s.p++;
			scan_ws(&s);
			continue;
		}
		if (s.p < s.end && *s.p == '}') {
			s.p++;
			break;
		}
		scan_fail(&s, "expected ',' or '}'");
		goto bad;
	}
	scan_ws(&s);
	if (s.p != s.end) {
		scan_fail(&s, "trailing data after the object");
		goto bad;
	}
	return 0;
bad:
	snprintf(err, errlen, "%s at byte %zu", s.err, s.err_at);
	return -1;
}

/*
 * msg_string: decode a string field into out, as a C string; false if it
 * does not fit, or holds U+0000 or a lone surrogate (the protocol's own
 * strings become names and file names).
 */
bool
msg_string(const struct mfield *f, char *out, size_t outlen, size_t *len)
{
	ssize_t n;

	if (f->kind != JK_STRING)
		return false;
	n = msg_unescape(f->val, f->len, out, outlen);
	if (n < 0 || memchr(out, '\0', (size_t)n) != NULL)
		return false;
	if (len != NULL)
		*len = (size_t)n;
	return true;
}

/* msg_int: an integer field as int64; false if int64 cannot hold it. */
bool
msg_int(const struct mfield *f, int64_t *out)
{
	char buf[32], *end;
	long long v;

	if (f->kind != JK_INT || f->len >= sizeof buf)
		return false;
	memcpy(buf, f->val, f->len);
	buf[f->len] = '\0';
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

/*
 * msg_value: a field's JSON text, compact.  Usually the span itself; a
 * value written with white space is copied into scratch without it.
 */
const char *
msg_value(const struct mfield *f, struct buf *scratch, size_t *len)
{
	const char *p = f->val, *end = f->val + f->len;
	bool in_string = false;

	if (!f->spaced) {
		*len = f->len;
		return f->val;
	}
	scratch->off = scratch->len = 0;
	buf_reserve(scratch, f->len);
	for (; p < end; p++) {
		char c = *p;
		if (in_string) {
			if (c == '\\') {
				scratch->data[scratch->len++] = c;
				c = *++p;
			} else if (c == '"')
				in_string = false;
		} else if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
			continue;
		else if (c == '"')
			in_string = true;
		scratch->data[scratch->len++] = c;
	}
	*len = scratch->len;
	return scratch->data;
}

/*
 * msg_json_compact: check that [p, p + len) is exactly one JSON value
 * (white space around it allowed), by the same scan as a frame's fields,
 * and append it to out without insignificant white space: the bytes a
 * body sent over TCP would have become.  Returns 0, or -1 with a reason
 * in err (out is then unchanged).  Used by the tree's queue and channel
 * writes (fs_lines.c), so that both faces have one JSON path.
 */
int
msg_json_compact(const char *p, size_t len, struct buf *out, char *err, size_t errlen)
{
	struct scan s = { .p = p, .end = p + len, .start = p };
	struct mfield f = { .present = true };
	struct buf scratch = { 0 };
	const char *text;
	size_t n;

	scan_ws(&s);
	f.val = s.p;
	s.ws = false;
	if (!scan_value(&s, &f.kind, 0)) {
		snprintf(err, errlen, "%s at byte %zu", s.err, s.err_at);
		return -1;
	}
	f.len = (size_t)(s.p - f.val);
	f.spaced = s.ws;
	scan_ws(&s);
	if (s.p != s.end) {
		snprintf(err, errlen, "trailing data at byte %zu", (size_t)(s.p - p));
		return -1;
	}
	text = msg_value(&f, &scratch, &n);
	buf_append(out, text, n);
	buf_free(&scratch);
	return 0;
}
