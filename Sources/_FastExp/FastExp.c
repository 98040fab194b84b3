// The steps are static inline functions in include/FastExp.h; SwiftPM needs one source file.
#include "FastExp.h"
