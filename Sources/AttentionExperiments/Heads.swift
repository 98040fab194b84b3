import Attention
import Foundation

/// Do different heads attend differently? For 1, 2, 4 and 8 heads of a multi-head attention layer,
/// the mean similarity of the heads' attention maps over all distinct pairs of heads.
///
/// Similarity of two maps A and B (each `N × N`, flattened): the cosine `A·B / (|A| |B|)`, and the
/// correlation, the cosine after subtracting each map's mean. Attention maps are non-negative and rows
/// sum to 1, so even unrelated maps have a cosine well above 0; the correlation is 0 for unrelated maps
/// and 1 for identical ones. A single head has no pair: its similarity is defined as 1.
public enum HeadsExperiment {
    /// One head count's similarity.
    public struct Row: Codable, Sendable, Equatable {
        /// Heads in the layer.
        public let heads: Int
        /// Distinct pairs of heads compared.
        public let pairs: Int
        /// Mean cosine of two heads' maps.
        public let meanCosine: Double
        /// Mean correlation of two heads' maps.
        public let meanCorrelation: Double
    }

    /// What the experiment measured.
    public struct Result: Codable, Sendable, Equatable {
        /// The seed of the tokens and the layers.
        public let seed: UInt64
        /// Tokens in the sequence.
        public let tokens: Int
        /// Features per token.
        public let embedDimension: Int
        /// One row per head count.
        public let rows: [Row]
        /// The per-head maps of the largest head count, for pictures: `[head][query][key]`.
        public let maps: [[[Double]]]
    }

    /// Random projections: the layer's query and key weights are drawn from N(0, 1/embedDimension),
    /// inputs from N(0, 1).
    public static func run(seed: UInt64, tokens: Int = 12, embedDimension: Int = 64, headCounts: [Int] = [1, 2, 4, 8]) throws -> Result {
        var generator = SplitMix64(seed: seed)
        let x = try Tensor<Double>.randomNormal(shape: [tokens, embedDimension], using: &generator)
        var rows: [Row] = []
        var lastMaps: [[[Double]]] = []
        for h in headCounts {
            var layer = try MultiHeadAttention<Double>(embedDimension: embedDimension, numHeads: h, seed: generator.next())
            for p in [MultiHeadAttention<Double>.Projection.query, .key] {
                let w = try Tensor<Double>.randomNormal(
                    shape: layer.weightShape(of: p), standardDeviation: 1 / Double(embedDimension).squareRoot(), using: &generator)
                try layer.setWeights(p, weight: w, bias: nil)
            }
            let weights = try layer(x, returning: .weights).weights?.scalars ?? []
            let maps = (0..<h).map { Array(weights[$0 * tokens * tokens..<($0 + 1) * tokens * tokens]) }
            rows.append(try similarity(maps, heads: h))
            lastMaps = maps.map { map in (0..<tokens).map { Array(map[$0 * tokens..<($0 + 1) * tokens]) } }
        }
        return Result(seed: seed, tokens: tokens, embedDimension: embedDimension, rows: rows, maps: lastMaps)
    }

    /// Mean cosine and correlation over distinct pairs of flattened maps.
    /// - Throws: `AttentionError` if the maps differ in size.
    public static func similarity(_ maps: [[Double]], heads: Int) throws -> Row {
        guard maps.count > 1 else { return Row(heads: heads, pairs: 0, meanCosine: 1, meanCorrelation: 1) }
        var cosines: [Double] = [], correlations: [Double] = []
        for a in 0..<maps.count {
            for b in (a + 1)..<maps.count {
                cosines.append(try cosineSimilarity(maps[a], maps[b]))
                let ma = mean(maps[a]), mb = mean(maps[b])
                correlations.append(try cosineSimilarity(maps[a].map { $0 - ma }, maps[b].map { $0 - mb }))
            }
        }
        return Row(heads: heads, pairs: cosines.count, meanCosine: mean(cosines), meanCorrelation: mean(correlations))
    }
}
