#pragma once

// The router's configuration: Linkerd 1.x's schema (linkerd.yaml), checked
// into typed structs. Names and defaults are Linkerd's, so a working Linkerd
// config loads unchanged; kinds and keys Switchyard lacks are errors that name
// their place in the file, and Linkerd keys that mean nothing here (`usage`,
// JVM tuning) are accepted with a warning.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dtab/dtab.h"
#include "dtab/path.h"
#include "namer/dns_settings.h"
#include "router/plugin_registry.h"
#include "runtime/config_node.h"

namespace switchyard::router {

struct AdminConfig {
  std::string ip = "127.0.0.1";
  std::uint16_t port = 9990;
  std::int64_t shutdownGraceMs = 10'000;
};

struct ServerConfig {
  std::string ip = "127.0.0.1";  // Linkerd's default: loopback
  std::uint16_t port = 4140;
  bool clearContext = false;  // strip l5d-* context headers from clients
  // Switchyard's own: a client must send a whole request head within
  // headerTimeoutMs of its first byte (else 408), and a keep-alive
  // connection idle for idleTimeoutMs is closed. 0 turns either off.
  std::int64_t headerTimeoutMs = 10'000;
  std::int64_t idleTimeoutMs = 60'000;
  // Switchyard's own: with interpreter io.l5d.namerd.http, the namespace
  // (tenant) of every request on this server; empty: the interpreter's.
  std::string ns;
};

struct NamerConfig {
  KindedConfig plugin;
  dtab::Path prefix;  // names are /#<prefix>/..., e.g. /#/io.l5d.fs/hello
  std::vector<KindedConfig> transformers;  // applied to every name it binds
};

struct ClientConfig {
  std::optional<KindedConfig> loadBalancer;  // default p2c
  std::int64_t connectTimeoutMs = 5'000;
  std::int64_t requestAttemptTimeoutMs = 0;  // 0: none; per attempt, to the response head
  std::int64_t poolMaxSize = 1'000;           // hostConnectionPool.maxSize
  std::int64_t poolIdleTimeMs = 10'000;       // hostConnectionPool.idleTimeMs
};

struct ServiceConfig {
  std::int64_t totalTimeoutMs = 0;  // 0: none; to the response head, as Linkerd's streaming
};

struct RouterConfig {
  std::string protocol = "http";
  std::string label;  // defaults to the protocol
  std::vector<ServerConfig> servers;
  std::vector<KindedConfig> identifiers;  // default io.l5d.header.token
  dtab::Dtab dtab;
  KindedConfig interpreter;  // default "default"
  dtab::Path dstPrefix{"svc"};
  ClientConfig client;
  ServiceConfig service;
  std::int64_t bindingTimeoutMs = 10'000;
  std::int64_t maxHeadersKB = 8;
  std::int64_t maxInitialLineKB = 4;
  // Content-Length bodies over these get 413 (request) or 502 (response);
  // with streamingEnabled false, chunked bodies are counted as well.
  std::int64_t maxRequestKB = 5'120;
  std::int64_t maxResponseKB = 5'120;
  bool streamingEnabled = true;
  std::int64_t maxCallDepth = 1'000;     // Via-counted loop protection
  std::int64_t maxDtabHeaderBytes = 8'192;  // l5d-dtab + l5d-ctx-dtab per request
};

struct Config {
  AdminConfig admin;
  namer::DnsSettings dns;  // the `dns` block: how /$/inet resolves host names
  std::vector<NamerConfig> namers;
  std::vector<RouterConfig> routers;
  std::vector<KindedConfig> telemetry;
  std::vector<std::string> warnings;
};

// The namer service's configuration (`switchyard namer -c`), Namerd's
// schema: admin (default port 9991), storage, namers, interfaces; plus
// Switchyard's own `auth` block (API tokens) and the `dns` block.
struct NamerServiceConfig {
  AdminConfig admin;
  namer::DnsSettings dns;
  std::vector<NamerConfig> namers;
  std::optional<KindedConfig> storage;  // none: file storage at kDefaultStorageDir
  std::vector<KindedConfig> interfaces;  // io.l5d.httpController (default 127.0.0.1:4180)
  std::string adminToken;
  std::map<std::string, std::string> namespaceTokens;
  std::vector<KindedConfig> telemetry;
  std::vector<std::string> warnings;
  static constexpr const char* kDefaultStorageDir = "/var/lib/switchyard/dtabs";
};

// Checks a whole document. The error list names every problem found, each
// with its path (`routers[0].identifier.kind: unknown identifier kind ...`).
Expected<Config, std::vector<std::string>> checkConfig(const runtime::ConfigNode& root,
                                                       const PluginRegistry& registry);
Expected<NamerServiceConfig, std::vector<std::string>> checkNamerConfig(const runtime::ConfigNode& root,
                                                                        const PluginRegistry& registry);

}  // namespace switchyard::router
