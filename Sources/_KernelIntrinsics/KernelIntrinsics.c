// The kernels' C intrinsics are static inline functions in include/ (inlined into the Swift kernels
// and lowered for each kernel module's instruction set); SwiftPM needs one source file per C target.
#include "Prefetch.h"
#include "LaneSums.h"
#include "FastExp.h"
#include "QuantizedDot.h"
#include "IntegerDot.h"
