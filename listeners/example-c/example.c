/*
 * A complete logdaemon listener in C: it appends one line per journal entry
 * to a file, and only whole transactions.
 *
 *     [[journal.listener]]
 *     name = "changes"
 *     plugin = "/opt/logdaemon/plugins/liblogdaemon_example_c.so"
 *     [journal.listener.config]
 *     path = "out/changes.txt"    # relative to the config file's directory
 *
 * Each entry becomes `SEQUENCE:OFFSET OP FIELD|FIELD|...` (p4; the host
 * splits the record into its op and unquoted fields for this plugin) or
 * `SEQUENCE:OFFSET RAW` (line logs). What it shows:
 *
 *  - fields: the plugin asks for them with LD_DESC_WANTS_FIELDS;
 *  - acknowledgement: entries after the last `ex` record (an open p4
 *    transaction) are held in memory, not written; the plugin acknowledges
 *    the end of the last `ex` it wrote (a record boundary), so the host
 *    delivers the held entries again after a crash or a failure;
 *  - no_data: when the journal has been quiet for `quiet_after`, the
 *    transaction is as complete as it will get: the held entries are
 *    written and everything is acknowledged (so does flush);
 *  - errors: a config without `path` fails `open` with LD_STATUS_FATAL and
 *    a message; a failed write answers LD_STATUS_RETRY, drops what it
 *    held and acknowledges nothing more (LD_NO_ACK).
 *
 * Built with `make` (see the Makefile); `make v1` builds the same listener
 * against the version-1 layouts (the *V1 types, symbol logdaemon_listener_v1),
 * which the host still loads.
 *
 * Rules followed (see the preamble of logdaemon.h): no global mutable state
 * (one library serves several listeners at once), nothing in thread-local
 * storage (an instance is opened on one thread and called from another),
 * nothing the host passed is kept after a call returns (the lines are
 * copies), no LdBytes with len 0 is dereferenced.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logdaemon.h"

#ifdef EXAMPLE_ABI_V1
typedef LdRawEntryV1 Entry;
typedef LdOutcomeV1 Outcome;
typedef LdRawGapV1 Gap;
typedef LdDescriptorV1 Descriptor;
#define ABI_VERSION 1
#define ENTRY_SYMBOL logdaemon_listener_v1
/* Version 1: a plain array. */
#define ENTRY_AT(es, i) (&(es)[i])
#else
typedef LdRawEntry Entry;
typedef LdOutcome Outcome;
typedef LdRawGap Gap;
typedef LdDescriptor Descriptor;
#define ABI_VERSION LD_ABI_VERSION
#define ENTRY_SYMBOL logdaemon_listener_v2
/* Version 2: the stride is the first entry's struct_size. */
#define ENTRY_AT(es, i) ((const Entry *)((const char *)(es) + (i) * (es)[0].struct_size))
#endif

struct example {
    int fd;
    const LdHostApi *host;
    /* Lines formatted and not written yet: the open transaction. */
    char *held;
    size_t held_len, held_cap, held_entries;
    /* Where the held entries begin: what this listener acknowledges. */
    LdRawPosition written;
};

static void say(const struct example *ex, uint32_t level, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || ex->host == NULL)
        return;
    LdBytes msg = {(const uint8_t *)buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1};
    ex->host->log(ex->host->ctx, level, msg);
}

static void set_message(Outcome *o, const char *fmt, ...) {
    if (o == NULL || o->msg == NULL || o->msg_cap == 0)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
    if (len > o->msg_cap)
        len = o->msg_cap;
    memcpy(o->msg, buf, len);
    o->msg_len = len;
}

static int same(LdBytes b, const char *s) {
    size_t n = strlen(s);
    return b.len == n && (n == 0 || memcmp(b.ptr, s, n) == 0);
}

/* Appends `len` bytes to the held lines; 0 when out of memory. */
static int hold(struct example *ex, const void *p, size_t len) {
    if (ex->held_len + len > ex->held_cap) {
        size_t cap = ex->held_cap ? ex->held_cap : 4096;
        while (cap < ex->held_len + len)
            cap *= 2;
        char *grown = realloc(ex->held, cap);
        if (grown == NULL)
            return 0;
        ex->held = grown;
        ex->held_cap = cap;
    }
    if (len > 0)
        memcpy(ex->held + ex->held_len, p, len);
    ex->held_len += len;
    return 1;
}

static int hold_bytes(struct example *ex, LdBytes b) {
    return b.len == 0 || hold(ex, b.ptr, b.len);
}

static int hold_entry(struct example *ex, const Entry *e) {
    char head[64];
    int n = snprintf(head, sizeof head, "%llu:%llu ", (unsigned long long)e->sequence,
                     (unsigned long long)e->offset);
    if (!hold(ex, head, (size_t)n))
        return 0;
    if (e->op.len > 0) {
        if (!hold_bytes(ex, e->op))
            return 0;
        for (size_t i = 0; i < e->n_fields; i++)
            if (!hold(ex, i == 0 ? " " : "|", 1) || !hold_bytes(ex, e->fields[i]))
                return 0;
    } else {
        LdBytes raw = e->raw;
        while (raw.len > 0 && (raw.ptr[raw.len - 1] == '\n' || raw.ptr[raw.len - 1] == '\r'))
            raw.len--;
        if (!hold_bytes(ex, raw))
            return 0;
    }
    ex->held_entries++;
    return hold(ex, "\n", 1);
}

/* The position just past an entry: where a cursor stands once it is handled. */
static LdRawPosition end_of(const Entry *e) {
    int newline = e->raw.len > 0 && e->raw.ptr[e->raw.len - 1] == '\n';
    LdRawPosition p = {e->sequence, e->offset + e->len,
                       e->line + e->lines - (!newline && e->lines > 0)};
    return p;
}

/* Writes and syncs the first `len` held bytes; 0 on failure (errno set). */
static int write_held(struct example *ex, size_t len) {
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(ex->fd, ex->held + done, len - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return 0;
        }
        done += (size_t)w;
    }
    if (fsync(ex->fd) != 0)
        return 0;
    memmove(ex->held, ex->held + len, ex->held_len - len);
    ex->held_len -= len;
    return 1;
}

/* A failed write: drop what is held (the host delivers it again). */
static uint32_t retry(struct example *ex, Outcome *o) {
    int err = errno;
    ex->held_len = 0;
    ex->held_entries = 0;
    o->ack = LD_NO_ACK;
    set_message(o, "example-c: cannot write: %s; retrying", strerror(err));
    return LD_STATUS_RETRY;
}

/* Finds `path = "..."` in the TOML text. A real plugin uses a TOML parser. */
static char *config_path(LdBytes toml) {
    const char *t = (const char *)toml.ptr, *end = t + toml.len;
    const char *line = t;
    while (toml.len > 0 && line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *eol = nl ? nl : end;
        const char *p = line;
        while (p < eol && (*p == ' ' || *p == '\t'))
            p++;
        if (eol - p > 4 && memcmp(p, "path", 4) == 0) {
            p += 4;
            while (p < eol && (*p == ' ' || *p == '='))
                p++;
            const char *q = p < eol && *p == '"' ? memchr(p + 1, '"', (size_t)(eol - p - 1)) : NULL;
            if (q != NULL && q > p + 1)
                return strndup(p + 1, (size_t)(q - p - 1));
        }
        line = eol + 1;
    }
    return NULL;
}

static uint32_t ex_open(const LdOpenArgs *args, void **out, Outcome *o) {
    struct example tmp = {.fd = -1, .host = args->host};
    char *path = config_path(args->config_toml);
    if (path == NULL) {
        set_message(o, "listener \"%.*s\" (example-c): the config needs path = \"FILE\"",
                    (int)args->listener.len, args->listener.len ? (const char *)args->listener.ptr : "");
        return LD_STATUS_FATAL;
    }
    char *full = path;
    if (path[0] != '/' && args->config_dir.len > 0 &&
        asprintf(&full, "%.*s/%s", (int)args->config_dir.len, (const char *)args->config_dir.ptr,
                 path) < 0) {
        free(path);
        return LD_STATUS_FATAL;
    }
    int fd = open(full, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        set_message(o, "example-c: cannot open %s: %s; check that its directory exists", full,
                    strerror(errno));
        if (full != path)
            free(full);
        free(path);
        return LD_STATUS_FATAL;
    }
    struct example *ex = calloc(1, sizeof *ex);
    if (ex == NULL) {
        close(fd);
        return LD_STATUS_FATAL;
    }
    *ex = tmp;
    ex->fd = fd;
    ex->written = args->cursor;
    say(ex, LD_LEVEL_INFO, "example-c (ABI %d) appends to %s", ABI_VERSION, full);
    if (full != path)
        free(full);
    free(path);
    *out = ex;
    return LD_STATUS_OK;
}

static void ex_close(void *inst) {
    struct example *ex = inst;
    close(ex->fd);
    free(ex->held);
    free(ex);
}

static uint32_t ex_is_handled(void *inst, const Entry *e) {
    (void)inst;
    (void)e;
    return 1;
}

static uint32_t ex_listen(void *inst, const Entry *entries, size_t n, Outcome *o) {
    struct example *ex = inst;
    size_t cut = 0, cut_entries = 0;
    LdRawPosition cut_at = ex->written;
    for (size_t i = 0; i < n; i++) {
        const Entry *e = ENTRY_AT(entries, i);
        if (!hold_entry(ex, e)) {
            errno = ENOMEM;
            return retry(ex, o);
        }
        if (same(e->op, "ex")) {
            cut = ex->held_len;
            cut_entries = ex->held_entries;
            cut_at = end_of(e);
        }
    }
    if (cut > 0) {
        if (!write_held(ex, cut))
            return retry(ex, o);
        ex->held_entries -= cut_entries;
        ex->written = cut_at;
    }
    if (ex->held_entries > 0) {
        /* Acknowledge the end of the last transaction written: a record boundary. */
        o->ack = ex->written;
        say(ex, LD_LEVEL_DEBUG, "example-c: holding %zu entries of an open transaction",
            ex->held_entries);
    }
    return LD_STATUS_OK;
}

/* Writes everything held; the preset acknowledgement (all) stands. */
static uint32_t write_all_held(struct example *ex, Outcome *o, const char *why) {
    if (ex->held_entries == 0)
        return LD_STATUS_OK;
    size_t n = ex->held_entries;
    if (!write_held(ex, ex->held_len))
        return retry(ex, o);
    ex->held_entries = 0;
    ex->written = o->ack;
    say(ex, LD_LEVEL_INFO, "example-c: %s: wrote %zu held entries", why, n);
    return LD_STATUS_OK;
}

static uint32_t ex_no_data(void *inst, uint32_t had_data, Outcome *o) {
    (void)had_data;
    return write_all_held(inst, o, "the journal is quiet");
}

static uint32_t ex_flush(void *inst, Outcome *o) {
    return write_all_held(inst, o, "flush");
}

static uint32_t ex_gap(void *inst, const Gap *g, Outcome *o) {
    struct example *ex = inst;
    uint32_t st = write_all_held(ex, o, "gap");
    if (st != LD_STATUS_OK)
        return st;
    char line[128];
    int n = snprintf(line, sizeof line, "gap %llu:%llu-%llu:%llu %.*s\n",
                     (unsigned long long)g->from.sequence, (unsigned long long)g->from.offset,
                     (unsigned long long)g->to.sequence, (unsigned long long)g->to.offset,
                     (int)g->cause.len, g->cause.len ? (const char *)g->cause.ptr : "");
    if (!hold(ex, line, (size_t)n) || !write_held(ex, ex->held_len))
        return retry(ex, o);
    return LD_STATUS_OK;
}

#define LABEL(s) {(const uint8_t *)(s), sizeof(s) - 1}

static const Descriptor DESCRIPTOR = {
    .abi_version = ABI_VERSION,
    .struct_size = sizeof(Descriptor),
    .name = LABEL("example-c"),
    .version = LABEL("0.1.0"),
    .build = LABEL("example-c (C, " __DATE__ ")"),
    .open = ex_open,
    .close = ex_close,
    .is_handled = ex_is_handled,
    .listen = ex_listen,
    .no_data = ex_no_data,
    .flush = ex_flush,
    .gap = ex_gap,
    .flags = LD_DESC_WANTS_FIELDS | LD_DESC_NO_FILTER,
};

__attribute__((visibility("default"))) const Descriptor *ENTRY_SYMBOL(void) {
    return &DESCRIPTOR;
}
