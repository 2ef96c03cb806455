// The local commands of the p2pcdn CLI. Each returns a process exit code.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace p2pcdn::cli {

// Documented in README.md and `p2pcdn --help`.
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,    // anything not listed below
  kExitUsage = 2,      // bad command line
  kExitNotFound = 3,   // no such file id / path
  kExitIntegrity = 4,  // a chunk or manifest failed verification
  kExitIo = 5,         // disk or database error
  kExitIncomplete = 6, // verify: chunks are missing (none corrupt)
  kExitInterrupted = 130,  // SIGINT/SIGTERM (partial work undone)
};

struct Globals {
  std::filesystem::path home;  // $P2PCDN_HOME or ~/.local/share/p2pcdn
  bool json = false;
  bool quiet = false;
  std::uint64_t quotaBytes = 0;  // 0: the store's default (10 GB)
  std::string durability = "power-loss";
};

struct AddArgs {
  std::filesystem::path file;
  std::string name, mime;
  std::uint32_t chunkSize = 0;
  bool encrypt = false;
};

int cmdAdd(const Globals& g, const AddArgs& a);
int cmdLs(const Globals& g);
int cmdExport(const Globals& g, const std::string& id, const std::filesystem::path& out, const std::string& key);
int cmdVerify(const Globals& g, const std::string& id);
int cmdRm(const Globals& g, const std::string& id);
int cmdManifest(const Globals& g, const std::string& id);

std::filesystem::path defaultHome();
void installSignalHandlers();

}  // namespace p2pcdn::cli
