import Attention
import Foundation

/// Why attention scales scores by 1/√d_k: without it, the entropy of the weights collapses as the
/// dimension grows (attention turns one-hot); with it, the entropy stays nearly flat.
///
/// Queries and keys are independent standard normal vectors, so `q·k` has variance `d_k`: unscaled
/// scores spread as `√d_k`, scaled ones stay at spread 1.
public enum ScalingExperiment {
    /// One dimension's entropies, over the trials.
    public struct Row: Codable, Sendable, Equatable {
        /// The dimension d_k of queries and keys.
        public let dk: Int
        /// Mean entropy of the weights without the 1/√d_k scale (nats).
        public let unscaledEntropy: Double
        /// Its standard deviation over the trials.
        public let unscaledEntropyStd: Double
        /// Mean entropy with the scale (nats).
        public let scaledEntropy: Double
        /// Its standard deviation over the trials.
        public let scaledEntropyStd: Double
        /// Mean largest weight: near 1 means one-hot.
        public let unscaledMaxWeight: Double
        /// Mean largest weight with the scale.
        public let scaledMaxWeight: Double
    }

    /// One query's weights, both ways.
    public struct Example: Codable, Sendable, Equatable {
        /// The dimension of the example.
        public let dk: Int
        /// Its weights without the scale.
        public let unscaledWeights: [Double]
        /// Its weights with the scale.
        public let scaledWeights: [Double]
    }

    /// What ``run(seed:keys:trials:dimensions:exampleDimension:)`` measured.
    public struct Result: Codable, Sendable, Equatable {
        /// Keys per query.
        public let keys: Int
        /// Queries per dimension.
        public let trials: Int
        /// The seed of the vectors.
        public let seed: UInt64
        /// ln(keys): the entropy of uniform weights, the largest possible.
        public let maximumEntropy: Double
        /// One row per dimension.
        public let rows: [Row]
        /// One query's weights at the example dimension.
        public let example: Example
    }

    /// The dimensions the lessons' experiment uses.
    public static let defaultDimensions = [8, 32, 64, 128, 256, 512]

    /// Measures the entropies at each of `dimensions`, and one example at `exampleDimension`.
    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` for fewer than 2 keys, no trial or a dimension below 1.
    public static func run(
        seed: UInt64, keys: Int = 16, trials: Int = 500, dimensions: [Int] = defaultDimensions, exampleDimension: Int = 256
    ) throws -> Result {
        guard keys >= 2, trials >= 1, !dimensions.isEmpty, dimensions.allSatisfy({ $0 >= 1 }) else {
            throw AttentionError.invalidArgument(argument: "keys/trials/dimensions",
                                                 reason: "need at least 2 keys, 1 trial and positive dimensions")
        }
        var generator = SplitMix64(seed: seed)
        var rows: [Row] = []
        for dk in dimensions {
            let (unscaled, scaled) = try weights(dk: dk, keys: keys, trials: trials, using: &generator)
            let eu = unscaled.map { entropy($0) }, es = scaled.map { entropy($0) }
            rows.append(Row(
                dk: dk, unscaledEntropy: mean(eu), unscaledEntropyStd: standardDeviation(eu),
                scaledEntropy: mean(es), scaledEntropyStd: standardDeviation(es),
                unscaledMaxWeight: mean(unscaled.map { $0.max() ?? 0 }), scaledMaxWeight: mean(scaled.map { $0.max() ?? 0 })))
        }
        let (u, s) = try weights(dk: exampleDimension, keys: keys, trials: 1, using: &generator)
        return Result(keys: keys, trials: trials, seed: seed, maximumEntropy: log(Double(keys)), rows: rows,
                      example: Example(dk: exampleDimension, unscaledWeights: u[0], scaledWeights: s[0]))
    }

    /// The weights of `trials` random queries over `keys` random keys, unscaled (scale 1) and scaled (1/√d_k).
    static func weights(dk: Int, keys: Int, trials: Int, using generator: inout SplitMix64) throws -> ([[Double]], [[Double]]) {
        let q = try Tensor<Double>.randomNormal(shape: [trials, 1, 1, dk], using: &generator)
        let k = try Tensor<Double>.randomNormal(shape: [trials, 1, keys, dk], using: &generator)
        let v = try Tensor<Double>(zeros: [trials, 1, keys, 1])
        func rows(_ scale: Double?) throws -> [[Double]] {
            let w = try scaledDotProductAttention(query: q, key: k, value: v, scale: scale, returning: .weights).weights
            let scalars = w?.scalars ?? []
            return (0..<trials).map { Array(scalars[$0 * keys..<($0 + 1) * keys]) }
        }
        return (try rows(1), try rows(nil))
    }
}

func mean(_ x: [Double]) -> Double { x.isEmpty ? 0 : x.reduce(0, +) / Double(x.count) }

func standardDeviation(_ x: [Double]) -> Double {
    guard x.count > 1 else { return 0 }
    let m = mean(x)
    return (x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count - 1)).squareRoot()
}
