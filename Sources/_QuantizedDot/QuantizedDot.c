// Header-only: the functions are static inline in include/QuantizedDot.h.
#include "QuantizedDot.h"
