import Attention
import Foundation

/// Why attention scales scores by 1/√d_k: without it, the entropy of the weights collapses as the
/// dimension grows (attention turns one-hot); with it, the entropy stays nearly flat.
///
/// Queries and keys are independent standard normal vectors, so `q·k` has variance `d_k`: unscaled
/// scores spread as `√d_k`, scaled ones stay at spread 1.
public enum ScalingExperiment {
    public struct Row: Codable, Sendable, Equatable {
        public let dk: Int
        public let unscaledEntropy: Double
        public let unscaledEntropyStd: Double
        public let scaledEntropy: Double
        public let scaledEntropyStd: Double
        /// Mean largest weight: near 1 means one-hot.
        public let unscaledMaxWeight: Double
        public let scaledMaxWeight: Double
    }

    public struct Example: Codable, Sendable, Equatable {
        public let dk: Int
        public let unscaledWeights: [Double]
        public let scaledWeights: [Double]
    }

    public struct Result: Codable, Sendable, Equatable {
        public let keys: Int
        public let trials: Int
        public let seed: UInt64
        /// ln(keys): the entropy of uniform weights, the largest possible.
        public let maximumEntropy: Double
        public let rows: [Row]
        /// One query's weights at the example dimension.
        public let example: Example
    }

    public static let defaultDimensions = [8, 32, 64, 128, 256, 512]

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
