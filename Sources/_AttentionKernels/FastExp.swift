import _KernelIntrinsics

/// `2^x` for sixteen lanes at once, for `x <= 0` (softmax arguments after subtracting the maximum).
///
/// Range reduction `x = n + f` with `n = round(x)`, `f ∈ [-0.5, 0.5]`; `2^f` by a degree-6 polynomial
/// (least-squares fit of the relative error, max relative error about 1e-7); `2^n` built directly in
/// the exponent bits. Inputs below -126.5 (including -infinity) give exactly 0, so masked scores
/// vanish without a separate select. Rounding uses the 1.5·2²³ trick because vector float-to-int
/// conversions in Swift call a slow generic function.
///
/// Under AVX-512 the rounding and the scaling by `2^n` are one instruction each (`vrndscaleps`, and
/// `vscalefps` with lanes below -126.5 zeroed by a mask: see `_KernelIntrinsics`, FastExp.h): 10 vector instructions
/// where the integer arithmetic takes 14, the same results for every `x <= 0` (NaN stays NaN), and
/// 1.5-3.5% off the forward at D = 64 (N = 4096 on one thread and causal on two, B = 4 at N = 512;
/// Intel Xeon family 6 model 207).
@inlinable @inline(__always)
public func exp2Vector<M: MultiplyAdd>(_ x: SIMD16<Float>, _: M.Type) -> SIMD16<Float> {
    if attention_exp2_has_native_steps() != 0 {
        let n = attention_round_nearest16(x)
        return attention_scale_or_zero16(exp2Fraction(x - n, M.self), n, x)
    }
    let clamped = lanewiseMax(x, SIMD16<Float>(repeating: -127))   // -inf becomes -127, whose 2^n is 0
    let magic = SIMD16<Float>(repeating: 12_582_912)               // 1.5 · 2^23
    let shifted = clamped + magic
    let n = shifted - magic                                         // round(x) as a float
    let p = exp2Fraction(clamped - n, M.self)
    // The low bits of `shifted` hold round(x) + 2^22 (its bit pattern minus magic's is round(x)).
    let integer = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- unsafeBitCast(magic, to: SIMD16<Int32>.self)
    let scale = unsafeBitCast((integer &+ 127) &<< 23, to: SIMD16<Float>.self)
    return p * scale
}

/// `2^f` for `f ∈ [-0.5, 0.5]`: the degree-6 polynomial of ``exp2Vector(_:_:)``.
@inlinable @inline(__always)
func exp2Fraction<M: MultiplyAdd>(_ f: SIMD16<Float>, _: M.Type) -> SIMD16<Float> {
    var p = SIMD16<Float>(repeating: 1.533_757_8e-4)
    p = M.multiplyAdd(p, f, SIMD16(repeating: 1.339_986_0e-3))
    p = M.multiplyAdd(p, f, SIMD16(repeating: 9.618_519_8e-3))
    p = M.multiplyAdd(p, f, SIMD16(repeating: 5.550_329_0e-2))
    p = M.multiplyAdd(p, f, SIMD16(repeating: 2.402_264_6e-1))
    p = M.multiplyAdd(p, f, SIMD16(repeating: 6.931_471_8e-1))
    return M.multiplyAdd(p, f, SIMD16(repeating: 1.0))
}

/// Lane-wise maximum. The standard library's `pointwiseMax` is not inlined for SIMD16 and costs a
/// call per vector; a compare and blend is one or two instructions.
@inlinable @inline(__always)
public func lanewiseMax(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
    a.replacing(with: b, where: b .> a)
}

/// The largest lane, by halving (the standard library's `max()` reduces one lane at a time).
@inlinable @inline(__always)
public func horizontalMax(_ v: SIMD16<Float>) -> Float {
    let v8 = v.lowHalf.replacing(with: v.highHalf, where: v.highHalf .> v.lowHalf)
    let v4 = v8.lowHalf.replacing(with: v8.highHalf, where: v8.highHalf .> v8.lowHalf)
    let v2 = v4.lowHalf.replacing(with: v4.highHalf, where: v4.highHalf .> v4.lowHalf)
    return max(v2[0], v2[1])
}

/// `|x|` lane by lane, by clearing the sign bits. (`x.replacing(with: -x, where: x .< 0)` compiles,
/// for sixteen lanes, to some thirty instructions that rebuild the comparison's mask lane by lane:
/// it made SiLU cost 5 ns an element.)
@inlinable @inline(__always)
public func lanewiseMagnitude(_ x: SIMD16<Float>) -> SIMD16<Float> {
    unsafeBitCast(unsafeBitCast(x, to: SIMD16<UInt32>.self) & 0x7FFF_FFFF, to: SIMD16<Float>.self)
}

/// `negative` in the lanes where `x` has its sign bit set, `nonNegative` in the others: the blend
/// of `nonNegative.replacing(with: negative, where: x .< 0)` by bit operations (see
/// ``lanewiseMagnitude(_:)``). The lanes differ from that only where `x` is −0 or a NaN.
@inlinable @inline(__always)
public func selectBySign(_ x: SIMD16<Float>, negative: SIMD16<Float>, nonNegative: SIMD16<Float>) -> SIMD16<Float> {
    let sign = unsafeBitCast(x, to: SIMD16<Int32>.self) &>> 31   // all ones where negative
    let bits = (unsafeBitCast(negative, to: SIMD16<Int32>.self) & sign) | (unsafeBitCast(nonNegative, to: SIMD16<Int32>.self) & ~sign)
    return unsafeBitCast(bits, to: SIMD16<Float>.self)
}

/// The sum of the lanes, by halving.
@inlinable @inline(__always)
public func horizontalSum(_ v: SIMD8<Float>) -> Float {
    let v4 = v.lowHalf + v.highHalf
    let v2 = v4.lowHalf + v4.highHalf
    return v2[0] + v2[1]
}

/// The sum of the lanes, by halving.
@inlinable @inline(__always)
public func horizontalSum(_ v: SIMD16<Float>) -> Float {
    let v8 = v.lowHalf + v.highHalf
    let v4 = v8.lowHalf + v8.highHalf
    let v2 = v4.lowHalf + v4.highHalf
    return v2[0] + v2[1]
}

/// GELU `½ x (1 + erf(x / √2))` for sixteen lanes, with erf from Abramowitz and Stegun 7.1.26
/// (`1 - t·P(t)·e^{-z²}`, `t = 1 / (1 + 0.3275911 |z|)`, max absolute error 1.5e-7).
@inlinable @inline(__always)
public func geluVector<M: MultiplyAdd>(_ x: SIMD16<Float>, _: M.Type) -> SIMD16<Float> {
    let z = x * 0.707_106_78
    let a = lanewiseMagnitude(z)
    let t = 1 / M.multiplyAdd(a, SIMD16(repeating: 0.327_591_1), SIMD16(repeating: 1))
    var p = SIMD16<Float>(repeating: 1.061_405_429)
    p = M.multiplyAdd(p, t, SIMD16(repeating: -1.453_152_027))
    p = M.multiplyAdd(p, t, SIMD16(repeating: 1.421_413_741))
    p = M.multiplyAdd(p, t, SIMD16(repeating: -0.284_496_736))
    p = M.multiplyAdd(p, t, SIMD16(repeating: 0.254_829_592))
    p = p * t
    let e = exp2Vector(-(a * a) * 1.442_695_04, M.self)
    let erfMagnitude = 1 - p * e
    let erf = selectBySign(z, negative: -erfMagnitude, nonNegative: erfMagnitude)
    return 0.5 * x * (1 + erf)
}

/// GELU in place over `count` floats.
@inlinable @inline(__always)
public func geluInPlace<M: MultiplyAdd>(_ p: UnsafeMutablePointer<Float>, count: Int, _: M.Type) {
    var i = 0
    while i + 16 <= count {
        store(geluVector(load(p + i), M.self), p + i)
        i += 16
    }
    if i < count {
        var tail = SIMD16<Float>.zero
        for j in 0..<(count - i) { tail[j] = p[i + j] }
        let result = geluVector(tail, M.self)
        for j in 0..<(count - i) { p[i + j] = result[j] }
    }
}

/// `σ(2u)` with `u = √(2/π)(x + 0.044715x³)`, for sixteen lanes: GELU's tanh form is `x·σ(2u)`
/// (as `½(1 + tanh u) = σ(2u)`). The exponential only ever sees `-2|u| ≤ 0`, so it cannot overflow.
@inlinable @inline(__always)
public func geluTanhGate<M: MultiplyAdd>(_ x: SIMD16<Float>, _: M.Type) -> SIMD16<Float> {
    let u = 0.797_884_56 * M.multiplyAdd(0.044_715 * x * x, x, x)
    let e = exp2Vector(-2 * 1.442_695_04 * lanewiseMagnitude(u), M.self)
    let numerator = selectBySign(u, negative: e, nonNegative: SIMD16(repeating: 1))
    return numerator / (1 + e)
}

/// SiLU `x·σ(x)` in place over `count` floats (Llama's gate). `σ` from `e = 2^(−|x|·log2 e)`, so the
/// exponential never overflows: `1/(1 + e)` for `x ≥ 0`, `e/(1 + e)` below (relative error about
/// 1e-7, and `σ` below 2^−126, for x < −87.7, is 0).
@inlinable @inline(__always)
public func siluInPlace<M: MultiplyAdd>(_ p: UnsafeMutablePointer<Float>, count: Int, _: M.Type) {
    forEachVector(count) { i, n in
        let x = loadPartial(p + i, n)
        let e = exp2Vector(-1.442_695_04 * lanewiseMagnitude(x), M.self)
        let numerator = selectBySign(x, negative: e, nonNegative: SIMD16(repeating: 1))
        storePartial(x * (numerator / (1 + e)), p + i, n)
    }
}

/// GELU's tanh form (GPT-2's `gelu_new`) in place over `count` floats.
@inlinable @inline(__always)
public func geluTanhInPlace<M: MultiplyAdd>(_ p: UnsafeMutablePointer<Float>, count: Int, _: M.Type) {
    forEachVector(count) { i, n in
        let x = loadPartial(p + i, n)
        storePartial(x * geluTanhGate(x, M.self), p + i, n)
    }
}

/// `dx = dy · d/dx gelu_tanh(x)`: with `s = σ(2u)`, the derivative is
/// `s + x·2s(1 - s)·√(2/π)(1 + 3·0.044715x²)`.
@inlinable @inline(__always)
public func geluTanhBackward<M: MultiplyAdd>(
    _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>, count: Int, _: M.Type
) {
    forEachVector(count) { i, n in
        let v = loadPartial(x + i, n), g = loadPartial(dy + i, n)
        let s = geluTanhGate(v, M.self)
        let du = 0.797_884_56 * M.multiplyAdd(3 * 0.044_715 * v, v, SIMD16(repeating: 1))
        let derivative = M.multiplyAdd(v * 2 * s * (1 - s), du, s)
        storePartial(derivative * g, dx + i, n)
    }
}

/// Calls `body(i, n)` for `count` elements in pieces of sixteen (`n` = 16, or fewer for the last).
/// The whole pieces and the last partial one are separate calls, so that in the loop `n` is the
/// constant 16 and ``loadPartial(_:_:)`` and ``storePartial(_:_:_:)`` are plain vector moves: with
/// one call for both, the optimizer split each vector into pieces of 8, 4, 3 and 1 lanes around the
/// partial moves' per-lane loops (SiLU then took 5 ns an element on a Zen 4).
@inlinable @inline(__always)
func forEachVector(_ count: Int, _ body: (Int, Int) -> Void) {
    var i = 0
    while i + 16 <= count {
        body(i, 16)
        i += 16
    }
    if i < count { body(i, count - i) }
}

/// `n ≤ 16` floats from `p` (zeros past them).
@inlinable @inline(__always)
func loadPartial(_ p: UnsafePointer<Float>, _ n: Int) -> SIMD16<Float> {
    if n == 16 { return load(p) }
    var v = SIMD16<Float>.zero
    for j in 0..<n { v[j] = p[j] }
    return v
}

/// The first `n ≤ 16` lanes of `v` to `p`.
@inlinable @inline(__always)
func storePartial(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
    if n == 16 { store(v, p); return }
    for j in 0..<n { p[j] = v[j] }
}
