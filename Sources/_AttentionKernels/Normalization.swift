/// Layer normalization of `rows` rows of `n` floats in place, after adding `residual` when given:
/// `x ← (x + r − mean) / √(var + ε) · γ + β`, with the biased variance of `x + r`.
///
/// Two passes in Float: the mean, then the deviations from it, whose mean corrects the first
/// (the corrected two-pass algorithm: the rounding error of the first mean is taken out, and the
/// variance is `E[d²] − E[d]²` with `E[d]` tiny). The deviations are formed before they are
/// squared, so a large mean costs no precision, where the one-pass `E[x²] − E[x]²` form would
/// cancel; sixteen lane sums keep each sum short.
@inlinable @inline(__always)
public func layerNormRows<M: MultiplyAdd>(
    _ x: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
    epsilon: Float, rows: Range<Int>, n: Int, _: M.Type
) {
    let count = Float(n)
    for row in rows {
        let p = x + row * n
        var sum = SIMD16<Float>.zero
        if let residual {
            let r = residual + row * n
            forEachVector(n) { i, width in
                let v = loadPartial(p + i, width) + loadPartial(r + i, width)
                storePartial(v, p + i, width)
                sum += v
            }
        } else {
            forEachVector(n) { i, width in sum += loadPartial(p + i, width) }
        }
        let rough = sum.sum() / count
        var deviations = SIMD16<Float>.zero, squares = SIMD16<Float>.zero
        forEachVector(n) { i, width in
            // Lanes past the row's end load as 0; their deviation must not count.
            var deviation = loadPartial(p + i, width) - rough
            if width < 16 {
                let lanes = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
                deviation = deviation.replacing(with: 0, where: lanes .>= SIMD16<Int32>(repeating: Int32(width)))
            }
            deviations += deviation
            squares = M.multiplyAdd(deviation, deviation, squares)
        }
        let correction = deviations.sum() / count
        let variance = max(0, squares.sum() / count - correction * correction)
        let inverse = 1 / (variance + epsilon).squareRoot()
        forEachVector(n) { i, width in
            // x − rough is nearly exact for x near the mean; rounding rough + correction to one
            // Float first would not be.
            let normalized = (loadPartial(p + i, width) - rough - correction) * inverse
            storePartial(M.multiplyAdd(normalized, loadPartial(weight + i, width), loadPartial(bias + i, width)), p + i, width)
        }
    }
}
