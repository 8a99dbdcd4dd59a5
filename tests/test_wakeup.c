/*
 * test_wakeup.c - the lost wake-up hunt. A producer process sends one message,
 * then pauses a random 0-300 us, thousands of times; the consumer spins only
 * briefly, so it goes to sleep before almost every message. Each message
 * carries its send time: a lost wake-up would show as a gap of a whole futex
 * slice (50 ms). Every message must arrive and no gap may come near that.
 */
#include <sys/wait.h>

#include "helpers.h"

#define GAP_LIMIT_NS 25000000ull /* half the futex slice */

static int producer(const char *path, uint64_t count)
{
    tachyon_bus_t *bus;
    if (tachyon_bus_connect_timeout(path, 10000, &bus) != TACHYON_SUCCESS)
        return 1;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t msg[2] = {i, t_now_ns()};
        if (tachyon_send(bus, msg, sizeof(msg), 1) != TACHYON_SUCCESS)
            return 1;
        struct timespec ts = {0, (long)(t_mix(i) % 300000)};
        nanosleep(&ts, NULL);
    }
    tachyon_bus_destroy(bus);
    return 0;
}

int main(void)
{
    uint64_t count = t_env_u64("TACHYON_WAKEUP_MSGS", 20000);
    char path[108];
    t_socket_path(path, sizeof(path), "wakeup");
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0)
        _exit(producer(path, count));

    tachyon_bus_t *bus;
    REQUIRE(tachyon_bus_listen(path, 4096, &bus) == TACHYON_SUCCESS);
    uint64_t received = 0, max_gap = 0, slow = 0;
    for (;;) {
        uint32_t type_id;
        size_t size;
        const uint64_t *m = tachyon_acquire_rx_blocking(bus, &type_id, &size, 16);
        if (!m)
            break;
        uint64_t gap = t_now_ns() - m[1];
        CHECK_EQ(m[0], received);
        max_gap = gap > max_gap ? gap : max_gap;
        slow += gap > GAP_LIMIT_NS;
        received++;
        tachyon_commit_rx(bus);
    }
    CHECK_EQ(tachyon_get_state(bus), TACHYON_STATE_DISCONNECTED);
    tachyon_bus_destroy(bus);
    int status;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("wake-up: %llu/%llu messages, largest gap %.3f ms, %llu over %.0f ms\n",
           (unsigned long long)received, (unsigned long long)count, (double)max_gap / 1e6,
           (unsigned long long)slow, GAP_LIMIT_NS / 1e6);
    CHECK_EQ(received, count);
    CHECK_EQ(slow, 0);
    return t_result("test_wakeup");
}
