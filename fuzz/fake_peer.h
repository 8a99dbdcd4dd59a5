/*
 * fake_peer.h - the hostile other end of the handshake fuzzers
 * (fuzz_handshake, fuzz_rpc_handshake, fuzz_fan): a thread that serves one
 * connection per input on a socket of its own, what it serves from (the
 * input's bytes), and the properties every input ends with (no descriptor
 * and no mapping left behind).
 *
 * Each fuzzer defines serve_one(), which accepts on fake.lfd and plays its
 * peer from byte_at(); its input function calls fake_begin(), connects to
 * fake.path, calls fake_end() once the connection is over on its side, and
 * then fake_check_leaks().
 */
#ifndef TACHYON_FAKE_PEER_H
#define TACHYON_FAKE_PEER_H

#include <dirent.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static struct {
    char path[108];
    char dir[80];
    int lfd;
    int started;
    pthread_t thread;
    sem_t go, done;
    const uint8_t *data;
    size_t size;
    int baseline_fds;
} fake;

static void serve_one(void);

/* Byte i of the input, 0 past its end. */
static uint8_t byte_at(size_t i)
{
    return i < fake.size ? fake.data[i] : 0;
}

/* Open descriptors, not counting the one that lists them. */
static int fake_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        abort();
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

/* Every open descriptor and what it is, on stderr. */
static void fake_print_fds(const char *who)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[64], target[256];
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, target, sizeof(target) - 1);
        target[len > 0 ? len : 0] = '\0';
        fprintf(stderr, "%s: fd %s -> %s\n", who, e->d_name, target);
    }
    closedir(d);
}

static int fake_memfd_mapped(void)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        abort();
    char line[512];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, "memfd:") != NULL;
    fclose(f);
    return found;
}

static void fake_remove_socket(void)
{
    unlink(fake.path);
    rmdir(fake.dir);
}

static void *fake_loop(void *arg)
{
    (void)arg;
    for (;;) {
        sem_wait(&fake.go);
        serve_one();
        sem_post(&fake.done);
    }
    return NULL;
}

/* The socket lives in a directory of its own under $TMPDIR (or /tmp when
 * that is unset or too long for a socket path), removed at exit. */
static void fake_start(void)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base || strlen(base) > 40)
        base = "/tmp";
    snprintf(fake.dir, sizeof(fake.dir), "%s/tachyon-fuzz-XXXXXX", base);
    if (!mkdtemp(fake.dir))
        abort();
    snprintf(fake.path, sizeof(fake.path), "%s/listener.sock", fake.dir);
    atexit(fake_remove_socket);
    fake.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, fake.path);
    if (bind(fake.lfd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fake.lfd, 4) != 0)
        abort();
    sem_init(&fake.go, 0, 0);
    sem_init(&fake.done, 0, 0);
    pthread_create(&fake.thread, NULL, fake_loop, NULL);
    fake.started = 1;
    fake.baseline_fds = fake_fd_count();
}

/* Serve this input to the next connection. */
static void fake_begin(const uint8_t *data, size_t size)
{
    if (!fake.started)
        fake_start();
    fake.data = data;
    fake.size = size;
    sem_post(&fake.go);
}

/* Wait until the peer is done with this input (its descriptors closed). */
static void fake_end(void)
{
    sem_wait(&fake.done);
}

static void fake_violated(const char *who, const char *what, long a, long b)
{
    fprintf(stderr, "%s: property violated: %s (%ld, %ld)\n", who, what, a, b);
    abort();
}

/*
 * Nothing of the input may stay: the descriptors are those held before the
 * first input, and no memfd is mapped. A descriptor the library leaked
 * stays; one that something else in the process holds for an instant (a
 * runtime's helper reading /proc, a symbolizer's pipe) goes, so the count
 * gets 200 ms to settle before it counts as a leak, and a leak names what is
 * open. `err` is what the connect returned (for the report).
 */
static void fake_check_leaks(const char *who, long err)
{
    int fds = fake_fd_count();
    for (int i = 0; i < 100 && fds != fake.baseline_fds; i++) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
        fds = fake_fd_count();
    }
    if (fds != fake.baseline_fds) {
        fake_print_fds(who);
        fake_violated(who, "descriptor count changed", fake.baseline_fds, fds);
    }
    if (fake_memfd_mapped())
        fake_violated(who, "a memfd is still mapped", err, 0);
}

#endif /* TACHYON_FAKE_PEER_H */
