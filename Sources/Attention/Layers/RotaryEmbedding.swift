import Foundation

/// Rotary position embedding (RoPE): each pair of features of each head is rotated by an angle
/// proportional to the position, `θ_j = position · base^(−2j/D)` for pair `j` of `D / 2`.
///
/// Two layouts of the pairs are in use, and both are here:
/// - ``Pairing/adjacent``: features `(2j, 2j + 1)`, as llama.cpp and GGUF files store Llama's
///   query and key weights (its converter permutes them into this order);
/// - ``Pairing/halves``: features `(j, j + D/2)`, transformers' `rotate_half`.
/// The same weights in either order with the matching pairing give the same attention scores.
public struct RotaryEmbedding: Sendable, Equatable {
    /// Which features form a rotated pair.
    public enum Pairing: Sendable, Equatable {
        /// `(2j, 2j + 1)`.
        case adjacent
        /// `(j, j + D/2)`.
        case halves
    }

    /// Features per head `D` (even); all of them rotate.
    public let headDimension: Int
    /// The base of the frequencies (10,000 in the original; 100,000 for SmolLM2).
    public let base: Double
    /// The layout of the pairs.
    public let pairing: Pairing
    /// `θ_j = base^(−2j/D)` for the `D / 2` pairs, computed once.
    private let inverseFrequencies: [Double]

    /// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` for an odd or non-positive
    ///   dimension or a base that is not finite and above 1.
    public init(headDimension: Int, base: Double = 10_000, pairing: Pairing = .halves) throws {
        guard headDimension > 0, headDimension % 2 == 0 else {
            throw AttentionError.invalidArgument(argument: "headDimension", reason: "must be positive and even, got \(headDimension)")
        }
        guard base.isFinite, base > 1 else {
            throw AttentionError.invalidArgument(argument: "base", reason: "must be finite and above 1, got \(base)")
        }
        self.headDimension = headDimension
        self.base = base
        self.pairing = pairing
        inverseFrequencies = (0..<(headDimension / 2)).map { j in 1 / pow(base, Double(2 * j) / Double(headDimension)) }
    }

    /// `x` `[..., T, D]` (heads outside, positions next to last) with row `t` at position `start + t`,
    /// rotated. Angles and the rotation are computed in `Double`, as `cos`/`sin` of `position · θ_j`,
    /// once per position and pair for all the heads.
    /// - Throws: ``AttentionError/invalidShape(argument:shape:reason:)`` if the last dimension is not `D`.
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public func callAsFunction<Scalar: AttentionScalar>(_ x: Tensor<Scalar>, startingAt start: Int = 0) throws -> Tensor<Scalar> {
        guard x.rank >= 2, x.shape.last == headDimension else {
            throw AttentionError.invalidShape(argument: "input", shape: x.shape, reason: "rotary embedding needs [..., positions, \(headDimension)]")
        }
        return try self(x, angles: angles(positions: x.shape[x.rank - 2], startingAt: start))
    }

    /// The `cos` and `sin` of every angle of `positions` positions from `start`: what
    /// ``callAsFunction(_:startingAt:)`` computes for its input, kept to rotate several inputs at the
    /// same positions (a layer's queries and keys, and every layer's) with ``callAsFunction(_:angles:)``.
    public struct Angles: Sendable {
        /// The first position.
        public let start: Int
        /// How many positions.
        public let positions: Int
        /// The embedding they are for.
        let embedding: RotaryEmbedding
        /// `cos` and `sin` of `(start + p)·θ_j` at `p·D/2 + j`, apart (so that a row's rotation reads
        /// them as vectors).
        let cosines: [Double], sines: [Double]
    }

    /// The angles of `positions` positions from `start` (see ``Angles``).
    /// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` for a negative count or start, or
    ///   positions past `Int.max`.
    public func angles(positions: Int, startingAt start: Int = 0) throws -> Angles {
        guard positions >= 0 else {
            throw AttentionError.invalidArgument(argument: "positions", reason: "must be at least 0, got \(positions)")
        }
        guard start >= 0, start <= Int.max - positions else {
            throw AttentionError.invalidArgument(argument: "start", reason: "must be in 0...\(Int.max - positions) for \(positions) positions, got \(start)")
        }
        let half = headDimension / 2
        var cosines = [Double](), sines = [Double]()
        cosines.reserveCapacity(positions * half)
        sines.reserveCapacity(positions * half)
        for p in 0..<positions {
            let position = Double(start + p)
            for j in 0..<half {
                let angle = position * inverseFrequencies[j]
                cosines.append(cos(angle))
                sines.append(sin(angle))
            }
        }
        return Angles(start: start, positions: positions, embedding: self, cosines: cosines, sines: sines)
    }

    /// `x` `[..., T, D]` rotated by `angles` (row `t` by their position `start + t`): the values
    /// ``callAsFunction(_:startingAt:)`` gives, bit for bit.
    /// - Throws: ``AttentionError/invalidShape(argument:shape:reason:)`` if the last dimension is not `D`;
    ///   ``AttentionError/invalidArgument(argument:reason:)`` if `angles` are of another embedding or
    ///   another number of positions than `T`.
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public func callAsFunction<Scalar: AttentionScalar>(_ x: Tensor<Scalar>, angles: Angles) throws -> Tensor<Scalar> {
        var out = x
        try rotate(&out, angles: angles)
        return out
    }

    /// ``callAsFunction(_:angles:)`` in place: `x` rotated, bit for bit the same, without a new
    /// tensor (a decoding step rotates one position of every layer's queries and keys).
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public func rotate<Scalar: AttentionScalar>(_ x: inout Tensor<Scalar>, angles: Angles) throws {
        let d = headDimension, half = d / 2
        guard x.rank >= 2, x.shape.last == d else {
            throw AttentionError.invalidShape(argument: "input", shape: x.shape, reason: "rotary embedding needs [..., positions, \(d)]")
        }
        let positions = x.shape[x.rank - 2]
        guard angles.embedding == self, angles.positions == positions else {
            throw AttentionError.invalidArgument(
                argument: "angles",
                reason: "need this embedding's angles for the input's \(positions) positions, got \(angles.positions) positions"
                    + (angles.embedding == self ? "" : " of another embedding (base \(angles.embedding.base), D \(angles.embedding.headDimension))"))
        }
        let rows = x.count / d, adjacent = pairing == .adjacent
        // Each row's pairs in a loop of their own through row pointers, one loop per pairing: the same
        // operations as one loop that chose its indices per pair, in about three quarters of the time
        // of a SmolLM2 decoding step's rotations (every layer's queries and keys; AMD Zen 4).
        angles.cosines.withUnsafeBufferPointer { cosines in
        angles.sines.withUnsafeBufferPointer { sines in
        x.withUnsafeMutableBufferPointer { out in
            guard let out = out.baseAddress, let cosines = cosines.baseAddress, let sines = sines.baseAddress else { return }
            for row in 0..<rows {
                let first = (row % positions) * half   // the row's position's first angle
                let c = cosines + first, s = sines + first, v = out + row * d
                if adjacent {
                    for j in 0..<half {
                        let a = v[2 * j].doubleValue, b = v[2 * j + 1].doubleValue
                        v[2 * j] = Scalar(fromDouble: a * c[j] - b * s[j])
                        v[2 * j + 1] = Scalar(fromDouble: b * c[j] + a * s[j])
                    }
                } else {
                    let w = v + half
                    for j in 0..<half {
                        let a = v[j].doubleValue, b = w[j].doubleValue
                        v[j] = Scalar(fromDouble: a * c[j] - b * s[j])
                        w[j] = Scalar(fromDouble: b * c[j] + a * s[j])
                    }
                }
            }
        }
        }
        }
    }
}
