/*
 * test_notify.c - the event-loop descriptor (tachyon_bus_fd / _arm) under
 * poll, select and epoll: a message, room after a full ring, the peer closing
 * or dying, a fatal ring, and a peer that cannot signal (the timer fallback).
 */
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/wait.h>

#include "helpers.h"
#include "internal.h"
#include "state.h"

/* Readable within timeout_ms? */
static int readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

static int readable_select(int fd, int timeout_ms)
{
    fd_set set;
    FD_ZERO(&set);
    FD_SET(fd, &set);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    return select(fd + 1, &set, NULL, NULL, &tv) == 1;
}

static int readable_epoll(int fd, int timeout_ms)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd}, out;
    REQUIRE(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
    int n = epoll_wait(ep, &out, 1, timeout_ms);
    close(ep);
    return n == 1;
}

static void test_message(int (*wait_fn)(int, int), const char *how)
{
    tachyon_bus_t *lis, *con;
    t_make_pair(4096, &lis, &con);
    int fd = tachyon_bus_fd(lis);
    REQUIRE(fd >= 0);
    CHECK_EQ(tachyon_bus_fd(lis), fd); /* the same every time */
    CHECK_EQ(tachyon_bus_fd_arm(lis, TACHYON_WAIT_RX), 0);
    CHECK(!wait_fn(fd, 20));
    CHECK_ERR(tachyon_send(con, "hi", 2, 7), TACHYON_SUCCESS);
    if (!wait_fn(fd, 5000))
        fprintf(stderr, "%s: no readiness for a message\n", how);
    CHECK(wait_fn(fd, 0)); /* level-triggered: still readable */
    CHECK_EQ(tachyon_bus_fd_arm(lis, TACHYON_WAIT_RX), 1); /* the message is there */
    uint32_t t;
    size_t s;
    CHECK(tachyon_acquire_rx(lis, &t, &s) != NULL && t == 7 && s == 2);
    tachyon_commit_rx(lis);
    CHECK_EQ(tachyon_bus_fd_arm(lis, TACHYON_WAIT_RX), 0);
    CHECK(!wait_fn(fd, 20));
    CHECK_EQ(tachyon_bus_fd_arm(lis, 0), -1);
    tachyon_bus_destroy(lis);
    tachyon_bus_destroy(con);
}

static void test_room_after_full(void)
{
    tachyon_bus_t *lis, *con;
    t_make_pair(1024, &lis, &con);
    while (tachyon_send(con, "x", 1, 1) == TACHYON_SUCCESS)
        ;
    int fd = tachyon_bus_fd(con);
    REQUIRE(fd >= 0);
    CHECK_EQ(tachyon_bus_fd_arm(con, TACHYON_WAIT_TX), 0);
    CHECK(!readable(fd, 20));
    for (int i = 0; i < 8; i++) { /* the consumer drains; it gives room back when empty */
        REQUIRE(tachyon_acquire_rx(lis, NULL, NULL) != NULL);
        tachyon_commit_rx(lis);
    }
    CHECK(tachyon_acquire_rx(lis, NULL, NULL) == NULL);
    CHECK(readable(fd, 5000));
    CHECK_EQ(tachyon_bus_fd_arm(con, TACHYON_WAIT_TX), 1);
    CHECK_ERR(tachyon_send(con, "y", 1, 1), TACHYON_SUCCESS);
    tachyon_bus_destroy(lis);
    tachyon_bus_destroy(con);
}

static void test_peer_closes(void)
{
    tachyon_bus_t *lis, *con;
    t_make_pair(4096, &lis, &con);
    int fd = tachyon_bus_fd(lis);
    CHECK_EQ(tachyon_bus_fd_arm(lis, TACHYON_WAIT_RX), 0);
    tachyon_bus_destroy(con);
    CHECK(readable(fd, 5000));
    CHECK_EQ(tachyon_bus_fd_arm(lis, TACHYON_WAIT_RX), 1);
    CHECK(tachyon_acquire_rx(lis, NULL, NULL) == NULL);
    CHECK_EQ(tachyon_bus_last_error(lis), TACHYON_ERR_PEER_CLOSED);
    tachyon_bus_destroy(lis);
}

static void test_peer_killed(void)
{
    char path[108];
    t_socket_path(path, sizeof(path), "notify-kill");
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        tachyon_bus_t *bus;
        if (tachyon_bus_connect_timeout(path, 5000, &bus) != TACHYON_SUCCESS)
            _exit(1);
        pause();
        _exit(0);
    }
    tachyon_bus_t *bus;
    REQUIRE(tachyon_bus_listen(path, 4096, &bus) == TACHYON_SUCCESS);
    int fd = tachyon_bus_fd(bus);
    CHECK_EQ(tachyon_bus_fd_arm(bus, TACHYON_WAIT_RX), 0);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    CHECK(readable(fd, 5000)); /* the pidfd in the set */
    CHECK_EQ(tachyon_bus_fd_arm(bus, TACHYON_WAIT_RX), 1);
    CHECK(tachyon_acquire_rx(bus, NULL, NULL) == NULL);
    CHECK_EQ(tachyon_bus_last_error(bus), TACHYON_ERR_PEER_DEAD);
    CHECK(readable(fd, 0)); /* and stays readable */
    tachyon_bus_destroy(bus);
}

static void test_fatal(void)
{
    tachyon_bus_t *lis, *con;
    t_make_pair(4096, &lis, &con);
    int fd = tachyon_bus_fd(lis);
    CHECK_EQ(tachyon_bus_fd_arm(lis, TACHYON_WAIT_RX), 0);
    status_set_fatal(con); /* the peer finds the ring corrupt */
    CHECK(readable(fd, 5000));
    CHECK_EQ(tachyon_bus_fd_arm(lis, TACHYON_WAIT_RX), 1);
    CHECK(tachyon_acquire_rx(lis, NULL, NULL) == NULL);
    CHECK_EQ(tachyon_bus_last_error(lis), TACHYON_ERR_FATAL);
    tachyon_bus_destroy(lis);
    tachyon_bus_destroy(con);
}

/* A producer that never signals (as a plain v4 one): the 1 ms tick. */
static void test_fallback_tick(void)
{
    tachyon_bus_t *lis, *con;
    t_make_pair(4096, &lis, &con);
    con->peer_features &= ~TACHYON_FEATURE_EVENTFD; /* the producer will not signal */
    close(con->peer_evfd);
    con->peer_evfd = -1;
    close(lis->peer_evfd); /* the consumer knows its peer cannot */
    lis->peer_evfd = -1;
    int fd = tachyon_bus_fd(lis);
    CHECK_EQ(tachyon_bus_fd_arm(lis, TACHYON_WAIT_RX), 0);
    CHECK_ERR(tachyon_send(con, "tick", 4, 1), TACHYON_SUCCESS);
    uint64_t t0 = t_now_ns();
    int seen = 0;
    while (!seen && t_now_ns() - t0 < 5000000000ull) {
        CHECK(readable(fd, 5000)); /* a tick (or the message's signal, if any) */
        seen = tachyon_bus_fd_arm(lis, TACHYON_WAIT_RX) == 1;
    }
    CHECK(seen);
    printf("fallback: message seen %.2f ms after it was sent\n", (double)(t_now_ns() - t0) / 1e6);
    tachyon_bus_destroy(lis);
    tachyon_bus_destroy(con);
}

int main(void)
{
    test_message(readable, "poll");
    test_message(readable_select, "select");
    test_message(readable_epoll, "epoll");
    test_room_after_full();
    test_peer_closes();
    test_peer_killed();
    test_fatal();
    test_fallback_tick();
    return t_result("test_notify");
}
