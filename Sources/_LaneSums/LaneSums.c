// The lane sums are static inline functions in include/LaneSums.h; SwiftPM needs one source file.
#include "LaneSums.h"
