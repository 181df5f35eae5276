#pragma once

// ServerConnection: one client connection to a router's server. It reads
// requests one at a time (pipelined requests wait, unparsed, until the
// response before them is done), routes each, and hands it to an Exchange
// that talks to the endpoint. Bodies stream in both directions: when one
// side is slower, reading from the other stops (at most kHighWater bytes
// wait in memory per direction).

#include <memory>
#include <optional>
#include <string>

#include "router/failure.h"
#include "router/recent_requests.h"
#include "router/router_plan.h"
#include "runtime/http1_parser.h"
#include "runtime/tcp.h"

namespace switchyard::router {

class Worker;
class Exchange;

inline constexpr std::size_t kHighWater = 256 * 1024;
// A client that takes no byte of its last response for this long is cut off.
inline constexpr std::uint64_t kStalledWriteMs = 30'000;

class ServerConnection final : public runtime::TcpStream::Handler, public runtime::Http1Parser::Handler {
 public:
  ServerConnection(Worker& worker, const RouterPlan& plan, const ServerConfig& server, std::string serverKey,
                   runtime::TcpStreamPtr stream);
  ~ServerConnection() override;

  // Called by the exchange.
  runtime::TcpStream& client() { return *stream_; }
  void exchangeFailed(const Failure& failure);  // before any response byte was sent
  void exchangeDone(bool reusable);              // response complete
  void exchangeAborted();                        // mid-response: the connection must close
  void upstreamDrained();                        // the endpoint took what we sent
  void rerouted(const dtab::Path& client);       // the request went to another bound name
  bool clientKeepAlive() const { return keepAlive_; }
  int clientVersionMinor() const { return versionMinor_; }
  const RouterPlan& plan() const { return plan_; }
  // Closes at once if idle, else after the request in flight.
  void drain();
  bool idle() const;
  // The worker's sweep (about once a second): closes a connection idle past
  // idleTimeoutMs, answers 408 to a request head unfinished past
  // headerTimeoutMs.
  void checkTimeouts(std::uint64_t nowMs);

 private:
  // TcpStream::Handler (the client)
  void onData(std::string_view data) override;
  void onClosed(const std::string& error) override;
  // Http1Parser::Handler (requests)
  void onRequestHead(runtime::RequestHead&& head, const runtime::BodyFraming& framing) override;
  void onBody(std::string_view data) override;
  void onMessageEnd() override;

  // What the connection waits for from the client, with its deadline.
  enum class Wait { None, Idle, Head };
  void await(Wait what);

  void parse();  // from pending_
  // Parses requests from `data` until one is waiting for its response;
  // returns the bytes used.
  std::size_t parseFrom(std::string_view data);
  void sendFailure(const Failure& failure, bool close);
  void finishExchange();
  void close();
  void updateReading();
  // Records the request in flight in the worker's metrics (status 0: the
  // response was cut off).
  void recordRequest(int status);

  Worker& worker_;
  const RouterPlan& plan_;
  const ServerConfig& config_;
  runtime::TcpStreamPtr stream_;
  runtime::Http1Parser parser_;
  std::unique_ptr<Exchange> exchange_;
  std::string pending_;          // bytes read but not parsed yet
  bool requestDone_ = false;     // the current request was fully read
  bool waiting_ = false;         // a request was read whole: parse nothing more until it is answered
  bool keepAlive_ = true;
  bool upgraded_ = false;
  bool closing_ = false;
  bool draining_ = false;
  bool discardBody_ = false;     // the request failed; its body is dropped
  int versionMinor_ = 1;
  Wait wait_ = Wait::None;
  std::uint64_t deadlineMs_ = 0;  // of wait_; 0: none
  std::uint64_t bodyBytes_ = 0;   // of the request in flight
  std::string serverKey_;   // "127.0.0.1/4140"
  std::string service_;     // "svc/hello", once identified
  std::string clientId_;    // "#/io.l5d.fs/hello", once bound
  std::uint64_t startUs_ = 0;
  // Sampled for /requests (io.l5d.recentRequests): what it was, kept from its head.
  std::optional<RecentRequest> recent_;
  bool recorded_ = true;    // the request in flight was recorded
  // Cleared when this connection dies, for work deferred to a later turn.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace switchyard::router
