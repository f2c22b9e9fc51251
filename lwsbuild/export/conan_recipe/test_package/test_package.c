/* A WebSocket round trip through the packaged libwebsockets: one context serves "echo" on
 * 127.0.0.1 (an ephemeral port) and connects to it; the client sends a message and must get it
 * back within 10 s. Exit 0 only on the echo. */
#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char message[] = "lwsbuild test_package round trip";
static int outcome; /* 0 running, 1 echoed, -1 failed */

static int
server_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	unsigned char buf[LWS_PRE + 128];

	if (reason == LWS_CALLBACK_RECEIVE) {
		if (len > sizeof(buf) - LWS_PRE)
			return -1;
		memcpy(buf + LWS_PRE, in, len);
		if (lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_TEXT) < (int)len)
			return -1;
		return 0;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static int
client_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	unsigned char buf[LWS_PRE + sizeof(message)];

	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		memcpy(buf + LWS_PRE, message, sizeof(message) - 1);
		if (lws_write(wsi, buf + LWS_PRE, sizeof(message) - 1, LWS_WRITE_TEXT) < (int)sizeof(message) - 1)
			return -1;
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		outcome = len == sizeof(message) - 1 && !memcmp(in, message, len) ? 1 : -1;
		return -1; /* done: close */
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		fprintf(stderr, "connection error: %s\n", in ? (const char *)in : "(none)");
		outcome = -1;
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols server_protocols[] = {
	{ .name = "echo", .callback = server_cb, .rx_buffer_size = 128 },
	{ .name = NULL }
};
static const struct lws_protocols client_protocols[] = {
	{ .name = "echo", .callback = client_cb, .rx_buffer_size = 128 },
	{ .name = NULL }
};

int
main(void)
{
	struct lws_context_creation_info info;
	struct lws_client_connect_info cc;
	struct lws_context *context;
	struct lws_vhost *server, *client;
	time_t deadline;
	int port;

	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
	printf("%s\n", lws_get_library_version());
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	context = lws_create_context(&info);
	if (!context)
		return 1;

	memset(&info, 0, sizeof(info));
	info.vhost_name = "server";
	info.iface = "127.0.0.1";
	info.port = 0; /* an ephemeral port */
	info.protocols = server_protocols;
	server = lws_create_vhost(context, &info);
	memset(&info, 0, sizeof(info));
	info.vhost_name = "client";
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = client_protocols;
	client = lws_create_vhost(context, &info);
	port = server ? lws_get_vhost_listen_port(server) : -1;
	if (!server || !client || port <= 0) {
		fprintf(stderr, "no vhosts (listen port %d)\n", port);
		lws_context_destroy(context);
		return 1;
	}

	memset(&cc, 0, sizeof(cc));
	cc.context = context;
	cc.vhost = client;
	cc.address = "127.0.0.1";
	cc.port = port;
	cc.path = "/";
	cc.host = "127.0.0.1";
	cc.origin = "127.0.0.1";
	cc.protocol = "echo";
	if (!lws_client_connect_via_info(&cc))
		outcome = -1;

	deadline = time(NULL) + 10;
	while (!outcome && time(NULL) < deadline)
		if (lws_service(context, 0) < 0)
			break;
	lws_context_destroy(context);
	printf("round trip on 127.0.0.1:%d: %s\n", port, outcome == 1 ? "echoed" : "FAILED");
	return outcome == 1 ? 0 : 1;
}
