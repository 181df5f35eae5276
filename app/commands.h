#pragma once

// The `switchyard` subcommands. Each `add*Command` registers its options on
// the CLI11 app and returns a function that runs it and returns the exit code:
// 0 success, 1 the input was wrong (a dtab that does not parse, a failed
// delegation), 2 the command line was wrong.

#include <functional>
#include <string>

namespace CLI {
class App;
}

namespace switchyard::app {

using Run = std::function<int()>;

Run addDtabCommand(CLI::App& parent);
Run addDelegateCommand(CLI::App& parent);
Run addRouterCommand(CLI::App& parent);
Run addNamerCommand(CLI::App& parent);

// The namer service's subcommands of `dtab` (list, get, create, update,
// delete, test); the returned function runs whichever was given.
Run addDtabRemoteCommands(CLI::App* dtab);

// Reads a whole file; false (with a message on stderr) if it cannot.
bool readFile(const std::string& filename, std::string& out);

}  // namespace switchyard::app
