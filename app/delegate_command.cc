// `switchyard delegate`: delegates a path through a dtab (and a per-request
// dtab) and shows every step, as Linkerd's dtab playground does.

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "dtab/delegator.h"
#include "dtab/dtab.h"
#include "dtab/path.h"
#include "namer/delegate_json.h"
#include "namer/static_namer.h"

namespace switchyard::app {
namespace {

using dtab::DelegateTree;

struct DelegateOptions {
  std::string dtab;
  std::string dtabFile;
  std::string localDtab;
  std::string namersFile;
  std::string format = "text";
  std::string path;
};

// Reads one dtab argument; prints the error naming the option.
bool parseDtabArg(const std::string& what, const std::string& text, dtab::Dtab& out) {
  auto parsed = dtab::Dtab::parse(text);
  if (!parsed) {
    std::cerr << "switchyard: " << what << ": " << parsed.error().message() << "\n";
    return false;
  }
  out = std::move(*parsed);
  return true;
}

std::string describeAddr(const dtab::Addr& addr) {
  switch (addr.kind) {
    case dtab::Addr::Kind::Bound: {
      if (addr.endpoints.empty()) return "no endpoints";
      std::string out;
      for (const auto& e : addr.endpoints) {
        if (!out.empty()) out += ", ";
        bool v6 = e.ip.find(':') != std::string::npos;
        out += (v6 ? "[" + e.ip + "]" : e.ip) + ":" + std::to_string(e.port);
      }
      return out;
    }
    case dtab::Addr::Kind::Failed:
      return "unresolved: " + addr.error;
    case dtab::Addr::Kind::Neg:
      return "no such name";
    case dtab::Addr::Kind::Pending:
      return "pending";
  }
  return "";
}

// One line per node, children indented under it:
//   /foo/humbug  (via /boo=>/foo)  first of:
void printText(const DelegateTree& t, int indent, const std::string& lead, std::ostream& out) {
  out << std::string(static_cast<std::size_t>(indent) * 2, ' ') << lead;
  bool emptyNeg = t.kind == DelegateTree::Kind::Neg && t.path.empty();
  out << (emptyNeg ? "~" : t.path.show());
  if (t.dentry) out << "  (via " << t.dentry->show() << ")";
  switch (t.kind) {
    case DelegateTree::Kind::Delegate:
      out << "\n";
      printText(t.children.front(), indent + 1, "", out);
      return;
    case DelegateTree::Kind::Alt:
      out << "  first of:\n";
      for (const auto& c : t.children) printText(c, indent + 1, "", out);
      return;
    case DelegateTree::Kind::Union:
      out << "  split:\n";
      for (std::size_t i = 0; i < t.children.size(); ++i) {
        printText(t.children[i], indent + 1, dtab::formatWeight(t.weights[i]) + " * ", out);
      }
      return;
    case DelegateTree::Kind::Leaf:
      out << "  => bound " << t.bound->id.show();
      if (!t.bound->residual.empty()) out << " residual " << t.bound->residual.show();
      out << ": " << describeAddr(t.bound->addr) << "\n";
      return;
    case DelegateTree::Kind::Neg:
      out << "  => ~ (no such name)\n";
      return;
    case DelegateTree::Kind::Fail:
      out << "  => ! (fail)\n";
      return;
    case DelegateTree::Kind::Empty:
      out << "  => $ (empty)\n";
      return;
    case DelegateTree::Kind::Exception:
      out << "  => error: " << t.message << "\n";
      return;
  }
}

int runDelegate(const DelegateOptions& o) {
  if (o.format != "text" && o.format != "json") {
    std::cerr << "switchyard: --format must be text or json, got '" << o.format << "'\n";
    return 2;
  }
  dtab::Dtab base;
  if (!o.dtabFile.empty()) {
    std::string text;
    if (!readFile(o.dtabFile, text) || !parseDtabArg(o.dtabFile, text, base)) return 2;
  }
  dtab::Dtab extra;
  dtab::Dtab local;
  if (!parseDtabArg("--dtab", o.dtab, extra) || !parseDtabArg("--local-dtab", o.localDtab, local)) {
    return 2;
  }
  auto path = dtab::Path::parse(o.path);
  if (!path) {
    std::cerr << "switchyard: PATH: " << path.error().message() << "\n";
    return 2;
  }
  std::vector<dtab::NamerEntry> namers;
  if (!o.namersFile.empty()) {
    auto loaded = namer::loadStaticNamers(o.namersFile);
    if (!loaded) {
      std::cerr << "switchyard: --namers: " << loaded.error() << "\n";
      return 2;
    }
    namers = std::move(*loaded);
  }

  // The per-request dtab goes last, so its entries win.
  dtab::Delegator delegator(base + extra + local, std::move(namers));
  DelegateTree tree = delegator.delegate(*path);
  auto bound = delegator.bind(*path);

  if (o.format == "json") {
    nlohmann::json out = {{"path", path->show()},
                          {"dtab", delegator.dtab().show()},
                          {"delegation", namer::delegateTreeToJson(tree)},
                          {"bound", nullptr},
                          {"residual", nullptr},
                          {"error", nullptr},
                          {"errorKind", nullptr}};
    if (bound) {
      out["bound"] = dtab::show(*bound);
      nlohmann::json residual = nlohmann::json::object();
      if (auto leaves = bound->eval()) {
        for (const auto& b : *leaves) residual[b.id.show()] = b.residual.show();
      }
      out["residual"] = std::move(residual);
    } else {
      out["error"] = bound.error().message;
      out["errorKind"] = dtab::kindName(bound.error().kind);
    }
    // Paths are escaped already; `replace` keeps any stray invalid UTF-8 in a
    // namer's message from aborting the dump.
    std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    printText(tree, 0, "", std::cout);
    if (bound) {
      std::cout << "bound: " << dtab::show(*bound) << "\n";
    } else {
      std::cout << "error: " << bound.error().message << "\n";
    }
  }
  return bound ? 0 : 1;
}

}  // namespace

Run addDelegateCommand(CLI::App& parent) {
  auto opts = std::make_shared<DelegateOptions>();
  CLI::App* cmd = parent.add_subcommand(
      "delegate",
      "Delegate a path through a dtab and show every step; exit 0 when delegation completes "
      "(also to ~ or !), 1 on an error (loop, unknown namer, namer failure), 2 on bad arguments");
  cmd->add_option("--dtab", opts->dtab, "The dtab, e.g. '/svc => /$/inet/127.0.0.1'");
  cmd->add_option("--dtab-file", opts->dtabFile, "Read the dtab from FILE (before --dtab)");
  cmd->add_option("--local-dtab", opts->localDtab,
                  "A per-request dtab (as l5d-dtab), appended last so its entries win");
  cmd->add_option("--namers", opts->namersFile,
                  "JSON file of static namers: {\"/#/io.l5d.fs\": {\"name\": [\"ip:port\"]}}");
  cmd->add_option("--format", opts->format, "Output: text (default) or json");
  cmd->add_option("PATH", opts->path, "The path to delegate, e.g. /svc/hello")->required();
  return [opts] { return runDelegate(*opts); };
}

}  // namespace switchyard::app
