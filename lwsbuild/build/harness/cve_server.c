/*
 * lws-cve-server: the smallest lws HTTP server, for the CVE proof tests (tests/test_cve.py).
 *
 * One vhost on 127.0.0.1, a port the kernel picks (printed as "port N" once listening), lws's own
 * dummy http callback. Mode h1 serves HTTP/1.1; mode h2 takes every connection as HTTP/2 with
 * prior knowledge (plain TCP: a test speaks h2 without TLS). It serves until SIGTERM/SIGINT or the
 * given number of seconds (default 20), then destroys its context, prints "done" and exits 0. A
 * crafted request that breaks the library is reported by the sanitizer of an asan build (exit code
 * non-zero, report on stderr).
 *
 * usage: lws-cve-server h1|h2 [seconds [lws log level mask]]
 */

#include <libwebsockets.h>
#include "lws_compat.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t interrupted;

static void
on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* lws_service() waits for the next event: the deadline is one, so it returns in time */
static void
on_deadline(lws_sorted_usec_list_t *sul)
{
	(void)sul;
	interrupted = 1;
}

static const struct lws_protocols protocols[] = {
	{ "http", lws_callback_http_dummy, 0, 0, 0, NULL, 0 },
	LWS_PROTOCOL_LIST_TERM
};

int
main(int argc, char **argv)
{
	struct lws_context_creation_info info;
	lws_sorted_usec_list_t deadline;
	struct lws_context *context;
	struct lws_vhost *vhost;
	long seconds;

	if (argc < 2 || (strcmp(argv[1], "h1") && strcmp(argv[1], "h2"))) {
		fprintf(stderr, "usage: lws-cve-server h1|h2 [seconds [log mask]]\n");
		return 2;
	}
	seconds = argc > 2 ? strtol(argv[2], NULL, 10) : 20;
	if (seconds <= 0 || seconds > 3600)
		seconds = 20;

	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	lws_set_log_level(argc > 3 ? (int)strtol(argv[3], NULL, 0) :
			  LLL_ERR | LLL_WARN, NULL);

	memset(&info, 0, sizeof(info));
	info.port = 0;			/* the kernel picks: no clash between tests */
	info.iface = "127.0.0.1";	/* loopback only */
	info.vhost_name = "cve";
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
	if (!strcmp(argv[1], "h2"))
		info.options |= LWS_SERVER_OPTION_H2_PRIOR_KNOWLEDGE;

	context = lws_create_context(&info);
	if (!context) {
		fprintf(stderr, "lws-cve-server: lws_create_context failed\n");
		return 1;
	}
	vhost = lws_get_vhost_by_name(context, "cve");
	if (!vhost) {
		fprintf(stderr, "lws-cve-server: no vhost\n");
		lws_context_destroy(context);
		return 1;
	}

	memset(&deadline, 0, sizeof(deadline));
	lws_sul_schedule(context, 0, &deadline, on_deadline,
			 (lws_usec_t)seconds * LWS_US_PER_SEC);

	printf("port %d\n", lws_get_vhost_listen_port(vhost));
	fflush(stdout);

	while (!interrupted)
		if (lws_service(context, 0) < 0)
			break;

	lws_sul_cancel(&deadline);
	lws_context_destroy(context);
	printf("done\n");
	fflush(stdout);

	return 0;
}
