/*
 * log: one line per event with a timestamp, the program name and pid, then the text.
 * Lines look like: "2026-11-28T10:00:00.123Z zolderd[123]: info: smtpd ... key=value"
 */
#define _POSIX_C_SOURCE 200809L
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_progname = "zolder";
static FILE *log_stream;
static enum log_level log_min_level = LOG_LEVEL_INFO;
static void (*log_capture_fn)(const char *, void *);
static void *log_capture_ctx;
static long log_pid;   /* cached: one getpid per line adds up under load; reset by log_init */

void log_init(const char *progname, FILE *stream)
{
    log_progname = progname;
    log_stream = stream;
    log_pid = (long)getpid();
}

void log_set_level(enum log_level level) { log_min_level = level; }

void log_set_capture(void (*capture)(const char *line, void *ctx), void *ctx)
{
    log_capture_fn = capture;
    log_capture_ctx = ctx;
}

static const char *log_level_name(enum log_level level)
{
    switch (level) {
    case LOG_LEVEL_DEBUG: return "debug";
    case LOG_LEVEL_INFO: return "info";
    case LOG_LEVEL_WARN: return "warning";
    case LOG_LEVEL_ERROR: return "error";
    }
    return "?";
}

static void log_emit(enum log_level level, int errnum, const char *fmt, va_list ap)
{
    char text[2048];
    char line[2300];
    char stamp[40];
    struct timeval tv;
    struct tm tm;

    if (level < log_min_level)
        return;
    if (!log_pid)
        log_pid = (long)getpid();
    vsnprintf(text, sizeof text, fmt, ap);
    /* Control bytes from peers never reach the log raw: one event stays one line. */
    for (char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    if (errnum)
        snprintf(line, sizeof line, "%s.%03ldZ %s[%ld]: %s: %s: %s", stamp,
                 (long)(tv.tv_usec / 1000), log_progname, log_pid, log_level_name(level),
                 text, strerror(errnum));
    else
        snprintf(line, sizeof line, "%s.%03ldZ %s[%ld]: %s: %s", stamp, (long)(tv.tv_usec / 1000),
                 log_progname, log_pid, log_level_name(level), text);
    if (log_capture_fn)
        log_capture_fn(line, log_capture_ctx);
    FILE *out = log_stream ? log_stream : stderr;
    fprintf(out, "%s\n", line);
    fflush(out);
}

#define LOG_BODY(level, errnum)                                                                    \
    do {                                                                                           \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        log_emit(level, errnum, fmt, ap);                                                          \
        va_end(ap);                                                                                \
    } while (0)

void log_debug(const char *fmt, ...) { LOG_BODY(LOG_LEVEL_DEBUG, 0); }
void log_info(const char *fmt, ...) { LOG_BODY(LOG_LEVEL_INFO, 0); }
void log_warnx(const char *fmt, ...) { LOG_BODY(LOG_LEVEL_WARN, 0); }
void log_error(const char *fmt, ...) { LOG_BODY(LOG_LEVEL_ERROR, 0); }

void log_warn(const char *fmt, ...)
{
    int saved = errno;
    LOG_BODY(LOG_LEVEL_WARN, saved);
}

void log_fatalx(const char *fmt, ...)
{
    LOG_BODY(LOG_LEVEL_ERROR, 0);
    exit(1);
}

void log_fatal(const char *fmt, ...)
{
    int saved = errno;
    LOG_BODY(LOG_LEVEL_ERROR, saved);
    exit(1);
}

void log_panic(const char *fmt, ...)
{
    LOG_BODY(LOG_LEVEL_ERROR, 0);
    abort();
}
