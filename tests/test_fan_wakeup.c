/*
 * test_fan_wakeup.c - the lost wake-up hunt on a fan-out, as test_wakeup.c
 * does it on a bus. The producer sends one message, then waits until every
 * reader has it before it sends the next, after a random pause of 0-300 us.
 * The readers spin only briefly, so they are on their way to sleep, or
 * asleep, whenever a message comes. A lost wake-up leaves a reader asleep
 * with a message in the ring until its futex slice ends (made 30 s here);
 * the producer sees the message unacknowledged for 10 s (far beyond
 * scheduling noise) and counts it.
 *
 * A producer registered for membarrier publishes without a fence while no
 * reader asks for one; a reader that sleeps after nearly every message asks
 * (pair V). Every BURST_EVERY messages a burst of BURST_LEN goes out back to
 * back, read only once it is all in the ring, so the readers withdraw their
 * requests and make them again; the producer looks at the requests at every
 * publication here, so its switch between the two protocols races with the
 * readers' sleeps too.
 *
 * A second phase sends TIGHT messages with pauses of 0-2 us, spun rather
 * than slept, to readers that do not spin at all and no longer ask for
 * fences: each message then lands while both readers are between counting
 * themselves in and their last look at the stamp, the window a missing
 * barrier on either side of the unfenced protocol would open.
 */
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "fan.h"
#include "helpers.h"

#define READERS 2
#define SLEEP_SLICE_MS 30000
#define LOST_AFTER_NS 10000000000ull
#define BURST_EVERY 500
#define BURST_LEN 100
#define JOIN_MS 20000
#define TIGHT 100000 /* messages of the second phase */

struct shared {
    _Atomic uint64_t acked[READERS]; /* messages each reader has received */
    _Atomic uint64_t lost;           /* messages not acknowledged by all within LOST_AFTER_NS */
    _Atomic uint64_t burst_sent;     /* messages sent when the last burst was in the ring */
    _Atomic int failed;              /* a reader saw a wrong message or an error */
};

static int is_burst_start(uint64_t i, uint64_t count)
{
    return i % BURST_EVERY == 0 && i + BURST_LEN <= count;
}

static void pause_ns(uint64_t ns)
{
    struct timespec ts = {0, (long)ns};
    nanosleep(&ts, NULL);
}

static uint64_t slowest_ack(struct shared *sh)
{
    uint64_t min = UINT64_MAX;
    for (int r = 0; r < READERS; r++) {
        uint64_t a = atomic_load(&sh->acked[r]);
        if (a < min)
            min = a;
    }
    return min;
}

static void spin_ns(uint64_t ns)
{
    uint64_t until = t_now_ns() + ns;
    while (t_now_ns() < until)
        ;
}

/* Wait until every reader has message i; count it lost after LOST_AFTER_NS.
 * Returns how long it took. */
static uint64_t wait_acked(struct shared *sh, uint64_t i, uint64_t sent, int spin)
{
    while (slowest_ack(sh) <= i && !atomic_load(&sh->failed)) {
        if (t_now_ns() - sent > LOST_AFTER_NS) {
            atomic_fetch_add(&sh->lost, 1);
            while (slowest_ack(sh) <= i && !atomic_load(&sh->failed)) /* the slice ends it */
                pause_ns(1000000);
            break;
        }
        if (!spin)
            pause_ns(20000);
    }
    return t_now_ns() - sent;
}

static int reader(const char *path, int r, uint64_t count, struct shared *sh)
{
    tachyon_fanout_rx_t *rx;
    if (tachyon_fanout_connect(path, TACHYON_FAN_START_NEWEST, JOIN_MS, &rx) != TACHYON_SUCCESS)
        return 2;
    uint64_t received = 0;
    tachyon_fan_msg_t m;
    tachyon_error_t err;
    while ((err = tachyon_fanout_acquire_rx(rx, &m, received < count ? 16 : 0, -1)) == TACHYON_SUCCESS) {
        if (received == count)
            fan_readers_ask_fences = 0; /* the tight phase runs unfenced */
        uint64_t n;
        memcpy(&n, m.ptr, sizeof(n));
        if (m.size != sizeof(n) || n != received) {
            atomic_store(&sh->failed, 1);
            return 3;
        }
        if (is_burst_start(received, count)) /* read the burst only once it is all there: no */
            while (atomic_load(&sh->burst_sent) < received + BURST_LEN - 1) /* sleep inside it */
                pause_ns(10000);
        received++;
        if (tachyon_fanout_commit_rx(rx) != TACHYON_SUCCESS)
            return 4;
        atomic_store(&sh->acked[r], received);
    }
    tachyon_fanout_rx_destroy(rx);
    return err == TACHYON_ERR_PEER_CLOSED && received == count + TIGHT ? 0 : 5;
}

int main(void)
{
    wait_sleep_slice_ms = SLEEP_SLICE_MS;
    fan_fence_look_every = 1;
    uint64_t count = t_env_u64("TACHYON_WAKEUP_MSGS", 10000);
    struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(sh != MAP_FAILED);
    char path[108];
    t_socket_path(path, sizeof(path), "fan-wakeup");
    tachyon_fanout_t *fo;
    REQUIRE(tachyon_fanout_listen(path, 1 << 16, READERS, TACHYON_FAN_BLOCK, &fo) == TACHYON_SUCCESS);
    pid_t kids[READERS];
    for (int r = 0; r < READERS; r++) {
        kids[r] = fork();
        REQUIRE(kids[r] >= 0);
        if (kids[r] == 0)
            _exit(reader(path, r, count, sh));
    }
    for (int i = 0; i < JOIN_MS / 5 && tachyon_fanout_consumers(fo) < READERS; i++)
        pause_ns(5000000);
    REQUIRE(tachyon_fanout_consumers(fo) == READERS);

    uint64_t worst = 0, fencing_on = 0, fencing_off = 0;
    uint32_t fencing = fan_producer_fencing(fo);
    for (uint64_t i = 0; i < count && !atomic_load(&sh->failed); i++) {
        if (is_burst_start(i, count)) { /* all but the burst's last message, back to back */
            for (uint64_t end = i + BURST_LEN - 1; i < end; i++)
                REQUIRE(tachyon_fanout_send(fo, &i, sizeof(i), 1, JOIN_MS) == TACHYON_SUCCESS);
            atomic_store(&sh->burst_sent, i);
        }
        pause_ns(t_mix(i) % 300000);
        uint64_t sent = t_now_ns();
        REQUIRE(tachyon_fanout_send(fo, &i, sizeof(i), 1, JOIN_MS) == TACHYON_SUCCESS);
        uint32_t now = fan_producer_fencing(fo);
        fencing_on += !fencing && now;
        fencing_off += fencing && !now;
        fencing = now;
        uint64_t took = wait_acked(sh, i, sent, 0);
        if (took > worst)
            worst = took;
    }
    for (uint64_t i = count; i < count + TIGHT && !atomic_load(&sh->failed); i++) {
        spin_ns(t_mix(i) % 2000);
        uint64_t sent = t_now_ns();
        REQUIRE(tachyon_fanout_send(fo, &i, sizeof(i), 1, JOIN_MS) == TACHYON_SUCCESS);
        uint64_t took = wait_acked(sh, i, sent, 1);
        if (took > worst)
            worst = took;
    }
    tachyon_fanout_destroy(fo);
    for (int r = 0; r < READERS; r++) {
        int status;
        waitpid(kids[r], &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    printf("fan wake-up: %llu messages to %d readers, each received by both before the next was sent; "
           "slowest %.3f ms, %llu not received within %.0f ms\n",
           (unsigned long long)(count + TIGHT), READERS, (double)worst / 1e6, (unsigned long long)atomic_load(&sh->lost),
           LOST_AFTER_NS / 1e6);
    printf("fan wake-up: the producer fenced on request %llu times and stopped %llu times\n",
           (unsigned long long)fencing_on, (unsigned long long)fencing_off);
    CHECK_EQ(atomic_load(&sh->failed), 0);
    CHECK_EQ(atomic_load(&sh->lost), 0);
    if (wait_membarrier_ready() && count >= 4 * BURST_EVERY) { /* the switch was exercised both ways */
        CHECK(fencing_on >= 2);
        CHECK(fencing_off >= 1);
    }
    return t_result("test_fan_wakeup");
}
