/* epoll_consumer.c - consumer.c on an epoll loop: the bus's descriptor sits in
 * the epoll set beside whatever else the program waits on (here: nothing).
 * Usage: epoll_consumer SOCKET_PATH (start it first: it creates the socket). */
#include <stdio.h>
#include <sys/epoll.h>
#include <tachyon.h>

static int consume(tachyon_bus_t *bus, int ep, unsigned *count)
{
    for (;;) {
        uint32_t type_id;
        size_t size;
        const char *msg = tachyon_acquire_rx(bus, &type_id, &size); /* never waits */
        if (msg) {
            printf("type %u: %.*s\n", (unsigned)type_id, (int)size, msg);
            tachyon_commit_rx(bus);
            ++*count;
            continue;
        }
        if (tachyon_bus_last_error(bus) != TACHYON_ERR_EMPTY)
            return 0; /* PEER_CLOSED, PEER_DEAD, ...: the end */
        int armed = tachyon_bus_fd_arm(bus, TACHYON_WAIT_RX);
        if (armed < 0)
            return -1;
        struct epoll_event ev;
        if (armed == 0 && epoll_wait(ep, &ev, 1, -1) < 0) /* and serve whatever else is ready */
            return -1;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SOCKET_PATH\n", argv[0]);
        return 2;
    }
    tachyon_bus_t *bus;
    tachyon_error_t err = tachyon_bus_listen(argv[1], 1 << 20, &bus); /* waits for one producer */
    if (err != TACHYON_SUCCESS) {
        fprintf(stderr, "epoll_consumer: %s\n", tachyon_error_message(err));
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = bus};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, tachyon_bus_fd(bus), &ev) < 0) {
        perror("epoll_consumer: epoll");
        return 1;
    }
    unsigned count = 0;
    int rc = consume(bus, ep, &count);
    err = tachyon_bus_last_error(bus);
    tachyon_bus_destroy(bus);
    if (rc < 0 || err != TACHYON_ERR_PEER_CLOSED) {
        fprintf(stderr, "epoll_consumer: %s\n", rc < 0 ? "epoll_wait failed" : tachyon_strerror(err));
        return 1;
    }
    printf("received %u messages; the producer closed the bus\n", count);
    return 0;
}
