// The SSE2 level: baseline x86-64, and the only level elsewhere (aarch64 compiles these
// vectors to NEON). 8 float / 4 double lanes, split by the compiler into 128-bit halves.
#define LEVEL sse2
#define FL 8
#define DL 4
#include "softmax_rows.h"
