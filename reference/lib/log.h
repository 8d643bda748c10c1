/*
 * log: one line per event, Postfix-style, to stderr (foreground daemons) or a file.
 *
 * log_warn/log_fatal append strerror(errno); the *x variants do not (OpenSMTPD's split).
 * log_fatal exits (bad environment or config); log_panic aborts (a broken invariant).
 */
#ifndef ZOLDER_LOG_H
#define ZOLDER_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#define LOG_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

void log_init(const char *progname, FILE *stream);
void log_set_level(enum log_level level);
/* Test hook: every formatted line is also passed here (NULL to remove). */
void log_set_capture(void (*capture)(const char *line, void *ctx), void *ctx);

void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_error(const char *fmt, ...) LOG_PRINTF(1, 2);
_Noreturn void log_fatalx(const char *fmt, ...) LOG_PRINTF(1, 2);
_Noreturn void log_fatal(const char *fmt, ...) LOG_PRINTF(1, 2);
_Noreturn void log_panic(const char *fmt, ...) LOG_PRINTF(1, 2);

#endif
