/*
 * lwsbuild layout probe
 *
 * Compiled against the very headers + generated lws_config.h of one lws
 * build, it prints (to stdout) a JSON document describing the struct sizes,
 * field offsets and constants that lwsbuild's ctypes bindings
 * (lwsbuild/native/library.py) rely on.  The Python side never hand-writes a struct
 * layout: everything it pokes into memory comes from this output.
 *
 * Usage: lws-layout-probe [OUTPUT.json]   (default: stdout)
 *
 * It deliberately does not call into (or link against) libwebsockets: it only
 * uses sizeof / offsetof / macros / enum values, so it also builds and runs
 * when the library itself is sanitizer-instrumented.
 *
 * Schema (schema_version 1):
 * {
 *   "schema_version": 1,
 *   "lws_version_string": LWS_LIBRARY_VERSION,
 *   "pointer_size": N,
 *   "config": { "LWS_WITH_TLS": bool, ... },
 *   "structs": { "<name>": { "size": N,
 *                            "fields": { "<field>": {"offset": N, "size": N} } } },
 *   "constants": { "<NAME>": N, ... }
 * }
 */

#include <libwebsockets.h>

#include <stddef.h>
#include <stdio.h>

static int first_item;

static void
sep(void)
{
	if (!first_item)
		printf(",");
	first_item = 0;
	printf("\n    ");
}

static void
begin_object(const char *name)
{
	printf(",\n  \"%s\": {", name);
	first_item = 1;
}

static void
end_object(void)
{
	printf("\n  }");
}

static void
emit_bool(const char *name, int v)
{
	sep();
	printf("\"%s\": %s", name, v ? "true" : "false");
}

static void
emit_const(const char *name, long long v)
{
	sep();
	printf("\"%s\": %lld", name, v);
}

static int first_field;

static void
begin_struct(const char *name, size_t size)
{
	sep();
	printf("\"%s\": {\"size\": %zu, \"fields\": {", name, size);
	first_field = 1;
}

static void
emit_field(const char *name, size_t offset, size_t size)
{
	printf("%s\n      \"%s\": {\"offset\": %zu, \"size\": %zu}",
	       first_field ? "" : ",", name, offset, size);
	first_field = 0;
}

static void
end_struct(void)
{
	printf("}}");
}

#define FIELD(type, member) \
	emit_field(#member, offsetof(struct type, member), \
		   sizeof(((struct type *)0)->member))

#define CONST(x) emit_const(#x, (long long)(x))

#if defined(LWS_WITH_TLS)
#define CFG_TLS 1
#else
#define CFG_TLS 0
#endif
#if defined(LWS_WITH_NETWORK)
#define CFG_NETWORK 1
#else
#define CFG_NETWORK 0
#endif
#if defined(LWS_WITH_CLIENT)
#define CFG_CLIENT 1
#else
#define CFG_CLIENT 0
#endif
#if defined(LWS_WITH_SERVER)
#define CFG_SERVER 1
#else
#define CFG_SERVER 0
#endif
#if defined(LWS_ROLE_WS)
#define CFG_ROLE_WS 1
#else
#define CFG_ROLE_WS 0
#endif
#if defined(LWS_ROLE_H1)
#define CFG_ROLE_H1 1
#else
#define CFG_ROLE_H1 0
#endif
#if defined(LWS_ROLE_H2)
#define CFG_ROLE_H2 1
#else
#define CFG_ROLE_H2 0
#endif
#if defined(LWS_ROLE_MQTT)
#define CFG_ROLE_MQTT 1
#else
#define CFG_ROLE_MQTT 0
#endif
#if defined(LWS_WITH_MBEDTLS)
#define CFG_MBEDTLS 1
#else
#define CFG_MBEDTLS 0
#endif
#if defined(LWS_WITH_TLS_SESSIONS)
#define CFG_TLS_SESSIONS 1
#else
#define CFG_TLS_SESSIONS 0
#endif
#if defined(LWS_WITH_PLUGINS)
#define CFG_PLUGINS 1
#else
#define CFG_PLUGINS 0
#endif
#if defined(LWS_WITH_FILE_OPS)
#define CFG_FILE_OPS 1
#else
#define CFG_FILE_OPS 0
#endif
#if defined(LWS_WITH_SOCKS5)
#define CFG_SOCKS5 1
#else
#define CFG_SOCKS5 0
#endif
#if defined(LWS_HAVE_SYS_CAPABILITY_H) && defined(LWS_HAVE_LIBCAP)
#define CFG_CAPS 1
#else
#define CFG_CAPS 0
#endif
#if defined(LWS_WITH_SYS_STATE)
#define CFG_SYS_STATE 1
#else
#define CFG_SYS_STATE 0
#endif
#if defined(LWS_WITH_SECURE_STREAMS)
#define CFG_SS 1
#else
#define CFG_SS 0
#endif
#if defined(LWS_WITH_PEER_LIMITS)
#define CFG_PEER_LIMITS 1
#else
#define CFG_PEER_LIMITS 0
#endif
#if defined(LWS_WITH_SYS_FAULT_INJECTION)
#define CFG_FI 1
#else
#define CFG_FI 0
#endif
#if defined(LWS_WITH_SYS_SMD)
#define CFG_SMD 1
#else
#define CFG_SMD 0
#endif
#if defined(LWS_WITH_SYS_METRICS)
#define CFG_METRICS 1
#else
#define CFG_METRICS 0
#endif
#if defined(LWS_WITH_TLS_JIT_TRUST)
#define CFG_JIT_TRUST 1
#else
#define CFG_JIT_TRUST 0
#endif
#if defined(LWS_WITH_CACHE_NSCOOKIEJAR)
#define CFG_NSCOOKIEJAR 1
#else
#define CFG_NSCOOKIEJAR 0
#endif
#if defined(LWS_WITHOUT_EXTENSIONS)
#define CFG_NO_EXT 1
#else
#define CFG_NO_EXT 0
#endif
#if defined(LWS_WITH_ASAN)
#define CFG_ASAN 1
#else
#define CFG_ASAN 0
#endif
#if defined(LWS_WITH_SUL_DEBUGGING)
#define CFG_SUL_DEBUG 1
#else
#define CFG_SUL_DEBUG 0
#endif
#if defined(LWS_MAX_SMP)
#define CFG_MAX_SMP LWS_MAX_SMP
#else
#define CFG_MAX_SMP 1
#endif

int
main(int argc, char **argv)
{
	/* optional argument: write to this file instead of stdout */
	if (argc > 1 && !freopen(argv[1], "w", stdout)) {
		fprintf(stderr, "lws-layout-probe: cannot write %s\n", argv[1]);
		return 1;
	}

	printf("{\n  \"schema_version\": 1,\n");
	printf("  \"lws_version_string\": \"%s\",\n", LWS_LIBRARY_VERSION);
	printf("  \"pointer_size\": %zu", sizeof(void *));

	/* config flags that change public struct layouts (or our behaviour) */
	begin_object("config");
	emit_bool("LWS_WITH_NETWORK", CFG_NETWORK);
	emit_bool("LWS_WITH_CLIENT", CFG_CLIENT);
	emit_bool("LWS_WITH_SERVER", CFG_SERVER);
	emit_bool("LWS_ROLE_WS", CFG_ROLE_WS);
	emit_bool("LWS_ROLE_H1", CFG_ROLE_H1);
	emit_bool("LWS_ROLE_H2", CFG_ROLE_H2);
	emit_bool("LWS_ROLE_MQTT", CFG_ROLE_MQTT);
	emit_bool("LWS_WITH_TLS", CFG_TLS);
	emit_bool("LWS_WITH_MBEDTLS", CFG_MBEDTLS);
	emit_bool("LWS_WITH_TLS_SESSIONS", CFG_TLS_SESSIONS);
	emit_bool("LWS_WITH_PLUGINS", CFG_PLUGINS);
	emit_bool("LWS_WITH_FILE_OPS", CFG_FILE_OPS);
	emit_bool("LWS_WITH_SOCKS5", CFG_SOCKS5);
	emit_bool("LWS_HAVE_LIBCAP", CFG_CAPS);
	emit_bool("LWS_WITH_SYS_STATE", CFG_SYS_STATE);
	emit_bool("LWS_WITH_SECURE_STREAMS", CFG_SS);
	emit_bool("LWS_WITH_PEER_LIMITS", CFG_PEER_LIMITS);
	emit_bool("LWS_WITH_SYS_FAULT_INJECTION", CFG_FI);
	emit_bool("LWS_WITH_SYS_SMD", CFG_SMD);
	emit_bool("LWS_WITH_SYS_METRICS", CFG_METRICS);
	emit_bool("LWS_WITH_TLS_JIT_TRUST", CFG_JIT_TRUST);
	emit_bool("LWS_WITH_CACHE_NSCOOKIEJAR", CFG_NSCOOKIEJAR);
	emit_bool("LWS_WITHOUT_EXTENSIONS", CFG_NO_EXT);
	emit_bool("LWS_WITH_ASAN", CFG_ASAN);
	emit_bool("LWS_WITH_SUL_DEBUGGING", CFG_SUL_DEBUG);
	emit_const("LWS_MAX_SMP", CFG_MAX_SMP);
	end_object();

	begin_object("structs");

	begin_struct("lws_context_creation_info",
		     sizeof(struct lws_context_creation_info));
	FIELD(lws_context_creation_info, protocols);
	FIELD(lws_context_creation_info, port);
	FIELD(lws_context_creation_info, timeout_secs);
	FIELD(lws_context_creation_info, connect_timeout_secs);
	FIELD(lws_context_creation_info, gid);
	FIELD(lws_context_creation_info, uid);
	FIELD(lws_context_creation_info, options);
	FIELD(lws_context_creation_info, user);
	FIELD(lws_context_creation_info, count_threads);
	FIELD(lws_context_creation_info, fd_limit_per_thread);
	FIELD(lws_context_creation_info, vhost_name);
	FIELD(lws_context_creation_info, pt_serv_buf_size);
	end_struct();

	begin_struct("lws_protocols", sizeof(struct lws_protocols));
	FIELD(lws_protocols, name);
	FIELD(lws_protocols, callback);
	FIELD(lws_protocols, per_session_data_size);
	FIELD(lws_protocols, rx_buffer_size);
	FIELD(lws_protocols, id);
	FIELD(lws_protocols, user);
	FIELD(lws_protocols, tx_packet_size);
	end_struct();

	begin_struct("lws_client_connect_info",
		     sizeof(struct lws_client_connect_info));
	FIELD(lws_client_connect_info, context);
	FIELD(lws_client_connect_info, address);
	FIELD(lws_client_connect_info, port);
	FIELD(lws_client_connect_info, ssl_connection);
	FIELD(lws_client_connect_info, path);
	FIELD(lws_client_connect_info, host);
	FIELD(lws_client_connect_info, origin);
	FIELD(lws_client_connect_info, protocol);
	FIELD(lws_client_connect_info, ietf_version_or_minus_one);
	FIELD(lws_client_connect_info, userdata);
	FIELD(lws_client_connect_info, pwsi);
	FIELD(lws_client_connect_info, local_protocol_name);
	FIELD(lws_client_connect_info, opaque_user_data);
	end_struct();

	end_object();

	begin_object("constants");
	CONST(LWS_PRE);
	CONST(CONTEXT_PORT_NO_LISTEN);

	/* callback reasons */
	CONST(LWS_CALLBACK_PROTOCOL_INIT);
	CONST(LWS_CALLBACK_PROTOCOL_DESTROY);
	CONST(LWS_CALLBACK_CLIENT_CONNECTION_ERROR);
	CONST(LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH);
	CONST(LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER);
#if LWS_LIBRARY_VERSION_MAJOR > 4 || LWS_LIBRARY_VERSION_MINOR >= 2 /* not in 4.1 */
	CONST(LWS_CALLBACK_CONNECTING);
#endif
	CONST(LWS_CALLBACK_CLIENT_ESTABLISHED);
	CONST(LWS_CALLBACK_CLIENT_RECEIVE);
	CONST(LWS_CALLBACK_CLIENT_WRITEABLE);
	CONST(LWS_CALLBACK_CLIENT_CLOSED);
	CONST(LWS_CALLBACK_WS_PEER_INITIATED_CLOSE);
	CONST(LWS_CALLBACK_CLOSED_CLIENT_HTTP);
	CONST(LWS_CALLBACK_WSI_CREATE);
	CONST(LWS_CALLBACK_WSI_DESTROY);
	CONST(LWS_CALLBACK_EVENT_WAIT_CANCELLED);
	CONST(LWS_CALLBACK_TIMER);

	/* lws_write() protocols */
	CONST(LWS_WRITE_TEXT);
	CONST(LWS_WRITE_BINARY);
	CONST(LWS_WRITE_CONTINUATION);
	CONST(LWS_WRITE_NO_FIN);

	/* client connect flags */
	CONST(LCCSCF_USE_SSL);
	CONST(LCCSCF_ALLOW_SELFSIGNED);
	CONST(LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK);
	CONST(LCCSCF_ALLOW_EXPIRED);

	/* context options */
	CONST(LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT);
	CONST(LWS_SERVER_OPTION_DISABLE_IPV6);

	/* close status / timeouts */
	CONST(LWS_CLOSE_STATUS_NORMAL);
	CONST(LWS_CLOSE_STATUS_GOINGAWAY);
	CONST(PENDING_TIMEOUT_USER_OK);
	CONST(PENDING_TIMEOUT_CLOSE_SEND);
	CONST(LWS_TO_KILL_ASYNC);
	CONST(LWS_TO_KILL_SYNC);

	/* log levels */
	CONST(LLL_ERR);
	CONST(LLL_WARN);
	CONST(LLL_NOTICE);
	CONST(LLL_INFO);
	CONST(LLL_USER);
	end_object();

	printf("\n}\n");

	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "lws-layout-probe: write error\n");
		return 1;
	}

	return 0;
}
