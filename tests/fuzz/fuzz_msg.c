/*
 * fuzz_msg.c — the message scanner (msg.c).  Any input: msg_parse must not
 * crash or read past the frame; if it accepts, every field is a span of the
 * input, msg_value's compact text is accepted again and compacts to itself,
 * and msg_int, msg_string and msg_unescape stay in bounds.
 */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *frame = malloc(size ? size : 1), err[160], out[ID_MAX + 1];
	struct buf scratch = { 0 }, again = { 0 };
	struct msg m, m2;
	int k;

	memcpy(frame, data, size);   /* exactly size bytes: ASan sees overreads */
	if (msg_parse(&m, frame, size, err, sizeof err) == 0) {
		for (k = 0; k < MK_COUNT; k++) {
			const struct mfield *f = &m.f[k];
			const char *v;
			size_t len, len2;
			int64_t i;

			if (!f->present)
				continue;
			if (f->val < frame || f->val + f->len > frame + size || f->len == 0)
				abort();
			(void)msg_int(f, &i);
			if (f->kind == JK_STRING) {
				size_t n;
				if (msg_string(f, out, sizeof out, &n) && (n >= sizeof out || strlen(out) != n))
					abort();
			}
			/* The compact text, as the body of a message, is accepted
			 * and is already compact. */
			v = msg_value(f, &scratch, &len);
			char *wrapped = malloc(len + 9);
			memcpy(wrapped, "{\"body\":", 8);
			memcpy(wrapped + 8, v, len);
			wrapped[8 + len] = '}';
			if (msg_parse(&m2, wrapped, len + 9, err, sizeof err) != 0 ||
			    m2.f[MK_BODY].kind != f->kind || m2.f[MK_BODY].spaced)
				abort();
			const char *v2 = msg_value(&m2.f[MK_BODY], &again, &len2);
			if (len2 != len || memcmp(v2, v, len) != 0)
				abort();
			free(wrapped);
		}
	}
	buf_free(&scratch);
	buf_free(&again);
	free(frame);
	return 0;
}
