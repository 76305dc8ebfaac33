#ifndef CLM_SANITIZERS_INTERPOSE_H_
#define CLM_SANITIZERS_INTERPOSE_H_

// Finding the library definition of a function that the executable redefines (interposes) in order to
// annotate it for ThreadSanitizer: the dynamic linker resolves every caller, in the executable and in the
// shared libraries, to the executable's definition, which calls the library's through these.

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace clm::sanitizers {

// The next definition of the C function `name` after the executable's.
inline void* Next(const char* name) {
  void* real = dlsym(RTLD_NEXT, name);
  if (real == nullptr) {
    std::fprintf(stderr, "clm sanitizers: %s not found after the executable: %s\n", name, dlerror());
    std::abort();
  }
  return real;
}

// The next definition after the executable's of the function whose definition in the executable is at
// `ours`, looked up by the name the executable exports it under.
inline void* NextOf(void* ours) {
  Dl_info info;
  if (dladdr(ours, &info) == 0 || info.dli_sname == nullptr || info.dli_saddr != ours) {
    std::fprintf(stderr, "clm sanitizers: an interposed function is not exported by the executable\n");
    std::abort();
  }
  return Next(info.dli_sname);
}

// The library's definition of the non-virtual member function whose definition in the executable is `ours`.
template <typename MemberFn>
inline MemberFn Real(MemberFn ours) {
  // Itanium C++ ABI: a pointer to a non-virtual member function is {code address, this adjustment} (for a
  // virtual one it holds a vtable offset instead, which NextOf rejects).
  static_assert(sizeof(MemberFn) == 2 * sizeof(void*), "Itanium C++ ABI member function pointer expected");
  void* address = nullptr;
  std::memcpy(&address, &ours, sizeof(address));
  void* real = NextOf(address);
  std::memcpy(&ours, &real, sizeof(real));
  return ours;
}

}  // namespace clm::sanitizers

#endif  // CLM_SANITIZERS_INTERPOSE_H_
