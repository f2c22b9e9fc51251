# lwsbuild: struct-layout probe of the lws being built.
#
# include() this after `add_subdirectory(<lws tree> lws)`.  It compiles
# lwsbuild/build/harness/layout_probe.c against the headers and the generated
# lws_config.h of *that* lws build, runs it at build time to produce
# ${CMAKE_CURRENT_BINARY_DIR}/layout.json (target `lws-layout` is part of ALL)
# and installs layout.json to share/lwsbuild/.  The probe binary itself is not
# installed.
#
# Facts about lws 4.3.x as a subdirectory (project name `libwebsockets`):
#   - public headers: <lws src>/include (libwebsockets.h + libwebsockets/*.h)
#   - lws_config.h is generated at configure time into the lws project binary
#     dir (${libwebsockets_BINARY_DIR}/lws_config.h) and copied, at build time
#     by the custom target GENHDR, into ${libwebsockets_BINARY_DIR}/include/
#     together with copies of the public headers.
#   - websockets_shared's INTERFACE_INCLUDE_DIRECTORIES carry
#     <src>/include, <bin>/include and LWS_PUBLIC_INCLUDES (e.g. a non-system
#     OpenSSL include dir) - exactly what the probe needs.
#   - lws's -fsanitize flags are set on CMAKE_C_FLAGS in lws's own directory
#     scope only, but a sanitizer variant's c_flags (variants.toml) reach every
#     target through the top-level CMAKE_C_FLAGS, so the probe is instrumented
#     too.  It never links libwebsockets (sizeof/offsetof/macros only); the
#     run below has the sanitizer's build_options (LWSBUILD_SANITIZER_BUILD_ENV,
#     from the spec: LeakSanitizer off) so the build cannot fail because of it.
#
# Optional inputs:
#   LWSBUILD_PROBE_SOURCE   path of layout_probe.c (default: in LWSBUILD_HARNESS_DIR)
#   LWSBUILD_LWS_TARGET     lws library target (default: websockets_shared)

if(NOT DEFINED LWSBUILD_LWS_TARGET)
  set(LWSBUILD_LWS_TARGET websockets_shared)
endif()
if(NOT TARGET ${LWSBUILD_LWS_TARGET})
  message(FATAL_ERROR
    "lwsbuild probe.cmake: target ${LWSBUILD_LWS_TARGET} does not exist; "
    "include probe.cmake after add_subdirectory(<lws tree> lws) with LWS_WITH_SHARED=ON")
endif()
if(NOT DEFINED LWSBUILD_PROBE_SOURCE)
  get_filename_component(LWSBUILD_PROBE_SOURCE
    "${LWSBUILD_HARNESS_DIR}/layout_probe.c" ABSOLUTE)
endif()
if(NOT EXISTS "${LWSBUILD_PROBE_SOURCE}")
  message(FATAL_ERROR "lwsbuild probe.cmake: ${LWSBUILD_PROBE_SOURCE} not found")
endif()

# The lws project's source / binary dirs, from the target (robust to the
# project name): the library target lives in <lws>/lib.
get_target_property(_lwsbuild_lib_src ${LWSBUILD_LWS_TARGET} SOURCE_DIR)
get_target_property(_lwsbuild_lib_bin ${LWSBUILD_LWS_TARGET} BINARY_DIR)
get_filename_component(_lwsbuild_lws_src "${_lwsbuild_lib_src}" DIRECTORY)
get_filename_component(_lwsbuild_lws_bin "${_lwsbuild_lib_bin}" DIRECTORY)
if(NOT EXISTS "${_lwsbuild_lws_bin}/lws_config.h")
  message(FATAL_ERROR
    "lwsbuild probe.cmake: ${_lwsbuild_lws_bin}/lws_config.h not found: is this libwebsockets 4.3.x?")
endif()

add_executable(lws-layout-probe "${LWSBUILD_PROBE_SOURCE}")
set_target_properties(lws-layout-probe PROPERTIES C_STANDARD 99 C_EXTENSIONS ON)
target_include_directories(lws-layout-probe PRIVATE
  "$<TARGET_PROPERTY:${LWSBUILD_LWS_TARGET},INTERFACE_INCLUDE_DIRECTORIES>"
  "${_lwsbuild_lws_src}/include"
  "${_lwsbuild_lws_bin}")
target_compile_definitions(lws-layout-probe PRIVATE
  "$<TARGET_PROPERTY:${LWSBUILD_LWS_TARGET},INTERFACE_COMPILE_DEFINITIONS>")
if(TARGET GENHDR)
  # <lws bin>/include/{libwebsockets.h,lws_config.h} are copied by GENHDR
  add_dependencies(lws-layout-probe GENHDR)
endif()

# Validates the probe's output with CMake's own JSON parser, then moves it in
# place (a half-written or garbage layout.json never reaches the install).
set(_lwsbuild_validate "${CMAKE_CURRENT_BINARY_DIR}/lwsbuild-validate-layout.cmake")
file(WRITE "${_lwsbuild_validate}" [=[
file(READ "${IN}" _json)
string(JSON _v ERROR_VARIABLE _err GET "${_json}" lws_version_string)
if(_err)
  message(FATAL_ERROR "lws-layout-probe produced invalid JSON in ${IN}: ${_err}")
endif()
# The library's SONAME differs per release line (4.3: .so.19, 4.4: .so.20, 4.5: .so.21, 5.0:
# .so.22): record the one this build made, so nothing on the Python side guesses it.
if(NOT SONAME MATCHES "^libwebsockets\\.so\\.[0-9]+$")
  message(FATAL_ERROR "lwsbuild probe.cmake: unexpected SONAME '${SONAME}' of the lws library")
endif()
string(JSON _json SET "${_json}" soname "\"${SONAME}\"")
foreach(_s lws_context_creation_info lws_protocols lws_client_connect_info)
  string(JSON _n ERROR_VARIABLE _err GET "${_json}" structs ${_s} size)
  if(_err OR NOT _n GREATER 0)
    message(FATAL_ERROR "lws-layout-probe output ${IN} lacks structs.${_s}.size")
  endif()
endforeach()
file(WRITE "${OUT}.new" "${_json}\n")
file(REMOVE "${IN}")
file(RENAME "${OUT}.new" "${OUT}")
]=])

add_custom_command(
  OUTPUT "${CMAKE_CURRENT_BINARY_DIR}/layout.json"
  COMMAND "${CMAKE_COMMAND}" -E env --unset=LD_PRELOAD ${LWSBUILD_SANITIZER_BUILD_ENV}
          "$<TARGET_FILE:lws-layout-probe>" "${CMAKE_CURRENT_BINARY_DIR}/layout.json.tmp"
  COMMAND "${CMAKE_COMMAND}" "-DIN=${CMAKE_CURRENT_BINARY_DIR}/layout.json.tmp"
          "-DOUT=${CMAKE_CURRENT_BINARY_DIR}/layout.json"
          "-DSONAME=$<TARGET_SONAME_FILE_NAME:${LWSBUILD_LWS_TARGET}>" -P "${_lwsbuild_validate}"
  DEPENDS lws-layout-probe ${LWSBUILD_LWS_TARGET} "${LWSBUILD_PROBE_SOURCE}" "${_lwsbuild_lws_bin}/lws_config.h"
  COMMENT "lwsbuild: probing lws struct layout -> layout.json"
  VERBATIM)
add_custom_target(lws-layout ALL DEPENDS "${CMAKE_CURRENT_BINARY_DIR}/layout.json")

install(FILES "${CMAKE_CURRENT_BINARY_DIR}/layout.json" DESTINATION "${LWSBUILD_SHARE_DIR}" RENAME "${LWSBUILD_LAYOUT_NAME}")

unset(_lwsbuild_lib_src)
unset(_lwsbuild_lib_bin)
unset(_lwsbuild_validate)
unset(_lwsbuild_lws_src)
unset(_lwsbuild_lws_bin)
