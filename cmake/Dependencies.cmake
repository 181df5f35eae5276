# Every dependency comes from a Debian 12 package (scripts/install-deps);
# nothing is downloaded by the build. Each one becomes an imported or static
# target here, so the folders below only name targets.
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv>=1.44)
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2>=1.52)
pkg_check_modules(CARES REQUIRED IMPORTED_TARGET libcares>=1.18)
find_package(nlohmann_json 3.11 REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(CLI11 REQUIRED)
# prometheus-cpp: the core library only (its pull/push parts link libcurl and
# OpenSSL, which must not meet BoringSSL in one process); the admin server
# serves the exposition itself.
find_package(prometheus-cpp CONFIG REQUIRED)

# llhttp: Debian's node-llhttp ships the generated C sources, not a library.
# We compile them into our own static target without our warning flags.
set(LLHTTP_SOURCE_DIR /usr/share/llhttp)
find_path(LLHTTP_INCLUDE_DIR llhttp.h PATHS /usr/share/include/llhttp NO_DEFAULT_PATH REQUIRED)
add_library(llhttp STATIC ${LLHTTP_SOURCE_DIR}/llhttp.c ${LLHTTP_SOURCE_DIR}/api.c
                          ${LLHTTP_SOURCE_DIR}/http.c)
target_include_directories(llhttp SYSTEM PUBLIC ${LLHTTP_INCLUDE_DIR})
target_compile_options(llhttp PRIVATE -w)
set_target_properties(llhttp PROPERTIES POSITION_INDEPENDENT_CODE ON)

# TLS: BoringSSL by default (Debian's android-libboringssl-dev, which has no
# pkg-config file), OpenSSL 3 as an option. Never both in one process.
if(SWITCHYARD_TLS STREQUAL "boringssl")
  set(_bssl_lib /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/android)
  find_path(TLS_INCLUDE_DIR openssl/ssl.h PATHS /usr/include/android NO_DEFAULT_PATH REQUIRED)
  find_library(TLS_SSL_LIBRARY ssl PATHS ${_bssl_lib} NO_DEFAULT_PATH REQUIRED)
  find_library(TLS_CRYPTO_LIBRARY crypto PATHS ${_bssl_lib} NO_DEFAULT_PATH REQUIRED)
  add_library(switchyard_tls INTERFACE)
  target_include_directories(switchyard_tls SYSTEM INTERFACE ${TLS_INCLUDE_DIR})
  target_link_libraries(switchyard_tls INTERFACE ${TLS_SSL_LIBRARY} ${TLS_CRYPTO_LIBRARY})
  target_compile_definitions(switchyard_tls INTERFACE SWITCHYARD_TLS_BORINGSSL=1)
  # The libraries live outside the linker's default search path.
  list(APPEND CMAKE_INSTALL_RPATH ${_bssl_lib})
elseif(SWITCHYARD_TLS STREQUAL "openssl")
  find_package(OpenSSL 3 REQUIRED)
  add_library(switchyard_tls INTERFACE)
  target_link_libraries(switchyard_tls INTERFACE OpenSSL::SSL OpenSSL::Crypto)
  target_compile_definitions(switchyard_tls INTERFACE SWITCHYARD_TLS_OPENSSL=1)
else()
  message(FATAL_ERROR "SWITCHYARD_TLS must be boringssl or openssl, got '${SWITCHYARD_TLS}'")
endif()
