import Attention
import Foundation

/// The hyperparameters of a GPT-2 model, as in transformers' `config.json`.
public struct GPT2Configuration: Codable, Sendable, Equatable {
    /// Tokens in the vocabulary (`vocab_size`).
    public var vocabularySize: Int
    /// The longest sequence the position embeddings cover.
    public var positions: Int
    /// The residual stream's width C.
    public var width: Int
    /// Transformer blocks (`n_layer`).
    public var layers: Int
    /// Attention heads per block (`n_head`); `width` is a multiple.
    public var heads: Int
    /// The feed-forward width; transformers' `n_inner`, default 4·C.
    public var innerSize: Int?
    /// LayerNorm's epsilon (`layer_norm_epsilon`).
    public var layerNormEpsilon: Double
    /// `gelu_new` (the tanh form, GPT-2's), `gelu_pytorch_tanh` (the same) or `gelu` (the erf form).
    public var activation: String
    /// transformers' `scale_attn_by_inverse_layer_idx`; only false (or absent) is supported.
    public var scaleAttentionByInverseLayerIndex: Bool?
    /// transformers' `reorder_and_upcast_attn`; a numerical detail of its fp16 path, no effect in Float.
    public var reorderAndUpcastAttention: Bool?
    /// transformers' `scale_attn_weights`; only true (or absent, 1/√d) is supported.
    public var scaleAttentionWeights: Bool?
    /// The ids of the tokens that begin and end a text (`<|endoftext|>` in GPT-2), if known.
    public var beginningOfTextToken: Int?
    /// The id that ends a text; generation can stop there.
    public var endOfTextToken: Int?

    enum CodingKeys: String, CodingKey {
        case vocabularySize = "vocab_size", positions = "n_positions", width = "n_embd", layers = "n_layer"
        case heads = "n_head", innerSize = "n_inner", layerNormEpsilon = "layer_norm_epsilon"
        case activation = "activation_function", scaleAttentionByInverseLayerIndex = "scale_attn_by_inverse_layer_idx"
        case reorderAndUpcastAttention = "reorder_and_upcast_attn", scaleAttentionWeights = "scale_attn_weights"
        case beginningOfTextToken = "bos_token_id", endOfTextToken = "eos_token_id"
    }

    /// A configuration from its sizes; the rest as GPT-2's (`gelu_new`, ε = 1e-5, inner 4·C).
    public init(vocabularySize: Int, positions: Int, width: Int, layers: Int, heads: Int) {
        self.vocabularySize = vocabularySize
        self.positions = positions
        self.width = width
        self.layers = layers
        self.heads = heads
        self.layerNormEpsilon = 1e-5
        self.activation = "gelu_new"
    }

    /// Reads and checks `config.json`.
    public init(contentsOf url: URL) throws {
        do {
            self = try JSONDecoder().decode(GPT2Configuration.self, from: Data(contentsOf: url))
        } catch {
            throw AttentionError.invalidFile(path: url.path, reason: "not a GPT-2 config.json (\(error))")
        }
        try validate(path: url.path)
    }

    /// The feed-forward width.
    public var feedForwardSize: Int { innerSize ?? 4 * width }

    /// Checks that the sizes are consistent and the variant is one this implementation computes.
    public func validate(path: String = "config.json") throws {
        func fail(_ reason: String) -> AttentionError { .invalidFile(path: path, reason: reason) }
        // n_inner defaults to 4 · n_embd: checked after n_embd, so that product cannot overflow.
        for (name, value) in [("vocab_size", vocabularySize), ("n_positions", positions), ("n_embd", width),
                              ("n_layer", layers), ("n_head", heads), ("n_inner", innerSize ?? 1)] where value < 1 || value > 1 << 24 {
            throw fail("\(name) is \(value); expected 1...\(1 << 24)")
        }
        for (name, id) in [("bos_token_id", beginningOfTextToken), ("eos_token_id", endOfTextToken)] {
            if let id, !(0..<vocabularySize).contains(id) { throw fail("\(name) \(id) is outside the vocabulary of \(vocabularySize)") }
        }
        guard width % heads == 0 else { throw fail("n_embd \(width) is not a multiple of n_head \(heads)") }
        guard ["gelu_new", "gelu_pytorch_tanh", "gelu"].contains(activation) else {
            throw fail("activation_function '\(activation)' is not supported (gelu_new, gelu_pytorch_tanh or gelu)")
        }
        guard scaleAttentionByInverseLayerIndex != true, reorderAndUpcastAttention != true, scaleAttentionWeights != false else {
            throw fail("scale_attn_by_inverse_layer_idx, reorder_and_upcast_attn and unscaled attention are not supported")
        }
        guard layerNormEpsilon > 0, layerNormEpsilon.isFinite else { throw fail("layer_norm_epsilon must be positive, got \(layerNormEpsilon)") }
    }
}

/// GPT-2 as transformers defines it (`GPT2LMHeadModel`): token and learned position embeddings,
/// `layers` pre-LayerNorm blocks of causal multi-head self-attention (one fused query/key/value
/// projection) and a GELU feed-forward network, each added to the residual stream, a final
/// LayerNorm, and logits from the token embedding (tied output weights).
///
/// ```
/// x = wte[ids] + wpe[positions]
/// for each block:  x += c_proj(attention(split(c_attn(ln_1(x))), causal))
///                  x += mlp.c_proj(gelu(mlp.c_fc(ln_2(x))))
/// logits = ln_f(x) · wteᵀ
/// ```
/// The whole sequence at once (``logits(_:options:)``), or a few tokens at a time through one `KVCache` per
/// layer (``logits(appending:to:options:)``): each step then costs O(N) instead of O(N²).
public struct GPT2Model: Sendable {
    /// One block's parameters, in transformers' Conv1D layout transposed to `Linear`'s `[out, in]`.
    public struct Block: Sendable {
        /// LayerNorm before the attention (`ln_1`).
        public var attentionNorm: LayerNorm<Float>
        /// The fused query, key and value projection, C → 3C (`attn.c_attn`).
        public var queryKeyValue: Linear<Float>
        /// The attention's output projection (`attn.c_proj`).
        public var attentionOutput: Linear<Float>
        /// LayerNorm before the feed-forward (`ln_2`).
        public var feedForwardNorm: LayerNorm<Float>
        /// The feed-forward input, C → inner (`mlp.c_fc`).
        public var feedForwardInput: Linear<Float>
        /// The feed-forward output, inner → C (`mlp.c_proj`).
        public var feedForwardOutput: Linear<Float>
    }

    /// The hyperparameters the weights were made for.
    public let configuration: GPT2Configuration
    /// `wte`, `[vocabularySize, C]` (a copy when the model reads it in place from its file).
    public var tokenEmbeddings: Tensor<Float> { tokenTable.storedWeight }
    /// `wte` as a bias-free layer (the output layer itself when tied): where ``embed(_:from:)`` reads rows.
    private let tokenTable: Linear<Float>
    /// `wpe`, `[positions, C]`.
    public let positionEmbeddings: Tensor<Float>
    /// The transformer blocks, in order.
    public let blocks: [Block]
    /// LayerNorm after the last block (`ln_f`).
    public let finalNorm: LayerNorm<Float>
    /// Logits: `wte` as a bias-free layer C → vocabulary (or `lm_head.weight` if the file has one).
    public let head: Linear<Float>
    /// Whether the output layer is the token embedding (GPT-2's tied weights) rather than `lm_head.weight`.
    public let tiedOutput: Bool

    /// Loads `config.json` and `model.safetensors` from a directory written by transformers'
    /// `save_pretrained`.
    public init(directory: URL) throws {
        let configuration = try GPT2Configuration(contentsOf: directory.appendingPathComponent("config.json"))
        try self.init(configuration: configuration, weights: SafeTensors(contentsOf: directory.appendingPathComponent("model.safetensors")))
    }

    /// A model from transformers' parameter names, with or without the `transformer.` prefix.
    /// The causal-mask buffers older checkpoints carry (`h.N.attn.bias`, `h.N.attn.masked_bias`)
    /// are not parameters and are skipped.
    ///
    /// - Throws: `AttentionError.invalidFile(path:reason:)` naming a missing tensor, one whose
    ///   shape is not what the configuration implies, or tensors the model does not have.
    public init(configuration c: GPT2Configuration, weights: SafeTensors) throws {
        let prefix = weights.entries["transformer.wte.weight"] != nil ? "transformer." : ""
        func full(_ name: String) -> String { name == "lm_head.weight" ? name : prefix + name }
        try self.init(configuration: c, path: weights.path, file: (weights, full)) { name in
            weights.entries[full(name)] == nil ? nil : try weights.tensor(full(name))
        }
        let known = Set(Self.parameterNames(c)).union(["lm_head.weight"])
        let unexpected = weights.entries.keys.filter { name in
            let full = prefix.isEmpty && name != "lm_head.weight" ? "transformer." + name : name
            return !known.contains(full) && !name.hasSuffix(".attn.bias") && !name.hasSuffix(".attn.masked_bias")
        }.sorted()
        guard unexpected.isEmpty else {
            throw AttentionError.invalidFile(path: weights.path, reason: "tensors a GPT-2 of this config does not have: \(unexpected.prefix(8).joined(separator: ", "))")
        }
    }

    /// The model from named parameters as ``namedParameters`` lists them.
    /// - Throws: `AttentionError.invalidFile(path:reason:)` naming a missing or misshapen tensor.
    public init(configuration c: GPT2Configuration, parameters: [String: Tensor<Float>]) throws {
        try self.init(configuration: c, path: "<parameters>", file: nil) { name in
            parameters[name == "lm_head.weight" ? name : "transformer." + name]
        }
    }

    /// `tensor(name)` gives the tensor of a name without the `transformer.` prefix, nil if absent.
    /// Weight matrices are read in place from `file` when given.
    private init(configuration c: GPT2Configuration, path: String, file: (weights: SafeTensors, fullName: (String) -> String)?,
                 tensor lookup: @escaping (String) throws -> Tensor<Float>?) throws {
        try c.validate()
        let reader = CheckpointReader(lookup: lookup, path: path, displayPrefix: "transformer.", file: file)
        func tensor(_ name: String, _ shape: [Int]) throws -> Tensor<Float> { try reader.tensor(name, shape) }
        func norm(_ name: String) throws -> LayerNorm<Float> { try reader.layerNorm(name, features: c.width, epsilon: c.layerNormEpsilon) }
        func conv1D(_ name: String, _ input: Int, _ output: Int) throws -> Linear<Float> { try reader.conv1D(name, input: input, output: output) }
        let (w, inner) = (c.width, c.feedForwardSize)
        configuration = c
        tokenTable = try reader.matrix("wte.weight", [c.vocabularySize, w], bias: nil, layout: .outputMajor)
        positionEmbeddings = try tensor("wpe.weight", [c.positions, w])
        blocks = try (0..<c.layers).map { n in
            let p = "h.\(n)."
            return Block(
                attentionNorm: try norm(p + "ln_1"),
                queryKeyValue: try conv1D(p + "attn.c_attn", w, 3 * w),
                attentionOutput: try conv1D(p + "attn.c_proj", w, w),
                feedForwardNorm: try norm(p + "ln_2"),
                feedForwardInput: try conv1D(p + "mlp.c_fc", w, inner),
                feedForwardOutput: try conv1D(p + "mlp.c_proj", inner, w))
        }
        finalNorm = try norm("ln_f")
        let untied = try file.map { $0.weights.entries["lm_head.weight"] != nil } ?? (lookup("lm_head.weight") != nil)
        if untied {
            head = try reader.matrix("lm_head.weight", [c.vocabularySize, w], bias: nil, layout: .outputMajor)
            tiedOutput = false
        } else {
            head = tokenTable
            tiedOutput = true
        }
    }

    /// Logits for every position of `ids`, `[T, vocabularySize]`: row t predicts token t + 1.
    /// `options` (implementation, threads) apply to every product and attention of the forward.
    ///
    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` for no tokens, more than the
    ///   model's positions, an id outside the vocabulary, or options this CPU cannot run.
    public func logits(_ ids: [Int], options: AttentionOptions = AttentionOptions()) throws -> Tensor<Float> {
        try check(ids, from: 0)
        var x = try embed(ids, from: 0)
        for block in blocks {
            x = try apply(block, to: x, options: options) { q, k, v in
                try scaledDotProductAttention(query: q, key: k, value: v, mask: .causal, options: options).output
            }
        }
        return try head(finalNorm(x, options: options), options: options)
    }

    /// Every layer's causal attention weights over `ids`, `[heads, T, T]` per layer: row i holds what
    /// token i reads of tokens 0...i (zeros to its right).
    /// - Throws: as ``logits(_:options:)``.
    public func attentions(_ ids: [Int], options: AttentionOptions = AttentionOptions()) throws -> [Tensor<Float>] {
        try attentions(ids, queriesAndKeysOf: nil, options: options).attentions
    }

    /// ``attentions(_:options:)`` and, for `layer` (from 0), the queries and keys behind its weights, `[heads, T, C/H]`
    /// each: `attentions[layer][h][i][j] = softmax_{j ≤ i}(q[h][i] · k[h][j] / √(C/H))`.
    /// - Throws: as ``logits(_:options:)``, and `AttentionError.invalidArgument(argument:reason:)` for a layer
    ///   the model does not have.
    public func attentions(_ ids: [Int], queriesAndKeysOf layer: Int?, options: AttentionOptions = AttentionOptions()) throws
        -> (attentions: [Tensor<Float>], queries: Tensor<Float>?, keys: Tensor<Float>?)
    {
        if let layer, !(0..<configuration.layers).contains(layer) {
            throw AttentionError.invalidArgument(argument: "layer", reason: "must be in 0..<\(configuration.layers), got \(layer)")
        }
        try check(ids, from: 0)
        var x = try embed(ids, from: 0), weights: [Tensor<Float>] = []
        var queries: Tensor<Float>?, keys: Tensor<Float>?
        for (n, block) in blocks.enumerated() {
            x = try apply(block, to: x, options: options) { q, k, v in
                let result = try scaledDotProductAttention(query: q, key: k, value: v, mask: .causal, returning: .weights, options: options)
                if let w = result.weights { weights.append(try w.reshaped(Array(w.shape.dropFirst()))) }
                if n == layer {
                    queries = try q.reshaped(Array(q.shape.dropFirst()))
                    keys = try k.reshaped(Array(k.shape.dropFirst()))
                }
                return result.output
            }
        }
        return (weights, queries, keys)
    }

    /// Empty key/value caches, one per layer, for up to `capacity` positions (default: the model's).
    public func makeCaches(capacity: Int? = nil, storage: KVCache.Storage = .float32) throws -> [KVCache] {
        let capacity = capacity ?? configuration.positions
        guard (1...configuration.positions).contains(capacity) else {
            throw AttentionError.invalidArgument(argument: "capacity", reason: "must be in 1...\(configuration.positions) (the model's positions), got \(capacity)")
        }
        let c = configuration
        return try (0..<c.layers).map { _ in
            try KVCache(keyValueHeads: c.heads, headDimension: c.width / c.heads, capacity: capacity, storage: storage)
        }
    }

    /// Logits for `ids` appended after the positions already in `caches` (from ``makeCaches(capacity:storage:)``),
    /// `[ids.count, vocabularySize]`; their keys and values are appended to the caches.
    ///
    /// Equals the matching rows of ``logits(_:options:)`` on the whole sequence (up to the caches' rounding).
    /// - Throws: `AttentionError` if the caches are not this model's, the sequence would exceed their
    ///   capacity or the model's positions, an id is outside the vocabulary, or the options cannot run;
    ///   the caches are then unchanged.
    public func logits(appending ids: [Int], to caches: inout [KVCache], options: AttentionOptions = AttentionOptions()) throws -> Tensor<Float> {
        try logits(appending: ids, to: &caches, lastOnly: false, options: options)
    }

    /// ``logits(appending:to:options:)``, for the last position only when `lastOnly` (`[1, vocabularySize]`):
    /// generation needs no other, and the output layer is the largest product of a step.
    public func logits(appending ids: [Int], to caches: inout [KVCache], lastOnly: Bool, options: AttentionOptions) throws -> Tensor<Float> {
        try head(finalStates(appending: ids, to: &caches, lastOnly: lastOnly, options: options), options: options)
    }

    /// ``AutoregressiveModel/nextTokenLogits(appending:to:sampling:options:)``: when `sampling` picks among
    /// a few of the most likely tokens (greedy, top-k), only those are computed exactly, through
    /// `Linear.largestOutputs(_:of:argument:options:)` on the output layer (about a quarter of its
    /// reads, the same tokens and logits bit for bit); the others are −∞. Otherwise the whole row.
    public func nextTokenLogits(appending ids: [Int], to caches: inout [KVCache], sampling: Sampling, options: AttentionOptions) throws -> [Float] {
        let states = try finalStates(appending: ids, to: &caches, lastOnly: true, options: options)
        guard let count = sampling.candidateCount else { return try head(states, options: options).scalars }
        let ranked = try head.largestOutputs(count, of: states, options: options)
        var row = [Float](repeating: -.infinity, count: configuration.vocabularySize)
        for (index, value) in zip(ranked.indices, ranked.values) { row[index] = value }
        return row
    }

    /// The final LayerNorm's output for `ids` appended to `caches`, `[T, C]` (`[1, C]` when `lastOnly`):
    /// what the output layer multiplies.
    private func finalStates(appending ids: [Int], to caches: inout [KVCache], lastOnly: Bool, options: AttentionOptions) throws -> Tensor<Float> {
        let c = configuration
        guard caches.count == c.layers, caches.allSatisfy({ $0.keyValueHeads == c.heads && $0.headDimension == c.width / c.heads && $0.batchSize == 1 }) else {
            throw AttentionError.invalidArgument(argument: "caches", reason: "need \(c.layers) caches of \(c.heads) heads of \(c.width / c.heads) (from makeCaches)")
        }
        let start = caches[0].count
        try check(ids, from: start)
        guard start + ids.count <= caches[0].capacity else {
            throw AttentionError.invalidArgument(argument: "ids", reason: "\(ids.count) tokens after \(start) exceed the caches' capacity of \(caches[0].capacity)")
        }
        // Resolved before any cache changes: options that cannot run leave the caches as they were.
        try options.validate(for: Float.self)
        var x = try embed(ids, from: start)
        for (layer, block) in blocks.enumerated() {
            x = try apply(block, to: x, options: options) { q, k, v in
                try caches[layer].append(key: k, value: v)
                return try scaledDotProductAttention(query: q, cache: caches[layer], mask: ids.count > 1 ? .causal : .none, options: options).output
            }
        }
        if lastOnly && ids.count > 1 {
            let w = configuration.width
            x = try Tensor(shape: [1, w], scalars: Array(x.scalars[((ids.count - 1) * w)...]))
        }
        return try finalNorm(x, options: options)
    }

    func check(_ ids: [Int], from start: Int) throws {
        let c = configuration
        guard !ids.isEmpty else { throw AttentionError.invalidArgument(argument: "ids", reason: "need at least one token") }
        guard start + ids.count <= c.positions else {
            throw AttentionError.invalidArgument(argument: "ids", reason: "positions \(start)..<\(start + ids.count) exceed the model's \(c.positions)")
        }
        if let bad = ids.first(where: { $0 < 0 || $0 >= c.vocabularySize }) {
            throw AttentionError.invalidArgument(argument: "ids", reason: "token id \(bad) is outside the vocabulary of \(c.vocabularySize)")
        }
    }

    /// wte[ids] + wpe[start...], `[T, C]`.
    func embed(_ ids: [Int], from start: Int) throws -> Tensor<Float> {
        let w = configuration.width
        var x = [Float](repeating: 0, count: ids.count * w)
        tokenTable.withUnsafeStoredWeight { wte in
            positionEmbeddings.withUnsafeBufferPointer { wpe in
                for (t, id) in ids.enumerated() {
                    for k in 0..<w { x[t * w + k] = wte[id * w + k] + wpe[(start + t) * w + k] }
                }
            }
        }
        return try Tensor(shape: [ids.count, w], scalars: x)
    }

    /// One block on `x` `[T, C]`; `attend` maps queries, keys and values `[1, H, T, C/H]` to the
    /// attention output of the same shape.
    private func apply(
        _ block: Block, to x: Tensor<Float>, options: AttentionOptions,
        attend: (Tensor<Float>, Tensor<Float>, Tensor<Float>) throws -> Tensor<Float>
    ) throws -> Tensor<Float> {
        let (t, w, h) = (x.shape[0], configuration.width, configuration.heads)
        let qkv = try block.queryKeyValue(block.attentionNorm(x, options: options), options: options)
        let heads = try (0..<3).map { try splitHeads(qkv, batch: 1, tokens: t, width: w, heads: h, part: $0, parts: 3) }
        let attended = try mergeHeads([attend(heads[0], heads[1], heads[2])], batch: 1, tokens: t, width: w, heads: h)
        var residual = try add(x, block.attentionOutput(attended, options: options))
        let activated = try block.feedForwardInput(block.feedForwardNorm(residual, options: options),
                                                   activation: configuration.activation == "gelu" ? .gelu : .geluTanh, options: options)
        residual = try add(residual, block.feedForwardOutput(activated, options: options))
        return residual
    }

    func add(_ a: Tensor<Float>, _ b: Tensor<Float>) throws -> Tensor<Float> {
        try Tensor(shape: a.shape, scalars: zip(a.scalars, b.scalars).map(+))
    }
}

extension GPT2Model: NamedParameters {
    /// transformers' names and layouts (`transformer.h.0.attn.c_attn.weight` as Conv1D's `[in, out]`),
    /// in its order; `lm_head.weight` only when the output is not tied to `transformer.wte.weight`.
    public var namedParameters: [(name: String, tensor: Tensor<Float>)] {
        func conv1D(_ name: String, _ layer: Linear<Float>) -> [(name: String, tensor: Tensor<Float>)] {
            [(name + ".weight", layer.inputMajorWeight)]
                + (layer.bias.map { [(name + ".bias", $0)] } ?? [])
        }
        var list: [(name: String, tensor: Tensor<Float>)] = [("transformer.wte.weight", tokenEmbeddings), ("transformer.wpe.weight", positionEmbeddings)]
        for (n, block) in blocks.enumerated() {
            let p = "transformer.h.\(n)."
            list += block.attentionNorm.namedParameters(prefixedBy: p + "ln_1") + conv1D(p + "attn.c_attn", block.queryKeyValue)
                + conv1D(p + "attn.c_proj", block.attentionOutput) + block.feedForwardNorm.namedParameters(prefixedBy: p + "ln_2")
                + conv1D(p + "mlp.c_fc", block.feedForwardInput) + conv1D(p + "mlp.c_proj", block.feedForwardOutput)
        }
        list += finalNorm.namedParameters(prefixedBy: "transformer.ln_f")
        if !tiedOutput { list.append(("lm_head.weight", head.weight)) }
        return list
    }

    /// The names ``namedParameters`` lists for a configuration, but `lm_head.weight`.
    static func parameterNames(_ c: GPT2Configuration) -> [String] {
        let blocks = (0..<c.layers).flatMap { n in
            ["ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias",
             "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"].map { "h.\(n).\($0)" }
        }
        return (["wte.weight", "wpe.weight"] + blocks + ["ln_f.weight", "ln_f.bias"]).map { "transformer." + $0 }
    }

    /// A model of the same configuration with `parameters`, by transformers' names.
    public func replacingParameters(_ parameters: [String: Tensor<Float>]) throws -> GPT2Model {
        try GPT2Model(configuration: configuration, parameters: parameters)
    }

    /// Writes `config.json` and `model.safetensors` into `directory` (created if needed) as
    /// transformers' `save_pretrained` lays them out, so transformers loads them with `from_pretrained`.
    public func save(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var object: [String: Any] = [
            "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": configuration.vocabularySize,
            "n_positions": configuration.positions, "n_embd": configuration.width, "n_layer": configuration.layers,
            "n_head": configuration.heads, "layer_norm_epsilon": configuration.layerNormEpsilon,
            "activation_function": configuration.activation, "tie_word_embeddings": tiedOutput,
        ]
        if let inner = configuration.innerSize { object["n_inner"] = inner }
        if let id = configuration.beginningOfTextToken { object["bos_token_id"] = id }
        if let id = configuration.endOfTextToken { object["eos_token_id"] = id }
        let json = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        do {
            try json.write(to: directory.appendingPathComponent("config.json"), options: .atomic)
        } catch {
            throw AttentionError.invalidFile(path: directory.appendingPathComponent("config.json").path, reason: "cannot be written (\(error.localizedDescription))")
        }
        try saveParameters(to: directory.appendingPathComponent("model.safetensors"), metadata: ["format": "pt"])
    }
}

extension GPT2Model: AutoregressiveModel {
    /// `vocab_size`.
    public var vocabularySize: Int { configuration.vocabularySize }
    /// `n_positions`: the learned position embeddings.
    public var maximumPositions: Int { configuration.positions }
    /// ``makeCaches(capacity:storage:)``.
    public func generationCaches(capacity: Int, storage: KVCache.Storage) throws -> [KVCache] {
        try makeCaches(capacity: capacity, storage: storage)
    }
}
