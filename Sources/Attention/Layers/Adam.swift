import Foundation

/// Adam with decoupled weight decay (AdamW when `weightDecay > 0`), as PyTorch's `torch.optim.AdamW`:
/// `p ← p - lr·λ·p`, then `m ← β₁m + (1-β₁)g`, `v ← β₂v + (1-β₂)g²`,
/// `p ← p - lr · m̂ / (√v̂ + ε)` with the bias-corrected `m̂ = m/(1-β₁ᵗ)`, `v̂ = v/(1-β₂ᵗ)`.
public struct Adam<Scalar: AttentionScalar>: Sendable {
    /// The step size.
    public var learningRate: Double
    /// Decay rates of the first and second moment estimates, the denominator's guard, and the decoupled weight decay (AdamW; 0 is plain Adam).
    public var beta1: Double, beta2: Double, epsilon: Double, weightDecay: Double
    public private(set) var step = 0
    private var m: [[Double]] = [], v: [[Double]] = []

    /// An optimizer with PyTorch's defaults; state is made on the first update.
    public init(learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// Updates `parameters` in place from `gradients` (the same shapes, in the same order every step).
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public mutating func update(_ parameters: inout [Tensor<Scalar>], gradients: [Tensor<Scalar>]) throws {
        guard parameters.count == gradients.count, zip(parameters, gradients).allSatisfy({ $0.shape == $1.shape }) else {
            throw AttentionError.invalidArgument(argument: "gradients", reason: "need one gradient of each parameter's shape, in order")
        }
        if m.isEmpty {
            m = parameters.map { [Double](repeating: 0, count: $0.count) }
            v = m
        }
        guard m.count == parameters.count, zip(m, parameters).allSatisfy({ $0.count == $1.count }) else {
            throw AttentionError.invalidArgument(argument: "parameters", reason: "the parameters changed shape between steps")
        }
        step += 1
        let c1 = 1 - pow(beta1, Double(step)), c2 = 1 - pow(beta2, Double(step))
        let (rate, decay) = (learningRate, learningRate * weightDecay)
        for p in parameters.indices {
            gradients[p].withUnsafeBufferPointer { g in
                parameters[p].withUnsafeMutableBufferPointer { values in
                    m[p].withUnsafeMutableBufferPointer { m in
                        v[p].withUnsafeMutableBufferPointer { v in
                            for i in 0..<values.count {
                                let gi = g[i].doubleValue
                                var value = values[i].doubleValue
                                value -= decay * value
                                m[i] = beta1 * m[i] + (1 - beta1) * gi
                                v[i] = beta2 * v[i] + (1 - beta2) * gi * gi
                                value -= rate * (m[i] / c1) / ((v[i] / c2).squareRoot() + epsilon)
                                values[i] = Scalar(fromDouble: value)
                            }
                        }
                    }
                }
            }
        }
    }
}
