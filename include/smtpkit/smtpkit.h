/* smtpkit: the whole public API. */
#ifndef SMTPKIT_H
#define SMTPKIT_H

#include "smtpkit/addrlist.h"
#include "smtpkit/auth.h"
#include "smtpkit/base64.h"
#include "smtpkit/client.h"
#include "smtpkit/clock.h"
#include "smtpkit/conn.h"
#include "smtpkit/dns.h"
#include "smtpkit/dot.h"
#include "smtpkit/error.h"
#include "smtpkit/message.h"
#include "smtpkit/mime.h"
#include "smtpkit/reply.h"
#include "smtpkit/server.h"
#include "smtpkit/session.h"
#include "smtpkit/trace.h"

#define SMTPKIT_VERSION "0.1.0"

#endif
