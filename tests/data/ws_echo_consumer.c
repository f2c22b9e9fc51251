/*
 * A C program that uses libwebsockets the way a consumer does (tests/test_link_tls.py compiles it
 * against a build through pkg-config, the CMake targets or `lwsbuild config`).
 *
 *   ws_echo_consumer PORT [CA_FILE]
 *
 * connects to 127.0.0.1:PORT, path /echo: ws://, or wss:// when CA_FILE is given (the peer's
 * certificate must chain to CA_FILE and name "localhost"). It sends one text message, checks the
 * echo byte for byte, closes with status 1000 and prints "lws VERSION echo ok". Exit 0 only then,
 * 1 on any failure, 2 on usage, 3 when wss:// is asked of an lws without TLS; 10 s at most.
 */

#include <libwebsockets.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char message[] = "lwsbuild consumer \xe2\x9c\x93 round trip 0123456789";
#define MESSAGE_LEN (sizeof(message) - 1)

static int done, echoed;
static char received[256];
static size_t received_len;

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	unsigned char frame[LWS_PRE + MESSAGE_LEN];

	(void)user;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		fprintf(stderr, "connection error: %s\n", in ? (const char *)in : "(no detail)");
		done = 1;
		break;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		lws_callback_on_writable(wsi);
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (echoed) {
			lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
			return -1;
		}
		memcpy(frame + LWS_PRE, message, MESSAGE_LEN);
		if (lws_write(wsi, frame + LWS_PRE, MESSAGE_LEN, LWS_WRITE_TEXT) < (int)MESSAGE_LEN) {
			fprintf(stderr, "lws_write failed\n");
			done = 1;
			return -1;
		}
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (received_len + len > sizeof(received)) {
			fprintf(stderr, "the echo is longer than the message\n");
			done = 1;
			return -1;
		}
		memcpy(received + received_len, in, len);
		received_len += len;
		if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
			if (received_len != MESSAGE_LEN || memcmp(received, message, MESSAGE_LEN)) {
				fprintf(stderr, "the echo differs from the message (%zu bytes)\n", received_len);
				done = 1;
				return -1;
			}
			echoed = 1;
			lws_callback_on_writable(wsi); /* to close */
		}
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
		done = 1;
		break;
	default:
		break;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct lws_protocols protocols[] = {
		{ "lwsbuild-consumer", callback, 0, 4096, 0, NULL, 0 },
		LWS_PROTOCOL_LIST_TERM
	};
	struct lws_context_creation_info info;
	struct lws_client_connect_info connect;
	struct lws_context *context;
	time_t deadline;
	int tls = argc > 2;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s PORT [CA_FILE]\n", argv[0]);
		return 2;
	}
	memset(&info, 0, sizeof info);
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.timeout_secs = 5;
	info.connect_timeout_secs = 5;
	if (tls) {
#if defined(LWS_WITH_TLS)
		info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.client_ssl_ca_filepath = argv[2];
#else
		fprintf(stderr, "this libwebsockets has no TLS: wss:// is not possible\n");
		return 3;
#endif
	}
	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
	context = lws_create_context(&info);
	if (!context)
		return 1;

	memset(&connect, 0, sizeof connect);
	connect.context = context;
	connect.address = "127.0.0.1";
	connect.port = atoi(argv[1]);
	connect.path = "/echo";
	connect.host = "localhost"; /* the name the certificate must carry */
	connect.origin = "localhost";
	connect.ssl_connection = tls ? LCCSCF_USE_SSL : 0;
	connect.local_protocol_name = protocols[0].name;
	if (!lws_client_connect_via_info(&connect))
		done = 1;

	deadline = time(NULL) + 10;
	while (!done && time(NULL) < deadline)
		if (lws_service(context, 0) < 0)
			break;
	lws_context_destroy(context);

	printf("lws %s echo %s\n", lws_get_library_version(), echoed ? "ok" : "FAILED");
	return echoed ? 0 : 1;
}
