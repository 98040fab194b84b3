import Foundation

/// The Shannon entropy `-Σ p log p` of a distribution, in nats; terms with `p == 0` contribute 0.
///
/// It is 0 for a one-hot distribution and `log n` for the uniform distribution over `n` items, so it
/// measures how spread out attention is.
@inlinable
public func entropy<Scalar: AttentionScalar>(_ distribution: [Scalar]) -> Double {
    var total = 0.0
    for p in distribution {
        let x = p.doubleValue
        if x > 0 { total -= x * log(x) }
    }
    return total
}

/// The cosine of the angle between two vectors, `a·b / (|a| |b|)`, in [-1, 1]; 0 if either is zero.
@inlinable
public func cosineSimilarity<Scalar: AttentionScalar>(_ a: [Scalar], _ b: [Scalar]) -> Double {
    var dot = 0.0, aa = 0.0, bb = 0.0
    for i in 0..<min(a.count, b.count) {
        let (x, y) = (a[i].doubleValue, b[i].doubleValue)
        dot += x * y
        aa += x * x
        bb += y * y
    }
    return aa > 0 && bb > 0 ? dot / (aa.squareRoot() * bb.squareRoot()) : 0
}
