import Attention

/// Central differences of `f` with respect to every element of `t`, step `h`: the numeric gradient
/// the backward passes are checked against (in Double, where the step's error is ~1e-10).
public func centralDifferences(_ t: Tensor<Double>, step h: Double = 1e-6, _ f: (Tensor<Double>) throws -> Double) throws -> [Double] {
    try (0..<t.count).map { n in
        var plus = t, minus = t
        plus.withUnsafeMutableBufferPointer { $0[n] += h }
        minus.withUnsafeMutableBufferPointer { $0[n] -= h }
        return (try f(plus) - f(minus)) / (2 * h)
    }
}

/// `Σ a ⊙ b`: with `b` a fixed random tensor, a scalar loss whose output gradient is `b`.
public func dot(_ a: Tensor<Double>, _ b: Tensor<Double>) -> Double {
    zip(a.scalars, b.scalars).reduce(0) { $0 + $1.0 * $1.1 }
}
