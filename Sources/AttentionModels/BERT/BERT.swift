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
        try validate(path: url.path)
    }

    /// Checks the configuration as a whole: every table an input can index has a row for it (token
    /// type 0 is read for every token, so `type_vocab_size` is at least 1), the sizes are ones a
    /// model can have, and the variant is one this implementation computes.
    ///
    /// - Throws: `AttentionError.invalidFile(path:reason:)` naming the field and its value.
    public func validate(path: String = "config.json") throws {
        func fail(_ reason: String) -> AttentionError { .invalidFile(path: path, reason: reason) }
        for (name, value) in [("vocab_size", vocabularySize), ("hidden_size", hiddenSize), ("num_hidden_layers", layers),
                              ("num_attention_heads", heads), ("intermediate_size", intermediateSize),
                              ("max_position_embeddings", maxPositions), ("type_vocab_size", typeVocabularySize)]
        where !(1...(1 << 24)).contains(value) {
            throw fail("\(name) is \(value); expected 1...\(1 << 24)")
        }
        guard hiddenSize % heads == 0 else { throw fail("hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(heads)") }
        guard layerNormEpsilon > 0, layerNormEpsilon.isFinite else { throw fail("layer_norm_eps must be positive, got \(layerNormEpsilon)") }
        guard hiddenActivation == "gelu" else {
            throw fail("hidden_act '\(hiddenActivation)' is not supported (only the erf form of gelu)")
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
        public var attention: MultiHeadAttention<Float> {
            didSet { queryKeyValue = Layer.fusedProjections(of: attention) }
        }
        /// LayerNorm after the attention's residual sum.
        public var attentionNorm: LayerNorm<Float>
        /// The feed-forward input, hidden → intermediate (GELU follows).
        public var intermediate: Linear<Float>
        /// The feed-forward output, intermediate → hidden.
        public var output: Linear<Float>
        /// LayerNorm after the feed-forward's residual sum.
        public var outputNorm: LayerNorm<Float>
        /// The query, key and value projections as one layer (their weights stacked, `[3·hidden,
        /// hidden]`): one product of three times the width instead of three. Nil only if the three
        /// cannot be stacked.
        var queryKeyValue: Linear<Float>?

        init(attention: MultiHeadAttention<Float>, attentionNorm: LayerNorm<Float>, intermediate: Linear<Float>, output: Linear<Float>,
             outputNorm: LayerNorm<Float>) {
            (self.attention, self.attentionNorm, self.intermediate, self.output, self.outputNorm) =
                (attention, attentionNorm, intermediate, output, outputNorm)
            queryKeyValue = Layer.fusedProjections(of: attention)
        }

        static func fusedProjections(of attention: MultiHeadAttention<Float>) -> Linear<Float>? {
            let parts = [attention.queryProjection, attention.keyProjection, attention.valueProjection]
            guard parts.allSatisfy({ $0.inputDimension == parts[0].inputDimension && $0.quantizedWeight == nil }) else { return nil }
            let weight = parts.flatMap(\.weight.scalars)
            let bias = parts.flatMap { $0.bias?.scalars ?? [Float](repeating: 0, count: $0.outputDimension) }
            let outputs = parts.reduce(0) { $0 + $1.outputDimension }
            return try? Linear(weight: Tensor(shape: [outputs, parts[0].inputDimension], scalars: weight),
                               bias: Tensor(shape: [outputs], scalars: bias))
        }
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
        try c.validate(path: path)
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
        /// `[B, T, hidden]`; rows past each sequence's length are zero.
        public let hiddenStates: Tensor<Float>
        /// Real tokens per sequence.
        public let lengths: [Int]
        /// Per layer: `[B, heads, T, T]`.
        public let attentions: [Tensor<Float>]
        /// Per layer, the hidden states entering it, `[B, T, hidden]`, zero past each sequence's length
        /// (if requested): apply a layer's query and key projections to see the vectors behind its
        /// attention.
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
        let encoded = try encodePacked(batch, tokenTypes: tokenTypes, returning: outputs, options: options)
        let (t, h) = (encoded.sequences.longest, configuration.hiddenSize)
        let padded = { (rows: [Float]) in
            Tensor(uncheckedShape: [batch.count, t, h], scalars: encoded.sequences.padded(rows, width: h, to: t))
        }
        return Output(hiddenStates: padded(encoded.hiddenStates), lengths: encoded.sequences.lengths, attentions: encoded.attentions,
                      layerInputs: encoded.layerInputs.map(padded))
    }

    /// What ``encodePacked(_:tokenTypes:returning:options:)`` returns: the hidden states of every real
    /// token, sequence after sequence with no padding between them (`[tokens, hidden]`).
    struct PackedOutput {
        var sequences: PackedSequences
        var hiddenStates: [Float]
        var attentions: [Tensor<Float>]
        var layerInputs: [[Float]]
    }

    /// The encoder with its tokens packed: the embeddings, projections, feed-forward products and
    /// norms run on the real tokens of all sequences as one matrix, and only attention sees the
    /// sequences apart (padded to the longest, padding masked). A batch of mixed lengths computes no
    /// padded row outside attention. Checks its arguments as ``callAsFunction(_:tokenTypes:returning:options:)``.
    func encodePacked(
        _ batch: [[Int]], tokenTypes: [[Int]]?, returning outputs: Outputs, options: AttentionOptions
    ) throws -> PackedOutput {
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
        let sequences = PackedSequences(lengths: batch.map(\.count))
        // Embeddings: word + position + token type.
        var x = [Float](repeating: 0, count: sequences.tokens * h)
        for (b, ids) in batch.enumerated() {
            for (position, id) in ids.enumerated() {
                let row = (sequences.offsets[b] + position) * h
                let type = tokenTypes?[b][position] ?? 0
                for k in 0..<h {
                    x[row + k] = wordEmbeddings.scalars[id * h + k] + positionEmbeddings.scalars[position * h + k]
                        + tokenTypeEmbeddings.scalars[type * h + k]
                }
            }
        }
        var hidden = try embeddingNorm(Tensor(uncheckedShape: [sequences.tokens, h], scalars: x), options: options)
        var attentions: [Tensor<Float>] = [], layerInputs: [[Float]] = []
        for layer in layers {
            if outputs.contains(.layerInputs) { layerInputs.append(hidden.scalars) }
            let attended = try selfAttention(layer, hidden, sequences: sequences, weights: outputs.contains(.attentions), options: options)
            if let weights = attended.weights { attentions.append(weights) }
            hidden = try layer.attentionNorm(attended.output, adding: hidden, options: options)
            let feedForward = try layer.output(layer.intermediate(hidden, activation: .gelu, options: options), options: options)
            hidden = try layer.outputNorm(feedForward, adding: hidden, options: options)
        }
        return PackedOutput(sequences: sequences, hiddenStates: hidden.scalars, attentions: attentions, layerInputs: layerInputs)
    }

    /// One layer's self-attention over packed rows `[tokens, hidden]`: the query, key and value
    /// projections as one product, the heads gathered per sequence (padded to the longest) for the
    /// attention call, its output scattered back to packed rows for the output projection.
    private func selfAttention(
        _ layer: Layer, _ hidden: Tensor<Float>, sequences: PackedSequences, weights: Bool, options: AttentionOptions
    ) throws -> (output: Tensor<Float>, weights: Tensor<Float>?) {
        let attention = layer.attention
        let dh = attention.headDimension
        let projections = [attention.queryProjection, attention.keyProjection, attention.valueProjection]
        // Per part (query, key, value): its heads, and where its columns start in its source's rows.
        let partHeads = [attention.numHeads, attention.numKeyValueHeads, attention.numKeyValueHeads]
        let sources: [(rows: [Float], width: Int, start: Int)]
        if let fused = layer.queryKeyValue {
            let rows = try fused(hidden, options: options).scalars
            let widths = projections.map(\.outputDimension), width = widths.reduce(0, +)
            sources = [(rows, width, 0), (rows, width, widths[0]), (rows, width, widths[0] + widths[1])]
        } else {
            sources = try projections.map { (try $0(hidden, options: options).scalars, $0.outputDimension, 0) }
        }
        // Heads gathered per group of sequences of similar length, [n, heads, t, dh] each with the
        // padding rows zero; the outputs scattered back to packed rows [tokens, heads·dh], each real
        // row written by exactly one group.
        let outputWidth = attention.numHeads * dh
        var merged = [Float](unsafeUninitializedCapacity: sequences.tokens * outputWidth) { _, count in count = sequences.tokens * outputWidth }
        var attentionWeights: Tensor<Float>?
        for group in sequences.attentionGroups(keepingOrder: weights) {
            let lengths = group.map { sequences.lengths[$0] }
            let t = lengths.max() ?? 0
            var split = partHeads.map { heads in [Float](repeating: 0, count: group.count * heads * t * dh) }
            for part in 0..<3 {
                let (source, width, start) = sources[part], heads = partHeads[part]
                split[part].withUnsafeMutableBufferPointer { target in
                    source.withUnsafeBufferPointer { source in
                        guard let target = target.baseAddress, let source = source.baseAddress else { return }
                        for (member, sequence) in group.enumerated() {
                            let offset = sequences.offsets[sequence]
                            for position in 0..<lengths[member] {
                                for head in 0..<heads {
                                    (target + ((member * heads + head) * t + position) * dh)
                                        .update(from: source + (offset + position) * width + start + head * dh, count: dh)
                                }
                            }
                        }
                    }
                }
            }
            let shapes = partHeads.map { [group.count, $0, t, dh] }
            let attended = try scaledDotProductAttention(
                query: Tensor(uncheckedShape: shapes[0], scalars: split[0]), key: Tensor(uncheckedShape: shapes[1], scalars: split[1]),
                value: Tensor(uncheckedShape: shapes[2], scalars: split[2]), mask: .keyLengths(lengths),
                returning: weights ? .weights : [], options: options)
            attentionWeights = attended.weights
            let heads = attention.numHeads
            merged.withUnsafeMutableBufferPointer { target in
                attended.output.withUnsafeBufferPointer { source in
                    guard let target = target.baseAddress, let source = source.baseAddress else { return }
                    for (member, sequence) in group.enumerated() {
                        let offset = sequences.offsets[sequence]
                        for position in 0..<lengths[member] {
                            for head in 0..<heads {
                                (target + (offset + position) * outputWidth + head * dh)
                                    .update(from: source + ((member * heads + head) * t + position) * dh, count: dh)
                            }
                        }
                    }
                }
            }
        }
        let output = try attention.outputProjection(Tensor(uncheckedShape: [sequences.tokens, outputWidth], scalars: merged), options: options)
        return (output, attentionWeights)
    }
}

/// Sequences of different lengths packed one after another: sequence `b` is rows
/// `offsets[b] ..< offsets[b + 1]`.
struct PackedSequences {
    let lengths: [Int]
    /// `lengths.count + 1` row offsets, from 0 to ``tokens``.
    let offsets: [Int]

    init(lengths: [Int]) {
        self.lengths = lengths
        offsets = lengths.reduce(into: [0]) { $0.append($0[$0.count - 1] + $1) }
    }

    var tokens: Int { offsets[offsets.count - 1] }
    var longest: Int { lengths.max() ?? 0 }

    /// The sequences cut into groups for attention calls, each padded to its longest: the longest
    /// first, a group growing while its padded size stays within 5/4 of its real tokens (so a batch
    /// of mixed lengths computes little attention on padding). With `keepingOrder`, one group of
    /// every sequence in order (the shape of a batch's attention weights).
    func attentionGroups(keepingOrder: Bool) -> [[Int]] {
        if keepingOrder { return [Array(lengths.indices)] }
        let order = lengths.indices.sorted { lengths[$0] != lengths[$1] ? lengths[$0] > lengths[$1] : $0 < $1 }
        var groups: [[Int]] = [], tokens = 0
        for sequence in order {
            if let first = groups.last?.first, 4 * (groups[groups.count - 1].count + 1) * lengths[first] <= 5 * (tokens + lengths[sequence]) {
                groups[groups.count - 1].append(sequence)
                tokens += lengths[sequence]
            } else {
                groups.append([sequence])
                tokens = lengths[sequence]
            }
        }
        return groups
    }

    /// Packed rows of `width` to `[B, t, width]`, the rows past each sequence's length zero.
    func padded(_ rows: [Float], width: Int, to t: Int) -> [Float] {
        var out = [Float](repeating: 0, count: lengths.count * t * width)
        for (b, length) in lengths.enumerated() {
            let from = offsets[b] * width
            out.replaceSubrange(b * t * width ..< (b * t + length) * width, with: rows[from ..< from + length * width])
        }
        return out
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
