/* ring_harness.c - see ring_harness.h. */
#define _GNU_SOURCE
#include "ring_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "state.h"

struct input {
    const uint8_t *p;
    size_t left;
};

static uint8_t take8(struct input *in)
{
    if (in->left == 0)
        return 0;
    in->left--;
    return *in->p++;
}

static uint32_t take16(struct input *in)
{
    uint32_t lo = take8(in);
    return lo | (uint32_t)take8(in) << 8;
}

static uint64_t load64(const uint8_t *data, size_t size, size_t at)
{
    uint8_t b[8] = {0};
    for (size_t i = 0; i < 8 && at + i < size; i++)
        b[i] = data[at + i];
    uint64_t v;
    memcpy(&v, b, 8);
    return v;
}

static void violated(const char *what, unsigned long long a, unsigned long long b)
{
    fprintf(stderr, "ring harness: property violated: %s (%llu, %llu)\n", what, a, b);
    abort();
}

struct harness {
    struct tachyon_bus bus;
    uint8_t *image;      /* header + ring, exactly, so ASan bounds are exact */
    size_t image_size;
    uint8_t fixed[16];   /* magic..msg_alignment: the library never writes them */
    uint8_t *ring_copy;  /* the ring before a consumer call */
};

static void harness_init(struct harness *h, const uint8_t *data, size_t size)
{
    uint8_t caps = size > 16 ? data[16] : 0;
    uint64_t capacity = 64u << (caps % 5);
    h->image_size = TACHYON_HEADER_BYTES + capacity;
    h->image = aligned_alloc(64, h->image_size);
    h->ring_copy = malloc(capacity);
    if (!h->image || !h->ring_copy)
        abort();
    memset(h->image, 0, h->image_size);

    tachyon_segment_header_t *hdr = (tachyon_segment_header_t *)h->image;
    hdr->magic = TACHYON_MAGIC;
    hdr->version = TACHYON_VERSION;
    hdr->capacity = (uint32_t)capacity;
    hdr->msg_alignment = TACHYON_MSG_ALIGN;
    atomic_store(&hdr->consumer_sleeping, size > 17 ? data[17] % 4 : 0);
    atomic_store(&hdr->state, size > 18 ? data[18] % 7 : TACHYON_STATE_READY);

    uint64_t head = load64(data, size, 0), tail = load64(data, size, 8);
    uint8_t mode = size > 19 ? data[19] : 0;
    if (!(mode & 1)) {
        tail &= ~(uint64_t)63;
        head = tail + ((head % (capacity + 128)) & ~(uint64_t)63);
    }
    atomic_store(&hdr->head, head);
    atomic_store(&hdr->tail, tail);
    uint64_t salt_bits = load64(data, size < 24 ? size : 24, 20) & 0xFFFFFFFFu;
    atomic_store(&hdr->stamp_salt, salt_bits ? (salt_bits * 0x9E3779B97F4A7C15ull) | 63u : 0);
    if (size > RING_HARNESS_PREFIX) {
        size_t n = size - RING_HARNESS_PREFIX < capacity ? size - RING_HARNESS_PREFIX : capacity;
        memcpy(h->image + TACHYON_HEADER_BYTES, data + RING_HARNESS_PREFIX, n);
    }
    memcpy(h->fixed, h->image, 16);

    struct tachyon_bus *bus = &h->bus;
    memset(bus, 0, sizeof(*bus));
    atomic_init(&bus->refs, 1);
    bus->hdr = hdr;
    bus->ring = h->image + TACHYON_HEADER_BYTES;
    bus->capacity = capacity;
    bus->mask = capacity - 1;
    bus->map_size = h->image_size;
    bus->peer_pidfd = -1;
    bus->peer_pid = getpid(); /* the "peer" is alive: waits end by timeout */
    bus->id = status_new_bus_id();
    bus->fork_generation = status_fork_generation();
    bus->peer_features = ((mode & 2) ? TACHYON_FEATURE_LONE_MARKER : 0) |
                         ((mode & 4) ? TACHYON_FEATURE_SLOT_STAMPS : 0);
    ring_attach(bus);
}

static void check_fixed_header(struct harness *h)
{
    if (memcmp(h->fixed, h->image, 16) != 0)
        violated("the library wrote the segment's magic/version/capacity/alignment", 0, 0);
}

/* A payload handed to the consumer lies wholly inside the ring, after its
 * 64-byte header, at a 64-byte aligned slot. */
static void check_rx_payload(struct harness *h, const void *p, size_t size)
{
    const uint8_t *ring = h->bus.ring;
    const uint8_t *q = p;
    if (q < ring + TACHYON_MSG_HEADER || q > ring + h->bus.capacity)
        violated("rx payload outside the ring", (unsigned long long)(q - ring), size);
    if ((size_t)(q - ring) % TACHYON_MSG_ALIGN != 0)
        violated("rx payload not 64-aligned", (unsigned long long)(q - ring), 0);
    if (size > (size_t)(ring + h->bus.capacity - q))
        violated("rx payload runs past the ring's end", (unsigned long long)(q - ring), size);
}

static void check_tx_slot(struct harness *h, const void *p, size_t max)
{
    const uint8_t *ring = h->bus.ring;
    const uint8_t *q = p;
    if (q < ring + TACHYON_MSG_HEADER || q > ring + h->bus.capacity ||
        max > (size_t)(ring + h->bus.capacity - q))
        violated("tx slot outside the ring", (unsigned long long)(q - ring), max);
}

static void before_consumer_call(struct harness *h)
{
    memcpy(h->ring_copy, h->bus.ring, h->bus.capacity);
}

/* The consumer only ever writes tail, its sleeper word and the state. */
static void after_consumer_call(struct harness *h)
{
    if (memcmp(h->ring_copy, h->bus.ring, h->bus.capacity) != 0)
        violated("a consumer call wrote into the ring", 0, 0);
    check_fixed_header(h);
}

/* Once this side has found corruption, every data call fails. (A FATAL
 * state word written by the peer alone does not stop our calls; see
 * SECURITY.md.) */
static void check_fatal_sticks(struct harness *h)
{
    struct tachyon_bus *bus = &h->bus;
    if (!status_is_fatal(bus))
        return;
    if (tachyon_get_state(bus) != TACHYON_STATE_FATAL_ERROR)
        violated("locally fatal bus reports another state", (unsigned long long)tachyon_get_state(bus), 0);
    uint32_t t;
    size_t s;
    tachyon_msg_view_t v[2];
    if (tachyon_acquire_rx(bus, &t, &s) || tachyon_acquire_rx_batch(bus, v, 2) ||
        tachyon_acquire_tx(bus, 0) || tachyon_drain_batch_timeout(bus, v, 2, 0, 0))
        violated("a fatal bus still hands out slots", 0, 0);
    if (tachyon_bus_last_error(bus) != TACHYON_ERR_FATAL)
        violated("a fatal bus reports another error", (unsigned long long)tachyon_bus_last_error(bus), 0);
}

static void op_rx(struct harness *h, struct input *in, int timed)
{
    uint32_t t;
    size_t s;
    before_consumer_call(h);
    const void *p = timed ? tachyon_acquire_rx_timeout(&h->bus, &t, &s, 0, 0)
                          : tachyon_acquire_rx(&h->bus, &t, &s);
    after_consumer_call(h);
    if (p) {
        check_rx_payload(h, p, s);
        /* Read it all, as a caller would: ASan checks the bounds. */
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < s; i++)
            sink ^= ((const uint8_t *)p)[i];
        (void)sink;
        if (take8(in) & 1)
            tachyon_commit_rx(&h->bus);
    }
}

static void op_rx_batch(struct harness *h, struct input *in, int drain)
{
    tachyon_msg_view_t views[16];
    size_t max = take8(in) % 17;
    before_consumer_call(h);
    size_t n = drain ? tachyon_drain_batch_timeout(&h->bus, views, max, 0, 0)
                     : tachyon_acquire_rx_batch(&h->bus, views, max);
    after_consumer_call(h);
    if (n > max)
        violated("batch returned more than asked", n, max);
    for (size_t i = 0; i < n; i++)
        check_rx_payload(h, views[i].ptr, views[i].actual_size);
    size_t commit = n ? take8(in) % (n + 1) : 0;
    tachyon_error_t err = tachyon_commit_rx_batch(&h->bus, views, commit);
    if (commit && err != TACHYON_SUCCESS)
        violated("committing views just handed out failed", commit, (unsigned long long)err);
}

static void op_tx(struct harness *h, struct input *in, int blocking)
{
    size_t max = take16(in) % (h->bus.capacity + 64);
    uint8_t *p = blocking ? tachyon_acquire_tx_blocking(&h->bus, max, 0, 0)
                          : tachyon_acquire_tx(&h->bus, max);
    check_fixed_header(h);
    if (!p)
        return;
    check_tx_slot(h, p, max);
    memset(p, 0xA5, max);
    uint8_t how = take8(in);
    if (how & 1) {
        tachyon_rollback_tx(&h->bus);
    } else {
        size_t actual = max ? take16(in) % (max + 1) : 0;
        tachyon_commit_tx(&h->bus, actual, 0x10001);
    }
    check_fixed_header(h);
}

static void op_send_batch(struct harness *h, struct input *in)
{
    uint8_t records[8 * 32];
    memset(records, 0x5A, sizeof(records));
    size_t record_size = take8(in) % 33, count = take8(in) % 9;
    size_t sent = tachyon_send_batch(&h->bus, records, record_size, count, 2);
    if (sent > count)
        violated("send_batch sent more than asked", sent, count);
    check_fixed_header(h);
}

/* The hostile peer writes 4 bytes anywhere past the fixed header fields:
 * counters, state, sleeper word, message headers, payloads. */
static void op_scribble(struct harness *h, struct input *in)
{
    size_t at = 16 + take16(in) % (h->image_size - 16 - 3);
    uint8_t v[4] = {take8(in), take8(in), take8(in), take8(in)};
    memcpy(h->image + at, v, 4);
}

/* The peer rewrites a whole counter, head or tail, near its current value. */
static void op_move_counter(struct harness *h, struct input *in)
{
    tachyon_segment_header_t *hdr = h->bus.hdr;
    uint8_t which = take8(in);
    int64_t delta = (int64_t)(int16_t)take16(in);
    _Atomic uint64_t *c = which & 1 ? &hdr->tail : &hdr->head;
    atomic_store(c, atomic_load(c) + (uint64_t)delta);
}

size_t ring_harness_run(const uint8_t *data, size_t size)
{
    struct harness h;
    harness_init(&h, data, size);
    size_t skip = RING_HARNESS_PREFIX + h.bus.capacity;
    struct input in = {data + (size < skip ? size : skip), size < skip ? 0 : size - skip};
    size_t ops = 0;
    while (in.left > 0 && ops < RING_HARNESS_MAX_OPS) {
        uint8_t op = take8(&in);
        switch (op % 12) {
        case 0: op_rx(&h, &in, 0); break;
        case 1: op_rx(&h, &in, 1); break;
        case 2: op_rx_batch(&h, &in, 0); break;
        case 3: op_rx_batch(&h, &in, 1); break;
        case 4: op_tx(&h, &in, 0); break;
        case 5: op_tx(&h, &in, 1); break;
        case 6: op_send_batch(&h, &in); break;
        case 7: op_scribble(&h, &in); break;
        case 8: op_move_counter(&h, &in); break;
        case 9: (void)tachyon_commit_rx(&h.bus); break;     /* maybe without acquire */
        case 10: (void)tachyon_rollback_tx(&h.bus); break;  /* maybe without acquire */
        case 11: tachyon_flush(&h.bus); break;
        }
        check_fatal_sticks(&h);
        ops++;
    }
    ring_detach(&h.bus);
    free(h.ring_copy);
    free(h.image);
    return ops;
}
