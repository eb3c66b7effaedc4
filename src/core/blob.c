/*
 * blob.c — a byte string stored once and shared by reference.
 *
 * A large job body, and every result, is kept in a blob: the job holds one
 * reference, and each connection whose output queue still has to write it
 * holds another (conn_out_blob), so the bytes go from where they lie to the
 * socket with writev(2) instead of being copied into every output buffer.
 * The data is NUL-terminated (len bytes, then a NUL), so it reads as the
 * JSON text it holds.  The loop is single-threaded: the count is a plain
 * integer.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

struct blob *
blob_new(const void *p, size_t len)
{
	struct blob *b;

	if (len > UINT32_MAX - 1)
		fatalx("blob of %zu bytes", len);
	b = xmalloc(sizeof *b + len + 1);
	b->refs = 1;
	b->len = (uint32_t)len;
	b->data = b->bytes;
	b->base = NULL;
	if (len > 0)
		memcpy(b->data, p, len);
	b->data[len] = '\0';
	return b;
}

/*
 * blob_adopt: a blob of the len bytes at data, which lie in base, a
 * malloc'ed buffer it now owns (freed with the blob).  data[len] must be
 * a byte of base that nothing reads any more: it becomes the NUL.
 */
struct blob *
blob_adopt(void *base, char *data, size_t len)
{
	struct blob *b;

	if (len > UINT32_MAX - 1)
		fatalx("blob of %zu bytes", len);
	b = xmalloc(sizeof *b);
	b->refs = 1;
	b->len = (uint32_t)len;
	b->data = data;
	b->base = base;
	data[len] = '\0';
	return b;
}

struct blob *
blob_ref(struct blob *b)
{
	b->refs++;
	return b;
}

void
blob_unref(struct blob *b)
{
	if (b != NULL && --b->refs == 0) {
		free(b->base);
		free(b);
	}
}

/* blob_of: the blob whose data p is (p from blob_new, not blob_adopt). */
struct blob *
blob_of(const char *p)
{
	return (struct blob *)(void *)(p - offsetof(struct blob, bytes));
}

/* blob_free_data: drop the reference behind blob data p; NULL is nothing. */
void
blob_free_data(char *p)
{
	if (p != NULL)
		blob_unref(blob_of(p));
}
