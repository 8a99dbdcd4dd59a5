/*
 * test_wakeup.c - the lost wake-up hunt. A producer process sends one message,
 * then waits until the consumer has it before it sends the next, after a
 * random pause of 0-300 us. The consumer spins only briefly, so it is on its
 * way to sleep, or asleep, whenever a message comes: every race between its
 * announcement and the producer's store gets its turn. A lost wake-up leaves
 * the consumer asleep with a message in the ring until its futex slice ends
 * (made 30 s here); the producer, which sends nothing more meanwhile, sees the
 * message unacknowledged for 10 s (far beyond scheduling noise) and counts it.
 * Every BURST_EVERY messages a burst of BURST_LEN goes out back to back (the
 * consumer reads it once it is all in the ring). The consumer, which sleeps
 * after nearly every message otherwise, asks the producer to fence its stamps
 * and withdraws the request in each burst, so the switch between the two
 * wake-up protocols races with sleeps too.
 */
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "helpers.h"
#include "internal.h"

#define SLEEP_SLICE_MS 30000
#define LOST_AFTER_NS 10000000000ull
#define BURST_EVERY 500
#define BURST_LEN 100

struct shared {
    _Atomic uint64_t acked; /* messages the consumer has received */
    _Atomic uint64_t lost;  /* messages not acknowledged within LOST_AFTER_NS */
    _Atomic uint64_t worst_ns;
    _Atomic uint64_t burst_sent; /* messages sent when the last burst was in the ring */
};

/* Message i starts a burst of BURST_LEN. */
static int is_burst_start(uint64_t i, uint64_t count)
{
    return i % BURST_EVERY == 0 && i + BURST_LEN <= count;
}

static void pause_ns(uint64_t ns)
{
    struct timespec ts = {0, (long)ns};
    nanosleep(&ts, NULL);
}

static int producer(const char *path, uint64_t count, struct shared *sh)
{
    tachyon_bus_t *bus;
    if (tachyon_bus_connect_timeout(path, 10000, &bus) != TACHYON_SUCCESS)
        return 1;
    for (uint64_t i = 0; i < count; i++) {
        if (is_burst_start(i, count)) { /* all but the burst's last message, back to back */
            for (uint64_t end = i + BURST_LEN - 1; i < end; i++)
                while (tachyon_send(bus, &i, sizeof(i), 1) != TACHYON_SUCCESS)
                    if (tachyon_bus_last_error(bus) != TACHYON_ERR_FULL)
                        return 1;
            atomic_store(&sh->burst_sent, i);
        }
        pause_ns(t_mix(i) % 300000);
        uint64_t sent = t_now_ns();
        if (tachyon_send(bus, &i, sizeof(i), 1) != TACHYON_SUCCESS)
            return 1;
        while (atomic_load(&sh->acked) <= i) {
            if (t_now_ns() - sent > LOST_AFTER_NS) {
                atomic_fetch_add(&sh->lost, 1);
                while (atomic_load(&sh->acked) <= i) /* the slice ends it; go on counting */
                    pause_ns(1000000);
                break;
            }
            pause_ns(20000);
        }
        uint64_t took = t_now_ns() - sent;
        if (took > atomic_load(&sh->worst_ns))
            atomic_store(&sh->worst_ns, took);
    }
    tachyon_bus_destroy(bus);
    return 0;
}

int main(void)
{
    wait_sleep_slice_ms = SLEEP_SLICE_MS;
    uint64_t count = t_env_u64("TACHYON_WAKEUP_MSGS", 10000);
    struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(sh != MAP_FAILED);
    char path[108];
    t_socket_path(path, sizeof(path), "wakeup");
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0)
        _exit(producer(path, count, sh));

    tachyon_bus_t *bus;
    REQUIRE(tachyon_bus_listen(path, 1 << 16, &bus) == TACHYON_SUCCESS);
    uint64_t received = 0, fencing_on = 0, fencing_off = 0;
    uint32_t fencing = 0;
    for (;;) {
        uint32_t type_id;
        size_t size;
        const uint64_t *m = tachyon_acquire_rx_blocking(bus, &type_id, &size, 16);
        if (!m)
            break;
        CHECK_EQ(*m, received);
        if (is_burst_start(received, count)) /* read the burst only once it is all there: no */
            while (atomic_load(&sh->burst_sent) < received + BURST_LEN - 1) /* sleep inside it */
                pause_ns(10000);
        received++;
        tachyon_commit_rx(bus);
        atomic_store(&sh->acked, received);
        uint32_t now = atomic_load(&bus->hdr->producer_fencing);
        fencing_on += !fencing && now;
        fencing_off += fencing && !now;
        fencing = now;
    }
    int fence_free = (bus->peer_features & TACHYON_FEATURE_MEMBARRIER) != 0;
    CHECK_EQ(tachyon_get_state(bus), TACHYON_STATE_DISCONNECTED);
    tachyon_bus_destroy(bus);
    int status;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("wake-up: %llu/%llu messages, each received before the next was sent; slowest %.3f ms, "
           "%llu not received within %.0f ms\n",
           (unsigned long long)received, (unsigned long long)count, (double)atomic_load(&sh->worst_ns) / 1e6,
           (unsigned long long)atomic_load(&sh->lost), LOST_AFTER_NS / 1e6);
    printf("wake-up: the producer fenced on request %llu times and stopped %llu times\n",
           (unsigned long long)fencing_on, (unsigned long long)fencing_off);
    CHECK_EQ(received, count);
    CHECK_EQ(atomic_load(&sh->lost), 0);
    if (fence_free && count >= 4 * BURST_EVERY) { /* the switch was exercised both ways */
        CHECK(fencing_on >= 2);
        CHECK(fencing_off >= 1);
    }
    return t_result("test_wakeup");
}
