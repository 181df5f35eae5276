#pragma once

// Path: a sequence of non-empty byte strings ("elements"), the unit of naming.
// `/svc/hello` has the elements "svc" and "hello"; the empty path prints as `/`.
// Paths are values: cheap to move, compared element by element.

#include <compare>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "dtab/expected.h"
#include "dtab/parse_error.h"

namespace switchyard::dtab {

class Path {
 public:
  Path() = default;
  explicit Path(std::vector<std::string> elems);
  Path(std::initializer_list<std::string> elems) : elems_(elems) {}

  // Reads Finagle's textual form: `/` or `/label(/label)*`, where a label is
  // made of showable characters and `\xNN` escapes; whitespace and `#`
  // comments may surround the path. Never throws.
  static Expected<Path, ParseError> parse(std::string_view text);

  const std::vector<std::string>& elems() const { return elems_; }
  std::size_t size() const { return elems_.size(); }
  bool empty() const { return elems_.empty(); }
  const std::string& operator[](std::size_t i) const { return elems_[i]; }

  bool startsWith(const Path& prefix) const;
  // The first n elements, and everything after them (n is clamped).
  Path take(std::size_t n) const;
  Path drop(std::size_t n) const;
  Path operator+(const Path& suffix) const;

  // Finagle's printed form; an element with any byte outside the showable set
  // is printed with every byte as a lowercase `\xNN` escape.
  std::string show() const;

  friend bool operator==(const Path&, const Path&) = default;
  friend std::strong_ordering operator<=>(const Path&, const Path&) = default;

  // The characters a label may hold unescaped: 0-9 A-Z a-z _ : . # $ % -
  static bool isShowable(char c);
  // Appends one element in printed form (no leading slash).
  static void showElem(std::string_view elem, std::string& out);

 private:
  std::vector<std::string> elems_;
};

}  // namespace switchyard::dtab
