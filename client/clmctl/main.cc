// clmctl: the operator's command-line client for a CLM server. The commands live in commands.cc.
#include <iostream>
#include <string>
#include <vector>

#include "client/clmctl/commands.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return clm::clmctl::Run(args, std::cout, std::cerr);
}
