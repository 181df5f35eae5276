#pragma once

// The one recursive-descent reader for the dtab language (paths, prefixes,
// name trees, dentries, dtabs). Internal to dtab/: callers use Path::parse,
// parseNameTree, Dentry::parse and Dtab::parse.
//
// Grammar (docs/ARCHITECTURE.md has the full rules):
//   dtab     ::= ε | dentry (';' dentry)* [';']
//   dentry   ::= prefix '=>' tree
//   prefix   ::= '/' | ('/' ('*' | label))+
//   tree     ::= tree1 ('|' tree1)*
//   tree1    ::= weighted ('&' weighted)*
//   weighted ::= [number '*'] simple
//   simple   ::= '(' tree ')' | path | '!' | '~' | '$'
//   path     ::= '/' | ('/' label)+      label ::= (showable | '\x' hex hex)+
// Whitespace and `#`-to-end-of-line comments may separate tokens.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "dtab/dentry.h"
#include "dtab/dtab.h"
#include "dtab/expected.h"
#include "dtab/parse_error.h"
#include "dtab/path.h"

namespace switchyard::dtab {

class Parser {
 public:
  // Parentheses may nest this deep. Real dtabs nest two or three levels; the
  // limit keeps hostile input from exhausting the stack.
  static constexpr int kMaxNesting = 100;

  explicit Parser(std::string_view input) : in_(input) {}

  // Each reads the whole input (surrounding whitespace allowed) or fails.
  Expected<Path, ParseError> wholePath();
  Expected<NameTree<Path>, ParseError> wholeTree();
  Expected<Dentry, ParseError> wholeDentry();
  Expected<Dtab, ParseError> wholeDtab();

 private:
  bool atEnd() const { return pos_ >= in_.size(); }
  char peek() const { return atEnd() ? '\0' : in_[pos_]; }
  void skipSpace();
  bool fail(std::string expected);
  bool failLimit(std::string what);
  bool expectEnd();

  bool label(std::string& out);
  bool path(Path& out);
  bool prefix(Dentry::Prefix& out);
  bool number(double& out);
  bool tree(NameTree<Path>& out, int nesting);
  bool tree1(NameTree<Path>& out, int nesting);
  bool simple(NameTree<Path>& out, int nesting);
  bool dentry(std::optional<Dentry>& out);

  std::string_view in_;
  std::size_t pos_ = 0;
  std::optional<ParseError> error_;
};

}  // namespace switchyard::dtab
