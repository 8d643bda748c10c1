/*
 * deadline: blocking I/O bounded by a monotonic deadline, for the few places that talk to a
 * socket outside the event loop (zolderctl, sendmail, the filter's scanner, the clamd client).
 */
#ifndef ZOLDER_DEADLINE_H
#define ZOLDER_DEADLINE_H

/* Milliseconds on the monotonic clock. */
long long deadline_now_ms(void);
/* Waits for events on fd until deadline_ms (EINTR retried). 1 ready, 0 deadline passed, -1 error. */
int deadline_poll(int fd, short events, long long deadline_ms);

#endif
