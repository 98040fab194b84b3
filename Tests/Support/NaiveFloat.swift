import Attention
import Foundation

/// Attention computed naively in `Float`: scores, max, `expf`, sum, normalize, weighted sum, each
/// accumulated in `Float`. Its error against the Double reference is the yardstick of the tolerance
/// rule: a fast Float path may be at most twice as far from the reference as this.
public func naiveFloatAttention(
    query q: Tensor<Float>, key k: Tensor<Float>, value v: Tensor<Float>,
    mask: AttentionMask, bias: Tensor<Float>?, scale: Float?
) throws -> (output: [Float], logSumExp: [Float]) {
    precondition(q.rank == 4 && k.rank == 4 && v.rank == 4, "naiveFloatAttention takes rank-4 tensors")
    let (B, Hq, Nq, D) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
    let (Hkv, Nk, Dv) = (k.shape[1], k.shape[2], v.shape[3])
    let scale = scale ?? 1 / Float(D).squareRoot()
    let group = Hq / Hkv
    var output = [Float](repeating: 0, count: B * Hq * Nq * Dv)
    var logSumExp = [Float](repeating: -.infinity, count: B * Hq * Nq)
    let biasShape = bias.map { Array(repeating: 1, count: 4 - $0.rank) + $0.shape } ?? []
    for b in 0..<B {
        for h in 0..<Hq {
            let visible = try mask.matrix(queryLength: Nq, keyLength: Nk, batchSize: B, heads: Hq, batch: b, head: h)
            for i in 0..<Nq {
                var scores = [Float](repeating: -.infinity, count: Nk)
                for j in 0..<Nk where visible[i][j] {
                    var dot: Float = 0
                    for c in 0..<D { dot += q[b, h, i, c] * k[b, h / group, j, c] }
                    scores[j] = scale * dot
                    if let bias {
                        let index = zip([b, h, i, j], biasShape).map { $1 == 1 ? 0 : $0 }
                        scores[j] += bias.scalars[((index[0] * biasShape[1] + index[1]) * biasShape[2] + index[2]) * biasShape[3] + index[3]]
                    }
                }
                let m = scores.max() ?? -.infinity
                guard m > -.infinity else { continue }
                let e = scores.map { expf($0 - m) }
                let sum = e.reduce(0, +)
                let row = (b * Hq + h) * Nq + i
                logSumExp[row] = m + logf(sum)
                for j in 0..<Nk where e[j] > 0 {
                    let w = e[j] / sum
                    for c in 0..<Dv { output[row * Dv + c] += w * v[b, h / group, j, c] }
                }
            }
        }
    }
    return (output, logSumExp)
}

/// The error of `output` against the Double reference over q, k, v, and the error of the naive
/// Float computation (the tolerance rule allows `error <= 2 * naive`).
public func errorsAgainstReference(
    _ output: [Float], query q: Tensor<Float>, key k: Tensor<Float>, value v: Tensor<Float>, mask: AttentionMask
) throws -> (error: Double, naive: Double, reference: AttentionResult<Double>) {
    let reference = try referenceScaledDotProductAttention(query: q, key: k, value: v, mask: mask)
    let naive = try naiveFloatAttention(query: q, key: k, value: v, mask: mask, bias: nil, scale: nil)
    return (maxAbsDifference(output, reference.output.scalars), maxAbsDifference(naive.output, reference.output.scalars),
            reference)
}

/// The tolerance of a distributed result: the rule (twice the naive Float error, or 4 ulps on
/// trivial rows), or, where one process's tiled kernel already exceeds the rule on an input (it
/// does by a few percent on some small shapes, e.g. 4.95e-7 against 2 × 2.43e-7), one process's
/// error plus 2 ulps for the merges.
public func ringTolerance(naive: Double, single: Double) -> Double {
    max(2 * naive, Double(4 * Float.ulpOfOne), single + Double(2 * Float.ulpOfOne))
}
