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
