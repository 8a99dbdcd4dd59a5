// test_header.cpp - tachyon.h used from C++ as the published header allows:
// C linkage, noexcept functions, the published macro names. Built with g++
// and clang++ in several language modes, linked against the C library, run.
#include <tachyon.h>

#include <cstdio>
#include <cstring>
#include <type_traits>

#ifndef TACHYON_C_API_H
#error "the include guard is TACHYON_C_API_H"
#endif
#ifndef TACHYON_ABI
#error "TACHYON_ABI is defined"
#endif
#ifndef TACHYON_NOEXCEPT
#error "TACHYON_NOEXCEPT is defined"
#endif

static_assert(noexcept(tachyon_flush(nullptr)), "functions are noexcept in C++");
static_assert(noexcept(tachyon_acquire_rx_blocking(nullptr, nullptr, nullptr, 0)), "noexcept");
static_assert(noexcept(tachyon_strerror(TACHYON_ERR_FULL)), "noexcept");
static_assert(sizeof(tachyon_msg_view_t) == 32, "the view is 32 bytes");
static_assert(std::is_same<decltype(&tachyon_commit_tx),
                           tachyon_error_t (*)(tachyon_bus_t *, size_t, uint32_t) noexcept>::value,
              "commit_tx has the published signature");
static_assert(TACHYON_TYPE_ID(0, 0x12345) == 0x12345u, "the type is not masked, as published");
static_assert(TACHYON_TYPE_ID(3, 7) == 0x30007u, "route in the high half");
static_assert(TACHYON_ROUTE_ID(0x30007u) == 3 && TACHYON_MSG_TYPE(0x30007u) == 7, "split");

int main()
{
    // C linkage: these resolve against the C library.
    if (std::strcmp(tachyon_strerror(TACHYON_SUCCESS), "success") != 0)
        return 1;
    if (tachyon_get_state(nullptr) != TACHYON_STATE_UNKNOWN)
        return 1;
    tachyon_bus_t *bus = nullptr;
    if (tachyon_bus_connect("", &bus) == TACHYON_SUCCESS || bus != nullptr)
        return 1;
    std::puts("test_header (C++): ok");
    return 0;
}
