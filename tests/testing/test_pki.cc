#include "tests/testing/test_pki.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace clm::testing {
namespace {

absl::Status Run(const std::string& command) {
  const std::string quiet = absl::StrCat(command, " >/dev/null 2>&1");
  if (std::system(quiet.c_str()) != 0) return absl::InternalError(absl::StrCat("failed: ", command));
  return absl::OkStatus();
}

// A self-signed CA.
absl::Status MakeCa(const std::string& dir, const std::string& name) {
  return Run(absl::StrCat("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -keyout ",
                          dir, "/", name, ".key -out ", dir, "/", name, ".pem -subj /CN=", name));
}

// A certificate for `cn` signed by `ca`, with `extensions` (an openssl extension file's contents).
absl::Status MakeLeaf(const std::string& dir, const std::string& ca, const std::string& name, const std::string& cn,
                      const std::string& extensions) {
  const std::string ext_file = absl::StrCat(dir, "/", name, ".ext");
  std::ofstream(ext_file) << extensions << "\n";
  if (absl::Status s = Run(absl::StrCat("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ", dir,
                                        "/", name, ".key -out ", dir, "/", name, ".csr -subj /CN=", cn));
      !s.ok()) {
    return s;
  }
  return Run(absl::StrCat("openssl x509 -req -days 2 -in ", dir, "/", name, ".csr -CA ", dir, "/", ca, ".pem -CAkey ",
                          dir, "/", ca, ".key -CAcreateserial -out ", dir, "/", name, ".pem -extfile ", ext_file));
}

}  // namespace

absl::StatusOr<TestPki> MakeTestPki(const std::string& dir) {
  const std::string server_ext =
      "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth";
  const std::string client_ext = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth";
  for (absl::Status s : {MakeCa(dir, "ca"), MakeCa(dir, "foreign-ca"),
                         MakeLeaf(dir, "ca", "server", "clm-server-a", server_ext),
                         MakeLeaf(dir, "ca", "rotated", "clm-server-b", server_ext),
                         MakeLeaf(dir, "ca", "engine", "engine-eu-1", client_ext),
                         MakeLeaf(dir, "ca", "stranger", "stranger", client_ext),
                         MakeLeaf(dir, "foreign-ca", "foreign", "engine-eu-1", client_ext)}) {
    if (!s.ok()) return s;
  }
  auto at = [&dir](const std::string& name) { return absl::StrCat(dir, "/", name); };
  TestPki pki;
  pki.ca_cert = at("ca.pem");
  pki.server_cert = at("server.pem");
  pki.server_key = at("server.key");
  pki.rotated_server_cert = at("rotated.pem");
  pki.rotated_key = at("rotated.key");
  pki.engine_cert = at("engine.pem");
  pki.engine_key = at("engine.key");
  pki.stranger_cert = at("stranger.pem");
  pki.stranger_key = at("stranger.key");
  pki.foreign_ca_cert = at("foreign-ca.pem");
  pki.foreign_cert = at("foreign.pem");
  pki.foreign_key = at("foreign.key");
  return pki;
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace clm::testing
