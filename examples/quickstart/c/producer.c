/* producer.c - send five messages, then close the bus.
 * Usage: producer SOCKET_PATH */
#include <stdio.h>
#include <tachyon.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SOCKET_PATH\n", argv[0]);
        return 2;
    }
    tachyon_bus_t *bus;
    /* Retries for up to 10 s while the consumer is not listening yet. */
    tachyon_error_t err = tachyon_bus_connect_timeout(argv[1], 10000, &bus);
    if (err != TACHYON_SUCCESS) {
        fprintf(stderr, "producer: %s\n", tachyon_error_message(err));
        return 1;
    }
    for (int i = 0; i < 5; i++) {
        char *slot = tachyon_acquire_tx_blocking(bus, 64, 1000, 5000); /* a slot in the shared ring */
        if (!slot) {
            fprintf(stderr, "producer: %s\n", tachyon_strerror(tachyon_bus_last_error(bus)));
            tachyon_bus_destroy(bus);
            return 1;
        }
        int len = snprintf(slot, 64, "hello %d", i);          /* written in place */
        tachyon_commit_tx(bus, (size_t)len, TACHYON_TYPE_ID(0, 1)); /* visible to the consumer now */
    }
    tachyon_bus_destroy(bus); /* the consumer reads what is left, then sees PEER_CLOSED */
    printf("sent 5 messages\n");
    return 0;
}
