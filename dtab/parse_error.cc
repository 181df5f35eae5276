#include "dtab/parse_error.h"

#include <cstdio>

namespace switchyard::dtab {
namespace {

// How much input to show on each side of the error; a 1 MB dtab must not
// produce a 1 MB message.
constexpr std::size_t kContextBytes = 32;

// Prints one byte for a message: printable ASCII as is, anything else (NUL,
// control bytes, invalid UTF-8) as \xNN so the message stays one clean line.
void appendByte(std::string& out, unsigned char c) {
  if (c >= 0x20 && c < 0x7f) {
    out.push_back(static_cast<char>(c));
  } else {
    char buf[5];
    std::snprintf(buf, sizeof buf, "\\x%02x", c);
    out += buf;
  }
}

std::string describeFound(std::string_view input, std::size_t offset) {
  if (offset >= input.size()) return "end of input";
  std::string out = "'";
  appendByte(out, static_cast<unsigned char>(input[offset]));
  out += "'";
  return out;
}

std::string makeContext(std::string_view input, std::size_t offset) {
  std::size_t begin = offset > kContextBytes ? offset - kContextBytes : 0;
  std::size_t end = std::min(input.size(), offset + kContextBytes);
  std::string out = "'";
  if (begin > 0) out += "...";
  for (std::size_t i = begin; i < offset && i < input.size(); ++i) {
    appendByte(out, static_cast<unsigned char>(input[i]));
  }
  out += "[";
  if (offset < input.size()) appendByte(out, static_cast<unsigned char>(input[offset]));
  out += "]";
  for (std::size_t i = offset + 1; i < end; ++i) {
    appendByte(out, static_cast<unsigned char>(input[i]));
  }
  if (end < input.size()) out += "...";
  out += "'";
  return out;
}

ParseError locate(std::string_view input, std::size_t offset) {
  ParseError e;
  e.offset = std::min(offset, input.size());
  for (std::size_t i = 0; i < e.offset; ++i) {
    if (input[i] == '\n') {
      ++e.line;
      e.column = 1;
    } else {
      ++e.column;
    }
  }
  e.context = makeContext(input, e.offset);
  return e;
}

}  // namespace

ParseError ParseError::at(std::string_view input, std::size_t offset, std::string expected) {
  ParseError e = locate(input, offset);
  e.expected = std::move(expected);
  e.found = describeFound(input, e.offset);
  return e;
}

ParseError ParseError::limit(std::string_view input, std::size_t offset, std::string what) {
  ParseError e = locate(input, offset);
  e.expected = std::move(what);
  return e;
}

std::string ParseError::message() const {
  std::string out = "line " + std::to_string(line) + ", column " + std::to_string(column) + ": ";
  if (found.empty()) {
    out += expected;
  } else {
    out += expected + " expected but " + found + " found";
  }
  out += " at " + context;
  return out;
}

}  // namespace switchyard::dtab
