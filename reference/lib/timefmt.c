/* timefmt: dates as mail headers write them (see timefmt.h). */
#define _DEFAULT_SOURCE
#include "timefmt.h"

#include <stdio.h>
#include <stdlib.h>

/* English names regardless of locale: headers are protocol, not prose. */
static const char *const timefmt_days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const timefmt_months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void timefmt_rfc5322(time_t t, char *out, size_t outsize)
{
    struct tm tm;
    localtime_r(&t, &tm);
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    off = labs(off);
    snprintf(out, outsize, "%s, %d %s %04d %02d:%02d:%02d %c%02ld%02ld",
             timefmt_days[tm.tm_wday], tm.tm_mday, timefmt_months[tm.tm_mon], tm.tm_year + 1900,
             tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 60, off % 60);
}

void timefmt_mbox(time_t t, char *out, size_t outsize)
{
    struct tm tm;
    localtime_r(&t, &tm);
    snprintf(out, outsize, "%s %s %2d %02d:%02d:%02d %04d", timefmt_days[tm.tm_wday],
             timefmt_months[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             tm.tm_year + 1900);
}
