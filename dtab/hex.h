#pragma once

// The value of one hexadecimal digit, or -1: for the `\xHH` escapes of path
// labels here, and the `%HH` escapes of URLs in runtime/.

namespace switchyard::dtab {

constexpr int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace switchyard::dtab
