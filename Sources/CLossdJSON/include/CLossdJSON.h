#ifndef CLOSSD_JSON_H
#define CLOSSD_JSON_H
// The number-scanning inner loop of LossdJSON's reader, in C so that it compiles to the
// tight byte loop it is: a tensor body is millions of `-3.5720315410940437,` and reading
// them is where a request spends its parse time. Only the common, unambiguous cases are
// decided here; everything else is handed back to the Swift reader, which owns the JSON
// grammar, its error messages and the exact (strtod) fallback.
#include <stddef.h>
#include <stdint.h>

/// Decimal exponents covered by `lossd_json_powers_of_ten`.
enum { LOSSD_JSON_POW10_MIN = -348, LOSSD_JSON_POW10_MAX = 347 };

/// The normalized 128-bit mantissas of 10^e, rounded down, for e in
/// LOSSD_JSON_POW10_MIN...LOSSD_JSON_POW10_MAX: high then low 64-bit half at index
/// 2 * (e - LOSSD_JSON_POW10_MIN).
const uint64_t *lossd_json_powers_of_ten(void);

/// Eisel-Lemire: mantissa * 10^exponent correctly rounded to a double, stored in *out.
/// Returns 0 (and leaves *out alone) when 128 bits of the power cannot decide the rounding,
/// or when the result is subnormal or out of range: the caller then needs an exact method.
int lossd_json_eisel_lemire(uint64_t mantissa, int64_t exponent, double *out);

/// Why `lossd_json_scan_number_run` stopped.
enum {
    /// At the `]` closing the leaf array (not consumed).
    LOSSD_JSON_RUN_CLOSED = 0,
    /// `out` is full; the next byte starts a number.
    LOSSD_JSON_RUN_FULL = 1,
    /// The number at *position is not one this loop decides (more than 19 digits, a syntax
    /// error, a rounding Eisel-Lemire leaves open): the general scanner reads it.
    LOSSD_JSON_RUN_GENERAL = 2,
    /// Something other than a number, a comma or `]` (or the end of the input) came next:
    /// not a leaf array of numbers.
    LOSSD_JSON_RUN_OTHER = 3,
};

/// Reads `number (, number)*` from bytes[*position], writing values to `out` (at most
/// `capacity`), until one of the stops above; JSON whitespace is allowed around commas.
/// With `after_value` set, *position is just past a number and the loop starts at the
/// separator. Returns how many values were written; *position is where it stopped.
size_t lossd_json_scan_number_run(
    const uint8_t *bytes, size_t count, size_t *position, int after_value, double *out, size_t capacity,
    int *stop);

#endif
