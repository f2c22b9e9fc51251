/*
 * lws-stress: multi-threaded libwebsockets client stress harness (lwsbuild)
 *
 * Reproduces the lws SMP client heap-use-after-free recipe:
 *
 *  - one lws_context with --threads service threads (count_threads);
 *    thread 0 only services (a 100 ms periodic sul on tsi 0 keeps it cycling)
 *    unless --tsi0-initiates 1
 *  - every service thread >= 1 initiates client connections itself, between
 *    its own lws_service_tsi() calls, so each wsi->tsi is that thread
 *    (lws_client_connect_via_info() takes it from lws_pthread_self_to_tsi())
 *  - schedules the recipe alone does not reach (lwsbuild/resources/profiles.toml):
 *    --close-by server (the echo server closes after echoing), --cancel-ms
 *    (a thread calling lws_cancel_service() every N ms), --destroy-open (the
 *    context is destroyed with connections still open, no drain)
 *  - --server-threads N: the echo server is a context of its own with N
 *    service threads (server-side SMP), answering WebSocket echo, HTTP/1.1
 *    and h2 (prior knowledge) GETs; --rogue-cps adds raw-socket clients
 *    outside lws (HTTP/1.1 keep-alive, h2, h2c upgrades, slow readers,
 *    closes mid-handshake, abortive closes); with --destroy-open the server
 *    context is destroyed first, with every kind of connection still open
 *    on its pts
 *  - loopback targets, mixed by weight:
 *      refused   : a bound but not listening port (ECONNREFUSED -> failed1)
 *      blackhole : a listen(fd, 0) socket whose accept queue is pre-filled and
 *                  never accepted, so connects hang until the connect timeout
 *      echo      : a WebSocket echo server (internal lws vhost in the same
 *                  context, or an external loopback ws:// peer): send, echo,
 *                  close (optionally held open --hold-ms first)
 *
 * Output: one JSON object per line on stdout (start, sample..., summary, or
 * watchdog).  lws logs go to stderr.  Exit codes: 0 run completed, 2 bad
 * arguments, 3 watchdog fired (stall or overrun).  Sanitizer verdicts are
 * left to the caller (it reads stderr).
 */

#if !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* pthread_setname_np: a stack dump names each service thread */
#endif
#include <libwebsockets.h>
#include "lws_compat.h"
/* lws 4.1 binds a client wsi to the service thread whose id protocols[0] of its vhost answers (4.2
 * and later ask pthread_self() themselves): the client vhost answers as lws's dummy callback does. */
#define LWS_BINDS_BY_THREAD_ID_CALLBACK \
	(LWS_LIBRARY_VERSION_MAJOR == 4 && LWS_LIBRARY_VERSION_MINOR < 2)

/* Every flag's default, bounds and the usage text: generated from lwsbuild/resources/harness.toml. */
#include "lws_stress_flags.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS		64
#define ECHO_PROTOCOL		"lws-stress-echo"
#define CLIENT_PROTOCOL		"lws-stress-client"
#define MSG_MAX			128
#define PREFILL_SOCKETS		4

/* ------------------------------------------------------------------------ */
/* targets and outcomes                                                     */

enum { K_REFUSED, K_BLACKHOLE, K_ECHO, K_COUNT };
static const char * const kind_name[K_COUNT] = { "refused", "blackhole", "echo" };

enum {
	O_NONE = 0,	/* no final outcome yet */
	O_FAILED,	/* CLIENT_CONNECTION_ERROR (not a timeout) */
	O_TIMEOUT,	/* CLIENT_CONNECTION_ERROR mentioning a timeout */
	O_CONNECT_NULL,	/* lws_client_connect_via_info() returned NULL */
	O_CONNECTED,	/* refused/blackhole target unexpectedly connected */
	O_ECHOED,	/* echo came back intact */
	O_MISMATCH,	/* echo came back wrong */
	O_CLOSED_EARLY,	/* established, closed before the echo */
	O_ABORTED,	/* wsi destroyed without any other outcome (shutdown) */
	O_COUNT
};
static const char * const outcome_name[O_COUNT] = {
	"none", "failed", "timeout", "connect_null", "connected", "echoed",
	"mismatch", "closed_early", "aborted"
};

/* ------------------------------------------------------------------------ */
/* options                                                                  */

static struct opts {
	int		threads;
	int		cps;
	double		duration;
	long		total;
	int		w[K_COUNT];
	int		hold_ms;
	int		echo_internal;
	char		echo_host[64];
	int		echo_port;
	char		echo_path[256];
	char		echo_protocol[64];
	int		timeout_secs;
	long		max_concurrent;
	long		nofile;
	double		watchdog;
	int		watchdog_set;
	int		sample_ms;
	int		tick_ms;
	int		admit_batch;
	unsigned int	seed;
	int		quiet;
	int		log_level;
	int		tsi0_initiates;
	int		initiate_in_timer;
	int		close_by_server;
	int		cancel_ms;
	int		destroy_open;
	int		server_threads;
	int		rogue_cps;
	double		stall_wait;
} o = {
	.threads	= LWSS_THREADS_DEFAULT,
	.cps		= LWSS_CPS_DEFAULT,
	.duration	= LWSS_DURATION_DEFAULT,
	.total		= LWSS_TOTAL_DEFAULT,
	.hold_ms	= LWSS_HOLD_MS_DEFAULT,
	.echo_path	= "/",
	.timeout_secs	= LWSS_TIMEOUT_SECS_DEFAULT,
	.max_concurrent	= LWSS_MAX_CONCURRENT_DEFAULT,
	.nofile		= LWSS_NOFILE_DEFAULT,
	.sample_ms	= LWSS_SAMPLE_MS_DEFAULT,
	.tick_ms	= LWSS_TICK_MS_DEFAULT,
	.admit_batch	= LWSS_ADMIT_BATCH_DEFAULT,
	.seed		= LWSS_SEED_DEFAULT,
	.log_level	= LWSS_LOG_LEVEL_DEFAULT,
	.tsi0_initiates	= LWSS_TSI0_INITIATES_DEFAULT,
	.cancel_ms	= LWSS_CANCEL_MS_DEFAULT,
	.destroy_open	= LWSS_DESTROY_OPEN_DEFAULT,
	.server_threads	= LWSS_SERVER_THREADS_DEFAULT,
	.rogue_cps	= LWSS_ROGUE_CPS_DEFAULT,
	.stall_wait	= LWSS_STALL_WAIT_DEFAULT,
	/* mix, echo, initiate-in, close-by, echo-protocol: their defaults are parsed in parse_args() */
};

/* ------------------------------------------------------------------------ */
/* shared state                                                             */

enum tstate {
	TS_STARTING, TS_SERVICE, TS_INITIATING, TS_IN_CONNECT, TS_DRAINING,
	TS_EXITED, TS_COUNT
};
static const char * const tstate_name[TS_COUNT] = {
	"starting", "in lws_service_tsi", "initiating connects",
	"in lws_client_connect_via_info", "draining", "exited"
};

struct thr {
	pthread_t		tid;
	int			tsi;
	int			state;		/* enum tstate, atomic */
	int64_t			last_progress_us; /* atomic */
	long			initiated;	/* atomic */
	long			connect_null;	/* atomic */
	long			skipped_cap;	/* atomic */
	long			services;	/* atomic */
	long			behind;		/* atomic: due by the schedule, not yet admitted */
	long			max_round;	/* atomic: most admitted in one round */
	long			batch_rounds;	/* atomic: rounds the batch bounded */
	lws_sorted_usec_list_t	sul_tick;
	unsigned int		rng;
	int64_t			tstart_us;
};

static struct lws_context	*cx;
static struct lws_context	*sx;		/* --server-threads: the server's own */
static struct lws_vhost		*vh_client;
static struct thr		thr[MAX_THREADS];
static struct thr		sthr[MAX_THREADS];	/* the server context's service threads */
static int			stop_server;		/* atomic */
static int			stop_rogue;		/* atomic */
static long			g_http_served;		/* atomic */
static int64_t			t0_us;
static int			stop_initiating;	/* atomic */
static int			stop_service;		/* atomic */
static long			g_initiated;		/* atomic */
static long			g_concurrent;		/* atomic */
static long			g_max_concurrent;	/* atomic */
static long			g_outcomes[K_COUNT][O_COUNT]; /* atomic */
static long			g_server_echoes;	/* atomic */
static int			main_state;		/* atomic, see main_state_name */
static const char * const main_state_name[] = {
	"setup", "running", "draining", "joining threads",
	"in lws_context_destroy", "done", "in lws_context_destroy of the server"
};
static pthread_mutex_t		out_lock = PTHREAD_MUTEX_INITIALIZER;
static int			port_refused, port_blackhole, port_echo;
static int			port_h2;	/* the server context's h2 vhost, 0: none */
static int			fd_refused = -1, fd_blackhole = -1;
static int			fd_prefill[PREFILL_SOCKETS];
static lws_sorted_usec_list_t	sul_tsi0;
static unsigned int		tick_us;

#define A_LOAD(p)	__atomic_load_n(p, __ATOMIC_SEQ_CST)
#define A_STORE(p, v)	__atomic_store_n(p, v, __ATOMIC_SEQ_CST)
#define A_ADD(p, v)	__atomic_add_fetch(p, v, __ATOMIC_SEQ_CST)
/*
 * Per-connection bookkeeping: a thread's state and progress stamp are read
 * only by the watchdog and statistics only at the end, so they need no full
 * fence (a seq_cst store is an xchg on x86, on every connection).
 */
#define A_SET(p, v)	__atomic_store_n(p, v, __ATOMIC_RELEASE)
#define A_COUNT(p, v)	__atomic_add_fetch(p, v, __ATOMIC_RELAXED)

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);

	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double
since_start_s(void)
{
	return (double)(now_us() - t0_us) / 1e6;
}

static void
out_line(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&out_lock);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

/* ------------------------------------------------------------------------ */
/* per-connection state: our userdata on the client wsi                     */

struct conn {
	lws_sorted_usec_list_t	sul_hold;	/* must stay first-ish, cancelled in WSI_DESTROY */
	struct lws		*wsi;
	int			kind;
	int			tsi;
	int			in_call;	/* inside lws_client_connect_via_info */
	int			destroyed;	/* WSI_DESTROY seen while in_call */
	int			outcome;
	int			sent;
	int			closing;
	int			msglen;
	int64_t			t_start_us;
	char			msg[MSG_MAX];
};

static void
conn_outcome(struct conn *c, int oc)
{
	if (c->outcome != O_NONE)
		return;
	c->outcome = oc;
	A_COUNT(&g_outcomes[c->kind][oc], 1);
}

static void
hold_expired(lws_sorted_usec_list_t *sul)
{
	struct conn *c = lws_container_of(sul, struct conn, sul_hold);

	c->closing = 1;
	lws_callback_on_writable(c->wsi);
}

/* protocols[0] of the client vhost, so it also gets LWS_CALLBACK_WSI_DESTROY */
static int
callback_client(struct lws *wsi, enum lws_callback_reasons reason, void *user,
		void *in, size_t len)
{
	struct conn *c = (struct conn *)user;
	unsigned char buf[LWS_PRE + MSG_MAX];

	switch (reason) {
#if LWS_BINDS_BY_THREAD_ID_CALLBACK
	case LWS_CALLBACK_GET_THREAD_ID:
		return (int)(intptr_t)pthread_self();
#endif
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (!c)
			break;
		/*
		 * lws reports a connect timeout as "Unable to connect" too, so
		 * tell them apart by how long the attempt took
		 */
		conn_outcome(c, ((in && strstr((const char *)in, "timeout")) ||
				 now_us() - c->t_start_us >=
					(int64_t)o.timeout_secs * 900000) ?
				   O_TIMEOUT : O_FAILED);
		break;

	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (!c)
			break;
		c->wsi = wsi;
		if (c->kind != K_ECHO) {
			conn_outcome(c, O_CONNECTED);
			return -1;
		}
		lws_callback_on_writable(wsi);
		break;

	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (!c)
			break;
		if (c->closing) {
			lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
			return -1;
		}
		if (!c->sent) {
			memcpy(&buf[LWS_PRE], c->msg, (size_t)c->msglen);
			if (lws_write(wsi, &buf[LWS_PRE], (size_t)c->msglen,
				      LWS_WRITE_TEXT) < c->msglen)
				return -1;
			c->sent = 1;
		}
		break;

	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (!c)
			break;
		if ((int)len != c->msglen || memcmp(in, c->msg, len)) {
			conn_outcome(c, O_MISMATCH);
			return -1;
		}
		conn_outcome(c, O_ECHOED);
		if (o.close_by_server)
			break; /* the server closes; CLIENT_CLOSED follows */
		if (o.hold_ms > 0) {
			lws_sul_schedule(lws_get_context(wsi), lws_get_tsi(wsi),
					 &c->sul_hold, hold_expired,
					 (lws_usec_t)o.hold_ms * LWS_US_PER_MS);
			break;
		}
		lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
		return -1;

	case LWS_CALLBACK_CLIENT_CLOSED:
		if (c)
			conn_outcome(c, O_CLOSED_EARLY);
		break;

	case LWS_CALLBACK_WSI_DESTROY:
		if (!c)
			break;
		conn_outcome(c, O_ABORTED);
		lws_sul_cancel(&c->sul_hold);
		A_ADD(&g_concurrent, -1);
		if (c->in_call)
			c->destroyed = 1; /* the initiator frees it after the call */
		else
			free(c);
		break;

	default:
		break;
	}

	return 0;
}

/* ------------------------------------------------------------------------ */
/* the in-process echo server                                               */

struct pss_echo {
	size_t		len;
	int		pending;
	int		close_after;
	unsigned char	buf[LWS_PRE + MSG_MAX];
};

static int
callback_echo(struct lws *wsi, enum lws_callback_reasons reason, void *user,
	      void *in, size_t len)
{
	struct pss_echo *pss = (struct pss_echo *)user;

	switch (reason) {
	case LWS_CALLBACK_RECEIVE:
		if (!pss || len > MSG_MAX)
			return -1;
		memcpy(&pss->buf[LWS_PRE], in, len);
		pss->len = len;
		pss->pending = 1;
		lws_callback_on_writable(wsi);
		break;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (pss && pss->close_after && !pss->pending) {
			lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
			return -1;
		}
		if (!pss || !pss->pending)
			break;
		pss->pending = 0;
		if (lws_write(wsi, &pss->buf[LWS_PRE], pss->len,
			      LWS_WRITE_TEXT) < (int)pss->len)
			return -1;
		A_COUNT(&g_server_echoes, 1);
		if (o.close_by_server) {
			/* the peer closes: the client sees the close first */
			pss->close_after = 1;
			lws_callback_on_writable(wsi);
		}
		break;

	default:
		break;
	}

	return 0;
}

static const struct lws_protocols client_protocols[] = {
	{ CLIENT_PROTOCOL, callback_client, 0, MSG_MAX, 0, NULL, 0 },
	LWS_PROTOCOL_LIST_TERM
};

static const struct lws_protocols server_protocols[] = {
	{ "http-only", lws_callback_http_dummy, 0, 0, 0, NULL, 0 },
	{ ECHO_PROTOCOL, callback_echo, sizeof(struct pss_echo), MSG_MAX, 0,
	  NULL, 0 },
	LWS_PROTOCOL_LIST_TERM
};

/* ------------------------------------------------------------------------ */
/* --server-threads: HTTP answers of the server context (h1 and h2 alike)   */

#define BIG_PATH		"/big"
#define BIG_BODY		(256 * 1024)	/* a slow reader leaves most of it unsent */
#define SMALL_BODY		64
#define HTTP_CHUNK		4096
#define BODY_BYTE		'~'	/* in no header: a raw client counts body bytes by it */

struct pss_http {
	size_t		left;
};

static int
callback_http(struct lws *wsi, enum lws_callback_reasons reason, void *user,
	      void *in, size_t len)
{
	struct pss_http *ph = (struct pss_http *)user;
	uint8_t buf[LWS_PRE + HTTP_CHUNK], *start = &buf[LWS_PRE], *p = start,
		*end = &buf[sizeof(buf) - 1];
	size_t n;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		if (!ph)
			return -1;
		ph->left = in && !strcmp((const char *)in, BIG_PATH) ?
				BIG_BODY : SMALL_BODY;
		if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/plain",
						(lws_filepos_t)ph->left, &p, end) ||
		    lws_finalize_write_http_header(wsi, start, &p, end))
			return 1;
		lws_callback_on_writable(wsi);
		return 0;

	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (!ph || !ph->left)
			break;
		n = ph->left < HTTP_CHUNK - 16 ? ph->left : HTTP_CHUNK - 16;
		memset(start, BODY_BYTE, n);
		ph->left -= n;
		if (lws_write(wsi, start, n, ph->left ? LWS_WRITE_HTTP :
						LWS_WRITE_HTTP_FINAL) != (int)n)
			return 1;
		if (ph->left) {
			lws_callback_on_writable(wsi);
			return 0;
		}
		A_COUNT(&g_http_served, 1);
		if (lws_http_transaction_completed(wsi))
			return -1;
		return 0;

	default:
		break;
	}

	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols server_context_protocols[] = {
	{ "lws-stress-http", callback_http, sizeof(struct pss_http), 0, 0,
	  NULL, 0 },
	{ ECHO_PROTOCOL, callback_echo, sizeof(struct pss_echo), MSG_MAX, 0,
	  NULL, 0 },
	LWS_PROTOCOL_LIST_TERM
};

/* ------------------------------------------------------------------------ */
/* raw loopback targets                                                     */

static int
bind_loopback(int *port)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl)) {
		close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);

	return fd;
}

static int
setup_raw_targets(void)
{
	struct sockaddr_in sa;
	int n;

	/* refused: bound, never listening -> RST -> ECONNREFUSED */
	fd_refused = bind_loopback(&port_refused);
	if (fd_refused < 0)
		return -1;

	/* blackhole: listen(fd, 0), fill the accept queue, never accept */
	fd_blackhole = bind_loopback(&port_blackhole);
	if (fd_blackhole < 0 || listen(fd_blackhole, 0))
		return -1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port_blackhole);
	for (n = 0; n < PREFILL_SOCKETS; n++) {
		fd_prefill[n] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
						SOCK_CLOEXEC, 0);
		if (fd_prefill[n] < 0)
			return -1;
		if (connect(fd_prefill[n], (struct sockaddr *)&sa, sizeof(sa)) &&
		    errno != EINPROGRESS)
			return -1;
	}
	usleep(100000); /* let the queue fill; later SYNs are dropped */

	return 0;
}

/* ------------------------------------------------------------------------ */
/* --rogue-cps: raw-socket clients of the server, outside lws               */

#define ROGUE_MAX		256	/* open at once */
#define ROGUE_LIFETIME_US	3000000	/* any rogue is closed after this */
#define SLOW_READ_US		1000000	/* a slow reader reads this long, then leaves */
#define SLOW_READ_BYTES		512	/* per 10 ms */

static unsigned int rng_next(unsigned int *s);

enum { R_HALF, R_RST, R_H1, R_SLOW, R_H2, R_H2_RST, R_H2C, R_COUNT };
static const char * const rogue_name[R_COUNT] = {
	"mid_handshake_close", "abortive_close", "h1_keepalive", "slow_reader",
	"h2", "h2_abortive", "h2c_upgrade"
};
static long g_rogue[R_COUNT][3]; /* started, answered, failed (atomic) */

enum { RS_FREE, RS_CONNECTING, RS_READING, RS_SLOW, RS_LINGER };

struct rogue {
	int		fd;
	int		kind;
	int		state;
	int64_t		t_start_us;
	int64_t		t_close_us;	/* RS_LINGER / RS_SLOW: close then */
	int		answered;
	int		upgraded;	/* h2c: the 101 has arrived */
	long		body_bytes;	/* h1: body bytes received on this connection */
	uint8_t		hdr[9];		/* h2: the frame header being read */
	int		hdr_have;
	size_t		skip;		/* h2: payload bytes still to skip */
};

static const char ws_upgrade[] =
	"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
	"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	"Sec-WebSocket-Protocol: " ECHO_PROTOCOL "\r\n"
	"Sec-WebSocket-Version: 13\r\n\r\n";
/* sent twice on one connection, the second after the first response: lws's
 * h1 server does not take a request while it still writes the last one's body
 * ("lws_read_h1: Unhandled state"), so no pipelining */
static const char h1_get[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
static const char h1_big[] = "GET " BIG_PATH " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
/* h1 upgraded to h2 in the clear (RFC 7540 3.2) on the h1 vhost: lws answers
 * 101, then the request on stream 1 once the preface came; the upgraded
 * connection hands its header table to stream 1 (lws's h2 handover) */
static const char h2c_upgrade[] =
	"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\n"
	"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n";
#define H2_PREFACE_AND_SETTINGS	(24 + 9)	/* the start of h2_get */
/* h2 with prior knowledge: preface, empty SETTINGS, HEADERS on stream 1
 * (END_STREAM | END_HEADERS): :method GET, :scheme http, :path / (static
 * table 2, 6, 4) and :authority 127.0.0.1 (literal, name index 1) */
static const uint8_t h2_get[] = {
	'P','R','I',' ','*',' ','H','T','T','P','/','2','.','0','\r','\n',
	'\r','\n','S','M','\r','\n','\r','\n',
	0, 0, 0, 4, 0, 0, 0, 0, 0,
	0, 0, 14, 1, 5, 0, 0, 0, 1,
	0x82, 0x86, 0x84, 0x41, 9, '1','2','7','.','0','.','0','.','1'
};

static void
rogue_close(struct rogue *r, int abortive)
{
	if (abortive) {
		struct linger l = { 1, 0 }; /* RST instead of FIN */

		setsockopt(r->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	}
	if (!r->answered && (r->kind == R_H1 || r->kind == R_SLOW || r->kind == R_H2 ||
			     r->kind == R_H2C))
		A_COUNT(&g_rogue[r->kind][2], 1);
	close(r->fd);
	r->fd = -1;
	r->state = RS_FREE;
}

static void
rogue_answered(struct rogue *r)
{
	if (!r->answered)
		A_COUNT(&g_rogue[r->kind][1], 1);
	r->answered = 1;
}

static void
rogue_start(struct rogue *r, unsigned int *rng)
{
	struct sockaddr_in sa;
	int rcvbuf = 4096;

	memset(r, 0, sizeof(*r));
	r->kind = (int)(rng_next(rng) % R_COUNT);
	if (!port_h2 && r->kind == R_H2) /* a library without h2 */
		r->kind = R_H1;
	if (!port_h2 && r->kind == R_H2_RST)
		r->kind = R_RST;
	if (!port_h2 && r->kind == R_H2C)
		r->kind = R_HALF;
	r->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (r->fd < 0) {
		r->state = RS_FREE;
		return;
	}
	if (r->kind == R_SLOW) /* a small window: the server's writes back up */
		setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)(r->kind == R_H2 || r->kind == R_H2_RST ?
				       port_h2 : port_echo));
	A_COUNT(&g_rogue[r->kind][0], 1);
	r->t_start_us = now_us();
	r->state = RS_CONNECTING;
	if (connect(r->fd, (struct sockaddr *)&sa, sizeof(sa)) && errno != EINPROGRESS)
		rogue_close(r, 0);
}

static void
rogue_send_all(struct rogue *r, const void *p, size_t len)
{
	/* a fresh loopback socket's send buffer takes any of these at once */
	if (send(r->fd, p, len, MSG_NOSIGNAL) != (ssize_t)len)
		rogue_close(r, 0);
}

static void
rogue_connected(struct rogue *r, unsigned int *rng)
{
	int err = 0;
	socklen_t el = sizeof(err);

	if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
		rogue_close(r, 0);
		return;
	}
	switch (r->kind) {
	case R_HALF: /* half an upgrade request, then gone within 50 ms */
		rogue_send_all(r, ws_upgrade, sizeof(ws_upgrade) / 2);
		r->state = RS_LINGER;
		r->t_close_us = now_us() + (int64_t)(rng_next(rng) % 50000);
		break;
	case R_RST: /* a whole upgrade request, then RST at once */
		rogue_send_all(r, ws_upgrade, sizeof(ws_upgrade) - 1);
		if (r->fd >= 0)
			rogue_close(r, 1);
		break;
	case R_H1:
		rogue_send_all(r, h1_get, sizeof(h1_get) - 1);
		r->state = RS_READING;
		break;
	case R_SLOW:
		rogue_send_all(r, h1_big, sizeof(h1_big) - 1);
		r->state = RS_SLOW;
		r->t_close_us = now_us() + SLOW_READ_US;
		break;
	case R_H2:
		rogue_send_all(r, h2_get, sizeof(h2_get));
		r->state = RS_READING;
		break;
	case R_H2C:
		rogue_send_all(r, h2c_upgrade, sizeof(h2c_upgrade) - 1);
		r->state = RS_READING;
		break;
	default: /* R_H2_RST: a stream opened, then RST */
		rogue_send_all(r, h2_get, sizeof(h2_get));
		if (r->fd >= 0)
			rogue_close(r, 1);
		break;
	}
}

/* h2: walk frame headers; the response ends with END_STREAM on stream 1 */
static void
rogue_h2_input(struct rogue *r, const uint8_t *p, size_t len)
{
	while (len) {
		if (r->skip) {
			size_t n = r->skip < len ? r->skip : len;

			r->skip -= n;
			p += n;
			len -= n;
			continue;
		}
		r->hdr[r->hdr_have++] = *p++;
		len--;
		if (r->hdr_have < 9)
			continue;
		r->hdr_have = 0;
		r->skip = ((size_t)r->hdr[0] << 16) | ((size_t)r->hdr[1] << 8) | r->hdr[2];
		if ((r->hdr[3] == 0 || r->hdr[3] == 1) && (r->hdr[4] & 1) &&
		    r->hdr[8] == 1 && !r->hdr[5] && !r->hdr[6] && !r->hdr[7])
			rogue_answered(r);
	}
}

static void
rogue_input(struct rogue *r)
{
	uint8_t buf[4096];
	const uint8_t *h2 = buf;
	ssize_t n;
	size_t want = r->state == RS_SLOW ? SLOW_READ_BYTES : sizeof(buf);

	n = recv(r->fd, buf, want, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) { /* the server closed (or reset) */
		rogue_close(r, 0);
		return;
	}
	if (r->kind == R_H2C && !r->upgraded) {
		/* the 101 in one piece (a small loopback write), then h2 */
		const uint8_t *end = memmem(buf, (size_t)n, "\r\n\r\n", 4);

		if (n < 12 || memcmp(buf, "HTTP/1.1 101", 12) || !end) {
			rogue_close(r, 0);
			return;
		}
		r->upgraded = 1;
		rogue_send_all(r, h2_get, H2_PREFACE_AND_SETTINGS);
		if (r->fd < 0)
			return;
		h2 = end + 4; /* whatever followed the 101 is h2 already */
	}
	if (r->kind == R_H2 || r->kind == R_H2C) {
		rogue_h2_input(r, h2, (size_t)(buf + n - h2));
		if (r->answered)
			rogue_close(r, 0);
		return;
	}
	if (r->kind == R_SLOW) {
		rogue_answered(r); /* the body is flowing, slowly */
		return;
	}
	/* h1 keep-alive: a response is complete when its body has arrived */
	{
		long before = r->body_bytes / SMALL_BODY;
		ssize_t i;

		for (i = 0; i < n; i++)
			r->body_bytes += buf[i] == BODY_BYTE;
		if (r->body_bytes / SMALL_BODY == 1 && before == 0)
			rogue_send_all(r, h1_get, sizeof(h1_get) - 1);
		else if (r->body_bytes / SMALL_BODY >= 2) {
			rogue_answered(r);
			rogue_close(r, 0);
		}
	}
}

static void *
rogue_thread(void *arg)
{
	static struct rogue rg[ROGUE_MAX];
	struct pollfd pfd[ROGUE_MAX];
	unsigned int rng = (o.seed * 2246822519u) ^ 0x5bd1e995u;
	int64_t t_first = now_us(), now, next_slow = 0;
	long started = 0;
	int i, n;

	(void)arg;
	for (i = 0; i < ROGUE_MAX; i++)
		rg[i].fd = -1;
	while (!A_LOAD(&stop_rogue)) {
		now = now_us();
		/* start what is due, into free slots (a full table skips) */
		for (i = 0; i < ROGUE_MAX && !A_LOAD(&stop_initiating) &&
			    started < (long)((double)(now - t_first) * o.rogue_cps / 1e6); i++)
			if (rg[i].state == RS_FREE) {
				rogue_start(&rg[i], &rng);
				started++;
			}
		if (i == ROGUE_MAX) /* no room: let the schedule slip, not pile up */
			started = (long)((double)(now - t_first) * o.rogue_cps / 1e6);

		for (i = n = 0; i < ROGUE_MAX; i++) {
			pfd[i].fd = rg[i].state == RS_FREE ? -1 : rg[i].fd;
			pfd[i].events = rg[i].state == RS_CONNECTING ? POLLOUT :
					rg[i].state == RS_READING ? POLLIN : 0;
			pfd[i].revents = 0;
		}
		poll(pfd, ROGUE_MAX, 10);
		now = now_us();
		for (i = 0; i < ROGUE_MAX; i++) {
			struct rogue *r = &rg[i];

			if (r->state == RS_FREE)
				continue;
			if (r->state == RS_CONNECTING && pfd[i].revents)
				rogue_connected(r, &rng);
			else if (r->state == RS_READING && pfd[i].revents)
				rogue_input(r);
			else if (r->state == RS_SLOW && now >= next_slow)
				rogue_input(r);
			if (r->state == RS_FREE)
				continue;
			if ((r->state == RS_LINGER || r->state == RS_SLOW) &&
			    now >= r->t_close_us)
				rogue_close(r, 0);
			else if (now - r->t_start_us > ROGUE_LIFETIME_US)
				rogue_close(r, 1);
		}
		if (now >= next_slow)
			next_slow = now + 10000;
	}
	/* --destroy-open: the rogues stay open through the server's destroy */
	for (i = 0; i < ROGUE_MAX; i++)
		if (rg[i].state != RS_FREE)
			rogue_close(&rg[i], 0);

	return NULL;
}

/* ------------------------------------------------------------------------ */
/* service threads                                                          */

static void
tsi0_periodic(lws_sorted_usec_list_t *sul)
{
	/* only exists to make thread 0's lws_service_tsi() return regularly */
	lws_sul_schedule(cx, 0, sul, tsi0_periodic, 100 * LWS_US_PER_MS);
}

static void initiate_due(struct thr *t, int64_t now);

static void
tick_cb(lws_sorted_usec_list_t *sul)
{
	struct thr *t = lws_container_of(sul, struct thr, sul_tick);

	/*
	 * --initiate-in timer: connect from inside lws's own timer callback, as
	 * applications do, instead of between service calls
	 */
	if (o.initiate_in_timer && !A_LOAD(&stop_initiating) &&
	    (t->tsi || o.tsi0_initiates))
		initiate_due(t, now_us());

	/* wakes the thread's poll so it initiates between service calls */
	if (!A_LOAD(&stop_service))
		lws_sul_schedule(cx, t->tsi, sul, tick_cb, tick_us);
}

static unsigned int
rng_next(unsigned int *s)
{
	/* xorshift32 */
	unsigned int x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x ? x : 0x9e3779b9u;

	return *s;
}

static int
pick_kind(struct thr *t)
{
	int sum = o.w[0] + o.w[1] + o.w[2], r, k;

	r = (int)(rng_next(&t->rng) % (unsigned int)sum);
	for (k = 0; k < K_COUNT; k++) {
		if (r < o.w[k])
			return k;
		r -= o.w[k];
	}

	return K_ECHO;
}

static void
initiate_one(struct thr *t)
{
	struct lws_client_connect_info i;
	struct conn *c;
	struct lws *w;
	long n, cur;

	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->kind = pick_kind(t);
	c->tsi = t->tsi;
	n = A_ADD(&g_initiated, 1);
	c->msglen = snprintf(c->msg, sizeof(c->msg), "lws-stress %d %ld",
			     t->tsi, n);

	memset(&i, 0, sizeof(i));
	i.context = cx;
	i.vhost = vh_client;
	i.local_protocol_name = CLIENT_PROTOCOL;
	i.userdata = c;
	i.ssl_connection = 0;
	i.address = "127.0.0.1";
	i.host = "127.0.0.1";
	i.origin = "127.0.0.1";
	i.path = "/";
	switch (c->kind) {
	case K_REFUSED:
		i.port = port_refused;
		i.protocol = ECHO_PROTOCOL;
		break;
	case K_BLACKHOLE:
		i.port = port_blackhole;
		i.protocol = ECHO_PROTOCOL;
		break;
	default:
		i.address = i.host = i.origin = o.echo_host;
		i.port = port_echo;
		i.path = o.echo_path;
		i.protocol = o.echo_protocol[0] ? o.echo_protocol : NULL;
		break;
	}

	cur = A_ADD(&g_concurrent, 1);
	for (;;) {
		long m = A_LOAD(&g_max_concurrent);
		if (cur <= m ||
		    __atomic_compare_exchange_n(&g_max_concurrent, &m, cur, 0,
					__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			break;
	}
	A_COUNT(&t->initiated, 1);

	c->in_call = 1;
	c->t_start_us = now_us();
	A_SET(&t->state, TS_IN_CONNECT);
	w = lws_client_connect_via_info(&i);
	A_SET(&t->state, TS_INITIATING);
	c->in_call = 0;

	if (!w) {
		A_COUNT(&t->connect_null, 1);
		if (!c->destroyed) {
			/* no wsi ever existed (or it never told us) */
			conn_outcome(c, O_CONNECT_NULL);
			A_ADD(&g_concurrent, -1);
		}
		free(c);
		return;
	}
	if (c->destroyed) {
		free(c);
		return;
	}
	c->wsi = w;
}

/*
 * Rate control: initiate what is due since this thread's first initiation,
 * at most one batch per service round, and never above --max-concurrent open.
 * The batch is what admits, not the asked rate: asked 4x what the threads can
 * do, an unbounded catch-up put ~800 connects between two service calls, and
 * the accepts, echoes and timeouts of the connections already in flight waited
 * behind them (measured: 30 % fewer conn/s, echo connects timing out).  Behind
 * its schedule, a thread stays behind (counted), and the rounds set its rate.
 */
static void
initiate_due(struct thr *t, int64_t now)
{
	long due, burst = o.cps / 20 + 1, started = 0;

	if (burst > o.admit_batch)
		burst = o.admit_batch;
	if (!t->tstart_us)
		t->tstart_us = now;
	due = (long)((double)(now - t->tstart_us) * o.cps / 1e6) -
	      A_LOAD(&t->initiated) - A_LOAD(&t->skipped_cap);
	if (due > burst) {
		A_COUNT(&t->batch_rounds, 1);
		A_SET(&t->behind, due - burst);
		due = burst;
	} else
		A_SET(&t->behind, 0);
	A_SET(&t->state, TS_INITIATING);
	while (due-- > 0 && !A_LOAD(&stop_initiating)) {
		if (o.total) {
			if (A_LOAD(&g_initiated) >= o.total) {
				A_STORE(&stop_initiating, 1);
				break;
			}
		}
		if (A_LOAD(&g_concurrent) >= o.max_concurrent) {
			A_COUNT(&t->skipped_cap, 1);
			continue;
		}
		initiate_one(t);
		started++;
	}
	/* progress once per batch: a batch is at most 50 ms of connections */
	if (started)
		A_SET(&t->last_progress_us, now_us());
	if (started > A_LOAD(&t->max_round))
		A_SET(&t->max_round, started);
}

static void *
service_thread(void *arg)
{
	struct thr *t = (struct thr *)arg;
	int64_t now;

	/* the first service call makes lws know this pthread is tsi t->tsi */
	if (t->tsi == 0 && !o.tsi0_initiates)
		lws_sul_schedule(cx, 0, &sul_tsi0, tsi0_periodic,
				 100 * LWS_US_PER_MS);
	else
		lws_sul_schedule(cx, t->tsi, &t->sul_tick, tick_cb, tick_us);

	while (!A_LOAD(&stop_service)) {
		A_SET(&t->state, TS_SERVICE);
		if (lws_service_tsi(cx, 0, t->tsi) < 0)
			break;
		A_COUNT(&t->services, 1);
		now = now_us();
		A_SET(&t->last_progress_us, now);

		if ((t->tsi == 0 && !o.tsi0_initiates) ||
		    A_LOAD(&stop_initiating))
			continue;

		if (!o.initiate_in_timer)
			initiate_due(t, now);
	}

	A_STORE(&t->state, TS_EXITED);

	return NULL;
}

/* --server-threads: the server context's service threads only service */
static void
server_tick(lws_sorted_usec_list_t *sul)
{
	struct thr *t = lws_container_of(sul, struct thr, sul_tick);

	/* keeps each thread's lws_service_tsi() returning, as tsi0_periodic */
	if (!A_LOAD(&stop_server))
		lws_sul_schedule(sx, t->tsi, sul, server_tick, 100 * LWS_US_PER_MS);
}

static void *
server_thread(void *arg)
{
	struct thr *t = (struct thr *)arg;

	lws_sul_schedule(sx, t->tsi, &t->sul_tick, server_tick, 100 * LWS_US_PER_MS);
	while (!A_LOAD(&stop_server)) {
		A_SET(&t->state, TS_SERVICE);
		if (lws_service_tsi(sx, 0, t->tsi) < 0)
			break;
		A_COUNT(&t->services, 1);
		A_SET(&t->last_progress_us, now_us());
	}
	A_STORE(&t->state, TS_EXITED);

	return NULL;
}

/* a thread outside lws waking every service thread: lws_cancel_service() */
static void *
cancel_thread(void *arg)
{
	(void)arg;
	while (!A_LOAD(&stop_service)) {
		usleep((useconds_t)o.cancel_ms * 1000u);
		if (!A_LOAD(&stop_service))
			lws_cancel_service(cx);
		if (sx && !A_LOAD(&stop_server))
			lws_cancel_service(sx);
	}

	return NULL;
}

/* ------------------------------------------------------------------------ */
/* watchdog                                                                 */

/* how long the longest-waiting running thread of `t` has made no progress */
static int64_t
stalled_us(struct thr *t, int count, int64_t n)
{
	int64_t oldest = 0, a;
	int i, st;

	for (i = 0; i < count; i++) {
		st = A_LOAD(&t[i].state);
		if (st == TS_EXITED || st == TS_STARTING)
			continue;
		a = n - A_LOAD(&t[i].last_progress_us);
		if (a > oldest)
			oldest = a;
	}

	return oldest;
}

static void *
watchdog_thread(void *arg)
{
	int64_t limit_us = (int64_t)(o.watchdog * 1e6), n;
	int64_t overrun_us = (int64_t)((o.duration + o.watchdog) * 1e6);
	char line[8192];
	size_t p;
	int i, fire;

	(void)arg;
	for (;;) {
		usleep(200000);
		n = now_us();
		fire = 0;
		if (n - t0_us > overrun_us)
			fire = 2;
		if (stalled_us(thr, o.threads, n) > limit_us ||
		    stalled_us(sthr, o.server_threads, n) > limit_us)
			fire = 1;
		if (!fire)
			continue;

		{
			int64_t oldest = stalled_us(thr, o.threads, n), so;

			so = stalled_us(sthr, o.server_threads, n);
			if (so > oldest)
				oldest = so;
			p = (size_t)snprintf(line, sizeof(line),
				"{\"type\":\"watchdog\",\"reason\":\"%s\","
				"\"stalled_s\":%.3f,\"t\":%.3f,\"main\":\"%s\","
				"\"connections\":%ld,\"concurrent\":%ld,\"threads\":[",
				fire == 2 ? "overrun" : "stall",
				(double)oldest / 1e6, since_start_s(),
				main_state_name[A_LOAD(&main_state)],
				A_LOAD(&g_initiated), A_LOAD(&g_concurrent));
		}
		for (i = 0; i < o.threads && p < sizeof(line) - 200; i++)
			p += (size_t)snprintf(line + p, sizeof(line) - p,
				"%s{\"tsi\":%d,\"state\":\"%s\","
				"\"last_progress_s_ago\":%.3f,\"initiated\":%ld}",
				i ? "," : "", i,
				tstate_name[A_LOAD(&thr[i].state)],
				(double)(n - A_LOAD(&thr[i].last_progress_us)) / 1e6,
				A_LOAD(&thr[i].initiated));
		snprintf(line + p, sizeof(line) - p, "]}");
		/* don't take out_lock: its holder may be the stuck one */
		fprintf(stdout, "%s\n", line);
		fflush(stdout);
		fprintf(stderr, "lws-stress: watchdog fired (%s)\n",
			fire == 2 ? "overrun" : "stall");
		/*
		 * --stall-wait: stay stopped as we are for a while, so the caller
		 * can attach a debugger and dump every thread's stack.
		 */
		if (o.stall_wait > 0)
			usleep((useconds_t)(o.stall_wait * 1e6));
		_exit(3);
	}

	return NULL;
}

/* ------------------------------------------------------------------------ */
/* argument parsing                                                         */

static void
bad_arg(const char *flag, const char *why)
{
	fprintf(stderr, "lws-stress: bad argument for %s: %s\n", flag, why);
	exit(2);
}

static long
parse_long(const char *flag, const char *v, long min, long max)
{
	char *e;
	long l;

	if (!v || !*v)
		bad_arg(flag, "missing value");
	errno = 0;
	l = strtol(v, &e, 10);
	if (errno || *e || l < min || l > max) {
		char why[96];
		snprintf(why, sizeof(why), "'%s' is not an integer in [%ld, %ld]",
			 v, min, max);
		bad_arg(flag, why);
	}

	return l;
}

static double
parse_double(const char *flag, const char *v, double min, double max)
{
	char *e;
	double d;

	if (!v || !*v)
		bad_arg(flag, "missing value");
	errno = 0;
	d = strtod(v, &e);
	if (errno || *e || d < min || d > max) {
		char why[96];
		snprintf(why, sizeof(why), "'%s' is not a number in [%g, %g]",
			 v, min, max);
		bad_arg(flag, why);
	}

	return d;
}

static void
parse_mix(const char *v)
{
	char buf[256], *s, *tok, *save = NULL;
	int seen = 0, k;

	if (!v || strlen(v) >= sizeof(buf))
		bad_arg("--mix", "missing or too long");
	strcpy(buf, v);
	o.w[0] = o.w[1] = o.w[2] = 0;
	for (s = buf; (tok = strtok_r(s, ",", &save)); s = NULL) {
		char *eq = strchr(tok, '=');
		if (!eq)
			bad_arg("--mix", "expected name=weight[,name=weight...]");
		*eq = '\0';
		for (k = 0; k < K_COUNT; k++)
			if (!strcmp(tok, kind_name[k]))
				break;
		if (k == K_COUNT)
			bad_arg("--mix", "names are refused, blackhole, echo");
		o.w[k] = (int)parse_long("--mix", eq + 1, 0, 1000000);
		seen++;
	}
	if (!seen || o.w[0] + o.w[1] + o.w[2] <= 0)
		bad_arg("--mix", "weights must sum to more than 0");
}

static int
is_loopback_host(const char *h)
{
	struct in_addr a;

	if (!strcmp(h, "localhost"))
		return 1;
	if (inet_pton(AF_INET, h, &a) != 1)
		return 0;

	return (ntohl(a.s_addr) >> 24) == 127;
}

static void
parse_echo(const char *v)
{
	const char *p, *colon, *slash;
	size_t hl;

	if (!v || !*v)
		bad_arg("--echo", "missing value");
	if (!strcmp(v, "internal")) {
		o.echo_internal = 1;
		return;
	}
	if (strncmp(v, "ws://", 5))
		bad_arg("--echo", "expected 'internal' or ws://127.0.0.1:PORT/PATH");
	p = v + 5;
	slash = strchr(p, '/');
	colon = strchr(p, ':');
	if (!colon || (slash && colon > slash))
		bad_arg("--echo", "a :PORT is required");
	hl = (size_t)(colon - p);
	if (!hl || hl >= sizeof(o.echo_host))
		bad_arg("--echo", "bad host");
	memcpy(o.echo_host, p, hl);
	o.echo_host[hl] = '\0';
	if (!is_loopback_host(o.echo_host))
		bad_arg("--echo", "only loopback (127.0.0.0/8, localhost) peers are allowed");
	if (!strcmp(o.echo_host, "localhost"))
		strcpy(o.echo_host, "127.0.0.1");
	{
		char pb[16];
		size_t pl = slash ? (size_t)(slash - colon - 1) : strlen(colon + 1);
		if (!pl || pl >= sizeof(pb))
			bad_arg("--echo", "bad port");
		memcpy(pb, colon + 1, pl);
		pb[pl] = '\0';
		o.echo_port = (int)parse_long("--echo", pb, 1, 65535);
	}
	if (slash) {
		if (strlen(slash) >= sizeof(o.echo_path))
			bad_arg("--echo", "path too long");
		strcpy(o.echo_path, slash);
	} else
		strcpy(o.echo_path, "/");
	o.echo_internal = 0;
}

static void
usage(void)
{
	fputs(LWSS_USAGE, stderr);
}

static void
parse_choice(const char *flag, const char *v, const char *a, const char *b, int *is_b)
{
	if (!v || (strcmp(v, a) && strcmp(v, b))) {
		char why[64];

		snprintf(why, sizeof(why), "%s or %s", a, b);
		bad_arg(flag, why);
	}
	*is_b = !strcmp(v, b);
}

static void
parse_args(int argc, char **argv)
{
	int i, proto_set = 0;

	parse_mix(LWSS_MIX_DEFAULT);
	parse_echo(LWSS_ECHO_DEFAULT);
	parse_choice("--initiate-in", LWSS_INITIATE_IN_DEFAULT, "loop", "timer", &o.initiate_in_timer);
	parse_choice("--close-by", LWSS_CLOSE_BY_DEFAULT, "client", "server", &o.close_by_server);
	if (strlen(LWSS_ECHO_PROTOCOL_DEFAULT)) {
		strcpy(o.echo_protocol, LWSS_ECHO_PROTOCOL_DEFAULT);
		proto_set = 1;
	}

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		const char *orig = argv[i];
		char flag[64];
		const char *eq = strchr(a, '=');

		/* accept both "--flag value" and "--flag=value" */
		if (!strncmp(a, "--", 2) && eq && (size_t)(eq - a) < sizeof(flag)) {
			memcpy(flag, a, (size_t)(eq - a));
			flag[eq - a] = '\0';
			a = flag;
			v = eq + 1;
		} else if (strcmp(a, "--quiet") && strcmp(a, "--help") &&
			   strcmp(a, "-h"))
			i++;

		if (!strcmp(a, "--threads"))
			o.threads = (int)parse_long(a, v, LWSS_THREADS_MIN, LWSS_THREADS_MAX);
		else if (!strcmp(a, "--cps"))
			o.cps = (int)parse_long(a, v, LWSS_CPS_MIN, LWSS_CPS_MAX);
		else if (!strcmp(a, "--duration"))
			o.duration = parse_double(a, v, LWSS_DURATION_MIN, LWSS_DURATION_MAX);
		else if (!strcmp(a, "--total"))
			o.total = parse_long(a, v, LWSS_TOTAL_MIN, LWSS_TOTAL_MAX);
		else if (!strcmp(a, "--mix"))
			parse_mix(v);
		else if (!strcmp(a, "--hold-ms"))
			o.hold_ms = (int)parse_long(a, v, LWSS_HOLD_MS_MIN, LWSS_HOLD_MS_MAX);
		else if (!strcmp(a, "--echo"))
			parse_echo(v);
		else if (!strcmp(a, "--echo-protocol")) {
			if (!v || strlen(v) >= sizeof(o.echo_protocol))
				bad_arg(a, "missing or too long");
			strcpy(o.echo_protocol, v);
			proto_set = 1;
		} else if (!strcmp(a, "--timeout-secs"))
			o.timeout_secs = (int)parse_long(a, v, LWSS_TIMEOUT_SECS_MIN,
						       LWSS_TIMEOUT_SECS_MAX);
		else if (!strcmp(a, "--max-concurrent"))
			o.max_concurrent = parse_long(a, v, LWSS_MAX_CONCURRENT_MIN,
						      LWSS_MAX_CONCURRENT_MAX);
		else if (!strcmp(a, "--nofile"))
			o.nofile = parse_long(a, v, LWSS_NOFILE_MIN, LWSS_NOFILE_MAX);
		else if (!strcmp(a, "--watchdog")) {
			o.watchdog = parse_double(a, v, LWSS_WATCHDOG_MIN, LWSS_WATCHDOG_MAX);
			o.watchdog_set = 1;
		} else if (!strcmp(a, "--sample-ms"))
			o.sample_ms = (int)parse_long(a, v, LWSS_SAMPLE_MS_MIN, LWSS_SAMPLE_MS_MAX);
		else if (!strcmp(a, "--tick-ms"))
			o.tick_ms = (int)parse_long(a, v, LWSS_TICK_MS_MIN, LWSS_TICK_MS_MAX);
		else if (!strcmp(a, "--admit-batch"))
			o.admit_batch = (int)parse_long(a, v, LWSS_ADMIT_BATCH_MIN,
							LWSS_ADMIT_BATCH_MAX);
		else if (!strcmp(a, "--seed"))
			o.seed = (unsigned int)parse_long(a, v, LWSS_SEED_MIN, LWSS_SEED_MAX);
		else if (!strcmp(a, "--log-level"))
			o.log_level = (int)parse_long(a, v, LWSS_LOG_LEVEL_MIN, LWSS_LOG_LEVEL_MAX);
		else if (!strcmp(a, "--tsi0-initiates"))
			o.tsi0_initiates = (int)parse_long(a, v, LWSS_TSI0_INITIATES_MIN,
							      LWSS_TSI0_INITIATES_MAX);
		else if (!strcmp(a, "--initiate-in"))
			parse_choice(a, v, "loop", "timer", &o.initiate_in_timer);
		else if (!strcmp(a, "--close-by"))
			parse_choice(a, v, "client", "server", &o.close_by_server);
		else if (!strcmp(a, "--cancel-ms"))
			o.cancel_ms = (int)parse_long(a, v, LWSS_CANCEL_MS_MIN, LWSS_CANCEL_MS_MAX);
		else if (!strcmp(a, "--destroy-open"))
			o.destroy_open = (int)parse_long(a, v, LWSS_DESTROY_OPEN_MIN,
						    LWSS_DESTROY_OPEN_MAX);
		else if (!strcmp(a, "--server-threads"))
			o.server_threads = (int)parse_long(a, v, LWSS_SERVER_THREADS_MIN,
							   LWSS_SERVER_THREADS_MAX);
		else if (!strcmp(a, "--rogue-cps"))
			o.rogue_cps = (int)parse_long(a, v, LWSS_ROGUE_CPS_MIN, LWSS_ROGUE_CPS_MAX);
		else if (!strcmp(a, "--stall-wait"))
			o.stall_wait = parse_double(a, v, LWSS_STALL_WAIT_MIN, LWSS_STALL_WAIT_MAX);
		else if (!strcmp(a, "--quiet"))
			o.quiet = 1;
		else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage();
			exit(0);
		} else {
			fprintf(stderr, "lws-stress: unknown flag %s\n", orig);
			usage();
			exit(2);
		}
	}

	if (o.threads < 2)
		bad_arg("--threads", "need at least 2");
	if (!o.watchdog_set)
		o.watchdog = o.duration + 30;
	if (o.server_threads && !o.echo_internal)
		bad_arg("--server-threads", "the server context is the echo peer: use --echo internal");
	if (o.rogue_cps && !o.server_threads)
		bad_arg("--rogue-cps", "rogue clients need the server context: set --server-threads");
	if (o.echo_internal) {
		strcpy(o.echo_host, "127.0.0.1");
		strcpy(o.echo_path, "/");
		if (!proto_set)
			strcpy(o.echo_protocol, ECHO_PROTOCOL);
	}
}

/* ------------------------------------------------------------------------ */

static struct lws_vhost *
create_server_vhost(struct lws_context_creation_info *info, const char *name,
		    uint64_t options)
{
	struct lws_vhost *vh;

	memset(info, 0, sizeof(*info));
	info->options = LWS_SERVER_OPTION_DISABLE_IPV6 | options;
	info->vhost_name = name;
	info->iface = "127.0.0.1";
	info->port = 0;
	info->protocols = server_context_protocols;
	info->timeout_secs = (unsigned int)o.timeout_secs;
	info->timeout_secs_ah_idle = (unsigned int)o.timeout_secs;
	vh = lws_create_vhost(sx, info);
	if (!vh || lws_get_vhost_listen_port(vh) <= 0) {
		fprintf(stderr, "lws-stress: server vhost %s creation failed\n", name);
		return NULL;
	}

	return vh;
}

/* --server-threads: the server context, its vhosts (ws echo + HTTP/1.1; h2) and ports */
static int
create_server_context(struct lws_context_creation_info *info)
{
	struct lws_vhost *vh;

	memset(info, 0, sizeof(*info));
	info->options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
			LWS_SERVER_OPTION_DISABLE_IPV6;
	info->count_threads = (unsigned int)o.server_threads;
	info->timeout_secs = (unsigned int)o.timeout_secs;
	info->port = CONTEXT_PORT_NO_LISTEN;
	sx = lws_create_context(info);
	if (!sx) {
		fprintf(stderr, "lws-stress: server lws_create_context failed\n");
		return 1;
	}
	if (lws_get_count_threads(sx) != o.server_threads) {
		fprintf(stderr, "lws-stress: the library gives the server %d service "
			"threads, not %d (LWS_MAX_SMP)\n", lws_get_count_threads(sx),
			o.server_threads);
		return 1;
	}

	vh = create_server_vhost(info, "stress-server", 0);
	if (!vh)
		return 1;
	port_echo = lws_get_vhost_listen_port(vh);
#if defined(LWS_ROLE_H2)
	/* h2 without TLS: prior knowledge makes every connection of a vhost h2,
	 * so h2 has a vhost (and a port) of its own */
	vh = create_server_vhost(info, "stress-server-h2",
				 LWS_SERVER_OPTION_H2_PRIOR_KNOWLEDGE);
	if (!vh)
		return 1;
	port_h2 = lws_get_vhost_listen_port(vh);
#endif

	return 0;
}

static int
start_threads(struct thr *t, int count, void *(*fn)(void *), const char *label)
{
	char name[32]; /* the kernel keeps 15 characters */
	int i;

	for (i = 0; i < count; i++) {
		if (pthread_create(&t[i].tid, NULL, fn, &t[i])) {
			fprintf(stderr, "lws-stress: pthread_create failed\n");
			return 1;
		}
		snprintf(name, sizeof(name), "%s-%d", label, i);
		name[15] = '\0';
		pthread_setname_np(t[i].tid, name);
	}

	return 0;
}

/* stop a context's service threads: raise their flag, wake them, join each */
static void
stop_service_threads(struct lws_context *c, int *stop, struct thr *t, int count)
{
	int i;

	A_STORE(stop, 1);
	lws_cancel_service(c);
	for (i = 0; i < count; i++) {
		pthread_join(t[i].tid, NULL);
		/* another wake for threads still in poll */
		lws_cancel_service(c);
	}
}

/* stop the server context's threads and destroy it (open connections or not) */
static void
destroy_server_context(void)
{
	stop_service_threads(sx, &stop_server, sthr, o.server_threads);
	A_STORE(&main_state, 6);
	lws_context_destroy(sx);
	sx = NULL;
}

static void
print_server_summary(char *line, size_t size, size_t *p)
{
	int k, i;

	*p += (size_t)snprintf(line + *p, size - *p, ",\"server_threads\":%d,"
			       "\"http_served\":%ld,\"rogue\":{", o.server_threads,
			       A_LOAD(&g_http_served));
	for (k = 0; k < R_COUNT; k++)
		*p += (size_t)snprintf(line + *p, size - *p,
			"%s\"%s\":{\"started\":%ld,\"answered\":%ld,\"failed\":%ld}",
			k ? "," : "", rogue_name[k], A_LOAD(&g_rogue[k][0]),
			A_LOAD(&g_rogue[k][1]), A_LOAD(&g_rogue[k][2]));
	*p += (size_t)snprintf(line + *p, size - *p, "},\"server_service_calls\":[");
	for (i = 0; i < o.server_threads; i++)
		*p += (size_t)snprintf(line + *p, size - *p, "%s%ld", i ? "," : "",
				       A_LOAD(&sthr[i].services));
	*p += (size_t)snprintf(line + *p, size - *p, "]");
}

static void
print_summary(double dur)
{
	char line[16384];
	size_t p;
	int k, m, i, first;

	p = (size_t)snprintf(line, sizeof(line),
		"{\"type\":\"summary\",\"connections\":%ld,\"cps\":%.1f,"
		"\"max_concurrent\":%ld,\"duration_s\":%.3f,"
		"\"open_at_end\":%ld,\"server_echoes\":%ld,\"outcomes\":{",
		A_LOAD(&g_initiated), dur > 0 ? (double)A_LOAD(&g_initiated) / dur : 0.0,
		A_LOAD(&g_max_concurrent), dur, A_LOAD(&g_concurrent),
		A_LOAD(&g_server_echoes));
	for (k = 0; k < K_COUNT; k++) {
		p += (size_t)snprintf(line + p, sizeof(line) - p, "%s\"%s\":{",
				      k ? "," : "", kind_name[k]);
		first = 1;
		for (m = 1; m < O_COUNT; m++) {
			long v = A_LOAD(&g_outcomes[k][m]);
			/* always show the expected keys, others only if hit */
			if (!v && !(k == K_REFUSED && m == O_FAILED) &&
			    !(k == K_BLACKHOLE && m == O_TIMEOUT) &&
			    !(k == K_ECHO && (m == O_ECHOED || m == O_FAILED)))
				continue;
			p += (size_t)snprintf(line + p, sizeof(line) - p,
					"%s\"%s\":%ld", first ? "" : ",",
					outcome_name[m], v);
			first = 0;
		}
		p += (size_t)snprintf(line + p, sizeof(line) - p, "}");
	}
	p += (size_t)snprintf(line + p, sizeof(line) - p, "},\"per_thread\":[");
	first = o.tsi0_initiates ? 0 : 1;
	for (i = first; i < o.threads; i++)
		p += (size_t)snprintf(line + p, sizeof(line) - p,
			"%s{\"tsi\":%d,\"initiated\":%ld,\"connect_null\":%ld,"
			"\"skipped_cap\":%ld,\"service_calls\":%ld,"
			"\"behind\":%ld,\"max_round\":%ld,\"batch_rounds\":%ld}",
			i > first ? "," : "", i, A_LOAD(&thr[i].initiated),
			A_LOAD(&thr[i].connect_null), A_LOAD(&thr[i].skipped_cap),
			A_LOAD(&thr[i].services), A_LOAD(&thr[i].behind),
			A_LOAD(&thr[i].max_round), A_LOAD(&thr[i].batch_rounds));
	p += (size_t)snprintf(line + p, sizeof(line) - p, "],\"tsi0_service_calls\":%ld",
			      A_LOAD(&thr[0].services));
	if (o.server_threads)
		print_server_summary(line, sizeof(line), &p);
	snprintf(line + p, sizeof(line) - p, ",\"watchdog\":false}");
	out_line("%s", line);
}

int
main(int argc, char **argv)
{
	struct lws_context_creation_info info;
	struct rlimit rl;
	pthread_t wd, rogue;
	int64_t last_sample, end_us, drain_end_us, tn;
	long last_count = 0, nofile_eff;
	double dur;
	int i, clamped = 0;

	signal(SIGPIPE, SIG_IGN);
	parse_args(argc, argv);
	t0_us = now_us();

	/* RLIMIT_NOFILE before the context: lws sizes its fd tables from it */
	if (getrlimit(RLIMIT_NOFILE, &rl)) {
		perror("getrlimit");
		return 1;
	}
	nofile_eff = o.nofile;
	if (rl.rlim_max != RLIM_INFINITY && (rlim_t)nofile_eff > rl.rlim_max) {
		nofile_eff = (long)rl.rlim_max;
		clamped = 1;
		fprintf(stderr, "lws-stress: --nofile %ld clamped to the hard "
			"limit %ld\n", o.nofile, nofile_eff);
	}
	rl.rlim_cur = (rlim_t)nofile_eff;
	if (setrlimit(RLIMIT_NOFILE, &rl)) {
		fprintf(stderr, "lws-stress: setrlimit(RLIMIT_NOFILE, %ld): %s\n",
			nofile_eff, strerror(errno));
		getrlimit(RLIMIT_NOFILE, &rl);
		nofile_eff = (long)rl.rlim_cur;
		clamped = 1;
	}

	lws_set_log_level(o.log_level, NULL);

	if (setup_raw_targets()) {
		fprintf(stderr, "lws-stress: loopback target setup failed: %s\n",
			strerror(errno));
		return 1;
	}

	/*
	 * Initiating threads wake every tick and start what is due.  lws
	 * rounds its poll wait down to ms, so each sul expiry costs up to 1 ms
	 * of spinning: a 10 ms tick keeps that ~10% of a core per thread.
	 */
	tick_us = (unsigned int)o.tick_ms * 1000u;

	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
		       LWS_SERVER_OPTION_DISABLE_IPV6;
	info.count_threads = (unsigned int)o.threads;
	info.timeout_secs = (unsigned int)o.timeout_secs;
	info.connect_timeout_secs = (unsigned int)o.timeout_secs;
	info.port = CONTEXT_PORT_NO_LISTEN;

	cx = lws_create_context(&info);
	if (!cx) {
		fprintf(stderr, "lws-stress: lws_create_context failed\n");
		return 1;
	}

	/* client vhost: our protocol is protocols[0] so WSI_DESTROY reaches us */
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
	info.vhost_name = "stress-client";
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = client_protocols;
	info.timeout_secs = (unsigned int)o.timeout_secs;
	info.connect_timeout_secs = (unsigned int)o.timeout_secs;
	/*
	 * Every timeout we can set has the profile's length: with lws's 10 s
	 * default for holding a header table, a third of the timers of a pt
	 * outlast the 5 s ones, and each 5 s insert walks past them (perf probe
	 * on __lws_sul_insert: 160k 5 s, 53k 10 s, 27k 300 s inserts in 4 s).
	 */
	info.timeout_secs_ah_idle = (unsigned int)o.timeout_secs;
	vh_client = lws_create_vhost(cx, &info);
	if (!vh_client) {
		fprintf(stderr, "lws-stress: client vhost creation failed\n");
		return 1;
	}

	if (o.server_threads) {
		if (create_server_context(&info))
			return 1;
	} else if (o.echo_internal) {
		struct lws_vhost *vh;

		memset(&info, 0, sizeof(info));
		info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
		info.vhost_name = "stress-echo";
		info.iface = "127.0.0.1";
		info.port = 0; /* ephemeral; lws reads it back after bind */
		info.protocols = server_protocols;
		info.timeout_secs = (unsigned int)o.timeout_secs;
		info.timeout_secs_ah_idle = (unsigned int)o.timeout_secs;
		vh = lws_create_vhost(cx, &info);
		if (!vh || lws_get_vhost_listen_port(vh) <= 0) {
			fprintf(stderr, "lws-stress: echo vhost creation failed\n");
			return 1;
		}
		port_echo = lws_get_vhost_listen_port(vh);
	} else
		port_echo = o.echo_port;

	out_line("{\"type\":\"start\",\"threads\":%d,\"initiating_threads\":%d,"
		 "\"cps\":%d,\"duration\":%.3f,\"total\":%ld,"
		 "\"mix\":{\"refused\":%d,\"blackhole\":%d,\"echo\":%d},"
		 "\"hold_ms\":%d,\"echo\":\"%s\",\"echo_url\":\"ws://%s:%d%s\","
		 "\"echo_protocol\":\"%s\",\"timeout_secs\":%d,"
		 "\"max_concurrent\":%ld,\"nofile\":%ld,\"nofile_clamped\":%s,"
		 "\"watchdog\":%.3f,\"sample_ms\":%d,\"tick_ms\":%d,"
		 "\"admit_batch\":%d,\"seed\":%u,"
		 "\"tsi0_initiates\":%s,\"initiate_in\":\"%s\","
		 "\"close_by\":\"%s\",\"cancel_ms\":%d,"
		 "\"destroy_open\":%s,\"server_threads\":%d,\"rogue_cps\":%d,"
		 "\"log_level\":%d,\"ports\":{\"refused\":%d,\"blackhole\":%d,"
		 "\"echo\":%d,\"h2\":%d},\"pid\":%d,\"lws_version\":\"%s\"}",
		 o.threads, o.threads - (o.tsi0_initiates ? 0 : 1), o.cps, o.duration, o.total,
		 o.w[0], o.w[1], o.w[2], o.hold_ms,
		 o.echo_internal ? "internal" : "external",
		 o.echo_host, port_echo, o.echo_path, o.echo_protocol,
		 o.timeout_secs, o.max_concurrent, nofile_eff,
		 clamped ? "true" : "false", o.watchdog, o.sample_ms, o.tick_ms,
		 o.admit_batch, o.seed,
		 o.tsi0_initiates ? "true" : "false",
		 o.initiate_in_timer ? "timer" : "loop",
		 o.close_by_server ? "server" : "client", o.cancel_ms,
		 o.destroy_open ? "true" : "false", o.server_threads, o.rogue_cps,
		 o.log_level, port_refused, port_blackhole, port_echo, port_h2,
		 (int)getpid(), lws_get_library_version());

	tn = now_us();
	for (i = 0; i < o.server_threads; i++) {
		sthr[i].tsi = i;
		A_STORE(&sthr[i].last_progress_us, tn);
	}
	for (i = 0; i < o.threads; i++) {
		thr[i].tsi = i;
		thr[i].rng = (o.seed * 2654435761u) ^ (unsigned int)(i * 40503 + 1);
		if (!thr[i].rng)
			thr[i].rng = 1;
		A_STORE(&thr[i].last_progress_us, tn);
	}
	t0_us = now_us();
	if (pthread_create(&wd, NULL, watchdog_thread, NULL)) {
		fprintf(stderr, "lws-stress: pthread_create failed\n");
		return 1;
	}
	pthread_detach(wd);
	if (o.cancel_ms > 0) {
		pthread_t ct;

		if (pthread_create(&ct, NULL, cancel_thread, NULL)) {
			fprintf(stderr, "lws-stress: pthread_create failed\n");
			return 1;
		}
		pthread_detach(ct);
	}
	/* the server serves before the first client connects */
	if (start_threads(sthr, o.server_threads, server_thread, "lws-srv") ||
	    start_threads(thr, o.threads, service_thread, "lws-svc"))
		return 1;
	if (o.rogue_cps && pthread_create(&rogue, NULL, rogue_thread, NULL)) {
		fprintf(stderr, "lws-stress: pthread_create failed\n");
		return 1;
	}
	A_STORE(&main_state, 1);

	end_us = t0_us + (int64_t)(o.duration * 1e6);
	last_sample = t0_us;
	while (!A_LOAD(&stop_initiating)) {
		usleep(10000);
		tn = now_us();
		if (tn >= end_us)
			A_STORE(&stop_initiating, 1);
		if (tn - last_sample >= (int64_t)o.sample_ms * 1000) {
			long c = A_LOAD(&g_initiated);
			if (!o.quiet)
				out_line("{\"type\":\"sample\",\"t\":%.3f,"
					 "\"connections\":%ld,\"cps\":%.1f,"
					 "\"concurrent\":%ld}",
					 (double)(tn - t0_us) / 1e6, c,
					 (double)(c - last_count) * 1e6 /
						 (double)(tn - last_sample),
					 A_LOAD(&g_concurrent));
			last_count = c;
			last_sample = tn;
		}
	}
	dur = since_start_s();

	/*
	 * Drain: let in-flight connects time out and held echoes close, while
	 * the service threads keep running.
	 */
	A_STORE(&main_state, 2);
	/* --destroy-open with a server context: it goes first, while the clients'
	 * and the rogues' connections are open on every one of its pts */
	if (sx && o.destroy_open)
		destroy_server_context();
	drain_end_us = now_us() + (int64_t)o.timeout_secs * 1000000 +
		       (int64_t)o.hold_ms * 1000 + 3000000;
	/* --destroy-open: no drain, lws_context_destroy() meets open connections */
	while (!o.destroy_open && A_LOAD(&g_concurrent) > 0 &&
	       now_us() < drain_end_us)
		usleep(10000);

	if (o.rogue_cps) {
		A_STORE(&stop_rogue, 1);
		pthread_join(rogue, NULL);
	}
	A_STORE(&main_state, 3);
	stop_service_threads(cx, &stop_service, thr, o.threads);

	A_STORE(&main_state, 4);
	lws_context_destroy(cx);
	if (sx)
		destroy_server_context();
	A_STORE(&main_state, 5);

	close(fd_refused);
	close(fd_blackhole);
	for (i = 0; i < PREFILL_SOCKETS; i++)
		if (fd_prefill[i] >= 0)
			close(fd_prefill[i]);

	print_summary(dur);

	return 0;
}
