/* deadline: blocking I/O bounded by a monotonic deadline (see deadline.h). */
#include "deadline.h"

#include <errno.h>
#include <poll.h>
#include <time.h>

long long deadline_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int deadline_poll(int fd, short events, long long deadline_ms)
{
    for (;;) {
        long long left = deadline_ms - deadline_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 ? -1 : n;
    }
}
