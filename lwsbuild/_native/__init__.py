"""The install prefix of the libwebsockets bundled in a wheel (lib/, include/, bin/, share/).

Empty in a source checkout: the wheel build installs the library here. It is a module so that the
`cmake.root` entry point (libwebsockets_ROOT for scikit-build-core consumers) always imports, even
when a checkout shadows an installed lwsbuild.
"""
