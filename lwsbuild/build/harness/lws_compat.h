/*
 * What lwsbuild's C programs (the stress harness, the CVE probe server) need of lws that older
 * release lines lack: lws before 4.3 (the 4.1 and 4.2 lines distros still ship) has no protocol
 * list terminator macro.
 */
#ifndef LWSBUILD_LWS_COMPAT_H
#define LWSBUILD_LWS_COMPAT_H

#include <libwebsockets.h>

#if !defined(LWS_PROTOCOL_LIST_TERM)
#define LWS_PROTOCOL_LIST_TERM { NULL, NULL, 0, 0, 0, NULL, 0 }
#endif

#endif
