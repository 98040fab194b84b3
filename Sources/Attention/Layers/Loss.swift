import Foundation

/// Mean cross-entropy of `logits [N, C]` against target classes, and its gradient
/// `(softmax(logits) - onehot(target)) / N`. Computed stably (log-sum-exp with the maximum shifted out).
@_specialize(exported: true, where Scalar == Float)
@_specialize(exported: true, where Scalar == Double)
public func crossEntropy<Scalar: AttentionScalar>(logits: Tensor<Scalar>, targets: [Int]) throws -> (loss: Double, gradient: Tensor<Scalar>) {
    guard logits.rank == 2, logits.shape[0] == targets.count, logits.shape[0] > 0, logits.shape[1] > 0 else {
        throw AttentionError.invalidShape(argument: "logits", shape: logits.shape, reason: "expected [\(targets.count), classes] with classes > 0")
    }
    let (n, c) = (logits.shape[0], logits.shape[1])
    if let bad = targets.first(where: { $0 < 0 || $0 >= c }) {
        throw AttentionError.invalidArgument(argument: "targets", reason: "class \(bad) is outside 0..<\(c)")
    }
    var loss = 0.0
    var gradient = [Scalar](repeating: 0, count: n * c)
    logits.withUnsafeBufferPointer { z in
        gradient.withUnsafeMutableBufferPointer { g in
            for row in 0..<n {
                let base = row * c
                var m = -Double.infinity
                for k in 0..<c { m = max(m, z[base + k].doubleValue) }
                // e^(z - m) once per class, kept in the gradient, then normalized.
                var sum = 0.0
                for k in 0..<c {
                    let e = exp(z[base + k].doubleValue - m)
                    g[base + k] = Scalar(fromDouble: e)
                    sum += e
                }
                let lse = m + log(sum), scale = 1 / (sum * Double(n))
                loss += (lse - z[base + targets[row]].doubleValue) / Double(n)
                for k in 0..<c { g[base + k] = Scalar(fromDouble: g[base + k].doubleValue * scale) }
                g[base + targets[row]] = Scalar(fromDouble: g[base + targets[row]].doubleValue - 1 / Double(n))
            }
        }
    }
    return (loss, Tensor(uncheckedShape: logits.shape, scalars: gradient))
}
