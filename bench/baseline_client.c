/*
 * baseline-client: the work of one lws-stress connection, done with plain
 * non-blocking sockets and epoll, no libwebsockets.  bench/throughput.py
 * builds it (cc -O2) and runs it next to `lwsbuild stress` on the same machine,
 * so lws-stress's connections/s can be read as a ratio to it: that ratio is
 * libwebsockets' and the harness's overhead together.
 *
 * Same as lws-stress (lwsbuild/build/harness/stress_harness.c):
 *  - --threads threads; thread 0 also initiates only with --tsi0-initiates 1;
 *    each initiates --cps connections/s (rate computed since its first
 *    initiation, at most cps/20+1 and --admit-batch per loop turn) and stops
 *    at --max-concurrent
 *  - targets on 127.0.0.1, picked by weight (--mix, xorshift32 per thread):
 *      refused   a bound, never listening port (ECONNREFUSED)
 *      blackhole listen(fd, 0), 4 connections fill the queue, never accepted:
 *                connects hang until the --timeout-secs connect timeout
 *      echo      a WebSocket echo server served by the same threads (one
 *                listening socket in every thread's epoll, EPOLLEXCLUSIVE)
 *  - an echo connection sends lws's upgrade request bytes (same headers,
 *    order and protocol, a random 16-byte key), checks the 101 and its
 *    Sec-WebSocket-Accept, sends one masked text frame "lws-stress T N",
 *    checks the echo, sends a masked close (1000), waits for the server's
 *    close and closes the socket.  The server answers with lws's 101 bytes,
 *    echoes the frame unmasked and answers the close.
 *  - connect timeout: from initiation until the 101 arrives (lws: the connect
 *    timeout, then the same value awaiting the server's response).
 *
 * What it does NOT do (it is the floor, not a WebSocket implementation):
 * no extensions, fragments, ping/pong, TLS, partial writes (every write here
 * is under 300 bytes on loopback), idle timeouts on the server side or on the
 * close handshake, no per-connection allocation (a table indexed by fd), one
 * FIFO per thread for timeouts (every timeout has the same length, so they
 * expire in initiation order: O(1), where lws keeps a sorted list).
 *
 * Output: one JSON line, {"type":"summary", connections, cps, max_concurrent,
 * duration_s, outcomes, server_echoes, skipped_cap, nofile}, in the shape of lws-stress's.
 * Loopback only; bounded by --duration plus a drain of --timeout-secs + 3 s.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS	64
#define PREFILL		4
#define INBUF		480
#define PROTOCOL	"lws-stress-echo"

enum { K_REFUSED, K_BLACKHOLE, K_ECHO, K_COUNT };
static const char *const kind_name[K_COUNT] = { "refused", "blackhole", "echo" };
enum { O_NONE, O_FAILED, O_TIMEOUT, O_CONNECTED, O_ECHOED, O_MISMATCH,
       O_CLOSED_EARLY, O_COUNT };
static const char *const outcome_name[O_COUNT] = {
	"none", "failed", "timeout", "connected", "echoed", "mismatch",
	"closed_early" };

/* connection states: C_* client side, S_* the echo server's side */
enum { FREE, C_CONNECTING, C_HANDSHAKE, C_ECHO, C_CLOSING, S_REQUEST, S_WS };

struct conn {
	uint32_t	gen;		/* matches the epoll event's, else stale */
	uint8_t		state, kind, outcome;
	uint8_t		msglen;
	int		prev, next;	/* the owning thread's timeout FIFO */
	int64_t		deadline_us;
	uint16_t	inlen;
	char		accept[29];	/* the Sec-WebSocket-Accept we expect */
	char		msg[40];
	unsigned char	in[INBUF];
};

static struct {
	int threads, cps, timeout_secs, tsi0_initiates, tick_ms;
	double duration;
	int w[K_COUNT];
	long max_concurrent, nofile;
	unsigned int seed;
	int admit_batch;
} o = { 4, 250, 1, 0, 10, 10, { 1, 1, 2 }, 4000, 8192, 1, 32 };

struct thr {
	pthread_t	tid;
	int		idx, ep;
	unsigned int	rng;
	int64_t		tstart_us;
	long		initiated, skipped_cap, server_echoes;
	long		outcomes[K_COUNT][O_COUNT];
	int		to_head, to_tail;	/* timeout FIFO, by fd, -1 = empty */
	char		pad[64];
};

static struct conn *tab;
static long tab_len;
static struct thr thr[MAX_THREADS];
static struct sockaddr_in sa_target[K_COUNT];
static int fd_listen = -1;
static int stop_initiating, stop_all;	/* atomic */
static long g_initiated, g_concurrent, g_max_concurrent; /* atomic */
static uint32_t g_gen;			/* atomic */

#define A_LOAD(p)	__atomic_load_n(p, __ATOMIC_RELAXED)
#define A_STORE(p, v)	__atomic_store_n(p, v, __ATOMIC_RELAXED)
#define A_ADD(p, v)	__atomic_add_fetch(p, v, __ATOMIC_RELAXED)

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------------------ */
/* SHA-1 and base64, for Sec-WebSocket-Accept (RFC 6455 4.2.2)              */

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void
sha1(const unsigned char *data, size_t len, unsigned char out[20])
{
	uint32_t h[5] = { 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476,
			  0xC3D2E1F0 };
	unsigned char block[64];
	size_t total = ((len + 8) / 64 + 1) * 64, off;
	int i;

	for (off = 0; off < total; off += 64) {
		uint32_t w[80], a, b, c, d, e, f, k, t;

		for (i = 0; i < 64; i++) {
			size_t p = off + (size_t)i;
			if (p < len)
				block[i] = data[p];
			else if (p == len)
				block[i] = 0x80;
			else if (p >= total - 8)
				block[i] = (unsigned char)(((uint64_t)len * 8) >>
							   (8 * (total - 1 - p)));
			else
				block[i] = 0;
		}
		for (i = 0; i < 16; i++)
			w[i] = (uint32_t)block[4 * i] << 24 |
			       (uint32_t)block[4 * i + 1] << 16 |
			       (uint32_t)block[4 * i + 2] << 8 | block[4 * i + 3];
		for (i = 16; i < 80; i++)
			w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
		a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4];
		for (i = 0; i < 80; i++) {
			if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
			else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
			else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
			else { f = b ^ c ^ d; k = 0xCA62C1D6; }
			t = rol(a, 5) + f + e + k + w[i];
			e = d; d = c; c = rol(b, 30); b = a; a = t;
		}
		h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
	}
	for (i = 0; i < 20; i++)
		out[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static void
base64(const unsigned char *in, size_t len, char *out)
{
	static const char t[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	for (i = 0; i + 2 < len; i += 3) {
		*out++ = t[in[i] >> 2];
		*out++ = t[(in[i] & 3) << 4 | in[i + 1] >> 4];
		*out++ = t[(in[i + 1] & 15) << 2 | in[i + 2] >> 6];
		*out++ = t[in[i + 2] & 63];
	}
	if (len - i == 1) {
		*out++ = t[in[i] >> 2];
		*out++ = t[(in[i] & 3) << 4];
		*out++ = '='; *out++ = '=';
	} else if (len - i == 2) {
		*out++ = t[in[i] >> 2];
		*out++ = t[(in[i] & 3) << 4 | in[i + 1] >> 4];
		*out++ = t[(in[i + 1] & 15) << 2];
		*out++ = '=';
	}
	*out = '\0';
}

static void
ws_accept(const char *key, size_t keylen, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char buf[128], dig[20];

	memcpy(buf, key, keylen);
	memcpy(buf + keylen, guid, sizeof(guid) - 1);
	sha1(buf, keylen + sizeof(guid) - 1, dig);
	base64(dig, 20, out);
}

/* ------------------------------------------------------------------------ */

static unsigned int
rng_next(unsigned int *s)
{
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
to_remove(struct thr *t, int fd)
{
	struct conn *c = &tab[fd];

	if (c->prev == -2)
		return; /* not queued */
	if (c->prev >= 0)
		tab[c->prev].next = c->next;
	else
		t->to_head = c->next;
	if (c->next >= 0)
		tab[c->next].prev = c->prev;
	else
		t->to_tail = c->prev;
	c->prev = c->next = -2;
}

static void
to_append(struct thr *t, int fd)
{
	struct conn *c = &tab[fd];

	c->prev = t->to_tail;
	c->next = -1;
	if (t->to_tail >= 0)
		tab[t->to_tail].next = fd;
	else
		t->to_head = fd;
	t->to_tail = fd;
}

static void
outcome(struct thr *t, struct conn *c, int oc)
{
	if (c->outcome != O_NONE)
		return;
	c->outcome = (uint8_t)oc;
	t->outcomes[c->kind][oc]++;
}

static void
conn_close(struct thr *t, int fd)
{
	struct conn *c = &tab[fd];
	int client = c->state >= C_CONNECTING && c->state <= C_CLOSING;

	if (client) {
		outcome(t, c, c->state == C_CONNECTING ? O_FAILED : O_CLOSED_EARLY);
		to_remove(t, fd);
		A_ADD(&g_concurrent, -1);
	}
	c->state = FREE;
	A_STORE(&c->gen, 0);
	close(fd); /* also leaves the epoll set: nobody dup()s these */
}

static int
arm(struct thr *t, int fd, int op, uint32_t events)
{
	struct epoll_event ev;

	ev.events = events;
	ev.data.u64 = (uint64_t)tab[fd].gen << 32 | (uint32_t)fd;
	return epoll_ctl(t->ep, op, fd, &ev);
}

static int
sendall(int fd, const void *buf, size_t len)
{
	return send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

static void
initiate_one(struct thr *t)
{
	struct conn *c;
	long n, cur, m;
	int fd, kind = pick_kind(t);

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
		t->skipped_cap++; /* the descriptor limit is a cap too: say so */
		return;
	}
	t->initiated++;
	n = A_ADD(&g_initiated, 1);
	if (fd < 0 || fd >= tab_len) {
		if (fd >= 0)
			close(fd);
		t->outcomes[kind][O_FAILED]++;
		return;
	}
	c = &tab[fd];
	memset(c, 0, offsetof(struct conn, in));
	c->kind = (uint8_t)kind;
	c->state = C_CONNECTING;
	c->prev = c->next = -2;
	c->msglen = (uint8_t)snprintf(c->msg, sizeof(c->msg), "lws-stress %d %ld",
				      t->idx, n);
	A_STORE(&c->gen, A_ADD(&g_gen, 1) | 1u);
	cur = A_ADD(&g_concurrent, 1);
	while (cur > (m = A_LOAD(&g_max_concurrent)) &&
	       !__atomic_compare_exchange_n(&g_max_concurrent, &m, cur, 0,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	c->deadline_us = now_us() + (int64_t)o.timeout_secs * 1000000;
	to_append(t, fd);
	if (connect(fd, (struct sockaddr *)&sa_target[kind], sizeof(sa_target[0])) &&
	    errno != EINPROGRESS) {
		conn_close(t, fd);
		return;
	}
	if (arm(t, fd, EPOLL_CTL_ADD, EPOLLOUT))
		conn_close(t, fd);
}

static void
client_connected(struct thr *t, int fd)
{
	struct conn *c = &tab[fd];
	unsigned char raw[16];
	char key[25], req[400];
	int err = 0, i, len;
	socklen_t sl = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) || err) {
		conn_close(t, fd);
		return;
	}
	if (c->kind != K_ECHO) {
		outcome(t, c, O_CONNECTED);
		conn_close(t, fd);
		return;
	}
	for (i = 0; i < 16; i += 4) {
		unsigned int r = rng_next(&t->rng);
		memcpy(raw + i, &r, 4);
	}
	base64(raw, 16, key);
	ws_accept(key, 24, c->accept);
	/* byte for byte what lws 4.3 sends to the internal echo server */
	len = snprintf(req, sizeof(req),
		"GET / HTTP/1.1\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n"
		"Host: 127.0.0.1\r\nOrigin: http://127.0.0.1\r\n"
		"Upgrade: websocket\r\nConnection: Upgrade\r\n"
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Protocol: " PROTOCOL "\r\n"
		"Sec-WebSocket-Version: 13\r\n\r\n", key);
	if (sendall(fd, req, (size_t)len) || arm(t, fd, EPOLL_CTL_MOD, EPOLLIN)) {
		conn_close(t, fd);
		return;
	}
	c->state = C_HANDSHAKE;
}

static void
send_frame(struct thr *t, int fd, int opcode, const void *payload, size_t len)
{
	unsigned char f[2 + 4 + 125];
	unsigned int mask = rng_next(&t->rng);
	size_t i;

	f[0] = (unsigned char)(0x80 | opcode);
	f[1] = (unsigned char)(0x80 | len);
	memcpy(f + 2, &mask, 4);
	for (i = 0; i < len; i++)
		f[6 + i] = ((const unsigned char *)payload)[i] ^ f[2 + i % 4];
	if (sendall(fd, f, 6 + len))
		conn_close(t, fd);
}

/* a complete frame at the start of in[]: its payload (unmasked in place) */
static int
frame(struct conn *c, int *opcode, unsigned char **payload, size_t *plen)
{
	size_t hl = 2, len;
	unsigned char *p = c->in;

	if (c->inlen < 2)
		return 0;
	len = p[1] & 0x7f;
	if (len == 126) {
		if (c->inlen < 4)
			return 0;
		len = (size_t)p[2] << 8 | p[3];
		hl = 4;
	} else if (len == 127)
		return -1;
	if (p[1] & 0x80)
		hl += 4;
	if (hl + len > INBUF)
		return -1;
	if (c->inlen < hl + len)
		return 0;
	if (p[1] & 0x80) {
		size_t i;
		for (i = 0; i < len; i++)
			p[hl + i] ^= p[hl - 4 + i % 4];
	}
	*opcode = p[0] & 0x0f;
	*payload = p + hl;
	*plen = len;
	return (int)(hl + len);
}

static void
consume(struct conn *c, size_t n)
{
	memmove(c->in, c->in + n, c->inlen - n);
	c->inlen = (uint16_t)(c->inlen - n);
}

static void
client_readable(struct thr *t, int fd)
{
	struct conn *c = &tab[fd];
	ssize_t r = recv(fd, c->in + c->inlen, INBUF - c->inlen, 0);
	unsigned char *pl;
	size_t plen;
	int op, n;

	if (r <= 0) {
		if (r < 0 && errno == EAGAIN)
			return;
		conn_close(t, fd);
		return;
	}
	c->inlen = (uint16_t)(c->inlen + r);
	if (c->state == C_HANDSHAKE) {
		char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4), *acc;

		if (!end) {
			if (c->inlen == INBUF)
				conn_close(t, fd);
			return;
		}
		*end = '\0';
		acc = strstr((char *)c->in, "Sec-WebSocket-Accept: ");
		if (strncmp((char *)c->in, "HTTP/1.1 101 ", 13) || !acc ||
		    strncmp(acc + 22, c->accept, 28) ||
		    !strstr((char *)c->in, "Sec-WebSocket-Protocol: " PROTOCOL)) {
			conn_close(t, fd);
			return;
		}
		to_remove(t, fd);
		consume(c, (size_t)(end + 4 - (char *)c->in));
		c->state = C_ECHO;
		send_frame(t, fd, 1, c->msg, c->msglen);
		if (c->state == FREE)
			return;
	}
	while ((n = frame(c, &op, &pl, &plen)) != 0) {
		if (n < 0) {
			conn_close(t, fd);
			return;
		}
		if (c->state == C_ECHO && op == 1) {
			int ok = plen == c->msglen && !memcmp(pl, c->msg, plen);
			outcome(t, c, ok ? O_ECHOED : O_MISMATCH);
			c->state = C_CLOSING;
			send_frame(t, fd, 8, "\x03\xe8", 2);
			if (c->state == FREE)
				return;
		} else if (op == 8) {
			conn_close(t, fd); /* the server's close: done */
			return;
		}
		consume(c, (size_t)n);
	}
}

static void
server_accept(struct thr *t)
{
	int i, fd;

	for (i = 0; i < 64; i++) {
		fd = accept4(fd_listen, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (fd >= tab_len) {
			close(fd);
			continue;
		}
		memset(&tab[fd], 0, offsetof(struct conn, in));
		tab[fd].state = S_REQUEST;
		tab[fd].prev = tab[fd].next = -2;
		A_STORE(&tab[fd].gen, A_ADD(&g_gen, 1) | 1u);
		if (arm(t, fd, EPOLL_CTL_ADD, EPOLLIN))
			conn_close(t, fd);
	}
}

static void
server_readable(struct thr *t, int fd)
{
	struct conn *c = &tab[fd];
	ssize_t r = recv(fd, c->in + c->inlen, INBUF - c->inlen, 0);
	unsigned char *pl, out[2 + 125];
	size_t plen;
	int op, n;

	if (r <= 0) {
		if (r < 0 && errno == EAGAIN)
			return;
		conn_close(t, fd);
		return;
	}
	c->inlen = (uint16_t)(c->inlen + r);
	if (c->state == S_REQUEST) {
		char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4), *key, *ke;
		char acc[29], resp[300];

		if (!end) {
			if (c->inlen == INBUF)
				conn_close(t, fd);
			return;
		}
		*end = '\0';
		key = strstr((char *)c->in, "Sec-WebSocket-Key: ");
		ke = key ? strstr(key, "\r\n") : NULL;
		if (!key || (!ke && !(ke = end)) || ke - key - 19 > 64) {
			conn_close(t, fd);
			return;
		}
		ws_accept(key + 19, (size_t)(ke - key - 19), acc);
		/* lws 4.3's own 101 bytes */
		n = snprintf(resp, sizeof(resp),
			"HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n"
			"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
			"Sec-WebSocket-Protocol: " PROTOCOL "\r\n\r\n", acc);
		if (sendall(fd, resp, (size_t)n)) {
			conn_close(t, fd);
			return;
		}
		consume(c, (size_t)(end + 4 - (char *)c->in));
		c->state = S_WS;
	}
	while ((n = frame(c, &op, &pl, &plen)) != 0) {
		if (n < 0 || plen > 125) {
			conn_close(t, fd);
			return;
		}
		out[0] = (unsigned char)(0x80 | op);
		out[1] = (unsigned char)plen;
		memcpy(out + 2, pl, plen);
		if (sendall(fd, out, 2 + plen)) {
			conn_close(t, fd);
			return;
		}
		if (op == 8) {
			conn_close(t, fd);
			return;
		}
		t->server_echoes++;
		consume(c, (size_t)n);
	}
}

static void
initiate_due(struct thr *t, int64_t now)
{
	long due, burst = o.cps / 20 + 1;

	if (burst > o.admit_batch) /* lws-stress's --admit-batch: the same rule */
		burst = o.admit_batch;
	if (!t->tstart_us)
		t->tstart_us = now;
	due = (long)((double)(now - t->tstart_us) * o.cps / 1e6) -
	      t->initiated - t->skipped_cap;
	if (due > burst)
		due = burst;
	while (due-- > 0 && !A_LOAD(&stop_initiating)) {
		if (A_LOAD(&g_concurrent) >= o.max_concurrent) {
			t->skipped_cap++;
			continue;
		}
		initiate_one(t);
	}
}

static void *
worker(void *arg)
{
	struct thr *t = arg;
	struct epoll_event ev[256];
	int initiates = t->idx || o.tsi0_initiates, i, n;

	while (!A_LOAD(&stop_all)) {
		int64_t now = now_us(), wait_us = (int64_t)o.tick_ms * 1000;

		if (t->to_head >= 0 && tab[t->to_head].deadline_us - now < wait_us)
			wait_us = tab[t->to_head].deadline_us - now;
		if (initiates && !A_LOAD(&stop_initiating) && 1000000 / o.cps < wait_us)
			wait_us = 1000000 / o.cps;
		n = epoll_wait(t->ep, ev, 256, wait_us > 0 ? (int)((wait_us + 999) / 1000) : 0);
		for (i = 0; i < n; i++) {
			int fd = (int)(uint32_t)ev[i].data.u64;
			struct conn *c;

			if (fd == fd_listen) {
				server_accept(t);
				continue;
			}
			c = &tab[fd];
			if (A_LOAD(&c->gen) != (uint32_t)(ev[i].data.u64 >> 32))
				continue; /* closed earlier in this batch */
			switch (c->state) {
			case C_CONNECTING:
				client_connected(t, fd);
				break;
			case C_HANDSHAKE: case C_ECHO: case C_CLOSING:
				client_readable(t, fd);
				break;
			case S_REQUEST: case S_WS:
				server_readable(t, fd);
				break;
			}
		}
		now = now_us();
		while (t->to_head >= 0 && tab[t->to_head].deadline_us <= now) {
			int fd = t->to_head;
			outcome(t, &tab[fd], O_TIMEOUT);
			conn_close(t, fd);
		}
		if (initiates && !A_LOAD(&stop_initiating))
			initiate_due(t, now);
	}
	/* shutdown: close what this thread still owns (clients in its FIFO) */
	while (t->to_head >= 0)
		conn_close(t, t->to_head);
	return NULL;
}

/* ------------------------------------------------------------------------ */

static int
bind_loopback(struct sockaddr_in *sa)
{
	socklen_t sl = sizeof(*sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)sa, sizeof(*sa)) ||
	    getsockname(fd, (struct sockaddr *)sa, &sl)) {
		perror("baseline-client: bind");
		exit(1);
	}
	return fd;
}

static void
usage_exit(const char *why)
{
	fprintf(stderr, "baseline-client: %s\nusage: baseline-client [--threads N] "
		"[--cps N] [--duration S] [--mix refused=W,blackhole=W,echo=W]\n"
		"  [--timeout-secs N] [--max-concurrent N] [--nofile N] "
		"[--tsi0-initiates 0|1] [--tick-ms MS] [--seed N] [--admit-batch N]\n", why);
	exit(2);
}

static void
parse_mix(char *v)
{
	char *tok, *save = NULL;
	int k;

	o.w[0] = o.w[1] = o.w[2] = 0;
	for (tok = strtok_r(v, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq)
			usage_exit("--mix: expected name=weight,...");
		*eq = '\0';
		for (k = 0; k < K_COUNT && strcmp(tok, kind_name[k]); k++)
			;
		if (k == K_COUNT)
			usage_exit("--mix: names are refused, blackhole, echo");
		o.w[k] = atoi(eq + 1);
	}
	if (o.w[0] < 0 || o.w[1] < 0 || o.w[2] < 0 || o.w[0] + o.w[1] + o.w[2] <= 0)
		usage_exit("--mix: weights must sum to more than 0");
}

int
main(int argc, char **argv)
{
	struct rlimit rl;
	struct sockaddr_in sa;
	int fd_refused, fd_blackhole, fd_prefill[PREFILL], i, k, m;
	int64_t t0, end, drain_end;
	double dur;
	long server_echoes = 0, skipped = 0, outs[K_COUNT][O_COUNT] = { { 0 } };

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		char *v = i + 1 < argc ? argv[++i] : NULL;

		if (!v)
			usage_exit("missing value");
		if (!strcmp(a, "--threads")) o.threads = atoi(v);
		else if (!strcmp(a, "--cps")) o.cps = atoi(v);
		else if (!strcmp(a, "--duration")) o.duration = atof(v);
		else if (!strcmp(a, "--mix")) parse_mix(v);
		else if (!strcmp(a, "--timeout-secs")) o.timeout_secs = atoi(v);
		else if (!strcmp(a, "--max-concurrent")) o.max_concurrent = atol(v);
		else if (!strcmp(a, "--nofile")) o.nofile = atol(v);
		else if (!strcmp(a, "--tsi0-initiates")) o.tsi0_initiates = atoi(v);
		else if (!strcmp(a, "--tick-ms")) o.tick_ms = atoi(v);
		else if (!strcmp(a, "--admit-batch")) o.admit_batch = atoi(v);
		else if (!strcmp(a, "--seed")) o.seed = (unsigned int)atol(v);
		else usage_exit("unknown flag");
	}
	if (o.threads < (o.tsi0_initiates ? 1 : 2) || o.threads > MAX_THREADS || o.cps < 1 ||
	    o.duration <= 0 || o.duration > 86400 || o.timeout_secs < 1 ||
	    o.max_concurrent < 1 || o.nofile < 64 || o.tick_ms < 1 || o.admit_batch < 1)
		usage_exit("a value is out of range");
	signal(SIGPIPE, SIG_IGN);

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = (rlim_t)o.nofile;
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur > rl.rlim_max)
			rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	tab_len = (long)rl.rlim_cur;
	tab = calloc((size_t)tab_len, sizeof(*tab));
	if (!tab) {
		perror("baseline-client: calloc");
		return 1;
	}

	/* the same three kinds of loopback target as lws-stress */
	fd_refused = bind_loopback(&sa_target[K_REFUSED]);
	fd_blackhole = bind_loopback(&sa_target[K_BLACKHOLE]);
	if (listen(fd_blackhole, 0)) {
		perror("baseline-client: listen");
		return 1;
	}
	for (i = 0; i < PREFILL; i++) {
		fd_prefill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
					   SOCK_CLOEXEC, 0);
		if (fd_prefill[i] >= 0)
			connect(fd_prefill[i], (struct sockaddr *)&sa_target[K_BLACKHOLE],
				sizeof(sa));
	}
	usleep(100000); /* let the queue fill; later SYNs are dropped */
	fd_listen = bind_loopback(&sa_target[K_ECHO]);
	if (listen(fd_listen, 4096)) {
		perror("baseline-client: listen");
		return 1;
	}
	if (fcntl(fd_listen, F_SETFL, fcntl(fd_listen, F_GETFL) | O_NONBLOCK)) {
		perror("baseline-client: fcntl");
		return 1;
	}

	for (i = 0; i < o.threads; i++) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };

		thr[i].idx = i;
		thr[i].to_head = thr[i].to_tail = -1;
		thr[i].rng = (o.seed * 2654435761u) ^ (unsigned int)(i * 40503 + 1);
		if (!thr[i].rng)
			thr[i].rng = 1;
		thr[i].ep = epoll_create1(EPOLL_CLOEXEC);
		ev.data.u64 = (uint32_t)fd_listen;
		if (thr[i].ep < 0 || epoll_ctl(thr[i].ep, EPOLL_CTL_ADD, fd_listen, &ev)) {
			perror("baseline-client: epoll");
			return 1;
		}
	}
	printf("{\"type\":\"start\",\"ports\":{\"refused\":%d,\"blackhole\":%d,"
	       "\"echo\":%d}}\n", ntohs(sa_target[K_REFUSED].sin_port),
	       ntohs(sa_target[K_BLACKHOLE].sin_port), ntohs(sa_target[K_ECHO].sin_port));
	fflush(stdout);
	t0 = now_us();
	for (i = 0; i < o.threads; i++)
		if (pthread_create(&thr[i].tid, NULL, worker, &thr[i])) {
			fprintf(stderr, "baseline-client: pthread_create failed\n");
			return 1;
		}
	end = t0 + (int64_t)(o.duration * 1e6);
	while (now_us() < end)
		usleep(10000);
	A_STORE(&stop_initiating, 1);
	dur = (double)(now_us() - t0) / 1e6;
	drain_end = now_us() + (int64_t)o.timeout_secs * 1000000 + 3000000;
	while (A_LOAD(&g_concurrent) > 0 && now_us() < drain_end)
		usleep(10000);
	A_STORE(&stop_all, 1);
	for (i = 0; i < o.threads; i++) {
		pthread_join(thr[i].tid, NULL);
		server_echoes += thr[i].server_echoes;
		skipped += thr[i].skipped_cap;
		for (k = 0; k < K_COUNT; k++)
			for (m = 0; m < O_COUNT; m++)
				outs[k][m] += thr[i].outcomes[k][m];
	}

	printf("{\"type\":\"summary\",\"connections\":%ld,\"cps\":%.1f,"
	       "\"max_concurrent\":%ld,\"duration_s\":%.3f,\"open_at_end\":%ld,"
	       "\"server_echoes\":%ld,\"skipped_cap\":%ld,\"nofile\":%ld,\"outcomes\":{",
	       A_LOAD(&g_initiated), (double)A_LOAD(&g_initiated) / dur,
	       A_LOAD(&g_max_concurrent), dur, A_LOAD(&g_concurrent), server_echoes,
	       skipped, tab_len);
	for (k = 0; k < K_COUNT; k++) {
		int first = 1;
		printf("%s\"%s\":{", k ? "," : "", kind_name[k]);
		for (m = 1; m < O_COUNT; m++)
			if (outs[k][m]) {
				printf("%s\"%s\":%ld", first ? "" : ",", outcome_name[m],
				       outs[k][m]);
				first = 0;
			}
		printf("}");
	}
	printf("}}\n");
	close(fd_refused);
	close(fd_blackhole);
	for (i = 0; i < PREFILL; i++)
		if (fd_prefill[i] >= 0)
			close(fd_prefill[i]);
	return 0;
}
