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

# The library lives outside the linker's default paths (a wheel, a cache): pkg-config consumers get
# an rpath so their program runs without LD_LIBRARY_PATH; a sanitizer build's consumers must link
# the sanitizer runtime themselves (it has to come first).
set(consumer_flags "")
if(LWSBUILD_SANITIZER_FLAGS)
  list(JOIN LWSBUILD_SANITIZER_FLAGS " " consumer_flags)
  string(APPEND consumer_flags " ")
  rewrite("${prefix}/lib/pkgconfig/libwebsockets.pc" "Cflags: " "Cflags: ${consumer_flags}")
endif()
rewrite("${prefix}/lib/pkgconfig/libwebsockets.pc" "Libs: " "Libs: ${consumer_flags}-Wl,-rpath,\${libdir} ")

# The static library's .pc (lws installs it whether or not it built the library): relocatable like
# the shared one, without an rpath, with the sanitizer flags, and with the libraries the archive
# needs (LWSBUILD_STATIC_LIBS, from lws's link list: lws leaves Libs.private empty), so
# `pkg-config --static --libs libwebsockets_static` links. Removed when no static library was built.
set(static_pc "${prefix}/lib/pkgconfig/libwebsockets_static.pc")
if(EXISTS "${prefix}/lib/libwebsockets.a")
  rewrite("${static_pc}" "prefix=\"[^\"\n]*\"" "prefix=\${pcfiledir}/../..")
  if(consumer_flags)
    rewrite("${static_pc}" "Cflags: " "Cflags: ${consumer_flags}")
    rewrite("${static_pc}" "Libs: " "Libs: ${consumer_flags}")
  endif()
  list(JOIN LWSBUILD_STATIC_LIBS " " static_libs)
  rewrite("${static_pc}" "Libs.private:[^\n]*" "Libs.private: ${static_libs}")
else()
  file(REMOVE "${static_pc}")
endif()

# CMake package config: lws lists configure-time include dirs (source and build tree paths).
rewrite("${prefix}/lib/cmake/libwebsockets/libwebsockets-config.cmake"
        "set\\(LIBWEBSOCKETS_INCLUDE_DIRS [^\n]*\\)"
        "get_filename_component(_lws_prefix \"\${LWS_CMAKE_DIR}/../../..\" ABSOLUTE)\nset(LIBWEBSOCKETS_INCLUDE_DIRS \"\${_lws_prefix}/include\")")

# CMake targets: lws records the absolute paths of the OpenSSL it found (/usr/lib/<triplet>/libssl.so,
# /usr/include), wrong on any other machine: link OpenSSL by name, leave system headers to the compiler.
rewrite("${prefix}/lib/cmake/libwebsockets/LibwebsocketsTargets.cmake" "/[^;\"\n]*/lib([A-Za-z0-9_]+)\\.so([;\"])" "\\1\\2")
rewrite("${prefix}/lib/cmake/libwebsockets/LibwebsocketsTargets.cmake"
        "(INTERFACE_INCLUDE_DIRECTORIES \"[^\"\n]*);/usr/include\"" "\\1\"")
if(LWSBUILD_SANITIZER_FLAGS)
  # websockets_shared always; websockets (the static library) when the build made it.
  file(APPEND "${prefix}/lib/cmake/libwebsockets/libwebsockets-config.cmake"
       "\n# A sanitizer build: consumers are instrumented and link the sanitizer runtime too.\n"
       "foreach(_lws_target websockets_shared websockets)\n"
       "  if(TARGET \${_lws_target})\n"
       "    set_property(TARGET \${_lws_target} APPEND PROPERTY INTERFACE_COMPILE_OPTIONS ${LWSBUILD_SANITIZER_FLAGS})\n"
       "    set_property(TARGET \${_lws_target} APPEND PROPERTY INTERFACE_LINK_OPTIONS ${LWSBUILD_SANITIZER_FLAGS})\n"
       "  endif()\n"
       "endforeach()\n")
endif()

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
