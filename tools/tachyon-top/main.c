/*
 * main.c - tachyon-top: options, and the loops for scripts (--once, --json);
 * the live screen is screen.c. See --help and README.md, "Watching buses:
 * tachyon-top".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "top.h"

#define INTERVAL_MAX_S 3600.0
#define INTERVAL_MIN_LIVE_S 0.05

static const char usage_text[] =
    "Usage: tachyon-top [OPTIONS]\n"
    "\n"
    "A live view of the Tachyon buses of the current user on this machine: one row\n"
    "per bus with its producer and consumer (pid and name), messages and megabytes\n"
    "per second, how full the ring is, how far the reader lags, whether the reader\n"
    "sleeps, and whether both sides are still there. No privilege needed: buses are\n"
    "found through the descriptors the user's own processes hold (/proc/PID/fd),\n"
    "and each segment is mapped read-only and checked before anything is shown.\n"
    "\n"
    "Options:\n"
    "  -i, --interval SECONDS  time between two samples (default 1). Rates are the\n"
    "                          difference of two samples over this time. With\n"
    "                          --once, the wait between the two samples taken; 0\n"
    "                          takes one sample and shows no rates.\n"
    "  -1, --once              print one table (or one JSON document with --json)\n"
    "                          and exit, instead of the live screen.\n"
    "  -j, --json              JSON instead of text: one document per line, every\n"
    "                          interval until interrupted (one with --once).\n"
    "                          Segments that could not be read are listed under\n"
    "                          \"skipped\" with the reason. Schema: README.md.\n"
    "  -w, --watch PATH        one bus in detail: PATH is the socket path the bus was\n"
    "                          made for (or its memfd name). With --once, exit\n"
    "                          status 1 when there is no such bus.\n"
    "  -s, --sort COLUMN       order of the rows: path, producer, consumer, msgs,\n"
    "                          rate (default; msg/s), mbps, fill, lag, status.\n"
    "                          Figures sort largest first, names A to Z, status\n"
    "                          with problems (fatal, gone, waiting) first.\n"
    "  -r, --reverse           the opposite order.\n"
    "  -a, --all-users         every user's buses, not only yours (reading other\n"
    "                          users' /proc/PID/fd needs root or CAP_SYS_PTRACE).\n"
    "  -h, --help              this text.\n"
    "\n"
    "Keys on the live screen: q quit, s next sort column, S reverse the order,\n"
    "r refresh now, Up/Down (k/j) and Home/End (g/G) select a bus, Enter watch it,\n"
    "Esc back to the list.\n"
    "\n"
    "Columns: STATUS alive (both sides attached), waiting (a listener waits for\n"
    "its peer), gone (a side closed the bus, ended or let go of it), fatal (a side\n"
    "found the segment corrupt). PRODUCER, CONSUMER: pid and process name; \"?pid\n"
    "name\" lists a process holding the bus whose role is not known yet (a side\n"
    "stores its counters every 1024 messages, when the reader gives room back, and\n"
    "when it leaves). MSG/S, MB/S: payload sent per second. FILL: bytes in the\n"
    "ring. LAG: messages sent and not yet received, as last stored. READER: awake,\n"
    "asleep (on the futex), spin (never sleeps), evloop (waits in an event loop).\n"
    "MSGS: messages sent so far.\n";

static void usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "tachyon-top: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'tachyon-top --help'.\n");
    exit(2);
}

static double parse_interval(const char *arg)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end != '\0' || !(v >= 0 && v <= INTERVAL_MAX_S))
        usage_error("--interval %s: give seconds from 0 to 3600 (for example 0.5)", arg);
    return v;
}

static void parse_options(int argc, char **argv, struct options *opt)
{
    static const struct option longopts[] = {
        {"interval", required_argument, NULL, 'i'}, {"once", no_argument, NULL, '1'},
        {"json", no_argument, NULL, 'j'},           {"watch", required_argument, NULL, 'w'},
        {"sort", required_argument, NULL, 's'},     {"reverse", no_argument, NULL, 'r'},
        {"all-users", no_argument, NULL, 'a'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(opt, 0, sizeof(*opt));
    opt->interval_s = 1.0;
    opt->sort = SORT_RATE;
    int c;
    while ((c = getopt_long(argc, argv, "i:1jw:s:rah", longopts, NULL)) != -1) {
        switch (c) {
        case 'i': opt->interval_s = parse_interval(optarg); break;
        case '1': opt->once = 1; break;
        case 'j': opt->json = 1; break;
        case 'w': opt->watch = optarg; break;
        case 's':
            if (sort_key_parse(optarg, &opt->sort) != 0)
                usage_error("--sort %s: one of path, producer, consumer, msgs, rate, mbps, fill, lag, status",
                            optarg);
            break;
        case 'r': opt->reverse = 1; break;
        case 'a': opt->all_users = 1; break;
        case 'h': fputs(usage_text, stdout); exit(0);
        default: usage_error("%s", "unknown option");
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    if (!opt->once && !opt->json && opt->interval_s < INTERVAL_MIN_LIVE_S)
        usage_error("--interval %s: the live screen refreshes at most every 0.05 s", "below 0.05");
    if (opt->json && !opt->once && opt->interval_s <= 0)
        usage_error("%s", "--json without --once repeats every --interval: give one above 0");
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int take(struct sample *out, const struct sample *prev, const struct options *opt)
{
    if (sample_take(out, prev, opt->all_users) != 0) {
        fprintf(stderr, "tachyon-top: cannot read /proc: %s\n", strerror(errno));
        return -1;
    }
    sample_sort(out, opt->sort, opt->reverse);
    return 0;
}

/* Print one sample; 1 when --watch names no bus. */
static int print_sample(const struct sample *s, const struct options *opt)
{
    const struct bus_row *row = opt->watch ? sample_find(s, opt->watch) : NULL;
    if (opt->json)
        print_json(stdout, s, opt->watch);
    else if (!opt->watch)
        print_table(stdout, s);
    else if (row)
        print_detail(stdout, row);
    if (opt->watch && !row) {
        char path[TOP_NAME_MAX];
        printable(path, sizeof path, opt->watch);
        fprintf(stderr, "tachyon-top: no bus at %s among the %zu buses found\n", path, s->n_rows);
        return 1;
    }
    return 0;
}

/* --once, or --json repeated: two samples an interval apart give the rates. */
static int run_text(const struct options *opt)
{
    struct sample prev, cur;
    if (take(&prev, NULL, opt) != 0)
        return 1;
    int status = 0;
    for (;;) {
        if (opt->interval_s <= 0) {
            status = print_sample(&prev, opt);
            break;
        }
        sleep_s(opt->interval_s);
        if (take(&cur, &prev, opt) != 0) {
            status = 1;
            break;
        }
        sample_free(&prev);
        prev = cur;
        status = print_sample(&prev, opt);
        if (opt->once || ferror(stdout))
            break;
    }
    sample_free(&prev);
    return status;
}

int main(int argc, char **argv)
{
    struct options opt;
    parse_options(argc, argv, &opt);
    if (opt.once || opt.json)
        return run_text(&opt);
    if (!isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO)) {
        fprintf(stderr, "tachyon-top: the live screen needs a terminal; use --once or --json in scripts\n");
        return 2;
    }
    return run_screen(&opt);
}
