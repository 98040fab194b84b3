import Foundation

/// The Shannon entropy `-Σ p log p` of a distribution, in nats; terms with `p == 0` contribute 0.
///
/// It is 0 for a one-hot distribution and `log n` for the uniform distribution over `n` items, so it
/// measures how spread out attention is.
public func entropy<Scalar: AttentionScalar>(_ distribution: [Scalar]) -> Double {
    distribution.reduce(0.0) { total, p in
        let x = p.doubleValue
        return x > 0 ? total - x * log(x) : total
    }
}

/// The cosine of the angle between two vectors, `a·b / (|a| |b|)`, in [-1, 1]; 0 if either is zero.
public func cosineSimilarity<Scalar: AttentionScalar>(_ a: [Scalar], _ b: [Scalar]) -> Double {
    var dot = 0.0, aa = 0.0, bb = 0.0
    for (x, y) in zip(a, b) {
        dot += x.doubleValue * y.doubleValue
        aa += x.doubleValue * x.doubleValue
        bb += y.doubleValue * y.doubleValue
    }
    return aa > 0 && bb > 0 ? dot / (aa.squareRoot() * bb.squareRoot()) : 0
}
