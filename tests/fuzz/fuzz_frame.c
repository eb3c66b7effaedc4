/*
 * fuzz_frame.c — the frame codec (frame.c).  The input is a byte stream
 * received in chunks whose sizes come from its first bytes; frame_next
 * must cut it exactly as a plain reference decoder does, whatever the cuts,
 * and never read past what it was given.
 */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t max, nchunks, off = 0, rxlen = 0, rxoff = 0, refoff;
	const uint8_t *chunks;
	char *rx;
	bool stopped = false;

	if (size < 2)
		return 0;
	max = data[0] % 64;              /* a small limit, so oversize is common */
	nchunks = 1 + data[1] % 8;
	if (size < 2 + nchunks)
		return 0;
	chunks = data + 2;
	data += 2 + nchunks;
	size -= 2 + nchunks;
	refoff = 0;
	/* Exactly as much buffer as delivered: ASan catches any overread. */
	rx = malloc(size ? size : 1);
	for (size_t c = 0; off < size && !stopped; c++) {
		size_t n = 1 + chunks[c % nchunks];
		const char *payload;
		uint32_t len;
		enum frame_status st;

		if (n > size - off)
			n = size - off;
		memcpy(rx + rxlen, data + off, n);
		rxlen += n;
		off += n;
		for (;;) {
			char *view = malloc(rxlen - rxoff ? rxlen - rxoff : 1);
			memcpy(view, rx + rxoff, rxlen - rxoff);
			st = frame_next(view, rxlen - rxoff, max, &payload, &len);
			/* The reference: a header, then that many bytes. */
			size_t avail = rxlen - rxoff;
			if (avail < 4) {
				if (st != FRAME_NEED)
					abort();
			} else {
				uint32_t want = (uint32_t)data[refoff] << 24 | (uint32_t)data[refoff + 1] << 16 |
				    (uint32_t)data[refoff + 2] << 8 | data[refoff + 3];
				if (want > max) {
					if (st != FRAME_TOO_LARGE)
						abort();
					stopped = true;   /* the daemon closes here */
				} else if (avail - 4 < want) {
					if (st != FRAME_NEED)
						abort();
				} else {
					if (st != FRAME_OK || len != want || payload != view + 4 ||
					    memcmp(payload, data + refoff + 4, len) != 0)
						abort();
					rxoff += 4 + len;
					refoff += 4 + len;
					free(view);
					continue;
				}
			}
			free(view);
			break;
		}
	}
	free(rx);
	/* And the header codec round trips. */
	if (size >= 4) {
		char h[4];
		uint32_t v = frame_get_len((const char *)data);
		frame_put_len(h, v);
		if (memcmp(h, data, 4) != 0)
			abort();
	}
	return 0;
}
