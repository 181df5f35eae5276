#pragma once

// Failure: why a request could not be forwarded, as a typed value. Exactly
// one place (respond()) turns it into an HTTP response, with Linkerd's
// statuses and an `l5d-err` header saying what failed and where.

#include <string>

#include "runtime/http_message.h"

namespace switchyard::router {

struct Failure {
  enum class Kind {
    BadRequest,      // malformed, or cannot be identified: 400
    BadDtab,         // a per-request dtab that does not parse: 400
    DtabTooLarge,    // per-request dtab over the limit: 431
    TooDeep,         // Via-counted call depth over maxCallDepth: 400
    NoHosts,         // the name binds to ~ or to no endpoints: 502
    NamingFailed,    // delegation error (loop, unknown namer): 502
    ConnectFailed,   // connect refused/reset, backend broke mid-request: 502
    Timeout,         // binding or request timeout: 503
    HeadTimeout,     // the client sent no whole request head in time: 408
    RequestTooLarge, // a request body over maxRequestKB: 413
    BadResponse,     // the endpoint's response is invalid or too large: 502
  };
  Failure(Kind k, std::string msg, bool isRetryable = false, int status = 0)
      : kind(k), message(std::move(msg)), retryable(isRetryable), statusOverride(status) {}

  Kind kind;
  std::string message;  // for a person: what failed, on which name, what to try
  bool retryable = false;
  int statusOverride = 0;  // the codec's 414 or 431 for a malformed request
  std::string service;     // the logical name, when the request was identified

  int status() const;
};

// The response for a failure: status, `l5d-err`, `Content-Type: text/plain`,
// the message as body, and `Connection: close` when `close`.
struct FailureResponse {
  runtime::ResponseHead head;
  std::string body;
};
FailureResponse respond(const Failure& failure, bool close);

}  // namespace switchyard::router
