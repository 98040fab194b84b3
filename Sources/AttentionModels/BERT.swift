import Attention
import Foundation

/// The hyperparameters of a BERT encoder, as in a Hugging Face `config.json`.
public struct BERTConfiguration: Codable, Sendable, Equatable {
    /// Tokens in the vocabulary (`vocab_size`).
    public var vocabularySize: Int
    /// Width of the hidden states (`hidden_size`).
    public var hiddenSize: Int
    /// Encoder layers (`num_hidden_layers`).
    public var layers: Int
    /// Attention heads per layer (`num_attention_heads`).
    public var heads: Int
    /// Width of the feed-forward layer (`intermediate_size`).
    public var intermediateSize: Int
    /// The longest sequence the position embeddings cover (`max_position_embeddings`).
    public var maxPositions: Int
    /// Token types (segments) (`type_vocab_size`).
    public var typeVocabularySize: Int
    /// LayerNorm's epsilon (`layer_norm_eps`).
    public var layerNormEpsilon: Double
    /// The feed-forward activation (`hidden_act`); `gelu` is the one supported.
    public var hiddenActivation: String

    enum CodingKeys: String, CodingKey {
        case vocabularySize = "vocab_size", hiddenSize = "hidden_size", layers = "num_hidden_layers"
        case heads = "num_attention_heads", intermediateSize = "intermediate_size"
        case maxPositions = "max_position_embeddings", typeVocabularySize = "type_vocab_size"
        case layerNormEpsilon = "layer_norm_eps", hiddenActivation = "hidden_act"
    }

    /// Reads `config.json`.
    public init(contentsOf url: URL) throws {
        do {
            self = try JSONDecoder().decode(BERTConfiguration.self, from: Data(contentsOf: url))
        } catch {
            throw AttentionError.invalidFile(path: url.path, reason: "not a BERT config.json (\(error))")
        }
        guard hiddenSize > 0, layers > 0, heads > 0, hiddenSize % heads == 0, vocabularySize > 0, maxPositions > 0 else {
            throw AttentionError.invalidFile(path: url.path, reason: "inconsistent sizes: hidden \(hiddenSize), heads \(heads), layers \(layers)")
        }
        guard hiddenActivation == "gelu" else {
            throw AttentionError.invalidFile(path: url.path, reason: "hidden_act '\(hiddenActivation)' is not supported (only the erf form of gelu)")
        }
    }
}

/// A BERT encoder on the library's layers: embeddings (word + position + token type, then LayerNorm),
/// then `layers` blocks of multi-head self-attention and a GELU feed-forward network, each followed by
/// a residual connection and LayerNorm (post-norm, as the original BERT).
public struct BERTEncoder: Sendable {
    /// One encoder layer: self-attention, add and norm, feed-forward, add and norm.
    public struct Layer: Sendable {
        /// Self-attention with its four projections.
        public var attention: MultiHeadAttention<Float>
        /// LayerNorm after the attention's residual sum.
        public var attentionNorm: LayerNorm<Float>
        /// The feed-forward input, hidden → intermediate (GELU follows).
        public var intermediate: Linear<Float>
        /// The feed-forward output, intermediate → hidden.
        public var output: Linear<Float>
        /// LayerNorm after the feed-forward's residual sum.
        public var outputNorm: LayerNorm<Float>
    }

    /// The hyperparameters the weights were made for.
    public let configuration: BERTConfiguration
    /// `[vocabularySize, hiddenSize]`.
    public let wordEmbeddings: Tensor<Float>
    /// `[maxPositions, hiddenSize]`.
    public let positionEmbeddings: Tensor<Float>
    /// `[typeVocabularySize, hiddenSize]`.
    public let tokenTypeEmbeddings: Tensor<Float>
    /// LayerNorm over the summed embeddings.
    public let embeddingNorm: LayerNorm<Float>
    /// The encoder layers, in order.
    public let layers: [Layer]

    /// Loads the weights from a safetensors file with Hugging Face's BERT names
    /// (`embeddings.word_embeddings.weight`, `encoder.layer.N.attention.self.query.weight`, …);
    /// tensors the encoder does not use (the pooler, position-id buffers) are skipped.
    public init(configuration c: BERTConfiguration, weights: SafeTensors) throws {
        try self.init(configuration: c, path: weights.path) { name in
            weights.entries[name] == nil ? nil : try weights.tensor(name)
        }
    }

    /// The encoder from named parameters as ``namedParameters`` lists them.
    public init(configuration c: BERTConfiguration, parameters: [String: Tensor<Float>]) throws {
        try self.init(configuration: c, path: "<parameters>") { parameters[$0] }
    }

    private init(configuration c: BERTConfiguration, path: String, tensor lookup: @escaping (String) throws -> Tensor<Float>?) throws {
        let reader = CheckpointReader(lookup: lookup, path: path)
        func tensor(_ name: String, _ shape: [Int]) throws -> Tensor<Float> { try reader.tensor(name, shape) }
        func norm(_ name: String) throws -> LayerNorm<Float> { try reader.layerNorm(name, features: c.hiddenSize, epsilon: c.layerNormEpsilon) }
        func linear(_ name: String, _ output: Int, _ input: Int) throws -> Linear<Float> { try reader.linear(name, input: input, output: output) }
        let (h, i) = (c.hiddenSize, c.intermediateSize)
        configuration = c
        wordEmbeddings = try tensor("embeddings.word_embeddings.weight", [c.vocabularySize, h])
        positionEmbeddings = try tensor("embeddings.position_embeddings.weight", [c.maxPositions, h])
        tokenTypeEmbeddings = try tensor("embeddings.token_type_embeddings.weight", [c.typeVocabularySize, h])
        embeddingNorm = try norm("embeddings.LayerNorm")
        layers = try (0..<c.layers).map { n in
            let p = "encoder.layer.\(n)."
            var attention = try MultiHeadAttention<Float>(embedDimension: h, numHeads: c.heads)
            for (projection, name) in BERTEncoder.attentionNames {
                let layer = try linear(p + name, h, h)
                try attention.setWeights(projection, weight: layer.weight, bias: layer.bias)
            }
            return Layer(
                attention: attention,
                attentionNorm: try norm(p + "attention.output.LayerNorm"),
                intermediate: try linear(p + "intermediate.dense", i, h),
                output: try linear(p + "output.dense", h, i),
                outputNorm: try norm(p + "output.LayerNorm"))
        }
    }

    /// Hugging Face's names of the attention projections, under `encoder.layer.N.`.
    static let attentionNames: [(MultiHeadAttention<Float>.Projection, String)] = [
        (.query, "attention.self.query"), (.key, "attention.self.key"), (.value, "attention.self.value"),
        (.output, "attention.output.dense"),
    ]

    /// The encoder's output for a batch of token-id sequences (padded to the longest, padding hidden
    /// from attention), and on request every layer's attention weights.
    public struct Output: Sendable {
        /// `[B, T, hidden]`; rows past each sequence's length are padding.
        public let hiddenStates: Tensor<Float>
        /// Real tokens per sequence.
        public let lengths: [Int]
        /// Per layer: `[B, heads, T, T]`.
        public let attentions: [Tensor<Float>]
        /// Per layer, the hidden states entering it, `[B, T, hidden]` (if requested): apply a layer's
        /// query and key projections to see the vectors behind its attention.
        public let layerInputs: [Tensor<Float>]
    }

    /// What ``callAsFunction(_:tokenTypes:returning:options:)`` returns besides the hidden states.
    public struct Outputs: OptionSet, Sendable {
        /// The set's bits.
        public let rawValue: Int
        /// The outputs whose bits `rawValue` holds.
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// Every layer's attention weights, ``Output/attentions``.
        public static let attentions = Outputs(rawValue: 1 << 0)
        /// The hidden states entering each layer, ``Output/layerInputs``.
        public static let layerInputs = Outputs(rawValue: 1 << 1)
    }

    /// Encodes a batch of token id sequences.
    ///
    /// - Parameters:
    ///   - batch: token id sequences, each at most the model's positions; shorter ones are padded
    ///     and masked by their lengths.
    ///   - tokenTypes: per sequence, each token's segment (0 for the first sentence, 1 for the second of
    ///     a pair); default all 0.
    ///   - outputs: also return every layer's attention weights (`.attentions`), or the hidden states
    ///     entering each layer (`.layerInputs`).
    ///   - options: the implementation and threads of every layer's products and attention.
    public func callAsFunction(
        _ batch: [[Int]], tokenTypes: [[Int]]? = nil, returning outputs: Outputs = [], options: AttentionOptions = AttentionOptions()
    ) throws -> Output {
        let c = configuration, h = c.hiddenSize
        guard !batch.isEmpty, batch.allSatisfy({ !$0.isEmpty }) else {
            throw AttentionError.invalidArgument(argument: "batch", reason: "need at least one sequence, each with at least one token")
        }
        let t = batch.map(\.count).max() ?? 0
        guard t <= c.maxPositions else {
            throw AttentionError.invalidArgument(argument: "batch", reason: "a sequence of \(t) tokens exceeds the model's \(c.maxPositions) positions")
        }
        if let bad = batch.joined().first(where: { $0 < 0 || $0 >= c.vocabularySize }) {
            throw AttentionError.invalidArgument(argument: "batch", reason: "token id \(bad) is outside the vocabulary of \(c.vocabularySize)")
        }
        if let tokenTypes {
            guard tokenTypes.map(\.count) == batch.map(\.count) else {
                throw AttentionError.invalidArgument(argument: "tokenTypes", reason: "need one type per token of each sequence")
            }
            if let bad = tokenTypes.joined().first(where: { $0 < 0 || $0 >= c.typeVocabularySize }) {
                throw AttentionError.invalidArgument(argument: "tokenTypes", reason: "type \(bad) is outside 0..<\(c.typeVocabularySize)")
            }
        }
        // Embeddings: word + position + token type.
        var x = [Float](repeating: 0, count: batch.count * t * h)
        for (b, ids) in batch.enumerated() {
            for (position, id) in ids.enumerated() {
                let row = (b * t + position) * h
                let type = tokenTypes?[b][position] ?? 0
                for k in 0..<h {
                    x[row + k] = wordEmbeddings.scalars[id * h + k] + positionEmbeddings.scalars[position * h + k]
                        + tokenTypeEmbeddings.scalars[type * h + k]
                }
            }
        }
        var hidden = try embeddingNorm(Tensor(shape: [batch.count, t, h], scalars: x))
        let lengths = batch.map(\.count)
        let mask = AttentionMask.keyLengths(lengths)
        var attentions: [Tensor<Float>] = [], layerInputs: [Tensor<Float>] = []
        for layer in layers {
            if outputs.contains(.layerInputs) { layerInputs.append(hidden) }
            let attended = try layer.attention(hidden, mask: mask, returning: outputs.contains(.attentions) ? .weights : [], options: options)
            if let weights = attended.weights { attentions.append(weights) }
            hidden = try layer.attentionNorm(add(hidden, attended.output))
            let feedForward = try layer.output(gelu(layer.intermediate(hidden, options: options)), options: options)
            hidden = try layer.outputNorm(add(hidden, feedForward))
        }
        return Output(hiddenStates: hidden, lengths: lengths, attentions: attentions, layerInputs: layerInputs)
    }

    private func add(_ a: Tensor<Float>, _ b: Tensor<Float>) throws -> Tensor<Float> {
        try Tensor(shape: a.shape, scalars: zip(a.scalars, b.scalars).map(+))
    }
}

extension BERTEncoder: NamedParameters {
    /// Hugging Face's BERT names (`encoder.layer.0.attention.self.query.weight`, …), in its order.
    public var namedParameters: [(name: String, tensor: Tensor<Float>)] {
        var list: [(name: String, tensor: Tensor<Float>)] = [
            ("embeddings.word_embeddings.weight", wordEmbeddings), ("embeddings.position_embeddings.weight", positionEmbeddings),
            ("embeddings.token_type_embeddings.weight", tokenTypeEmbeddings),
        ]
        list += embeddingNorm.namedParameters(prefixedBy: "embeddings.LayerNorm")
        for (n, layer) in layers.enumerated() {
            let p = "encoder.layer.\(n)."
            let projections = [layer.attention.queryProjection, layer.attention.keyProjection, layer.attention.valueProjection,
                               layer.attention.outputProjection]
            for ((_, name), projection) in zip(BERTEncoder.attentionNames, projections) { list += projection.namedParameters(prefixedBy: p + name) }
            list += layer.attentionNorm.namedParameters(prefixedBy: p + "attention.output.LayerNorm") + layer.intermediate.namedParameters(prefixedBy: p + "intermediate.dense")
                + layer.output.namedParameters(prefixedBy: p + "output.dense") + layer.outputNorm.namedParameters(prefixedBy: p + "output.LayerNorm")
        }
        return list
    }

    /// An encoder of the same configuration with `parameters`, by Hugging Face's names.
    public func replacingParameters(_ parameters: [String: Tensor<Float>]) throws -> BERTEncoder {
        try BERTEncoder(configuration: configuration, parameters: parameters)
    }
}
