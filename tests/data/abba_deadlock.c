/*
 * A real ABBA deadlock with lws's lock function names, for tests/test_stacks.py: thread
 * "lws-svc-1" holds the "context" lock and waits for the "pt" lock in connect_timeout(); thread
 * "lws-svc-2" holds the "pt" lock and waits for the "context" lock in free_wsi(). Prints "ready"
 * once both are blocked, then stays blocked until killed.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static pthread_mutex_t context_mutex = PTHREAD_MUTEX_INITIALIZER, pt_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t both_hold;

__attribute__((noinline)) void lws_mutex_refcount_lock(pthread_mutex_t *m) { pthread_mutex_lock(m); }
__attribute__((noinline)) void lws_context_lock(void) { lws_mutex_refcount_lock(&context_mutex); }

__attribute__((noinline)) static void connect_timeout(void)
{
	lws_context_lock();
	pthread_barrier_wait(&both_hold);
	lws_mutex_refcount_lock(&pt_mutex); /* lws_pt_lock() is this macro */
}

__attribute__((noinline)) static void free_wsi(void)
{
	lws_mutex_refcount_lock(&pt_mutex);
	pthread_barrier_wait(&both_hold);
	lws_context_lock();
}

static void *one(void *a) { (void)a; connect_timeout(); return NULL; }
static void *two(void *a) { (void)a; free_wsi(); return NULL; }

int main(void)
{
	pthread_t t1, t2;

	pthread_barrier_init(&both_hold, NULL, 2);
	pthread_create(&t1, NULL, one, NULL);
	pthread_setname_np(t1, "lws-svc-1");
	pthread_create(&t2, NULL, two, NULL);
	pthread_setname_np(t2, "lws-svc-2");
	usleep(200000);
	printf("ready\n");
	fflush(stdout);
	pthread_join(t1, NULL);
	return 0;
}
