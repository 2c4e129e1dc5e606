// Scoped pointers to several arrays at once, so a kernel's setup is one line instead of a
// pyramid of nested `withUnsafe…BufferPointer` closures (one per output or input array).
// Each body runs once per call, outside the per-element loops, and is inlined: the loops
// inside see the same raw buffers as with the nested closures.

/// Mutable buffers of two arrays for the duration of `body`.
@inline(__always)
func withMutableBuffers<R>(
    _ a: inout [Double], _ b: inout [Double],
    _ body: (UnsafeMutableBufferPointer<Double>, UnsafeMutableBufferPointer<Double>) throws -> R
) rethrows -> R {
    try a.withUnsafeMutableBufferPointer { a in
        try b.withUnsafeMutableBufferPointer { b in try body(a, b) }
    }
}

/// Mutable buffers of three arrays for the duration of `body`.
@inline(__always)
func withMutableBuffers<R>(
    _ a: inout [Double], _ b: inout [Double], _ c: inout [Double],
    _ body: (UnsafeMutableBufferPointer<Double>, UnsafeMutableBufferPointer<Double>, UnsafeMutableBufferPointer<Double>) throws -> R
) rethrows -> R {
    try a.withUnsafeMutableBufferPointer { a in
        try b.withUnsafeMutableBufferPointer { b in
            try c.withUnsafeMutableBufferPointer { c in try body(a, b, c) }
        }
    }
}

/// Mutable buffers of four arrays for the duration of `body`.
@inline(__always)
func withMutableBuffers<R>(
    _ a: inout [Double], _ b: inout [Double], _ c: inout [Double], _ d: inout [Double],
    _ body: (
        UnsafeMutableBufferPointer<Double>, UnsafeMutableBufferPointer<Double>, UnsafeMutableBufferPointer<Double>,
        UnsafeMutableBufferPointer<Double>
    ) throws -> R
) rethrows -> R {
    try a.withUnsafeMutableBufferPointer { a in
        try b.withUnsafeMutableBufferPointer { b in
            try c.withUnsafeMutableBufferPointer { c in
                try d.withUnsafeMutableBufferPointer { d in try body(a, b, c, d) }
            }
        }
    }
}

/// Read-only buffers of two arrays for the duration of `body`.
@inline(__always)
func withBuffers<R>(
    _ a: [Double], _ b: [Double], _ body: (UnsafeBufferPointer<Double>, UnsafeBufferPointer<Double>) throws -> R
) rethrows -> R {
    try a.withUnsafeBufferPointer { a in
        try b.withUnsafeBufferPointer { b in try body(a, b) }
    }
}

/// Two zeroed scratch rows of `count` entries for the duration of `body`: the workspace a
/// row kernel allocates once per range of rows, not per row.
@inline(__always)
func withScratch<R>(
    _ count: Int, _ body: (UnsafeMutableBufferPointer<Double>, UnsafeMutableBufferPointer<Double>) throws -> R
) rethrows -> R {
    var a = [Double](repeating: 0, count: count), b = [Double](repeating: 0, count: count)
    return try withMutableBuffers(&a, &b, body)
}

/// Three zeroed scratch rows of `count` entries for the duration of `body` (see above).
@inline(__always)
func withScratch<R>(
    _ count: Int,
    _ body: (UnsafeMutableBufferPointer<Double>, UnsafeMutableBufferPointer<Double>, UnsafeMutableBufferPointer<Double>) throws -> R
) rethrows -> R {
    var a = [Double](repeating: 0, count: count), b = [Double](repeating: 0, count: count)
    var c = [Double](repeating: 0, count: count)
    return try withMutableBuffers(&a, &b, &c, body)
}
