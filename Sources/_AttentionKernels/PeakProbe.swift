/// Runs `iterations` steps of independent vector multiply-adds on registers only (wide targets: 16
/// chains of 16 lanes, 512 flops per step; narrow: 12 chains of 8 lanes, 192 flops, which leaves
/// AVX2 registers free so nothing spills), and returns a value that depends on all of them so none is
/// optimized away. Timing it measures the machine's multiply-add peak for one thread.
@inlinable @inline(__always)
public func multiplyAddProbe<M: MultiplyAdd>(iterations: Int, seed: Float, _: M.Type) -> Float {
    if M.registers == .narrow { return narrowMultiplyAddProbe(iterations: iterations, seed: seed, M.self) }
    let a = SIMD16<Float>(repeating: 0.999_999), b = SIMD16<Float>(repeating: seed * 1e-7)
    var c0 = SIMD16<Float>(repeating: seed), c1 = c0 + 1, c2 = c0 + 2, c3 = c0 + 3
    var c4 = c0 + 4, c5 = c0 + 5, c6 = c0 + 6, c7 = c0 + 7
    var c8 = c0 + 8, c9 = c0 + 9, c10 = c0 + 10, c11 = c0 + 11
    var c12 = c0 + 12, c13 = c0 + 13, c14 = c0 + 14, c15 = c0 + 15
    for _ in 0..<iterations {
        c0 = M.multiplyAdd(c0, a, b); c1 = M.multiplyAdd(c1, a, b); c2 = M.multiplyAdd(c2, a, b)
        c3 = M.multiplyAdd(c3, a, b); c4 = M.multiplyAdd(c4, a, b); c5 = M.multiplyAdd(c5, a, b)
        c6 = M.multiplyAdd(c6, a, b); c7 = M.multiplyAdd(c7, a, b); c8 = M.multiplyAdd(c8, a, b)
        c9 = M.multiplyAdd(c9, a, b); c10 = M.multiplyAdd(c10, a, b); c11 = M.multiplyAdd(c11, a, b)
        c12 = M.multiplyAdd(c12, a, b); c13 = M.multiplyAdd(c13, a, b); c14 = M.multiplyAdd(c14, a, b)
        c15 = M.multiplyAdd(c15, a, b)
    }
    let total = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11)) + ((c12 + c13) + (c14 + c15))
    return total.sum()
}

@inlinable @inline(__always)
func narrowMultiplyAddProbe<M: MultiplyAdd>(iterations: Int, seed: Float, _: M.Type) -> Float {
    let a = SIMD8<Float>(repeating: 0.999_999), b = SIMD8<Float>(repeating: seed * 1e-7)
    var c0 = SIMD8<Float>(repeating: seed), c1 = c0 + 1, c2 = c0 + 2, c3 = c0 + 3
    var c4 = c0 + 4, c5 = c0 + 5, c6 = c0 + 6, c7 = c0 + 7
    var c8 = c0 + 8, c9 = c0 + 9, c10 = c0 + 10, c11 = c0 + 11
    for _ in 0..<iterations {
        c0 = M.multiplyAdd(c0, a, b); c1 = M.multiplyAdd(c1, a, b); c2 = M.multiplyAdd(c2, a, b)
        c3 = M.multiplyAdd(c3, a, b); c4 = M.multiplyAdd(c4, a, b); c5 = M.multiplyAdd(c5, a, b)
        c6 = M.multiplyAdd(c6, a, b); c7 = M.multiplyAdd(c7, a, b); c8 = M.multiplyAdd(c8, a, b)
        c9 = M.multiplyAdd(c9, a, b); c10 = M.multiplyAdd(c10, a, b); c11 = M.multiplyAdd(c11, a, b)
    }
    return horizontalSum(((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11)))
}

/// The sum of `count` floats (a multiple of 32) read in order with four independent chains, so
/// that the loads, not the adds, limit it: timing it over a buffer far larger than the caches
/// measures the memory's read bandwidth for one thread.
@inlinable @inline(__always)
public func streamingSum<M: MultiplyAdd>(_ p: UnsafePointer<Float>, count: Int, _: M.Type) -> Float {
    var s0 = SIMD8<Float>.zero, s1 = s0, s2 = s0, s3 = s0
    var q = p
    let end = p + (count & ~31)
    while q < end {
        s0 += Float.load8(q, M.self); s1 += Float.load8(q + 8, M.self)
        s2 += Float.load8(q + 16, M.self); s3 += Float.load8(q + 24, M.self)
        q += 32
    }
    return ((s0 + s1) + (s2 + s3)).sum()
}
