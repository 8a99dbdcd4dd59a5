/*
 * screen.c - the live curses view: one row per bus, refreshed every
 * interval, sortable; or one bus in detail (--watch PATH, or Enter on a row).
 *
 * Keys: q quit, s next sort column, S reverse the order, r refresh now,
 * Up/Down (or k/j), Home/End (g/G) select a row, Enter watch it, Esc (or
 * Backspace, b) back.
 */
#define _GNU_SOURCE
#include <curses.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "top.h"

#define KEY_ESCAPE 27
#define DETAIL_LINES 16
#define PAIR_GONE 1
#define PAIR_WAITING 2

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
    stop_signal = sig;
}

struct view {
    const struct options *opt;
    struct sample cur;
    int have_cur;
    enum sort_key sort;
    int reverse;
    ino_t selected;                /* the selected bus, by inode: stays on it when rows move */
    char watch[TOP_NAME_MAX];      /* the bus watched, "" for the list */
    int watch_from_list;           /* Esc goes back to the list */
    uint64_t next_sample_ns;
    char error[160];
};

static void take_sample(struct view *v)
{
    struct sample next;
    v->next_sample_ns = mono_ns() + (uint64_t)(v->opt->interval_s * 1e9);
    if (sample_take(&next, v->have_cur ? &v->cur : NULL, v->opt->all_users) != 0) {
        snprintf(v->error, sizeof v->error, "cannot read /proc: %s", strerror(errno));
        return;
    }
    v->error[0] = '\0';
    if (v->have_cur)
        sample_free(&v->cur);
    v->cur = next;
    v->have_cur = 1;
    sample_sort(&v->cur, v->sort, v->reverse);
}

static int selected_index(const struct view *v)
{
    for (size_t i = 0; i < v->cur.n_rows; i++)
        if (v->cur.rows[i].seg.ino == v->selected)
            return (int)i;
    return v->cur.n_rows ? 0 : -1;
}

static void put_line(int y, const char *text, attr_t attr)
{
    if (y < 0 || y >= LINES)
        return;
    move(y, 0);
    clrtoeol();
    attron(attr);
    mvaddnstr(y, 0, text, COLS);
    attroff(attr);
}

static void clock_text(char *dst, size_t cap)
{
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(dst, cap, "%H:%M:%S", &tm);
}

static const char *owner_text(const struct sample *s)
{
    static char buf[64];
    if (s->all_users)
        return "every user";
    struct passwd *pw = getpwuid(s->uid);
    snprintf(buf, sizeof buf, "%s", pw ? pw->pw_name : "uid ?");
    return buf;
}

static attr_t status_attr(enum bus_status st)
{
    if (!has_colors())
        return st == BUS_GONE || st == BUS_FATAL ? A_BOLD : A_NORMAL;
    if (st == BUS_GONE || st == BUS_FATAL)
        return COLOR_PAIR(PAIR_GONE) | A_BOLD;
    if (st == BUS_WAITING)
        return COLOR_PAIR(PAIR_WAITING);
    return A_NORMAL;
}

static void draw_skip_note(const struct view *v, int y)
{
    const struct sample *s = &v->cur;
    char line[512], name[80];
    if (v->error[0]) {
        put_line(y, v->error, A_BOLD);
        return;
    }
    if (s->n_skips == 0) {
        put_line(y, "", A_NORMAL);
        return;
    }
    printable(name, sizeof name, s->skips[0].name);
    snprintf(line, sizeof line, "skipped %zu segment%s: pid %d fd %d memfd %s: %s%s", s->n_skips,
             s->n_skips == 1 ? "" : "s", (int)s->skips[0].pid, s->skips[0].fd, name, s->skips[0].reason,
             s->n_skips > 1 ? " (all in --json)" : "");
    put_line(y, line, A_BOLD);
}

static void draw_list(struct view *v)
{
    const struct sample *s = &v->cur;
    char line[512], now[16];
    clock_text(now, sizeof now);
    snprintf(line, sizeof line, "tachyon-top - %zu bus%s of %s - every %.1f s - sort: %s%s - %s", s->n_rows,
             s->n_rows == 1 ? "" : "es", owner_text(s), v->opt->interval_s, sort_key_name(v->sort),
             v->reverse ? " (reversed)" : "", now);
    put_line(0, line, A_BOLD);
    /* Narrow screens: pids without names, so that the path keeps some room. */
    int compact = COLS - TABLE_FIXED_WIDTH < 24;
    int path_width = table_path_width(s, COLS - (compact ? TABLE_COMPACT_FIXED_WIDTH : TABLE_FIXED_WIDTH));
    table_header(line, sizeof line, path_width, compact);
    put_line(1, line, A_REVERSE);
    int first_row = 2, last_row = LINES - 3, sel = selected_index(v);
    if (sel >= 0)
        v->selected = s->rows[sel].seg.ino;
    int visible = last_row - first_row + 1, top = 0;
    if (visible > 0 && sel >= visible)
        top = sel - visible + 1;
    int y = first_row;
    if (s->n_rows == 0) {
        snprintf(line, sizeof line, "no Tachyon buses of %s (%zu processes looked at)", owner_text(s), s->procs_seen);
        put_line(y++, line, A_NORMAL);
    }
    for (size_t i = (size_t)top; i < s->n_rows && y <= last_row; i++, y++) {
        table_row(line, sizeof line, path_width, compact, &s->rows[i]);
        attr_t attr = status_attr(s->rows[i].status);
        if ((int)i == sel)
            attr |= A_REVERSE;
        put_line(y, line, attr);
    }
    for (; y <= last_row; y++)
        put_line(y, "", A_NORMAL);
    draw_skip_note(v, LINES - 2);
    put_line(LINES - 1, "q quit  s sort  S reverse  r refresh  up/down select  enter watch", A_REVERSE);
}

static void draw_watch(struct view *v)
{
    const struct sample *s = &v->cur;
    char line[512], now[16], path[120];
    const struct bus_row *row = sample_find(s, v->watch);
    clock_text(now, sizeof now);
    printable(path, sizeof path, row ? segment_path(&row->seg) : v->watch);
    snprintf(line, sizeof line, "tachyon-top - watching %s - every %.1f s - %s", path, v->opt->interval_s, now);
    put_line(0, line, A_BOLD);
    char lines[DETAIL_LINES][TOP_LINE_MAX];
    size_t n = 0;
    if (row) {
        n = detail_lines(row, lines, DETAIL_LINES);
    } else {
        snprintf(lines[0], sizeof lines[0], "no bus at %s among the %zu buses of %s (yet): looking again every %.1f s",
                 path, s->n_rows, owner_text(s), v->opt->interval_s);
        n = 1;
    }
    int y = 2;
    put_line(1, "", A_NORMAL);
    for (size_t i = 0; i < n && y < LINES - 2; i++, y++)
        put_line(y, lines[i], i == 2 && row ? status_attr(row->status) : A_NORMAL);
    for (; y < LINES - 2; y++)
        put_line(y, "", A_NORMAL);
    draw_skip_note(v, LINES - 2);
    put_line(LINES - 1, v->watch_from_list ? "q quit  r refresh  esc back to the list" : "q quit  r refresh  esc all buses",
             A_REVERSE);
}

static void draw(struct view *v)
{
    if (v->watch[0])
        draw_watch(v);
    else
        draw_list(v);
    refresh();
}

static void move_selection(struct view *v, int by)
{
    int sel = selected_index(v);
    if (sel < 0)
        return;
    sel += by;
    if (sel < 0)
        sel = 0;
    if (sel >= (int)v->cur.n_rows)
        sel = (int)v->cur.n_rows - 1;
    v->selected = v->cur.rows[sel].seg.ino;
}

/* Returns 1 to quit. */
static int handle_key(struct view *v, int ch)
{
    switch (ch) {
    case 'q': case 'Q':
        return 1;
    case 's':
        v->sort = (enum sort_key)((v->sort + 1) % SORT_COUNT);
        sample_sort(&v->cur, v->sort, v->reverse);
        break;
    case 'S':
        v->reverse = !v->reverse;
        sample_sort(&v->cur, v->sort, v->reverse);
        break;
    case 'r': case 'R': case ' ':
        take_sample(v);
        break;
    case KEY_UP: case 'k':
        move_selection(v, -1);
        break;
    case KEY_DOWN: case 'j':
        move_selection(v, 1);
        break;
    case KEY_HOME: case 'g':
        move_selection(v, -(int)v->cur.n_rows);
        break;
    case KEY_END: case 'G':
        move_selection(v, (int)v->cur.n_rows);
        break;
    case '\n': case '\r': case KEY_ENTER: {
        int sel = selected_index(v);
        if (!v->watch[0] && sel >= 0) {
            snprintf(v->watch, sizeof v->watch, "%s", v->cur.rows[sel].seg.name);
            v->watch_from_list = 1;
        }
        break;
    }
    case KEY_ESCAPE: case KEY_BACKSPACE: case 127: case 'b':
        v->watch[0] = '\0';
        break;
    default:
        break;
    }
    return 0;
}

static int wait_ms(const struct view *v)
{
    uint64_t now = mono_ns();
    if (now >= v->next_sample_ns)
        return 0;
    uint64_t ms = (v->next_sample_ns - now + 999999) / 1000000;
    return ms > 1000 ? 1000 : (int)ms; /* the clock in the title moves too */
}

int run_screen(const struct options *opt)
{
    struct view v;
    memset(&v, 0, sizeof v);
    v.opt = opt;
    v.sort = opt->sort;
    v.reverse = opt->reverse;
    if (opt->watch)
        snprintf(v.watch, sizeof v.watch, "%s", opt->watch);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop; /* no SA_RESTART: getch returns, the loop sees it */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    if (!newterm(NULL, stdout, stdin)) {
        fprintf(stderr, "tachyon-top: cannot start the screen (TERM=%s); use --once or --json\n",
                getenv("TERM") ? getenv("TERM") : "unset");
        return 1;
    }
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    set_escdelay(50);
    curs_set(0);
    if (has_colors()) {
        start_color();
        use_default_colors();
        init_pair(PAIR_GONE, COLOR_RED, -1);
        init_pair(PAIR_WAITING, COLOR_YELLOW, -1);
    }
    take_sample(&v);
    while (!stop_signal) {
        if (mono_ns() >= v.next_sample_ns)
            take_sample(&v);
        draw(&v);
        timeout(wait_ms(&v));
        int ch = getch();
        if (ch != ERR && handle_key(&v, ch))
            break;
    }
    endwin();
    sample_free(&v.cur);
    return 0;
}
