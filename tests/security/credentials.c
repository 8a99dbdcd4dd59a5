/*
 * credentials.c - who may connect, and what a listener does with its path.
 *
 * The uid cases need root (the child drops to NOBODY with setuid); without
 * root they are skipped. A refused peer must be able to reach the socket at
 * all for the uid check to be exercised, so those cases widen the socket
 * file's mode by hand after checking that the listener created it 0600.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

#define NOBODY 65534
#define RING 4096

struct listener {
    char path[108];
    tachyon_listen_opts_t opts;
    tachyon_bus_t *bus;
    tachyon_error_t err;
    pthread_t thread;
};

static void *listener_main(void *arg)
{
    struct listener *l = arg;
    l->err = tachyon_bus_listen_ex(l->path, &l->opts, &l->bus);
    return NULL;
}

static void listener_start(struct listener *l, const char *tag, int timeout_ms)
{
    memset(l, 0, sizeof(*l));
    sec_socket_path(l->path, sizeof(l->path), tag);
    tachyon_listen_opts_init(&l->opts, RING);
    l->opts.timeout_ms = timeout_ms;
}

static void listener_run(struct listener *l)
{
    pthread_create(&l->thread, NULL, listener_main, l);
}

static tachyon_error_t listener_join(struct listener *l)
{
    pthread_join(l->thread, NULL);
    return l->err;
}

/* Wait (bounded) until the listener's socket file exists. */
static int wait_for_socket(const char *path)
{
    struct stat st;
    for (int i = 0; i < 2000; i++) {
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
            return 1;
        sec_sleep_ms(1);
    }
    return 0;
}

/* Fork a child that becomes NOBODY and connects; its exit status is the
 * tachyon error code (0: connected, and it sent one message). */
static pid_t connect_as_nobody(const char *path, int timeout_ms)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    alarm(10);
    if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
        _exit(100);
    tachyon_bus_t *bus = NULL;
    tachyon_error_t err = tachyon_bus_connect_timeout(path, timeout_ms, &bus);
    if (err == TACHYON_SUCCESS) {
        err = tachyon_send(bus, "hi", 2, 1);
        sec_sleep_ms(100); /* let the parent read before we leave */
        tachyon_bus_destroy(bus);
    }
    _exit((int)err);
}

static int child_error(pid_t pid)
{
    int status = sec_wait_child(pid, 8000);
    return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_same_uid_and_mode(void)
{
    sec_case_begin("same uid accepted; socket file is 0600 while listening");
    struct listener l;
    listener_start(&l, "mode", 5000);
    listener_run(&l);
    CHECK(wait_for_socket(l.path), "socket file never appeared");
    struct stat st;
    CHECK(lstat(l.path, &st) == 0 && (st.st_mode & 0777) == 0600, "mode %o, want 600",
          (unsigned)(st.st_mode & 0777));
    tachyon_bus_t *c = NULL;
    CHECK_ERR(tachyon_bus_connect_timeout(l.path, 2000, &c), TACHYON_SUCCESS, "connect");
    CHECK_ERR(listener_join(&l), TACHYON_SUCCESS, "listen");
    CHECK(access(l.path, F_OK) != 0, "listener left its socket file behind");
    tachyon_bus_destroy(c);
    tachyon_bus_destroy(l.bus);
    sec_case_end();
}

static void test_other_uid_refused(void)
{
    sec_case_begin("uid 65534 refused: listener returns PERMISSION");
    struct listener l;
    listener_start(&l, "refuse", 5000);
    listener_run(&l);
    CHECK(wait_for_socket(l.path), "socket file never appeared");
    chmod(l.path, 0666);
    pid_t pid = connect_as_nobody(l.path, 3000);
    CHECK_ERR(listener_join(&l), TACHYON_ERR_PERMISSION, "listen");
    int cerr = child_error(pid);
    CHECK(cerr != 0 && cerr != 100, "refused child's connect returned %d", cerr);
    CHECK(l.bus == NULL, "no bus on refusal");
    CHECK(access(l.path, F_OK) != 0, "socket file left behind after refusal");
    sec_case_end();
}

static void test_keep_waiting(void)
{
    sec_case_begin("keep_waiting: refuse uid 65534, then accept own uid");
    struct listener l;
    listener_start(&l, "keep", 5000);
    l.opts.keep_waiting = 1;
    listener_run(&l);
    CHECK(wait_for_socket(l.path), "socket file never appeared");
    chmod(l.path, 0666);
    int cerr = child_error(connect_as_nobody(l.path, 3000));
    CHECK(cerr != 0 && cerr != 100, "refused child's connect returned %d", cerr);
    tachyon_bus_t *c = NULL;
    CHECK_ERR(tachyon_bus_connect_timeout(l.path, 2000, &c), TACHYON_SUCCESS, "allowed connect");
    CHECK_ERR(listener_join(&l), TACHYON_SUCCESS, "listen");
    if (c && l.bus) {
        CHECK_ERR(tachyon_send(c, "x", 1, 3), TACHYON_SUCCESS, "send");
        uint32_t type;
        size_t size;
        CHECK(tachyon_acquire_rx_timeout(l.bus, &type, &size, 0, 1000) != NULL, "no message");
    }
    tachyon_bus_destroy(c);
    tachyon_bus_destroy(l.bus);
    sec_case_end();
}

static void test_allowlist(void)
{
    sec_case_begin("allowlist admits uid 65534 (and then only it)");
    struct listener l;
    listener_start(&l, "allow", 5000);
    CHECK_ERR(tachyon_listen_opts_allow_uid(&l.opts, NOBODY), TACHYON_SUCCESS, "allow_uid");
    listener_run(&l);
    CHECK(wait_for_socket(l.path), "socket file never appeared");
    /* The allowed user can reach the credential check: the file lets it connect. */
    struct stat st;
    CHECK(lstat(l.path, &st) == 0 && (st.st_mode & 0777) == 0666, "mode %o, want 666 for an allow-list",
          (unsigned)(st.st_mode & 0777));
    pid_t pid = connect_as_nobody(l.path, 3000);
    CHECK_ERR(listener_join(&l), TACHYON_SUCCESS, "listen");
    if (l.bus) {
        uint32_t type;
        size_t size;
        const char *p = tachyon_acquire_rx_timeout(l.bus, &type, &size, 0, 3000);
        CHECK(p && size == 2 && memcmp(p, "hi", 2) == 0, "the allowed peer's message did not arrive");
    }
    CHECK(child_error(pid) == 0, "allowed child failed");
    tachyon_bus_destroy(l.bus);

    /* With an allowlist, the listener's own uid (root) is not implied. */
    listener_start(&l, "allow2", 3000);
    tachyon_listen_opts_allow_uid(&l.opts, NOBODY);
    listener_run(&l);
    CHECK(wait_for_socket(l.path), "socket file never appeared");
    tachyon_bus_t *c = NULL;
    tachyon_error_t cerr = tachyon_bus_connect_timeout(l.path, 2000, &c);
    CHECK_ERR(listener_join(&l), TACHYON_ERR_PERMISSION, "listen, root not in allowlist");
    CHECK(cerr != TACHYON_SUCCESS, "root connected although not allowed");
    tachyon_bus_destroy(c);
    sec_case_end();
}

static void test_mode_blocks_other_uid(void)
{
    sec_case_begin("0600 socket file: uid 65534 cannot even connect");
    struct listener l;
    listener_start(&l, "blocked", 600);
    listener_run(&l);
    CHECK(wait_for_socket(l.path), "socket file never appeared");
    int cerr = child_error(connect_as_nobody(l.path, 200));
    CHECK(cerr == TACHYON_ERR_NETWORK, "child connect returned %d, want NETWORK (EACCES)", cerr);
    CHECK_ERR(listener_join(&l), TACHYON_ERR_TIMEOUT, "listen saw no connection");
    sec_case_end();
}

static void test_regular_file_untouched(void)
{
    sec_case_begin("path is a regular file: NOT_SOCKET, file untouched");
    char path[108];
    sec_socket_path(path, sizeof(path), "regular");
    const char content[] = "precious data\n";
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, content, sizeof(content)) == (ssize_t)sizeof(content), "setup");
    close(fd);
    struct stat before, after;
    stat(path, &before);
    tachyon_listen_opts_t opts;
    tachyon_listen_opts_init(&opts, RING);
    opts.timeout_ms = 200;
    tachyon_bus_t *bus = NULL;
    CHECK_ERR(tachyon_bus_listen_ex(path, &opts, &bus), TACHYON_ERR_NOT_SOCKET, "listen");
    char buf[64] = {0};
    fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && read(fd, buf, sizeof(buf)) == (ssize_t)sizeof(content) &&
              memcmp(buf, content, sizeof(content)) == 0,
          "file content changed");
    close(fd);
    CHECK(stat(path, &after) == 0 && after.st_ino == before.st_ino &&
              (after.st_mode & 0777) == 0644,
          "file replaced or its mode changed");
    unlink(path);

    /* A directory is not a socket either. */
    mkdir(path, 0700);
    CHECK_ERR(tachyon_bus_listen_ex(path, &opts, &bus), TACHYON_ERR_NOT_SOCKET, "listen on a directory");
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode), "directory removed");
    rmdir(path);
    sec_case_end();
}

static void test_live_listener_kept(void)
{
    sec_case_begin("path owned by a live listener: ADDR_IN_USE, first still works");
    struct listener first;
    listener_start(&first, "live", 5000);
    listener_run(&first);
    CHECK(wait_for_socket(first.path), "socket file never appeared");
    tachyon_listen_opts_t opts;
    tachyon_listen_opts_init(&opts, RING);
    opts.timeout_ms = 200;
    tachyon_bus_t *second = NULL;
    CHECK_ERR(tachyon_bus_listen_ex(first.path, &opts, &second), TACHYON_ERR_ADDR_IN_USE,
              "second listener");
    CHECK(access(first.path, F_OK) == 0, "second listener removed the first one's socket file");
    tachyon_bus_t *c = NULL;
    CHECK_ERR(tachyon_bus_connect_timeout(first.path, 2000, &c), TACHYON_SUCCESS,
              "connect to the first listener");
    CHECK_ERR(listener_join(&first), TACHYON_SUCCESS, "first listener");
    if (c && first.bus) {
        CHECK_ERR(tachyon_send(first.bus, "ok", 2, 1), TACHYON_SUCCESS, "send");
        uint32_t type;
        size_t size;
        CHECK(tachyon_acquire_rx_timeout(c, &type, &size, 0, 1000) != NULL, "no message");
    }
    tachyon_bus_destroy(c);
    tachyon_bus_destroy(first.bus);
    sec_case_end();
}

static void test_stale_socket_replaced(void)
{
    sec_case_begin("stale socket file from a dead listener is replaced");
    struct listener l;
    listener_start(&l, "stale", 5000);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, l.path);
    CHECK(bind(s, (struct sockaddr *)&addr, sizeof(addr)) == 0, "bind the stale socket: %s",
          strerror(errno));
    close(s); /* gone, but its file stays */
    struct stat st;
    CHECK(lstat(l.path, &st) == 0 && S_ISSOCK(st.st_mode), "stale socket file missing");
    listener_run(&l);
    tachyon_bus_t *c = NULL;
    CHECK_ERR(tachyon_bus_connect_timeout(l.path, 3000, &c), TACHYON_SUCCESS, "connect");
    CHECK_ERR(listener_join(&l), TACHYON_SUCCESS, "listen over a stale socket");
    tachyon_bus_destroy(c);
    tachyon_bus_destroy(l.bus);
    sec_case_end();
}

/*
 * A live listener bound by a relative path, a second listener naming the same
 * file by its absolute path. /proc/net/unix shows the path as it was given to
 * bind(), so a check that compares path strings cannot see this one.
 */
static void test_live_listener_other_spelling(void)
{
    sec_case_begin("live listener bound by relative path: ADDR_IN_USE");
    char old_cwd[4096];
    CHECK(getcwd(old_cwd, sizeof(old_cwd)) != NULL, "getcwd");
    CHECK(chdir("/tmp") == 0, "chdir");
    struct listener first;
    listener_start(&first, "spell", 3000);
    char relative[108];
    snprintf(relative, sizeof(relative), "%s", first.path + strlen("/tmp/"));
    memmove(first.path, relative, strlen(relative) + 1);
    listener_run(&first);
    char absolute[108];
    snprintf(absolute, sizeof(absolute), "/tmp/%s", relative);
    CHECK(wait_for_socket(absolute), "socket file never appeared");
    tachyon_listen_opts_t opts;
    tachyon_listen_opts_init(&opts, RING);
    opts.timeout_ms = 200;
    tachyon_bus_t *second = NULL;
    tachyon_error_t err = tachyon_bus_listen_ex(absolute, &opts, &second);
    CHECK_ERR(err, TACHYON_ERR_ADDR_IN_USE, "second listener (absolute path)");
    tachyon_bus_t *c = NULL;
    if (tachyon_bus_connect_timeout(absolute, 2000, &c) == TACHYON_SUCCESS)
        tachyon_bus_destroy(c);
    listener_join(&first);
    tachyon_bus_destroy(first.bus);
    unlink(absolute);
    CHECK(chdir(old_cwd) == 0, "chdir back");
    sec_case_end();
}

/* A child that becomes uid 65534 and listens at `path`, admitting root; its
 * exit status is the listen result. */
static pid_t fork_foreign_listener(const char *path)
{
    pid_t pid = fork();
    if (pid == 0) {
        alarm(10);
        if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
            _exit(100);
        tachyon_listen_opts_t opts;
        tachyon_listen_opts_init(&opts, RING);
        opts.timeout_ms = 3000;
        tachyon_listen_opts_allow_uid(&opts, 0);
        tachyon_bus_t *bus = NULL;
        tachyon_error_t err = tachyon_bus_listen_ex(path, &opts, &bus);
        sec_sleep_ms(100);
        tachyon_bus_destroy(bus);
        _exit((int)err);
    }
    return pid;
}

/*
 * The connector's side of the same question: a listener run by another uid
 * (it bound the path first, e.g. in /tmp, and made its socket reachable)
 * hands us a segment it controls. The connector refuses it by default, as
 * the listener refuses a foreign connector.
 */
static void test_foreign_listener_refused(void)
{
    sec_case_begin("listener of another uid refused by the connector");
    char path[108];
    sec_socket_path(path, sizeof(path), "foreign");
    pid_t pid = fork_foreign_listener(path);
    CHECK(wait_for_socket(path), "socket file never appeared");
    tachyon_bus_t *c = NULL;
    tachyon_error_t err = tachyon_bus_connect_timeout(path, 2000, &c);
    CHECK_ERR(err, TACHYON_ERR_PERMISSION, "connect to a listener run by uid 65534");
    tachyon_bus_destroy(c);
    child_error(pid);
    unlink(path);
    sec_case_end();
}

/* ... and accepts it when its uid is on the connector's allowlist. */
static void test_foreign_listener_allowed(void)
{
    sec_case_begin("listener of another uid admitted by the connector's allowlist");
    char path[108];
    sec_socket_path(path, sizeof(path), "foreign-ok");
    pid_t pid = fork_foreign_listener(path);
    CHECK(wait_for_socket(path), "socket file never appeared");
    uid_t allowed = NOBODY;
    tachyon_bus_t *c = NULL;
    CHECK_ERR(tachyon_bus_connect_ex(path, 2000, &allowed, 1, &c), TACHYON_SUCCESS,
              "connect_ex with uid 65534 allowed");
    tachyon_bus_destroy(c);
    CHECK(child_error(pid) == TACHYON_SUCCESS, "the listener saw an error");
    unlink(path);
    sec_case_end();
}

/* Root in a container may still lack CAP_SETUID/CAP_SETGID: probe once. */
static int can_become_nobody(void)
{
    if (geteuid() != 0)
        return 0;
    pid_t pid = fork();
    if (pid == 0)
        _exit(setgroups(0, NULL) == 0 && setgid(NOBODY) == 0 && setuid(NOBODY) == 0 ? 0 : 1);
    int status = sec_wait_child(pid, 5000);
    return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(void)
{
    sec_watchdog(60);
    test_same_uid_and_mode();
    int nobody_ok = can_become_nobody();
    if (nobody_ok) {
        test_other_uid_refused();
        test_keep_waiting();
        test_allowlist();
        test_mode_blocks_other_uid();
    } else {
        sec_case_skip("uid cases (refused, keep_waiting, allowlist, mode)", "cannot setuid(65534): not root");
    }
    test_regular_file_untouched();
    test_live_listener_kept();
    test_stale_socket_replaced();
    test_live_listener_other_spelling();
    if (nobody_ok) {
        test_foreign_listener_refused();
        test_foreign_listener_allowed();
    }
    return sec_finish();
}
