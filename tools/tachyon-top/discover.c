/*
 * discover.c - which segments the user's processes hold, from /proc.
 *
 * Every open descriptor is a link in /proc/<pid>/fd; a memfd's reads
 * "/memfd:<name> (deleted)". Reading those links needs nothing for one's own
 * processes (another user's are refused, which is what keeps each user to
 * their own buses). Descriptors are grouped by the file they point at (the
 * memfd's inode): one group is one segment, its holders the processes that
 * have it open. Processes of this project name their segments
 * "tachyon:<socket path>"; the published library names them after the socket
 * path alone, so every memfd is a candidate and the core decides (sample.c).
 *
 * A process may hold a segment mapped with its descriptor closed. For a bus
 * with fewer than two holders that way, sample.c asks for the maps of the
 * processes already looked at (discover_mappers), so that such a peer still
 * counts as attached.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "top.h"

#define MEMFD_LINK_PREFIX "/memfd:"
#define DELETED_SUFFIX " (deleted)"
#define TACHYON_NAME_PREFIX "tachyon:"

static int grow(void **v, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t cap2 = *cap ? *cap * 2 : 16;
    while (cap2 < need)
        cap2 *= 2;
    void *p = realloc(*v, cap2 * elem);
    if (!p)
        return -1;
    *v = p;
    *cap = cap2;
    return 0;
}

/* A directory entry that is a decimal number (a pid, a descriptor), or -1. */
static long parse_number(const char *name)
{
    if (!isdigit((unsigned char)name[0]))
        return -1;
    char *end;
    errno = 0;
    long v = strtol(name, &end, 10);
    return *end == '\0' && errno == 0 && v <= 0x7fffffff ? v : -1;
}

/* /proc/<pid>/comm without its newline ("?" when it cannot be read). */
static void read_comm(pid_t pid, char out[TOP_COMM_MAX])
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    strcpy(out, "?");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, out, TOP_COMM_MAX - 1);
    close(fd);
    if (n <= 0) {
        strcpy(out, "?");
        return;
    }
    out[n] = '\0';
    out[strcspn(out, "\n")] = '\0';
}

/* "/memfd:NAME (deleted)" -> NAME; 0 when the link is not a memfd's. */
static int memfd_name_of_link(const char *link, char name[TOP_NAME_MAX])
{
    size_t plen = strlen(MEMFD_LINK_PREFIX), slen = strlen(DELETED_SUFFIX);
    if (strncmp(link, MEMFD_LINK_PREFIX, plen) != 0)
        return 0;
    const char *start = link + plen;
    size_t len = strlen(start);
    if (len >= slen && strcmp(start + len - slen, DELETED_SUFFIX) == 0)
        len -= slen;
    if (len >= TOP_NAME_MAX)
        len = TOP_NAME_MAX - 1; /* the kernel allows 249 bytes: never cut in practice */
    memcpy(name, start, len);
    name[len] = '\0';
    return 1;
}

static struct segment *find_segment(struct scan *scan, dev_t dev, ino_t ino)
{
    for (size_t i = 0; i < scan->n_segs; i++)
        if (scan->segs[i].dev == dev && scan->segs[i].ino == ino)
            return &scan->segs[i];
    return NULL;
}

static struct segment *add_segment(struct scan *scan, dev_t dev, ino_t ino, const char *name, pid_t pid, int fd)
{
    if (grow((void **)&scan->segs, &scan->cap_segs, scan->n_segs + 1, sizeof(*scan->segs)) != 0)
        return NULL;
    struct segment *seg = &scan->segs[scan->n_segs++];
    memset(seg, 0, sizeof(*seg));
    seg->dev = dev;
    seg->ino = ino;
    snprintf(seg->name, sizeof seg->name, "%s", name);
    seg->prefixed = strncmp(name, TACHYON_NAME_PREFIX, strlen(TACHYON_NAME_PREFIX)) == 0;
    seg->open_pid = pid;
    seg->open_fd = fd;
    return seg;
}

static struct holder *find_holder(struct segment *seg, pid_t pid)
{
    for (size_t i = 0; i < seg->n_holders; i++)
        if (seg->holders[i].pid == pid)
            return &seg->holders[i];
    return NULL;
}

static struct holder *add_holder(struct segment *seg, pid_t pid, uid_t uid)
{
    if (grow((void **)&seg->holders, &seg->cap_holders, seg->n_holders + 1, sizeof(*seg->holders)) != 0)
        return NULL;
    struct holder *h = &seg->holders[seg->n_holders++];
    memset(h, 0, sizeof(*h));
    h->pid = pid;
    h->uid = uid;
    read_comm(pid, h->comm);
    return h;
}

/* One descriptor of a memfd: count it for its segment. */
static void note_descriptor(struct scan *scan, pid_t pid, uid_t uid, int fd, const char *name, dev_t dev, ino_t ino)
{
    struct segment *seg = find_segment(scan, dev, ino);
    if (!seg && !(seg = add_segment(scan, dev, ino, name, pid, fd)))
        return;
    struct holder *h = find_holder(seg, pid);
    if (!h && !(h = add_holder(seg, pid, uid)))
        return;
    if (h->n_fds < TOP_HOLDER_FDS)
        h->fds[h->n_fds] = fd;
    h->n_fds++;
}

/* The memfd descriptors of one process; 0 when its fd directory could be read. */
static int scan_process_fds(struct scan *scan, pid_t pid, uid_t uid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1; /* another user's process, or it just ended */
    DIR *dir = fdopendir(dfd);
    if (!dir) {
        close(dfd);
        return -1;
    }
    struct dirent *de;
    char link[TOP_NAME_MAX + 64], name[TOP_NAME_MAX];
    while ((de = readdir(dir)) != NULL) {
        long fd = parse_number(de->d_name);
        if (fd < 0)
            continue;
        ssize_t n = readlinkat(dfd, de->d_name, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        if (!memfd_name_of_link(link, name))
            continue;
        struct stat st; /* follows the link: the memfd itself */
        if (fstatat(dfd, de->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode))
            continue;
        note_descriptor(scan, pid, uid, (int)fd, name, st.st_dev, st.st_ino);
    }
    closedir(dir);
    return 0;
}

static struct segment *find_in(struct segment *const *segs, size_t n, dev_t dev, ino_t ino)
{
    for (size_t i = 0; i < n; i++)
        if (segs[i]->dev == dev && segs[i]->ino == ino)
            return segs[i];
    return NULL;
}

/* The segments of `segs` that one process maps with no descriptor of them open. */
static void scan_process_maps(struct segment *const *segs, size_t n, pid_t pid, uid_t uid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        if (!strstr(line, " " MEMFD_LINK_PREFIX))
            continue;
        unsigned maj, min;
        unsigned long long ino;
        /* start-end perms offset major:minor inode path */
        if (sscanf(line, "%*x-%*x %*s %*x %x:%x %llu", &maj, &min, &ino) != 3)
            continue;
        struct segment *seg = find_in(segs, n, makedev(maj, min), (ino_t)ino);
        if (!seg || find_holder(seg, pid))
            continue;
        struct holder *h = add_holder(seg, pid, uid);
        if (h)
            h->mapped_only = 1;
    }
    free(line);
    fclose(f);
}

void discover_mappers(struct scan *scan, struct segment *const *segs, size_t n)
{
    if (n == 0)
        return;
    for (size_t i = 0; i < scan->n_procs; i++)
        scan_process_maps(segs, n, scan->procs[i].pid, scan->procs[i].uid);
}

int holder_counts(const struct scan *scan, const struct holder *h)
{
    return scan->all_users || h->uid == scan->uid;
}

/* Keep only the segments one of whose holders is ours. */
static void keep_own_segments(struct scan *scan)
{
    size_t kept = 0;
    for (size_t i = 0; i < scan->n_segs; i++) {
        struct segment *seg = &scan->segs[i];
        int ours = 0;
        for (size_t j = 0; j < seg->n_holders && !ours; j++)
            ours = holder_counts(scan, &seg->holders[j]) && !seg->holders[j].mapped_only;
        if (ours)
            scan->segs[kept++] = *seg;
        else
            free(seg->holders);
    }
    scan->n_segs = kept;
}

int discover(struct scan *scan)
{
    DIR *proc = opendir("/proc");
    if (!proc)
        return -1;
    struct dirent *de;
    char path[64];
    while ((de = readdir(proc)) != NULL) {
        long number = parse_number(de->d_name);
        if (number <= 0)
            continue;
        pid_t pid = (pid_t)number;
        struct stat st;
        snprintf(path, sizeof path, "/proc/%d", (int)pid);
        if (stat(path, &st) != 0)
            continue;
        if (scan_process_fds(scan, pid, st.st_uid) != 0)
            continue;
        if (grow((void **)&scan->procs, &scan->cap_procs, scan->n_procs + 1, sizeof(*scan->procs)) == 0)
            scan->procs[scan->n_procs++] = (struct scanned_proc){pid, st.st_uid};
    }
    closedir(proc);
    keep_own_segments(scan);
    return 0;
}

const char *segment_path(const struct segment *seg)
{
    return seg->prefixed ? seg->name + strlen(TACHYON_NAME_PREFIX) : seg->name;
}

void scan_free(struct scan *scan)
{
    for (size_t i = 0; i < scan->n_segs; i++)
        free(scan->segs[i].holders);
    free(scan->segs);
    free(scan->procs);
    scan->segs = NULL;
    scan->procs = NULL;
    scan->n_segs = scan->cap_segs = scan->n_procs = scan->cap_procs = 0;
}
