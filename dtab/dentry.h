#pragma once

// Dentry: one delegation rule, `prefix => tree`. The prefix may hold `*`
// elements that match any one path element; the tree's leaves are paths to
// which the rest of a matching path (the residual) is appended.

#include <string>
#include <string_view>
#include <vector>

#include "dtab/expected.h"
#include "dtab/name_tree.h"
#include "dtab/parse_error.h"
#include "dtab/path.h"

namespace switchyard::dtab {

class Dentry {
 public:
  class Prefix {
   public:
    struct Elem {
      std::string label;      // empty when wildcard
      bool wildcard = false;  // `*`: matches any single element
      friend bool operator==(const Elem&, const Elem&) = default;
    };

    Prefix() = default;
    explicit Prefix(std::vector<Elem> elems) : elems_(std::move(elems)) {}
    // A prefix of literal elements only.
    explicit Prefix(const Path& path);

    const std::vector<Elem>& elems() const { return elems_; }
    std::size_t size() const { return elems_.size(); }

    // True when `path` has at least size() elements and each prefix element
    // equals the path's element at that position (or is `*`). Matching is per
    // element: `/s` does not match `/s#/x`.
    bool matches(const Path& path) const;

    // `/a/*/b`; the empty prefix prints as `/`.
    std::string show() const;

    friend bool operator==(const Prefix&, const Prefix&) = default;

   private:
    std::vector<Elem> elems_;
  };

  Dentry(Prefix prefix, NameTree<Path> dst) : prefix_(std::move(prefix)), dst_(std::move(dst)) {}

  static Expected<Dentry, ParseError> parse(std::string_view text);

  const Prefix& prefix() const { return prefix_; }
  const NameTree<Path>& dst() const { return dst_; }

  // `prefix=>tree`, without spaces around `=>`.
  std::string show() const;

  friend bool operator==(const Dentry&, const Dentry&) = default;

 private:
  Prefix prefix_;
  NameTree<Path> dst_;
};

// Prints a tree of paths in Finagle's canonical form.
std::string show(const NameTree<Path>& tree);

// Reads a name tree of paths (`/a | 0.3*/b & 0.7*/c`). Never throws.
Expected<NameTree<Path>, ParseError> parseNameTree(std::string_view text);

}  // namespace switchyard::dtab
