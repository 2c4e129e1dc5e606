// See CLossdJSON.h. The algorithms: Clinger's exact fast path (1990), Eisel-Lemire
// (Lemire, "Number Parsing at a Gigabyte per Second", 2021), eight digits at a time as one
// 64-bit word (the SWAR digit test and the three-multiply conversion from the same line
// of work). docs/json.md explains them.
#include "CLossdJSON.h"

#include <string.h>

static inline int is_digit(uint8_t b) { return (uint8_t)(b - '0') < 10; }

static inline int is_space(uint8_t b) { return b == ' ' || b == '\n' || b == '\r' || b == '\t'; }

/// How many of the word's eight bytes (little-endian), from the first, are ASCII digits:
/// t = byte ^ '0' is a digit's value when below 10; (t & 0x7F) + 0x76 sets bit 7 exactly
/// when that is 10 or more (no carry into the next byte), and t's own bit 7 catches the rest.
static inline unsigned leading_digits(uint64_t chunk) {
    uint64_t t = chunk ^ 0x3030303030303030u;
    uint64_t non_digit = (((t & 0x7F7F7F7F7F7F7F7Fu) + 0x7676767676767676u) | t) & 0x8080808080808080u;
    return non_digit == 0 ? 8 : (unsigned)__builtin_ctzll(non_digit) >> 3;
}

static const uint64_t powers_of_ten_u64[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

/// The value of eight ASCII digits, the first in the lowest byte: pairs, then quadruples,
/// then the whole, in three multiplications.
static inline uint64_t eight_digits_value(uint64_t chunk) {
    uint64_t v = chunk - 0x3030303030303030u;
    v = v * 10 + (v >> 8);
    return ((v & 0x000000FF000000FFu) * (100 + (1000000ull << 32)) +
            ((v >> 16) & 0x000000FF000000FFu) * (1 + (10000ull << 32))) >> 32;
}

/// Powers of ten a double holds exactly, for Clinger's path.
static const double exact_powers[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

int lossd_json_eisel_lemire(uint64_t mantissa, int64_t exponent, double *out) {
    if (mantissa == 0) {
        *out = 0;
        return 1;
    }
    if (exponent < LOSSD_JSON_POW10_MIN || exponent > LOSSD_JSON_POW10_MAX) return 0;
    const uint64_t *powers = lossd_json_powers_of_ten();
    int leading_zeros = __builtin_clzll(mantissa);
    uint64_t w = mantissa << leading_zeros;
    // floor(log2(10^e)) + 64 + bias, less the normalisation shift.
    uint64_t exponent2 = (uint64_t)(((217706 * exponent) >> 16) + 64 + 1023) - (uint64_t)leading_zeros;
    size_t index = (size_t)(2 * (exponent - LOSSD_JSON_POW10_MIN));
    __uint128_t product = (__uint128_t)w * powers[index];
    uint64_t high = (uint64_t)(product >> 64), low = (uint64_t)product;
    if ((high & 0x1FF) == 0x1FF && low + w < w) {
        // Not enough bits: bring in the low half of the power.
        __uint128_t second = (__uint128_t)w * powers[index + 1];
        uint64_t second_high = (uint64_t)(second >> 64), second_low = (uint64_t)second;
        uint64_t merged_high = high, merged_low = low + second_high;
        if (merged_low < low) merged_high += 1;
        if ((merged_high & 0x1FF) == 0x1FF && merged_low + 1 == 0 && second_low + w < w) return 0;
        high = merged_high;
        low = merged_low;
    }
    uint64_t top = high >> 63;
    uint64_t result = high >> (top + 9);
    exponent2 -= 1 ^ top;
    // Exactly half-way between two doubles: 128 bits cannot tell which way to round.
    if (low == 0 && (high & 0x1FF) == 0 && (result & 3) == 1) return 0;
    result += result & 1;
    result >>= 1;
    if (result >> 53) {
        result >>= 1;
        exponent2 += 1;
    }
    // Subnormal or infinite: left to the exact path.
    if (exponent2 - 1 >= 0x7FF - 1) return 0;
    uint64_t bits = exponent2 << 52 | (result & 0x000FFFFFFFFFFFFFu);
    memcpy(out, &bits, sizeof bits);
    return 1;
}

/// The common number at bytes[i] (a sign, at most 19 digits, optional fraction and
/// exponent), decided by Clinger's path or Eisel-Lemire. Returns 0 for anything else,
/// which the general scanner then reads (or rejects). Requires i < count.
static inline int scan_common(const uint8_t *bytes, size_t count, size_t i, double *value, size_t *end) {
    int negative = bytes[i] == '-';
    if (negative && ++i >= count) return 0;
    uint64_t mantissa = 0;
    size_t digits = 0;
    if (bytes[i] == '0') {
        i++;
        if (i < count && is_digit(bytes[i])) return 0;  // a leading zero: not JSON
    } else {
        if (!is_digit(bytes[i])) return 0;
        while (i < count && is_digit(bytes[i])) {
            mantissa = mantissa * 10 + (uint64_t)(bytes[i] - '0');
            digits++;
            i++;
        }
    }
    int64_t exponent = 0;
    if (i < count && bytes[i] == '.') {
        size_t fraction_start = ++i;
        while (i + 8 <= count) {
            uint64_t chunk;
            memcpy(&chunk, bytes + i, sizeof chunk);  // little-endian (x86-64, aarch64)
            unsigned digits_here = leading_digits(chunk);
            if (digits_here == 8) {
                mantissa = mantissa * 100000000u + eight_digits_value(chunk);
                i += 8;
                continue;
            }
            // The last digits of the run, without a loop: keep the k digits at the top of
            // the word, fill the low bytes with '0' (leading zeros), convert all eight.
            if (digits_here > 0) {
                unsigned shift = 64 - 8 * digits_here;
                uint64_t padded = (chunk << shift) | (0x3030303030303030u >> (64 - shift));
                mantissa = mantissa * powers_of_ten_u64[digits_here] + eight_digits_value(padded);
                i += digits_here;
            }
            goto fraction_done;
        }
        while (i < count && is_digit(bytes[i])) {
            mantissa = mantissa * 10 + (uint64_t)(bytes[i] - '0');
            i++;
        }
    fraction_done:;
        size_t fraction_digits = i - fraction_start;
        if (fraction_digits == 0) return 0;
        digits += fraction_digits;
        exponent = -(int64_t)fraction_digits;
    }
    // Leading fraction zeros count too: a conservative bound on what fits in 64 bits.
    if (digits > 19) return 0;
    if (i < count && (bytes[i] | 0x20) == 'e') {
        i++;
        int exponent_negative = 0;
        if (i < count && (bytes[i] == '+' || bytes[i] == '-')) exponent_negative = bytes[i++] == '-';
        if (i >= count || !is_digit(bytes[i])) return 0;
        int64_t explicit_exponent = 0;
        while (i < count && is_digit(bytes[i])) {
            if (explicit_exponent < 1000000) explicit_exponent = explicit_exponent * 10 + (bytes[i] - '0');
            i++;
        }
        exponent += exponent_negative ? -explicit_exponent : explicit_exponent;
    }
    double magnitude;
    if (mantissa == 0) {
        magnitude = 0;
    } else if (mantissa <= (1ull << 53) && exponent >= -22 && exponent <= 22) {
        // Clinger: both operands exact, one correctly rounded operation.
        double m = (double)mantissa;
        magnitude = exponent < 0 ? m / exact_powers[-exponent] : m * exact_powers[exponent];
    } else if (!lossd_json_eisel_lemire(mantissa, exponent, &magnitude)) {
        return 0;
    }
    *value = negative ? -magnitude : magnitude;
    *end = i;
    return 1;
}

size_t lossd_json_scan_number_run(
    const uint8_t *bytes, size_t count, size_t *position, int after_value, double *out, size_t capacity,
    int *stop) {
    size_t i = *position, n = 0;
    if (after_value) goto separator;
    for (;;) {
        if (n == capacity) {
            *stop = LOSSD_JSON_RUN_FULL;
            break;
        }
        if (!scan_common(bytes, count, i, &out[n], &i)) {
            *stop = LOSSD_JSON_RUN_GENERAL;
            break;
        }
        n++;
    separator:
        while (i < count && is_space(bytes[i])) i++;
        if (i < count && bytes[i] == ']') {
            *stop = LOSSD_JSON_RUN_CLOSED;
            break;
        }
        if (i >= count || bytes[i] != ',') {
            *stop = LOSSD_JSON_RUN_OTHER;
            break;
        }
        i++;
        while (i < count && is_space(bytes[i])) i++;
        if (i >= count || !(bytes[i] == '-' || is_digit(bytes[i]))) {
            *stop = LOSSD_JSON_RUN_OTHER;
            break;
        }
    }
    *position = i;
    return n;
}
