/*
 * test_frame.c — the length-prefix codec (frame.c): header round trips,
 * frame_next on every split of a stream, and the size limit judged from
 * the header alone.
 */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "tap.h"

/* A stream of random frames, delivered in random chunks, must come out as
 * the same frames in order, whatever the cuts. */
static bool
random_stream(unsigned seed, int nframes, size_t maxlen)
{
	char *stream, *rx;
	size_t *lens, total = 0, off = 0, rxlen = 0, rxoff = 0;
	int i, got = 0;
	bool good = true;

	srand(seed);
	lens = xcalloc((size_t)nframes, sizeof *lens);
	for (i = 0; i < nframes; i++) {
		lens[i] = (size_t)rand() % (maxlen + 1);
		total += FRAME_HEADER + lens[i];
	}
	stream = xmalloc(total);
	rx = xmalloc(total);
	for (i = 0; i < nframes; i++) {
		frame_put_len(stream + off, (uint32_t)lens[i]);
		for (size_t k = 0; k < lens[i]; k++)
			stream[off + FRAME_HEADER + k] = (char)(i * 31 + k);
		off += FRAME_HEADER + lens[i];
	}
	/* Deliver in chunks of 1 to 3*maxlen bytes, like reads of a socket. */
	off = 0;
	while (off < total) {
		size_t chunk = 1 + (size_t)rand() % (3 * maxlen + 8);
		const char *payload;
		uint32_t len;
		enum frame_status st;

		if (chunk > total - off)
			chunk = total - off;
		memcpy(rx + rxlen, stream + off, chunk);
		rxlen += chunk;
		off += chunk;
		while ((st = frame_next(rx + rxoff, rxlen - rxoff, maxlen, &payload, &len)) == FRAME_OK) {
			if (got >= nframes || len != lens[got])
				good = false;
			else
				for (size_t k = 0; k < len; k++)
					if (payload[k] != (char)(got * 31 + k))
						good = false;
			got++;
			rxoff += FRAME_HEADER + len;
		}
		if (st != FRAME_NEED)
			good = false;
	}
	free(lens);
	free(stream);
	free(rx);
	return good && got == nframes && rxoff == total;
}

int
main(void)
{
	static const uint32_t lens[] = { 0, 1, 255, 256, 65535, 65536, 0x01020304, 0x7fffffff,
	    0x80000000u, 0xffffffffu };
	char hdr[FRAME_HEADER + 8];
	const char *payload = NULL;
	uint32_t len = 0;
	bool good;
	size_t i;

	plan(17);

	good = true;
	for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		frame_put_len(hdr, lens[i]);
		good &= frame_get_len(hdr) == lens[i];
	}
	ok(good, "frame_put_len and frame_get_len round trip, up to 2^32-1");
	frame_put_len(hdr, 0x01020304);
	ok(memcmp(hdr, "\x01\x02\x03\x04", 4) == 0, "the length is big-endian");
	ok(frame_get_len("\xff\xff\xff\xfe") == 0xfffffffeu, "high bytes are read unsigned");

	good = true;
	memcpy(hdr, "\x00\x00\x00\x02hi", 6);
	for (i = 0; i < FRAME_HEADER; i++)
		good &= frame_next(hdr, i, 100, &payload, &len) == FRAME_NEED;
	ok(good, "fewer than 4 bytes: FRAME_NEED");
	ok(frame_next(hdr, 5, 100, &payload, &len) == FRAME_NEED, "a header and part of the payload: FRAME_NEED");
	ok(frame_next(hdr, 6, 100, &payload, &len) == FRAME_OK && len == 2 &&
	    payload == hdr + 4 && memcmp(payload, "hi", 2) == 0,
	    "a whole frame: FRAME_OK, payload right after the header");
	ok(frame_next(hdr, 6, 2, &payload, &len) == FRAME_OK, "a frame of exactly the limit is accepted");
	ok(frame_next(hdr, 6, 1, &payload, &len) == FRAME_TOO_LARGE, "one byte over the limit: FRAME_TOO_LARGE");
	ok(frame_next(hdr, 4, 1, &payload, &len) == FRAME_TOO_LARGE,
	    "oversize is judged from the header alone");
	memcpy(hdr, "\xff\xff\xff\xff", 4);
	ok(frame_next(hdr, 4, 16 << 20, &payload, &len) == FRAME_TOO_LARGE,
	    "a 4 GiB header against a 16 MiB limit: FRAME_TOO_LARGE");
	ok(frame_next(hdr, 4, 0xffffffffu, &payload, &len) == FRAME_NEED,
	    "a 4 GiB header under a 4 GiB limit: FRAME_NEED, no overflow");
	memcpy(hdr, "\x00\x00\x00\x00", 4);
	ok(frame_next(hdr, 4, 0, &payload, &len) == FRAME_OK && len == 0,
	    "an empty frame is a frame (proto.c refuses it)");
	memcpy(hdr, "\x00\x00\x00\x01" "a" "\x00\x00\x00\x01" "b", 10);
	ok(frame_next(hdr, 10, 8, &payload, &len) == FRAME_OK && len == 1 && *payload == 'a' &&
	    frame_next(hdr + 5, 5, 8, &payload, &len) == FRAME_OK && len == 1 && *payload == 'b',
	    "two frames in one buffer come out one at a time");

	ok(random_stream(1, 2000, 7), "2000 tiny frames, random cuts");
	ok(random_stream(2, 500, 300), "500 frames up to 300 bytes, random cuts");
	ok(random_stream(3, 50, 70000), "50 frames up to 70000 bytes, random cuts");
	good = true;
	for (unsigned s = 10; s < 200; s++)
		good &= random_stream(s, 20, 1 + s % 17);
	ok(good, "190 more seeds of short streams");
	return done();
}
