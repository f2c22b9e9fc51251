# lws-cve-server: the loopback HTTP/h2 server the CVE proof tests send crafted requests to
# (lwsbuild/build/harness/cve_server.c, tests/test_cve.py). include()d after add_subdirectory(lws), like
# harness.cmake, whose notes on include paths, sanitizer flags and RPATH apply here too.

add_executable(lws-cve-server "${LWSBUILD_HARNESS_DIR}/cve_server.c")
target_include_directories(lws-cve-server PRIVATE
	"${libwebsockets_SOURCE_DIR}/include"
	"${libwebsockets_BINARY_DIR}/include"
	"${libwebsockets_BINARY_DIR}")
target_link_libraries(lws-cve-server PRIVATE websockets_shared)
add_dependencies(lws-cve-server websockets_shared)
target_compile_options(lws-cve-server PRIVATE ${LWSBUILD_PROGRAM_WARNINGS})

set(_lws_cve_san ${LWSBUILD_PROGRAM_SANITIZER_FLAGS})
if (NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
	list(APPEND _lws_cve_san ${LWSBUILD_PROGRAM_SANITIZER_FLAGS_GCC})
endif()
if (_lws_cve_san)
	target_compile_options(lws-cve-server PRIVATE ${_lws_cve_san})
	target_link_options(lws-cve-server PRIVATE ${_lws_cve_san})
endif()

set_target_properties(lws-cve-server PROPERTIES
	INSTALL_RPATH "$ORIGIN/../lib"
	BUILD_WITH_INSTALL_RPATH ON)
install(TARGETS lws-cve-server RUNTIME DESTINATION bin)
