#ifndef CLM_TESTS_TESTING_TEST_PKI_H_
#define CLM_TESTS_TESTING_TEST_PKI_H_

#include <string>

#include "absl/status/statusor.h"

namespace clm::testing {

// A throwaway public-key infrastructure made with the openssl command line (EC P-256, valid two days):
// a CA, a server certificate for 127.0.0.1/localhost, client certificates it signs, and a foreign CA with a
// client certificate of its own. All files are PEM, in `dir`.
struct TestPki {
  std::string ca_cert;
  std::string server_cert, server_key;           // CN=clm-server-a
  std::string rotated_server_cert, rotated_key;  // CN=clm-server-b, same CA (certificate rotation)
  std::string engine_cert, engine_key;           // CN=engine-eu-1
  std::string stranger_cert, stranger_key;       // CN=stranger, signed by our CA, no cert entry
  std::string foreign_ca_cert;
  std::string foreign_cert, foreign_key;         // CN=engine-eu-1, signed by the foreign CA
};

absl::StatusOr<TestPki> MakeTestPki(const std::string& dir);

// The whole file as a string ("" when it cannot be read).
std::string ReadFileOrEmpty(const std::string& path);

}  // namespace clm::testing

#endif  // CLM_TESTS_TESTING_TEST_PKI_H_
