#pragma once

// Exchange: one request forwarded to one endpoint, and its response streamed
// back. Owned by the ServerConnection; talks back to it for everything the
// client sees. A connection taken from the pool may turn out to have been
// closed by the server; an idempotent request is then sent once more on a
// fresh connection, if nothing of the response arrived and what was sent is
// still held (up to kHighWater bytes).

#include <memory>
#include <optional>
#include <string>

#include "router/trace.h"
#include "router/worker.h"
#include "runtime/http1_parser.h"
#include "runtime/tcp.h"
#include "runtime/timer.h"

namespace switchyard::router {

class ServerConnection;

class Exchange final : public runtime::TcpStream::Handler, public runtime::Http1Parser::Handler {
 public:
  Exchange(Worker& worker, ServerConnection& server, Route route, runtime::RequestHead head,
           const runtime::BodyFraming& framing, bool upgrade);
  ~Exchange() override;

  void start();
  // The worker's naming changed while this request's route was pending.
  void namingChanged();
  void requestBody(std::string_view data);
  void requestEnd();
  void clientDrained();
  void tunnelFromClient(std::string_view data);  // after a 101
  void clientClosed();
  std::size_t upstreamBacklog() const;
  bool responseStarted() const { return responseStarted_; }
  int responseStatus() const { return responseStatus_; }
  // For /requests: the trace this request belongs to, and where it went.
  std::string traceId() const { return traceIdHex(serverTrace_); }
  std::string endpointKey() const { return route_.endpoint ? route_.endpoint->key : std::string(); }
  // Ends every callback into the server connection; releases the upstream.
  void detach();

 private:
  // TcpStream::Handler (the endpoint)
  void onData(std::string_view data) override;
  void onClosed(const std::string& error) override;
  // Http1Parser::Handler (responses)
  void onResponseHead(runtime::ResponseHead&& head, const runtime::BodyFraming& framing) override;
  void onBody(std::string_view data) override;
  void onMessageEnd() override;

  void feedResponse(std::string_view data);
  std::string head() const;
  // Reads or starts the trace and writes the context the endpoint gets.
  void startTrace(runtime::RequestHead& head);
  void startAttempt();  // a pooled connection, or a new one
  void connect();
  // After a failed connect: true if the request went to another endpoint.
  bool requeue();
  void startAttemptTimer();  // with client.requestAttemptTimeoutMs
  void beginAttempt();       // the route has an endpoint
  void waitForBinding();
  void stopWaiting();
  void attach(runtime::TcpStreamPtr stream, bool pooled);
  void sendUpstream(std::string bytes);
  void fail(Failure failure);
  void maybeFinish();
  void report(bool connectFailed);
  // Records this request's spans (once), if it is traced.
  void recordSpans(int status, const std::string& error);
  static constexpr int kMaxRequeues = 2;
  std::string describeTarget() const;

  Worker& worker_;
  ServerConnection* server_;
  Route route_;
  // The serialized request head without the headers that name the chosen
  // leaf (l5d-dst-client, l5d-dst-residual) and the blank line ending it:
  // a request sent elsewhere after a failed connect gets new ones.
  std::string headPrefix_;
  std::size_t sentHeadSize_ = 0;
  int requeues_ = 0;
  bool chunkedIn_ = false;         // request body is chunked
  bool upgrade_ = false;
  bool headRequest_ = false;
  bool idempotent_ = false;
  std::unique_ptr<runtime::TcpConnect> connecting_;
  runtime::TcpStreamPtr upstream_;
  std::unique_ptr<runtime::Http1Parser> parser_;
  std::string buffered_;           // request bytes waiting for a connection
  std::optional<std::string> replay_;  // what a pooled connection was sent
  bool pooled_ = false;
  bool retried_ = false;
  bool requestDone_ = false;
  bool responseStarted_ = false;   // a byte went to the client
  bool responseDone_ = false;
  bool chunkedOut_ = false;        // response to the client is chunked
  bool closeClientAfter_ = false;
  bool tunnel_ = false;
  bool finished_ = false;
  int responseStatus_ = 0;
  std::uint64_t startMs_;
  std::uint64_t responseBodyBytes_ = 0;
  // Tracing: the context of our server span and of the client span sent on.
  TraceContext serverTrace_;
  TraceContext clientTrace_;
  bool traced_ = false;      // sampled, with a tracer: spans are recorded
  bool sharedSpan_ = false;  // the server span continues the caller's span
  std::int64_t startWallUs_ = 0;
  std::int64_t attemptWallUs_ = 0;  // 0: no attempt began
  std::string method_;
  std::string path_;
  // Only when configured: service.totalTimeoutMs and
  // client.requestAttemptTimeoutMs, both up to the response head.
  std::unique_ptr<runtime::Timer> timeout_;
  std::unique_ptr<runtime::Timer> attemptTimeout_;
  std::unique_ptr<runtime::Timer> bindingTimeout_;  // only while the route is pending
  bool waiting_ = false;
};

}  // namespace switchyard::router
