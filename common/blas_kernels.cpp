#include "common/blas_kernels.h"

#include <dlfcn.h>

namespace clipcap {

std::string blas_kernels() {
  // Looked up, not linked: libtorch loads whichever libblas.so.3 the system's alternatives name.
  using CoreName = char* (*)();
  auto fn = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const char* name = fn ? fn() : nullptr;
  return name ? std::string("OpenBLAS ") + name : "";
}

}  // namespace clipcap
