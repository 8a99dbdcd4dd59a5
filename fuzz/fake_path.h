/*
 * fake_path.h - where a fuzzer's fake listener binds its socket: a directory
 * of its own under $TMPDIR (or /tmp when that is unset or too long for a
 * socket path), removed with the socket when the fuzzer exits. Shared by
 * fuzz_handshake.c and fuzz_rpc_handshake.c.
 */
#ifndef TACHYON_FAKE_PATH_H
#define TACHYON_FAKE_PATH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fake_path_dir[80];
static char fake_path_socket[108];

static void fake_path_remove(void)
{
    unlink(fake_path_socket);
    rmdir(fake_path_dir);
}

/* The socket path (made on the first call; the same afterwards). */
static inline const char *fake_listener_path(void)
{
    if (fake_path_socket[0])
        return fake_path_socket;
    const char *base = getenv("TMPDIR");
    if (!base || !*base || strlen(base) > 40)
        base = "/tmp";
    snprintf(fake_path_dir, sizeof(fake_path_dir), "%s/tachyon-fuzz-XXXXXX", base);
    if (!mkdtemp(fake_path_dir))
        abort();
    snprintf(fake_path_socket, sizeof(fake_path_socket), "%s/listener.sock", fake_path_dir);
    atexit(fake_path_remove);
    return fake_path_socket;
}

#endif /* TACHYON_FAKE_PATH_H */
