/*
 * frame.c — the length-prefix codec, on plain bytes.
 *
 * No sockets and no libev here, so the codec can be exercised on its own:
 * a frame may arrive a byte at a time or many frames in one read.
 */
#include "base/base.h"

uint32_t
frame_get_len(const char *in)
{
	const unsigned char *p = (const unsigned char *)in;

	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void
frame_put_len(char *out, uint32_t len)
{
	out[0] = (char)(len >> 24);
	out[1] = (char)(len >> 16);
	out[2] = (char)(len >> 8);
	out[3] = (char)len;
}

/*
 * frame_next: look for one whole frame at the start of data.  On FRAME_OK,
 * the frame occupies FRAME_HEADER + *len bytes.  FRAME_TOO_LARGE is judged
 * from the header alone, before any of the body is buffered.
 */
enum frame_status
frame_next(const char *data, size_t avail, size_t max, const char **payload,
    uint32_t *len)
{
	uint32_t n;

	if (avail < FRAME_HEADER)
		return FRAME_NEED;
	n = frame_get_len(data);
	if (n > max)
		return FRAME_TOO_LARGE;
	if (avail - FRAME_HEADER < n)
		return FRAME_NEED;
	*payload = data + FRAME_HEADER;
	*len = n;
	return FRAME_OK;
}
