/* smtpkit: the monotonic clock that every deadline is measured on. */
#ifndef SMTPKIT_CLOCK_H
#define SMTPKIT_CLOCK_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC.  Deadlines are absolute values of it. */
int64_t sk_clock_ms(void);

/* Milliseconds left until deadline, 0 when it has passed; never above INT32_MAX. */
int sk_clock_left(int64_t deadline);

#endif
