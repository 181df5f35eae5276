#pragma once

// ParseError: why a dtab, name tree or path could not be read, and where.
// The message keeps Finagle's shape (`'=>' expected but '/' found at
// '/a [/]b'`) so Linkerd users recognise it, and adds the line and column.

#include <cstddef>
#include <string>
#include <string_view>

namespace switchyard::dtab {

struct ParseError {
  std::string expected;  // what the grammar wanted here, e.g. "'=>'"
  std::string found;     // what it saw, e.g. "'/'" or "end of input"
  std::size_t offset = 0;  // byte offset into the input
  std::size_t line = 1;    // 1-based
  std::size_t column = 1;  // 1-based, in bytes
  std::string context;     // the input around the offset, offending byte in [ ]

  // "line 1, column 4: '=>' expected but '/' found at '/a [/]b'"
  std::string message() const;

  // Builds the error for position `offset` of `input`.
  static ParseError at(std::string_view input, std::size_t offset, std::string expected);
  // For limits rather than grammar (nesting, size): `what` replaces
  // "X expected but Y found".
  static ParseError limit(std::string_view input, std::size_t offset, std::string what);
};

}  // namespace switchyard::dtab
