// Which matrix-multiply kernels the system BLAS runs: Debian's libtorch multiplies f32 matrices
// with it (OpenBLAS, see scripts/setup.sh), and OpenBLAS picks its kernels when it is loaded, from
// the CPU model it recognises or from OPENBLAS_CORETYPE. Speed reports and bug reports need it
// (`--version` prints it).
#pragma once

#include <string>

namespace clipcap {

// "OpenBLAS <core>" (the kernels in use, e.g. "OpenBLAS Haswell"), or "" when the BLAS is not OpenBLAS.
std::string blas_kernels();

}  // namespace clipcap
