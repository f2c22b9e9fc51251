# Install-time fix-ups (run by `cmake --install`, after lws's own install rules):
# make the installed tree relocatable and path-free, and strip release binaries.
# CMAKE_INSTALL_PREFIX here is the real destination (--prefix), not the configure-time constant.
set(prefix "${CMAKE_INSTALL_PREFIX}")

function(rewrite file regex replacement)
  if(EXISTS "${file}")
    file(READ "${file}" text)
    string(REGEX REPLACE "${regex}" "${replacement}" text "${text}")
    file(WRITE "${file}" "${text}")
  endif()
endfunction()

# pkg-config: lws writes prefix="<configure prefix>"; derive it from the .pc file's own place.
rewrite("${prefix}/lib/pkgconfig/libwebsockets.pc" "prefix=\"[^\"\n]*\"" "prefix=\${pcfiledir}/../..")

# CMake package config: lws lists configure-time include dirs (source and build tree paths).
rewrite("${prefix}/lib/cmake/libwebsockets/libwebsockets-config.cmake"
        "set\\(LIBWEBSOCKETS_INCLUDE_DIRS [^\n]*\\)"
        "get_filename_component(_lws_prefix \"\${LWS_CMAKE_DIR}/../../..\" ABSOLUTE)\nset(LIBWEBSOCKETS_INCLUDE_DIRS \"\${_lws_prefix}/include\")")

# lws_config.h: plugin/data dirs relative to the install prefix (plugins are not built).
rewrite("${prefix}/include/lws_config.h" "#define LWS_INSTALL_DATADIR \"[^\"]*\"" "#define LWS_INSTALL_DATADIR \"share\"")
rewrite("${prefix}/include/lws_config.h" "#define LWS_INSTALL_LIBDIR \"[^\"]*\"" "#define LWS_INSTALL_LIBDIR \"lib\"")

# A wheel cannot hold symlinks: the link-time name becomes a one-line linker script instead of a
# second copy of the library.
file(GLOB sonames RELATIVE "${prefix}/lib" "${prefix}/lib/libwebsockets.so.*")
list(LENGTH sonames count)
if(NOT count EQUAL 1)
  message(FATAL_ERROR "expected one libwebsockets.so.N in ${prefix}/lib, found: ${sonames}")
endif()
file(REMOVE "${prefix}/lib/libwebsockets.so")
file(WRITE "${prefix}/lib/libwebsockets.so" "/* GNU ld script: the link-time name of libwebsockets */\nINPUT(${sonames})\n")

if(LWSBUILD_STRIP)
  file(GLOB binaries "${prefix}/lib/libwebsockets.so.*" "${prefix}/bin/*")
  foreach(binary IN LISTS binaries)
    execute_process(COMMAND "${LWSBUILD_STRIP_TOOL}" --strip-unneeded "${binary}" RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "strip failed on ${binary}")
    endif()
  endforeach()
endif()
