/*
 * test_layout.c - the wire format of SPEC.md 1.1-1.3 checked at run time, in
 * bytes, on a real segment: the _Static_asserts in src/wire.h cover the
 * compiler's view; this covers what actually lands in shared memory (a
 * packing flag or a different compiler could change one without the other).
 */
#include <stddef.h>
#include <sys/mman.h>

#include "helpers.h"
#include "internal.h"

static uint32_t u32_at(const void *base, size_t off)
{
    uint32_t v;
    memcpy(&v, (const uint8_t *)base + off, sizeof(v));
    return v;
}

static uint64_t u64_at(const void *base, size_t off)
{
    uint64_t v;
    memcpy(&v, (const uint8_t *)base + off, sizeof(v));
    return v;
}

static void test_struct_offsets(void)
{
    CHECK_EQ(sizeof(tachyon_handshake_t), 32);
    CHECK_EQ(offsetof(tachyon_handshake_t, magic), 0);
    CHECK_EQ(offsetof(tachyon_handshake_t, version), 4);
    CHECK_EQ(offsetof(tachyon_handshake_t, capacity_fwd), 8);
    CHECK_EQ(offsetof(tachyon_handshake_t, shm_size_fwd), 12);
    CHECK_EQ(offsetof(tachyon_handshake_t, capacity_rev), 16);
    CHECK_EQ(offsetof(tachyon_handshake_t, shm_size_rev), 20);
    CHECK_EQ(offsetof(tachyon_handshake_t, msg_alignment), 24);
    CHECK_EQ(offsetof(tachyon_handshake_t, flags), 28);

    CHECK_EQ(sizeof(tachyon_segment_header_t), 768);
    CHECK_EQ(offsetof(tachyon_segment_header_t, magic), 0);
    CHECK_EQ(offsetof(tachyon_segment_header_t, version), 4);
    CHECK_EQ(offsetof(tachyon_segment_header_t, capacity), 8);
    CHECK_EQ(offsetof(tachyon_segment_header_t, msg_alignment), 12);
    CHECK_EQ(offsetof(tachyon_segment_header_t, state), 16);
    CHECK_EQ(offsetof(tachyon_segment_header_t, head), 128);
    CHECK_EQ(offsetof(tachyon_segment_header_t, tail), 256);
    CHECK_EQ(offsetof(tachyon_segment_header_t, consumer_sleeping), 384);
    CHECK_EQ(offsetof(tachyon_segment_header_t, producer_heartbeat), 512);
    CHECK_EQ(offsetof(tachyon_segment_header_t, consumer_heartbeat), 640);

    CHECK_EQ(sizeof(tachyon_msg_header_t), 64);
    CHECK_EQ(offsetof(tachyon_msg_header_t, size), 0);
    CHECK_EQ(offsetof(tachyon_msg_header_t, type_id), 4);
    CHECK_EQ(offsetof(tachyon_msg_header_t, reserved_size), 8);
    CHECK_EQ(offsetof(tachyon_msg_header_t, correlation_id), 16);

    /* The public view struct the Rust -sys crate mirrors. */
    CHECK_EQ(sizeof(tachyon_msg_view_t), 32);
    CHECK_EQ(offsetof(tachyon_msg_view_t, ptr), 0);
    CHECK_EQ(offsetof(tachyon_msg_view_t, actual_size), 8);
    CHECK_EQ(offsetof(tachyon_msg_view_t, reserved_), 16);
    CHECK_EQ(offsetof(tachyon_msg_view_t, type_id), 24);
    CHECK_EQ(offsetof(tachyon_msg_view_t, padding_), 28);
}

static void test_enum_values(void)
{
    CHECK_EQ(TACHYON_SUCCESS, 0);
    CHECK_EQ(TACHYON_ERR_NULL_PTR, 1);
    CHECK_EQ(TACHYON_ERR_MEM, 2);
    CHECK_EQ(TACHYON_ERR_OPEN, 3);
    CHECK_EQ(TACHYON_ERR_TRUNCATE, 4);
    CHECK_EQ(TACHYON_ERR_CHMOD, 5);
    CHECK_EQ(TACHYON_ERR_SEAL, 6);
    CHECK_EQ(TACHYON_ERR_MAP, 7);
    CHECK_EQ(TACHYON_ERR_INVALID_SZ, 8);
    CHECK_EQ(TACHYON_ERR_FULL, 9);
    CHECK_EQ(TACHYON_ERR_EMPTY, 10);
    CHECK_EQ(TACHYON_ERR_NETWORK, 11);
    CHECK_EQ(TACHYON_ERR_SYSTEM, 12);
    CHECK_EQ(TACHYON_ERR_INTERRUPTED, 13);
    CHECK_EQ(TACHYON_ERR_ABI_MISMATCH, 14);
    CHECK_EQ(TACHYON_STATE_UNINITIALIZED, 0);
    CHECK_EQ(TACHYON_STATE_INITIALIZING, 1);
    CHECK_EQ(TACHYON_STATE_READY, 2);
    CHECK_EQ(TACHYON_STATE_DISCONNECTED, 3);
    CHECK_EQ(TACHYON_STATE_FATAL_ERROR, 4);
    CHECK_EQ(TACHYON_STATE_UNKNOWN, 5);
    CHECK_EQ(TACHYON_TYPE_ID(0x1234, 0xABCD), 0x1234ABCDu);
    CHECK_EQ(TACHYON_ROUTE_ID(0x1234ABCDu), 0x1234);
    CHECK_EQ(TACHYON_MSG_TYPE(0x1234ABCDu), 0xABCD);
    for (int e = 0; e <= TACHYON_ERR_PATH_TOO_LONG; e++)
        CHECK(strcmp(tachyon_strerror((tachyon_error_t)e), "unknown error") != 0);
    CHECK(strcmp(tachyon_strerror((tachyon_error_t)999), "unknown error") == 0);
}

/* The handshake bytes as the listener fills them. */
static void test_handshake_bytes(void)
{
    tachyon_handshake_t hs;
    handshake_fill(&hs, 4096, 0, 0);
    CHECK_EQ(u32_at(&hs, 0), 0x54414348u);
    CHECK_EQ(u32_at(&hs, 4), 4);
    CHECK_EQ(u32_at(&hs, 8), 4096);
    CHECK_EQ(u32_at(&hs, 12), 768 + 4096);
    CHECK_EQ(u32_at(&hs, 16), 0);
    CHECK_EQ(u32_at(&hs, 20), 0);
    CHECK_EQ(u32_at(&hs, 24), 64);
    CHECK_EQ(u32_at(&hs, 28), 0);
    uint64_t cap = 0;
    CHECK_ERR(handshake_validate(&hs, 1, &cap), TACHYON_SUCCESS);
    CHECK_EQ(cap, 4096);
    CHECK_ERR(handshake_validate(&hs, 2, &cap), TACHYON_ERR_ABI_MISMATCH); /* one descriptor only */
    /* The request/reply handshake as published: flags 1, both rings. */
    handshake_fill(&hs, 4096, 8192, 1);
    CHECK_EQ(u32_at(&hs, 16), 8192);
    CHECK_EQ(u32_at(&hs, 20), 768 + 8192);
    CHECK_EQ(u32_at(&hs, 28), 1);
    CHECK_ERR(handshake_validate(&hs, 2, &cap), TACHYON_ERR_ABI_MISMATCH);
    CHECK(strstr(tachyon_error_message(TACHYON_ERR_ABI_MISMATCH), "request/reply") != NULL);
}

/* The extension message: 32 bytes, offsets as docs/protocol.md gives them. */
static void test_extension_bytes(void)
{
    CHECK_EQ(sizeof(tachyon_ext_msg_t), 32);
    CHECK_EQ(TACHYON_EXT_MAGIC, 0x54584554u);
    CHECK_EQ(offsetof(tachyon_ext_msg_t, features), 12);
    CHECK_EQ(offsetof(tachyon_segment_header_t, ext_features), 20);
}

/* A real segment after real traffic: every field where docs/protocol.md puts it. */
static void test_segment_bytes(void)
{
    tachyon_bus_t *lis, *con;
    t_make_pair(4096, &lis, &con);
    const uint8_t *seg = (const uint8_t *)lis->hdr;

    CHECK_EQ(u32_at(seg, 0), 0x54414348u);
    CHECK_EQ(u32_at(seg, 4), 4);
    CHECK_EQ(u32_at(seg, 8), 4096);
    CHECK_EQ(u32_at(seg, 12), 64);
    CHECK_EQ(u32_at(seg, 16), TACHYON_STATE_READY);
    CHECK_EQ(u64_at(seg, 128), 0);
    CHECK_EQ(u64_at(seg, 256), 0);
    CHECK_EQ(u32_at(seg, 384), 0);

    /* One 10-byte message: header at ring offset 0, payload at +64. */
    uint8_t *p = tachyon_acquire_tx(con, 10);
    REQUIRE(p != NULL);
    CHECK_EQ(p - ((uint8_t *)con->hdr + 768), 64); /* offsets, not addresses: each side maps the segment itself */
    memcpy(p, "0123456789", 10);
    CHECK_ERR(tachyon_commit_tx(con, 10, TACHYON_TYPE_ID(3, 7)), TACHYON_SUCCESS);
    CHECK_EQ(u32_at(seg, 768 + 0), 10);
    CHECK_EQ(u32_at(seg, 768 + 4), 0x00030007u);
    CHECK_EQ(u32_at(seg, 768 + 8), 128);
    CHECK_EQ(u64_at(seg, 768 + 16), 0);
    CHECK(memcmp(seg + 768 + 64, "0123456789", 10) == 0);
    /* Between two processes of this project: the slot's stamp (position 0 ^
     * the segment's salt) says it is complete; head follows lazily. */
    CHECK(u64_at(seg, 24) != 0 && (u64_at(seg, 24) & 63) == 63); /* the salt */
    CHECK_EQ(u32_at(seg, 20) & ~TACHYON_FEATURE_MEMBARRIER, /* membarrier: where the kernel has it */
             TACHYON_FEATURE_LONE_MARKER | TACHYON_FEATURE_HOLD_LOCK | TACHYON_FEATURE_SLOT_STAMPS |
                 TACHYON_FEATURE_EVENTFD);
    CHECK_EQ(u64_at(seg, 768 + 24), 0 ^ u64_at(seg, 24));
    tachyon_flush(con);
    CHECK_EQ(u64_at(seg, 128), 128); /* head: round_up(64 + 10, 64) */

    uint32_t type_id;
    size_t size;
    CHECK(tachyon_acquire_rx(lis, &type_id, &size) == seg + 768 + 64); /* lis maps seg */
    CHECK_ERR(tachyon_commit_rx(lis), TACHYON_SUCCESS);
    CHECK(tachyon_acquire_rx(lis, &type_id, &size) == NULL); /* empty: the tail is given back */
    CHECK_EQ(u64_at(seg, 256), 128); /* tail */

    tachyon_bus_set_polling_mode(lis, 1);
    CHECK_EQ(u32_at(seg, 384), 2);
    tachyon_bus_set_polling_mode(lis, 0);
    CHECK_EQ(u32_at(seg, 384), 0);

    tachyon_bus_destroy(con);
    CHECK_EQ(u32_at(seg, 16), TACHYON_STATE_DISCONNECTED);
    tachyon_bus_destroy(lis);
}

int main(void)
{
    test_struct_offsets();
    test_enum_values();
    test_handshake_bytes();
    test_extension_bytes();
    test_segment_bytes();
    return t_result("test_layout");
}
