/* consumer.c - receive messages until the producer closes the bus.
 * Usage: consumer SOCKET_PATH (start it first: it creates the socket). */
#include <stdio.h>
#include <tachyon.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SOCKET_PATH\n", argv[0]);
        return 2;
    }
    tachyon_bus_t *bus;
    tachyon_error_t err = tachyon_bus_listen(argv[1], 1 << 20, &bus); /* waits for one producer */
    if (err != TACHYON_SUCCESS) {
        fprintf(stderr, "consumer: %s\n", tachyon_error_message(err));
        return 1;
    }
    unsigned count = 0;
    for (;;) {
        uint32_t type_id;
        size_t size;
        const char *msg = tachyon_acquire_rx_blocking(bus, &type_id, &size, 10000);
        if (!msg)
            break; /* the producer is gone and everything it sent was read, or an error */
        printf("type %u: %.*s\n", (unsigned)type_id, (int)size, msg); /* read in place */
        tachyon_commit_rx(bus);                                       /* the slot is free again */
        count++;
    }
    err = tachyon_bus_last_error(bus);
    tachyon_bus_destroy(bus);
    if (err != TACHYON_ERR_PEER_CLOSED) { /* PEER_DEAD: the producer crashed */
        fprintf(stderr, "consumer: %s\n", tachyon_strerror(err));
        return 1;
    }
    printf("received %u messages; the producer closed the bus\n", count);
    return 0;
}
