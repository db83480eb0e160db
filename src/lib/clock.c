/* smtpkit: the monotonic clock. */
#include <stdint.h>
#include <time.h>

#include "smtpkit/clock.h"

int64_t
sk_clock_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
sk_clock_left(int64_t deadline)
{
	int64_t left = deadline - sk_clock_ms();

	if (left <= 0)
		return 0;
	if (left > INT32_MAX)
		return INT32_MAX;
	return (int)left;
}
