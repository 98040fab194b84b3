import Foundation

/// The oracle: attention computed the obvious way, one query row at a time, accumulating in `Double`.
///
/// Every other path in the library is tested against this code. It is written to be read, not to
/// be fast, and it is never optimized.
enum Reference {
    /// Results in `Double`, laid out `[B, Hq, Nq, Dv]`, `[B, Hq, Nq, Nk]` and `[B, Hq, Nq]`.
    struct Result {
        var output: [Double]
        var weights: [Double]?
        var logSumExp: [Double]
    }

    /// Scaled dot-product attention for a validated problem.
    static func attention<Scalar>(_ problem: AttentionProblem<Scalar>, keepWeights: Bool) -> Result {
        let s = problem.shape
        let q = problem.query, k = problem.key, v = problem.value
        return attention(
            shape: s, mask: problem.mask, keepWeights: keepWeights,
            bias: problem.bias.map { bias in { b, h, i, j in bias[b, h, i, j].doubleValue } },
            score: { b, h, i, j in
                // S_ij = scale · q_i · k_j, where query head h reads key/value head h / groupSize.
                let qRow = ((b * s.Hq + h) * s.Nq + i) * s.D
                let kRow = ((b * s.Hkv + h / s.groupSize) * s.Nk + j) * s.D
                var dot = 0.0
                for c in 0..<s.D { dot += q[qRow + c].doubleValue * k[kRow + c].doubleValue }
                return problem.scale * dot
            },
            value: { b, h, j, c in v[((b * s.Hkv + h / s.groupSize) * s.Nk + j) * s.Dv + c].doubleValue })
    }

    /// Attention with any score function: `score(b, h, i, j)` is the (already scaled) score of query
    /// `i` against key `j`, `value(b, h, j, c)` is component `c` of the value that query head `h` reads.
    static func attention(
        shape s: AttentionShape, mask: ResolvedMask, keepWeights: Bool,
        bias: ((Int, Int, Int, Int) -> Double)?,
        score: (Int, Int, Int, Int) -> Double,
        value: (Int, Int, Int, Int) -> Double
    ) -> Result {
        var output = [Double](repeating: 0, count: s.B * s.Hq * s.Nq * s.Dv)
        var weights = keepWeights ? [Double](repeating: 0, count: s.B * s.Hq * s.Nq * s.Nk) : nil
        var logSumExp = [Double](repeating: -.infinity, count: s.B * s.Hq * s.Nq)
        var row = [Double](repeating: 0, count: s.Nk)

        for b in 0..<s.B {
            for h in 0..<s.Hq {
                for i in 0..<s.Nq {
                    let rowIndex = (b * s.Hq + h) * s.Nq + i

                    // Pass 1: scores of the visible keys, and their maximum.
                    // A hidden key gets -inf, which softmax turns into weight 0.
                    var m = -Double.infinity
                    for j in 0..<s.Nk {
                        if mask.allows(batch: b, head: h, query: i, key: j) {
                            row[j] = score(b, h, i, j) + (bias?(b, h, i, j) ?? 0)
                        } else {
                            row[j] = -.infinity
                        }
                        m = max(m, row[j])
                    }
                    // A row that sees no key (every score -inf) is dead: output 0, weights 0,
                    // log-sum-exp -inf. Without this guard softmax would compute 0/0 = NaN.
                    guard m > -.infinity else { continue }

                    // Pass 2: exponentials shifted by the maximum (so the largest is exp(0) = 1
                    // and nothing overflows), and their sum.
                    var l = 0.0
                    for j in 0..<s.Nk {
                        row[j] = exp(row[j] - m)
                        l += row[j]
                    }

                    // Pass 3: normalize into weights P_ij = exp(S_ij - m) / l that sum to 1.
                    for j in 0..<s.Nk { row[j] /= l }
                    logSumExp[rowIndex] = m + log(l)
                    if weights != nil {
                        for j in 0..<s.Nk { weights![rowIndex * s.Nk + j] = row[j] }
                    }

                    // Pass 4: the output is the weighted average of the values, O_i = Σ_j P_ij V_j.
                    for j in 0..<s.Nk where row[j] != 0 {
                        for c in 0..<s.Dv {
                            output[rowIndex * s.Dv + c] += row[j] * value(b, h, j, c)
                        }
                    }
                }
            }
        }
        return Result(output: output, weights: weights, logSumExp: logSumExp)
    }
}
