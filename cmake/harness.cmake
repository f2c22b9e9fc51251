# lws-stress: the multi-threaded lws client stress harness
# (lwsbuild/build/harness/stress_harness.c).
#
# include()d from cmake/CMakeLists.txt AFTER
#     add_subdirectory(<prepared lws tree> lws)
# so that the target websockets_shared exists.  Needs LWS_MAX_SMP=8 (or at
# least --threads) in the lws configure, or lws silently clamps count_threads.
#
# Sanitizers (lwsbuild/resources/variants.toml, [sanitizer.NAME]):
#  - the sanitizer's c_flags are in the top-level CMAKE_C_FLAGS, which CMake
#    puts on C compile and link lines alike: lws, the probe and this target get
#    them from there (an uninstrumented executable linked to an ASan lib would
#    not start: "ASan runtime does not come first").
#  - lws's own sanitizer option (LWS_WITH_ASAN) adds more flags to the lws
#    subdirectory only; the sanitizer's program_flags are that set, given to
#    our programs here (and in cveserver.cmake) through the spec:
#    LWSBUILD_PROGRAM_SANITIZER_FLAGS, and _GCC for those gcc alone takes.

find_package(Threads REQUIRED)

add_executable(lws-stress
	"${LWSBUILD_HARNESS_DIR}/stress_harness.c")

# lws public headers: libwebsockets.h + libwebsockets/*.h from the source tree,
# and the generated lws_config.h in the lws binary dir (both at the top and in
# include/; the include/ copy is made by a custom command that
# websockets_shared depends on).
# The harness's flags (defaults, bounds, usage), generated from lwsbuild/resources/harness.toml beside
# the spec; copied into the build tree, whose path the prefix map hides.
configure_file("${LWSBUILD_HARNESS_FLAGS_H}" "${CMAKE_CURRENT_BINARY_DIR}/lwsbuild-generated/lws_stress_flags.h" COPYONLY)

target_include_directories(lws-stress PRIVATE
	"${CMAKE_CURRENT_BINARY_DIR}/lwsbuild-generated"
	"${libwebsockets_SOURCE_DIR}/include"
	"${libwebsockets_BINARY_DIR}/include"
	"${libwebsockets_BINARY_DIR}")

target_link_libraries(lws-stress PRIVATE websockets_shared Threads::Threads)
add_dependencies(lws-stress websockets_shared)

# Warning-free under lws's own warning set: tests/test_toolchains.py recompiles it with -Werror.
# A build never fails on a warning: a newer compiler's new one must not stop a user's build (the
# reason lws's own -Werror is off, variants.toml [[line]]).
target_compile_options(lws-stress PRIVATE ${LWSBUILD_PROGRAM_WARNINGS})

set(_lws_stress_san ${LWSBUILD_PROGRAM_SANITIZER_FLAGS})
if (NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
	list(APPEND _lws_stress_san ${LWSBUILD_PROGRAM_SANITIZER_FLAGS_GCC})
endif()
if (_lws_stress_san)
	target_compile_options(lws-stress PRIVATE ${_lws_stress_san})
	target_link_options(lws-stress PRIVATE ${_lws_stress_san})
endif()

# installed layout: <prefix>/bin/lws-stress finds <prefix>/lib/libwebsockets.so.
# Linked with that RPATH from the start: a build-tree RPATH would be patched in place at install,
# and the cache directory's length would then shift the installed binary's bytes (reproducibility).
# It runs from the install prefix only.
set_target_properties(lws-stress PROPERTIES
	INSTALL_RPATH "$ORIGIN/../lib"
	BUILD_WITH_INSTALL_RPATH ON)

install(TARGETS lws-stress RUNTIME DESTINATION bin)
