/* window.c - see window.h. */
#include "window.h"

#include <stdlib.h>
#include <string.h>

#define REC_HDR 16u
#define FILLER_SIZE UINT32_MAX

typedef struct {
    uint32_t size;    /* payload bytes, or FILLER_SIZE: skip to the ring's start */
    uint32_t type_id;
    uint32_t flags;
    uint32_t pad_;
} rec_hdr_t;

static size_t padded(size_t size)
{
    return (REC_HDR + size + 15u) & ~(size_t)15u;
}

static size_t offset_of(const window_t *w, uint64_t pos)
{
    return (size_t)(pos % w->cap);
}

bool window_init(window_t *w, size_t cap)
{
    memset(w, 0, sizeof *w);
    cap &= ~(size_t)15u; /* records are multiples of 16: a filler always fits */
    w->buf = malloc(cap);
    if (!w->buf)
        return false;
    w->cap = cap;
    w->base_seq = w->end_seq = w->send_seq = 1;
    return true;
}

void window_free(window_t *w)
{
    free(w->buf);
    w->buf = NULL;
}

size_t window_max_payload(const window_t *w)
{
    size_t max = w->cap - REC_HDR;
    return max > UINT32_MAX - 1 ? UINT32_MAX - 1 : max;
}

static const rec_hdr_t *hdr_at(const window_t *w, uint64_t pos)
{
    return (const rec_hdr_t *)(const void *)(w->buf + offset_of(w, pos));
}

/* Position of the record at pos, skipping a filler. */
static uint64_t skip_filler(const window_t *w, uint64_t pos)
{
    if (pos != w->tail && hdr_at(w, pos)->size == FILLER_SIZE)
        pos += w->cap - offset_of(w, pos);
    return pos;
}

bool window_append(window_t *w, const void *data, size_t size, uint32_t type_id, uint32_t flags)
{
    if (size > window_max_payload(w))
        return false;
    size_t need = padded(size);
    size_t off = offset_of(w, w->tail);
    size_t to_end = w->cap - off;
    size_t filler = need > to_end ? to_end : 0;
    if ((size_t)(w->tail - w->head) + filler + need > w->cap)
        return false;
    if (filler) {
        ((rec_hdr_t *)(void *)(w->buf + off))->size = FILLER_SIZE;
        w->tail += filler;
        off = 0;
    }
    rec_hdr_t *h = (rec_hdr_t *)(void *)(w->buf + off);
    h->size = (uint32_t)size;
    h->type_id = type_id;
    h->flags = flags;
    h->pad_ = 0;
    memcpy(w->buf + off + REC_HDR, data, size);
    w->tail += need;
    w->end_seq++;
    return true;
}

uint64_t window_count(const window_t *w)
{
    return w->end_seq - w->base_seq;
}

size_t window_bytes(const window_t *w)
{
    return (size_t)(w->tail - w->head);
}

bool window_empty(const window_t *w)
{
    return w->end_seq == w->base_seq;
}

bool window_all_sent(const window_t *w)
{
    return w->send_seq == w->end_seq;
}

bool window_peek_send(const window_t *w, window_rec_t *rec)
{
    if (window_all_sent(w))
        return false;
    uint64_t pos = skip_filler(w, w->send_pos);
    const rec_hdr_t *h = hdr_at(w, pos);
    rec->seq = w->send_seq;
    rec->type_id = h->type_id;
    rec->flags = h->flags;
    rec->size = h->size;
    rec->data = w->buf + offset_of(w, pos) + REC_HDR;
    return true;
}

void window_advance_send(window_t *w)
{
    uint64_t pos = skip_filler(w, w->send_pos);
    w->send_pos = pos + padded(hdr_at(w, pos)->size);
    w->send_seq++;
}

uint64_t window_rewind(window_t *w, uint64_t seq)
{
    if (seq < w->base_seq)
        seq = w->base_seq;
    if (seq >= w->send_seq)
        return w->send_seq;
    uint64_t pos = w->head, s = w->base_seq;
    while (s < seq) {
        pos = skip_filler(w, pos);
        pos += padded(hdr_at(w, pos)->size);
        s++;
    }
    w->send_pos = pos;
    w->send_seq = s;
    return s;
}

uint64_t window_release_through(window_t *w, uint64_t seq)
{
    uint64_t released = 0;
    while (w->base_seq <= seq && w->base_seq < w->end_seq) {
        uint64_t pos = skip_filler(w, w->head);
        w->head = pos + padded(hdr_at(w, pos)->size);
        w->base_seq++;
        released++;
    }
    if (w->send_seq < w->base_seq) {
        w->send_seq = w->base_seq;
        w->send_pos = w->head;
    }
    if (w->head == w->tail) {
        /* Empty: start over at offset 0 so big records find contiguous room. */
        w->head = w->tail = w->send_pos = 0;
    }
    return released;
}
