#pragma once

// Dtab: an ordered list of dentries. Later entries take precedence; when a
// later entry names nothing (Neg), earlier ones are the fallback. A Dtab is
// an immutable value; `a + b` appends b's entries to a's (so b's win), which
// is how a per-request dtab overrides the router's.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "dtab/dentry.h"
#include "dtab/expected.h"
#include "dtab/name_tree.h"
#include "dtab/parse_error.h"
#include "dtab/path.h"

namespace switchyard::dtab {

class Dtab {
 public:
  Dtab() = default;
  explicit Dtab(std::vector<Dentry> entries) : entries_(std::move(entries)) {}

  // Reads `prefix => tree; prefix => tree` (one optional trailing `;`,
  // whitespace and `#` comments anywhere a token may be separated). An empty
  // or comment-only text is the empty dtab. Never throws.
  static Expected<Dtab, ParseError> parse(std::string_view text);

  const std::vector<Dentry>& entries() const { return entries_; }
  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

  Dtab operator+(const Dtab& later) const;
  Dtab operator+(const Dentry& later) const;

  // Entries joined with `;`, no spaces, no trailing `;`.
  std::string show() const;

  // One matching entry, with its destination already rewritten for the path
  // (the residual appended to every leaf).
  struct Match {
    std::size_t index;  // position of the entry in entries()
    NameTree<Path> tree;
  };
  // Every entry whose prefix matches `path`, the LAST entry first.
  std::vector<Match> matches(const Path& path) const;

  // One rewrite step (Finagle's Dtab.lookup): no match -> Neg; one match ->
  // its tree; several -> an Alt of them, the last entry first.
  NameTree<Path> lookup(const Path& path) const;

  // Each destination simplified; entries that become `~` are dropped.
  Dtab simplified() const;

  friend bool operator==(const Dtab&, const Dtab&) = default;

 private:
  std::vector<Dentry> entries_;
};

}  // namespace switchyard::dtab
