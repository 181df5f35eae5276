#include "dtab/delegator.h"

#include <algorithm>

#include <optional>
#include <utility>

#include "dtab/system_namers.h"

namespace switchyard::dtab {
namespace {

// Name-tree nesting (parentheses within one destination, plus rewrite steps)
// that one delegation may recurse through. Bounds stack use on hostile input:
// the parser allows 100 levels of parentheses per destination and a chain may
// hold 100 rewrites, which together could otherwise recurse 10,000 deep.
constexpr int kMaxFrames = 2000;

// Says why a chain of rewrites went too deep: the cycle if a path repeats,
// else the last steps.
std::string describeChain(const std::vector<Path>& chain) {
  for (std::size_t j = 0; j < chain.size(); ++j) {
    for (std::size_t i = 0; i < j; ++i) {
      if (chain[i] == chain[j]) {
        std::string loop;
        for (std::size_t k = i; k <= j; ++k) loop += (k > i ? " -> " : "") + chain[k].show();
        return "the dtab loops: " + loop;
      }
    }
  }
  std::string tail;
  std::size_t from = chain.size() > 3 ? chain.size() - 3 : 0;
  for (std::size_t k = from; k < chain.size(); ++k) tail += (k > from ? " -> " : "") + chain[k].show();
  return "the dtab keeps rewriting, last steps: ... -> " + tail;
}

// Counts one level of recursion for as long as it lives.
class FrameGuard {
 public:
  explicit FrameGuard(int& frames) : frames_(frames) { ++frames_; }
  ~FrameGuard() { --frames_; }
  FrameGuard(const FrameGuard&) = delete;
  FrameGuard& operator=(const FrameGuard&) = delete;
  bool exceeded() const { return frames_ > kMaxFrames; }

 private:
  int& frames_;
};

}  // namespace

const char* kindName(DelegateError::Kind kind) {
  switch (kind) {
    case DelegateError::Kind::MaxDepth:
      return "max_depth";
    case DelegateError::Kind::UnknownNamer:
      return "unknown_namer";
    case DelegateError::Kind::NamerError:
      return "namer_error";
    case DelegateError::Kind::TooLarge:
      return "too_large";
  }
  return "namer_error";
}

const char* kindName(DelegateTree::Kind kind) {
  switch (kind) {
    case DelegateTree::Kind::Delegate:
      return "delegate";
    case DelegateTree::Kind::Alt:
      return "alt";
    case DelegateTree::Kind::Union:
      return "union";
    case DelegateTree::Kind::Leaf:
      return "leaf";
    case DelegateTree::Kind::Neg:
      return "neg";
    case DelegateTree::Kind::Fail:
      return "fail";
    case DelegateTree::Kind::Empty:
      return "empty";
    case DelegateTree::Kind::Exception:
      return "exception";
  }
  return "neg";
}

std::string show(const NameTree<BoundName>& tree) {
  return showTree(tree, [](const BoundName& b, std::string& out) { out += b.id.show(); });
}

Delegator::Delegator(Dtab dtab, std::vector<NamerEntry> namers, DelegateOptions options)
    : dtab_(std::move(dtab)), namers_(std::move(namers)), options_(options) {
  // A process's own /$/ namers (inet with a DNS resolver) replace the
  // system ones of the same prefix, so their Neg (NXDOMAIN) is final.
  std::size_t given = namers_.size();
  for (const auto& sys : systemNamers()) {
    bool replaced = std::any_of(namers_.begin(), namers_.begin() + static_cast<std::ptrdiff_t>(given),
                                [&](const NamerEntry& e) { return e.prefix == sys.prefix; });
    if (!replaced) namers_.push_back(sys);
  }
}

Expected<NameTree<Name>, DelegateError> Delegator::lookupNamers(const Path& path) const {
  bool claimed = false;
  for (const auto& entry : namers_) {
    if (!path.startsWith(entry.prefix)) continue;
    claimed = true;
    NamerResult r = entry.namer->lookup(path.drop(entry.prefix.size()));
    if (!r) return Unexpected(DelegateError{DelegateError::Kind::NamerError, std::move(r).error()});
    if (!r->isNeg()) return std::move(r).value();
  }
  if (!claimed && path.size() >= 2 && path[0] == "$") {
    return Unexpected(DelegateError{
        DelegateError::Kind::UnknownNamer,
        "Unknown namer: " + path.take(2).show() + " for path: " + path.show() +
            " (system namers: " + systemNamerNames() + ")"});
  }
  return NameTree<Name>::neg();
}

// ---------------------------------------------------------------------------
// bind: one pass, lazy over Alt, eager over Union.

class Delegator::Binder {
 public:
  using Result = Expected<NameTree<BoundName>, DelegateError>;

  explicit Binder(const Delegator& d) : d_(d) {}

  // The whole bind: a budget overrun fails it even where a union would
  // otherwise have dropped the failed branch.
  Result bindRoot(const Path& path) {
    Result r = bindPath(path, 1);
    if (overrun_) return Unexpected(std::move(*overrun_));
    return r;
  }

 private:
  Result bindPath(const Path& path, int depth) {
    chain_.push_back(path);
    Result r = bindPathInChain(path, depth);
    chain_.pop_back();
    return r;
  }

  Result bindPathInChain(const Path& path, int depth) {
    // Every lookup is charged, including those that fail on depth, so the
    // budget bounds the whole bind.
    if (++lookups_ > d_.options_.maxLookups) {
      return overrun("delegation of " + chain_.front().show() + " needed more than " +
                     std::to_string(d_.options_.maxLookups) +
                     " path lookups; the dtab's unions multiply too much");
    }
    if (depth > d_.options_.maxDepth) {
      // A union can reach the limit on many branches; describe it once.
      if (!depthMessage_) {
        depthMessage_ = "Max recursion level: " + std::to_string(d_.options_.maxDepth) +
                        " reached in Namer lookup of " + chain_.front().show() + ": " +
                        describeChain(chain_);
      }
      return error(DelegateError::Kind::MaxDepth, *depthMessage_);
    }
    NameTree<Path> rewritten = d_.dtab_.lookup(path);
    // Only a literal Neg (no entry, or one entry whose destination is `~`)
    // goes to the namers; a tree that later binds to Neg does not.
    if (!rewritten.isNeg()) {
      return bindTree(rewritten.map([](const Path& p) { return Name(p); }), depth);
    }
    auto named = d_.lookupNamers(path);
    if (!named) return Unexpected(std::move(named).error());
    return bindTree(*named, depth);
  }

  Result bindTree(const NameTree<Name>& tree, int depth) {
    using Kind = NameTree<Name>::Kind;
    FrameGuard frame(frames_);
    if (frame.exceeded()) {
      return overrun("delegation of " + chain_.front().show() + " nests name trees too deeply");
    }
    switch (tree.kind()) {
      case Kind::Leaf:
        if (const Path* p = std::get_if<Path>(&tree.value())) return bindPath(*p, depth + 1);
        return NameTree<BoundName>::leaf(std::get<BoundName>(tree.value()));
      case Kind::Neg:
        return NameTree<BoundName>::neg();
      case Kind::Fail:
        return NameTree<BoundName>::fail();
      case Kind::Empty:
        return NameTree<BoundName>::empty();
      case Kind::Alt:
        for (const auto& child : tree.alts()) {
          Result r = bindTree(child, depth);
          if (!r || !r->isNeg()) return r;  // errors do not fall back
        }
        return NameTree<BoundName>::neg();
      case Kind::Union: {
        std::vector<NameTree<BoundName>::Weighted> kept;
        std::optional<DelegateError> firstError;
        bool anyBound = false;
        for (const auto& w : tree.weighted()) {
          Result r = bindTree(w.tree, depth);
          if (!r) {
            if (!firstError) firstError = std::move(r).error();
            continue;
          }
          anyBound = true;
          if (r->isNeg() || r->isFail()) continue;
          kept.push_back({w.weight, std::move(r).value()});
        }
        if (!anyBound && firstError) return Unexpected(std::move(*firstError));
        if (kept.empty()) return NameTree<BoundName>::neg();
        if (kept.size() == 1) return std::move(kept.front().tree);
        return NameTree<BoundName>::unionOf(std::move(kept));
      }
    }
    return NameTree<BoundName>::neg();
  }

  static Result error(DelegateError::Kind kind, std::string message) {
    return Unexpected(DelegateError{kind, std::move(message)});
  }

  Result overrun(std::string message) {
    if (!overrun_) overrun_ = DelegateError{DelegateError::Kind::TooLarge, message};
    return error(DelegateError::Kind::TooLarge, std::move(message));
  }

  const Delegator& d_;
  std::vector<Path> chain_;  // the paths of the current chain of rewrites
  std::size_t lookups_ = 0;
  int frames_ = 0;
  std::optional<DelegateError> overrun_;
  std::optional<std::string> depthMessage_;
};

Expected<NameTree<BoundName>, DelegateError> Delegator::bind(const Path& path) const {
  return Binder(*this).bindRoot(path);
}

// ---------------------------------------------------------------------------
// delegate: every branch expanded, each step recorded.

class Delegator::Recorder {
 public:
  using Tree = DelegateTree;
  using Kind = DelegateTree::Kind;

  explicit Recorder(const Delegator& d) : d_(d) {}

  // The whole delegation. Once a budget is spent the partial tree is
  // dropped for one Exception node, so a hostile dtab costs at most the
  // budget in time and memory.
  Tree delegateRoot(const Path& path) {
    Tree t = delegatePath(path, std::nullopt, 1);
    if (overrun_) return exception(path, std::nullopt, *overrun_);
    return t;
  }

 private:
  // The delegation of `path`, reached through `parent` (none at the root).
  Tree delegatePath(const Path& path, const std::optional<Dentry>& parent, int depth) {
    FrameGuard frame(frames_);
    if (stopped(frame)) return Tree{};
    if (depth > d_.options_.maxDepth) {
      return exception(path, parent, "Max recursion level reached.");
    }
    std::vector<Dtab::Match> found = d_.dtab_.matches(path);
    // Unlike bind, a single `~` match is recorded as such: only a path no
    // entry matches goes to the namers.
    if (found.empty()) {
      auto named = d_.lookupNamers(path);
      if (!named) return exception(path, parent, named.error().message);
      if (!named->isNeg()) return fromNamer(*named, path, parent, depth);
      return node(Kind::Neg, path, parent);
    }
    if (found.size() == 1) {
      const Dentry& entry = d_.dtab_.entries()[found.front().index];
      Tree t = node(Kind::Delegate, path, parent);
      t.children.push_back(fromDtab(found.front().tree, path, entry, depth));
      return simplify(std::move(t));
    }
    Tree t = node(Kind::Alt, path, parent);
    for (const auto& m : found) {
      t.children.push_back(fromDtab(m.tree, path, d_.dtab_.entries()[m.index], depth));
    }
    return simplify(std::move(t));
  }

  // Charges one step against the budgets; true once either is spent.
  bool stopped(const FrameGuard& frame) {
    if (overrun_) return true;
    if (frame.exceeded()) {
      overrun_ = "delegation stopped: name trees nested too deeply";
    } else if (++lookups_ > d_.options_.maxLookups) {
      overrun_ = "delegation stopped: more than " + std::to_string(d_.options_.maxLookups) +
                 " path lookups; the dtab's unions multiply too much";
    }
    return overrun_.has_value();
  }

  // A dentry's destination, rewritten for `path`; its leaves are delegated.
  Tree fromDtab(const NameTree<Path>& tree, const Path& path, const Dentry& entry, int depth) {
    using K = NameTree<Path>::Kind;
    FrameGuard frame(frames_);
    if (stopped(frame)) return Tree{};
    switch (tree.kind()) {
      case K::Leaf:
        return delegatePath(tree.value(), entry, depth + 1);
      case K::Neg:
        return node(Kind::Neg, Path{}, entry);
      case K::Fail:
        return node(Kind::Fail, path, entry);
      case K::Empty:
        return node(Kind::Empty, path, entry);
      case K::Alt: {
        Tree t = node(Kind::Alt, path, entry);
        for (const auto& c : tree.alts()) t.children.push_back(fromDtab(c, path, entry, depth));
        return simplify(std::move(t));
      }
      case K::Union: {
        Tree t = node(Kind::Union, path, entry);
        for (const auto& w : tree.weighted()) {
          t.weights.push_back(w.weight);
          t.children.push_back(fromDtab(w.tree, path, entry, depth));
        }
        return simplify(std::move(t));
      }
    }
    return node(Kind::Neg, path, entry);
  }

  // A namer's answer for `path`, reached through `parent`.
  Tree fromNamer(const NameTree<Name>& tree, const Path& path, const std::optional<Dentry>& parent,
                 int depth) {
    using K = NameTree<Name>::Kind;
    FrameGuard frame(frames_);
    if (stopped(frame)) return Tree{};
    switch (tree.kind()) {
      case K::Leaf: {
        if (const Path* p = std::get_if<Path>(&tree.value())) {
          return delegatePath(*p, parent, depth + 1);
        }
        Tree t = node(Kind::Leaf, path, parent);
        t.bound = std::get<BoundName>(tree.value());
        return t;
      }
      case K::Neg:
        return node(Kind::Neg, path, parent);
      case K::Fail:
        return node(Kind::Fail, path, parent);
      case K::Empty:
        return node(Kind::Empty, path, parent);
      case K::Alt: {
        Tree t = node(Kind::Alt, path, parent);
        for (const auto& c : tree.alts()) t.children.push_back(fromNamer(c, path, parent, depth));
        return simplify(std::move(t));
      }
      case K::Union: {
        Tree t = node(Kind::Union, path, parent);
        for (const auto& w : tree.weighted()) {
          t.weights.push_back(w.weight);
          t.children.push_back(fromNamer(w.tree, path, parent, depth));
        }
        return simplify(std::move(t));
      }
    }
    return node(Kind::Neg, path, parent);
  }

  static Tree node(Kind kind, Path path, std::optional<Dentry> dentry) {
    Tree t;
    t.kind = kind;
    t.path = std::move(path);
    t.dentry = std::move(dentry);
    return t;
  }

  static Tree exception(const Path& path, const std::optional<Dentry>& parent, std::string message) {
    Tree t = node(Kind::Exception, path, parent);
    t.message = std::move(message);
    return t;
  }

  // Linkerd's tidying, applied as each node is built:
  //  - an Alt child about the same path as its Alt parent is spliced in;
  //  - an empty Alt/Union is Neg; a single-branch one is a Delegate;
  //  - a Delegate whose child is about the same path (and is not Neg, Fail or
  //    Empty) is replaced by that child, which takes the Delegate's dentry.
  static Tree simplify(Tree t) {
    if (t.kind == Kind::Alt) {
      std::vector<Tree> spliced;
      for (auto& c : t.children) {
        if (c.kind == Kind::Alt && c.path == t.path) {
          for (auto& g : c.children) spliced.push_back(std::move(g));
        } else {
          spliced.push_back(std::move(c));
        }
      }
      t.children = std::move(spliced);
    }
    if (t.kind == Kind::Alt || t.kind == Kind::Union) {
      if (t.children.empty()) return node(Kind::Neg, std::move(t.path), std::move(t.dentry));
      if (t.children.size() == 1) {
        t.kind = Kind::Delegate;
        t.weights.clear();
      }
    }
    if (t.kind == Kind::Delegate) {
      Tree& child = t.children.front();
      bool terminal = child.kind == Kind::Neg || child.kind == Kind::Fail || child.kind == Kind::Empty;
      if (!terminal && child.path == t.path) {
        Tree c = std::move(child);
        c.dentry = std::move(t.dentry);
        return c;
      }
    }
    return t;
  }

  const Delegator& d_;
  std::size_t lookups_ = 0;  // steps, counted against maxLookups
  int frames_ = 0;
  std::optional<std::string> overrun_;
};

DelegateTree Delegator::delegate(const Path& path) const {
  return Recorder(*this).delegateRoot(path);
}

}  // namespace switchyard::dtab
