#pragma once

// Base64 (RFC 4648, standard alphabet, padded): l5d-ctx-trace headers and
// etcd's JSON gateway, which carries keys and values as base64.

#include <optional>
#include <string>
#include <string_view>

namespace switchyard::runtime {

std::string base64Encode(std::string_view data);
// Nullopt if `text` holds a character outside the alphabet. Padding is
// optional; decoding stops at the first '='.
std::optional<std::string> base64Decode(std::string_view text);

}  // namespace switchyard::runtime
