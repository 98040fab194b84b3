import Attention
import Foundation

/// The hyperparameters of a decoder of one of the ``DecoderFamily`` families, as a GGUF file's
/// metadata gives them (`llama.*`, `gemma3.*`).
public struct LlamaConfiguration: Sendable, Equatable {
    /// The family: what its layers do beyond these numbers.
    public var family: DecoderFamily
    /// Token embeddings (`tokenizer.ggml.tokens` count, or `llama.vocab_size`).
    public var vocabularySize: Int
    /// Positions the model was trained for (`llama.context_length`).
    public var contextLength: Int
    /// Hidden size `C` (`llama.embedding_length`).
    public var width: Int
    /// The SwiGLU's inner size (`llama.feed_forward_length`).
    public var feedForwardSize: Int
    /// Blocks (`llama.block_count`).
    public var layers: Int
    /// Query heads (`llama.attention.head_count`).
    public var heads: Int
    /// Key/value heads, a divisor of `heads` (`llama.attention.head_count_kv`; grouped-query attention).
    public var keyValueHeads: Int
    /// Features per head (`rope.dimension_count`, or `attention.key_length`, or `C / heads`).
    public var headDimension: Int
    /// The keys a windowed layer reads: itself and the `slidingWindow − 1` before it
    /// (`attention.sliding_window`; nil for a family whose layers are all global).
    public var slidingWindow: Int?
    /// RoPE's frequency base (`llama.rope.freq_base`, 10,000 if absent).
    public var ropeBase: Double
    /// RMSNorm's ε (`llama.attention.layer_norm_rms_epsilon`).
    public var rmsEpsilon: Double

    /// The configuration in `file`'s metadata.
    /// - Throws: `AttentionError.invalidFile(path:reason:)` naming a key that is missing, of the
    ///   wrong type, or inconsistent with the others.
    public init(gguf file: GGUF) throws {
        func fail(_ reason: String) -> AttentionError { .invalidFile(path: file.path, reason: reason) }
        let architecture = file.metadata["general.architecture"]?.string
        guard let family = DecoderFamily.all.first(where: { $0.architecture == architecture }) else {
            throw fail("general.architecture is \(architecture.map { "'\($0)'" } ?? "missing"), not one of "
                       + DecoderFamily.all.map { "'\($0.architecture)'" }.joined(separator: ", "))
        }
        self.family = family
        let prefix = family.architecture + "."
        func integer(_ key: String, default value: Int? = nil) throws -> Int {
            // A default is derived from other fields (the width over the heads, the tokenizer's
            // length), so it is held to the same range as a stored value.
            let stored = file.metadata[prefix + key]
            guard stored != nil || value != nil else { throw fail("\(prefix)\(key) is missing") }
            guard let n = stored.map({ $0.integer }) ?? value, n > 0, n < 1 << 31 else {
                throw fail("\(prefix)\(key) is not a positive integer below 2^31")
            }
            return n
        }
        func real(_ key: String, default value: Double? = nil) throws -> Double {
            guard let entry = file.metadata[prefix + key] else {
                if let value { return value }
                throw fail("\(prefix)\(key) is missing")
            }
            guard let x = entry.floatingPoint, x.isFinite, x > 0 else { throw fail("\(prefix)\(key) is not a positive number") }
            return x
        }
        layers = try integer("block_count")
        width = try integer("embedding_length")
        feedForwardSize = try integer("feed_forward_length")
        contextLength = try integer("context_length")
        heads = try integer("attention.head_count")
        keyValueHeads = try integer("attention.head_count_kv", default: heads)
        headDimension = try integer("rope.dimension_count", default: integer("attention.key_length", default: width / heads))
        slidingWindow = family.globalLayerPeriod == nil ? nil : try integer("attention.sliding_window")
        ropeBase = try real("rope.freq_base", default: 10_000)
        rmsEpsilon = try real("attention.layer_norm_rms_epsilon")
        let tokens = file.metadata["tokenizer.ggml.tokens"]?.elements?.count
        vocabularySize = try integer("vocab_size", default: tokens ?? 0)
        guard heads % keyValueHeads == 0 else {
            throw fail("\(prefix)attention.head_count \(heads) is not a multiple of head_count_kv \(keyValueHeads)")
        }
        // Llama's heads split the width; Gemma's may be wider (4 heads of 256 over a width of 640).
        guard headDimension % 2 == 0, family != .llama || headDimension * heads == width else {
            throw fail("\(prefix)rope.dimension_count \(headDimension) × \(heads) heads is not the width \(width) (or is odd)")
        }
    }

    /// Whether layer `layer` (from 0) attends to every earlier token rather than a window.
    public func isGlobal(_ layer: Int) -> Bool {
        guard let period = family.globalLayerPeriod else { return true }
        return (layer + 1) % period == 0
    }
}

/// A decoder of the Llama family (SmolLM2, Llama, TinyLlama, ...) or of Gemma 3 from a GGUF file,
/// computing what transformers' `LlamaForCausalLM` or `Gemma3ForCausalLM` computes: token
/// embeddings, blocks of RMSNorm → grouped-query causal attention with rotary positions → residual,
/// RMSNorm → gated feed-forward (`down(act(gate(x)) · up(x))`) → residual, a final RMSNorm and the
/// output layer (the token embedding when tied). What the families do differently (Gemma's norms
/// after each sub-layer and on queries and keys, GELU, scaled embeddings, and windowed layers with
/// their own RoPE base) is stated once per family in ``DecoderFamily``. A windowed layer reads only
/// its window, and its cache (``makeCaches(capacity:storage:)``) keeps little more than the window.
///
/// By default the matrices stay in the file's block format (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K; Q3_K
/// and IQ4_NL as Q6_K and Q8_0 blocks of the same values): the products read the
/// blocks through the quantized kernels (`QuantizedMatrix`), so the model takes about the memory of its
/// file, and each decoding step reads a few bits per weight. ``WeightPrecision/float32`` dequantizes
/// every weight once at load instead (as transformers does): the reference, about six times the
/// memory. Both multiply the same values; only the order of the sums differs. The query and key weights are used in the
/// order the GGUF file stores them: for Llama llama.cpp's converter permutes each head's features so
/// that RoPE rotates adjacent pairs, and the adjacent pairing then gives transformers' attention
/// scores exactly, since both queries and keys carry the same permutation; Gemma's are stored as
/// transformers has them, rotated in halves.
public struct LlamaModel: Sendable {
    /// How the model keeps the matrices of its file.
    public enum WeightPrecision: String, Sendable, CaseIterable {
        /// In the file's block format where the quantized kernels read it (Q8_0, Q4_0, Q4_1, Q5_0,
        /// Q5_1, Q4_K, Q5_K, Q6_K), Q3_K and IQ4_NL as Q6_K and Q8_0 blocks (the same values,
        /// `QuantizedMatrix.Format.init(keeping:)`); other types (F32, F16, BF16, Q2_K) dequantized
        /// to Float.
        case asStored = "as-stored"
        /// Every matrix dequantized to Float at load.
        case float32
    }

    /// One block's layers, named as in the GGUF file (`blk.N.`).
    public struct Block: Sendable {
        /// `attn_norm`.
        public var attentionNorm: RMSNorm<Float>
        /// `attn_q`, C → H·D.
        public var query: Linear<Float>
        /// `attn_k`, C → Hkv·D.
        public var key: Linear<Float>
        /// `attn_v`, C → Hkv·D.
        public var value: Linear<Float>
        /// `attn_output`, H·D → C.
        public var attentionOutput: Linear<Float>
        /// `ffn_norm`.
        public var feedForwardNorm: RMSNorm<Float>
        /// `ffn_gate`, C → inner.
        public var gate: Linear<Float>
        /// `ffn_up`, C → inner.
        public var up: Linear<Float>
        /// `ffn_down`, inner → C.
        public var down: Linear<Float>
        /// `attn_q_norm`, over each query head's D features (families that normalize queries and keys).
        public var queryNorm: RMSNorm<Float>?
        /// `attn_k_norm`, over each key head's D features.
        public var keyNorm: RMSNorm<Float>?
        /// `post_attention_norm`, on the attention's output before the residual (families that
        /// normalize sub-layer outputs).
        public var attentionOutputNorm: RMSNorm<Float>?
        /// `post_ffw_norm`, on the feed-forward's output before the residual.
        public var feedForwardOutputNorm: RMSNorm<Float>?
    }

    /// The hyperparameters.
    public let configuration: LlamaConfiguration
    /// `token_embd.weight`, `[vocabularySize, C]`, dequantized (a copy when the model keeps it quantized).
    public var tokenEmbeddings: Tensor<Float> {
        switch embeddings {
        case let .float(table): table
        case let .quantized(table): table.dequantized()
        }
    }
    /// The token embedding as the model keeps it.
    private let embeddings: EmbeddingTable
    private enum EmbeddingTable: Sendable {
        case float(Tensor<Float>)
        case quantized(QuantizedMatrix)
    }
    /// How the matrices are kept.
    public let precision: WeightPrecision
    /// The blocks, in order.
    public let blocks: [Block]
    /// `output_norm`.
    public let finalNorm: RMSNorm<Float>
    /// Logits: `output.weight`, or the token embedding when the file has none (tied).
    public let head: Linear<Float>
    /// Whether the output layer is the token embedding.
    public let tiedOutput: Bool
    /// The rotation of queries and keys on global layers.
    public let rotary: RotaryEmbedding
    /// The rotation on windowed layers (the family's base for them, else the same).
    public let windowedRotary: RotaryEmbedding
    /// Each block's matrices as its step multiplies them and reads them ahead, listed once: building
    /// these lists on every layer took about 1,000 of a SmolLM2 decoding step's 4,500 allocations.
    private let products: [BlockProducts]

    /// A block's quantized matrices in the groups one step uses.
    private struct BlockProducts: Sendable {
        /// Query, key and value in one product (``QuantizedMatrix/multiply(_:by:argument:options:)``)
        /// when all three are quantized without a bias; nil when they run one by one.
        let queryKeyValue: [QuantizedMatrix]?
        /// Gate and up in one product, likewise.
        let gateAndUp: [QuantizedMatrix]?
        /// The weights read ahead before each product (``QuantizedMatrix/readAhead(_:options:)``):
        /// the quantized ones among its layers. `next` is the next block's query, key and value, or
        /// the output layer after the last block.
        let attentionOutputAhead: [QuantizedMatrix], gateAndUpAhead: [QuantizedMatrix], downAhead: [QuantizedMatrix], nextAhead: [QuantizedMatrix]

        init(_ block: Block, next: [Linear<Float>]) {
            func grouped(_ layers: [Linear<Float>]) -> [QuantizedMatrix]? {
                let matrices = layers.compactMap { $0.bias == nil ? $0.quantizedWeight : nil }
                return matrices.count == layers.count ? matrices : nil
            }
            queryKeyValue = grouped([block.query, block.key, block.value])
            gateAndUp = grouped([block.gate, block.up])
            attentionOutputAhead = [block.attentionOutput].compactMap(\.quantizedWeight)
            gateAndUpAhead = [block.gate, block.up].compactMap(\.quantizedWeight)
            downAhead = [block.down].compactMap(\.quantizedWeight)
            nextAhead = next.compactMap(\.quantizedWeight)
        }
    }

    /// Loads the configuration and every weight of a Llama-architecture GGUF file, the matrices kept
    /// as `precision` says.
    /// - Throws: `AttentionError.invalidFile(path:reason:)` for a missing, misshapen or unconvertible tensor.
    public init(gguf file: GGUF, precision: WeightPrecision = .asStored) throws {
        let c = try LlamaConfiguration(gguf: file)
        func tensor(_ name: String, _ shape: [Int]) throws -> Tensor<Float> {
            guard let entry = file.info(name) else { throw AttentionError.invalidFile(path: file.path, reason: "no tensor named '\(name)'") }
            guard entry.shape == shape else {
                throw AttentionError.invalidFile(path: file.path, reason: "tensor '\(name)' is \(entry.shape), the configuration needs \(shape)")
            }
            return try file.tensor(name)
        }
        /// The matrix `name` in its block format (Q3_K's as Q6_K, IQ4_NL's as Q8_0) if the kernels read it and `precision` keeps it.
        func quantized(_ name: String, _ shape: [Int]) throws -> QuantizedMatrix? {
            guard precision == .asStored, let entry = file.info(name), entry.shape == shape,
                  QuantizedMatrix.Format(keeping: entry.type) != nil else { return nil }
            return try QuantizedMatrix(gguf: file, name: name)
        }
        func linear(_ name: String, _ outputs: Int, _ inputs: Int) throws -> Linear<Float> {
            if var q = try quantized(name + ".weight", [outputs, inputs]) {
                // `blk.N.attn_v` → `attn_v`.
                let kind = String(name.split(separator: ".").last ?? "")
                if c.family.floatProductMatrices.contains(kind) { q.usesIntegerProducts = false }
                q.refinesIntegerInput = c.family.refinedInputMatrices.contains(kind)
                return try Linear(quantizedWeight: q, bias: nil)
            }
            return try Linear(weight: tensor(name + ".weight", [outputs, inputs]), bias: nil)
        }
        func norm(_ name: String, features: Int? = nil) throws -> RMSNorm<Float> {
            var weight = try tensor(name + ".weight", [features ?? c.width])
            // Stored as 1 + γ: the scale 1 + (stored − 1), rounded as transformers rounds it.
            if c.family.storesNormWeightsPlusOne { weight = Tensor(uncheckedShape: weight.shape, scalars: weight.scalars.map { 1 + ($0 - 1) }) }
            return try RMSNorm(weight: weight, epsilon: c.rmsEpsilon)
        }
        let family = c.family
        let (q, kv) = (c.heads * c.headDimension, c.keyValueHeads * c.headDimension)
        configuration = c
        self.precision = precision
        let embeddingShape = [c.vocabularySize, c.width]
        if let q = try quantized("token_embd.weight", embeddingShape) {
            embeddings = .quantized(q)
        } else {
            embeddings = .float(try tensor("token_embd.weight", embeddingShape))
        }
        blocks = try (0..<c.layers).map { n in
            let p = "blk.\(n)."
            return Block(
                attentionNorm: try norm(p + "attn_norm"),
                query: try linear(p + "attn_q", q, c.width), key: try linear(p + "attn_k", kv, c.width),
                value: try linear(p + "attn_v", kv, c.width), attentionOutput: try linear(p + "attn_output", c.width, q),
                feedForwardNorm: try norm(p + "ffn_norm"),
                gate: try linear(p + "ffn_gate", c.feedForwardSize, c.width), up: try linear(p + "ffn_up", c.feedForwardSize, c.width),
                down: try linear(p + "ffn_down", c.width, c.feedForwardSize),
                queryNorm: family.normalizesQueriesAndKeys ? try norm(p + "attn_q_norm", features: c.headDimension) : nil,
                keyNorm: family.normalizesQueriesAndKeys ? try norm(p + "attn_k_norm", features: c.headDimension) : nil,
                attentionOutputNorm: family.normalizesSublayerOutputs ? try norm(p + "post_attention_norm") : nil,
                feedForwardOutputNorm: family.normalizesSublayerOutputs ? try norm(p + "post_ffw_norm") : nil)
        }
        finalNorm = try norm("output_norm")
        tiedOutput = file.info("output.weight") == nil
        if !tiedOutput {
            head = try linear("output", c.vocabularySize, c.width)
        } else {
            switch embeddings {
            case let .float(table): head = try Linear(weight: table, bias: nil)
            case let .quantized(table): head = try Linear(quantizedWeight: table, bias: nil)
            }
        }
        rotary = try RotaryEmbedding(headDimension: c.headDimension, base: c.ropeBase, pairing: family.pairing)
        windowedRotary = try RotaryEmbedding(headDimension: c.headDimension, base: family.windowedRopeBase ?? c.ropeBase, pairing: family.pairing)
        let (blocks, head) = (blocks, head)
        products = blocks.indices.map { i in
            BlockProducts(blocks[i], next: i + 1 < blocks.count ? [blocks[i + 1].query, blocks[i + 1].key, blocks[i + 1].value] : [head])
        }
    }

    /// The mask of layer `layer` over queries that end at the last key: causal, and within the
    /// window on a windowed layer. `queries` 1 (a decoding step) needs no causal part.
    func mask(layer: Int, queries: Int) -> AttentionMask {
        let causal: AttentionMask = queries > 1 ? .causal : .none
        guard !configuration.isGlobal(layer), let window = configuration.slidingWindow else { return causal }
        return causal && .slidingWindow(left: window - 1, right: 0)
    }

    /// Logits for every position of `ids`, `[T, vocabularySize]`: row t predicts token t + 1.
    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` for no tokens, more than the
    ///   context length, an id outside the vocabulary, or options this CPU cannot run.
    public func logits(_ ids: [Int], options: AttentionOptions = AttentionOptions()) throws -> Tensor<Float> {
        try check(ids, from: 0)
        var x = try embed(ids)
        let angles = try rotaryAngles(positions: ids.count, startingAt: 0)
        for (layer, block) in blocks.enumerated() {
            x = try apply(block, layer: layer, to: x, angles: angles, options: options) { q, k, v in
                try scaledDotProductAttention(query: q, key: k, value: v, mask: mask(layer: layer, queries: ids.count), options: options).output
            }
        }
        return try head(finalNorm(x), options: options)
    }

    /// Every layer's causal attention weights over `ids`, `[heads, T, T]` per layer: row i holds
    /// what token i reads of tokens 0...i (zeros to its right). Query head h reads key/value head
    /// ``keyValueHead(of:)`` (grouped-query attention: `heads / keyValueHeads` query heads share one).
    /// - Throws: as ``logits(_:options:)``.
    public func attentions(_ ids: [Int], options: AttentionOptions = AttentionOptions()) throws -> [Tensor<Float>] {
        try attentions(ids, queriesAndKeysOf: nil, options: options).weights
    }

    /// The same, and for layer `layer` (from 0) the queries `[heads, T, D]` and keys
    /// `[keyValueHeads, T, D]` the weights come from: normalized (families that normalize them) and
    /// rotated, so that the weights of head h are `softmax(q·kᵀ/√D)` of its queries and the keys of
    /// ``keyValueHead(of:)``, over the tokens up to each query (and within the window on a windowed
    /// layer).
    /// - Throws: as ``logits(_:options:)``, or `AttentionError.invalidArgument` for a layer outside
    ///   the model.
    public func attentions(_ ids: [Int], queriesAndKeysOf layer: Int?, options: AttentionOptions = AttentionOptions())
        throws -> (weights: [Tensor<Float>], queries: Tensor<Float>?, keys: Tensor<Float>?) {
        if let layer, !blocks.indices.contains(layer) {
            throw AttentionError.invalidArgument(argument: "layer", reason: "must be in 0..<\(blocks.count), got \(layer)")
        }
        try check(ids, from: 0)
        var x = try embed(ids), weights: [Tensor<Float>] = []
        var queries: Tensor<Float>?, keys: Tensor<Float>?
        let angles = try rotaryAngles(positions: ids.count, startingAt: 0)
        for (index, block) in blocks.enumerated() {
            x = try apply(block, layer: index, to: x, angles: angles, options: options) { q, k, v in
                if index == layer {
                    queries = try q.reshaped(Array(q.shape.dropFirst()))
                    keys = try k.reshaped(Array(k.shape.dropFirst()))
                }
                let result = try scaledDotProductAttention(query: q, key: k, value: v, mask: mask(layer: index, queries: ids.count),
                                                           returning: .weights, options: options)
                if let w = result.weights { weights.append(try w.reshaped(Array(w.shape.dropFirst()))) }
                return result.output
            }
        }
        return (weights, queries, keys)
    }

    /// What token `query` of `ids` attends to in every layer: per layer `[heads, query + 1]`, row h
    /// the weights of head h over tokens 0...query (zero outside a windowed layer's window). The tokens
    /// before it run through the caches, so memory stays linear in the length: for one token of a long
    /// conversation where ``attentions(_:options:)`` would hold every layer's T×T maps.
    /// - Throws: as ``logits(_:options:)``, or `AttentionError.invalidArgument` for a query outside `ids`.
    public func attentions(_ ids: [Int], row query: Int, options: AttentionOptions = AttentionOptions()) throws -> [Tensor<Float>] {
        guard ids.indices.contains(query) else {
            throw AttentionError.invalidArgument(argument: "query", reason: "must be in 0..<\(ids.count) (the tokens), got \(query)")
        }
        try check(ids, from: 0)
        // Caches of every position up to the query: plain ones, so that the weights cover them all.
        var caches = try (0..<configuration.layers).map { _ in
            try KVCache(keyValueHeads: configuration.keyValueHeads, headDimension: configuration.headDimension, capacity: query + 1)
        }
        if query > 0 { _ = try logits(appending: Array(ids[..<query]), to: &caches, lastOnly: true, options: options) }
        var x = try embed([ids[query]])
        let angles = try rotaryAngles(positions: 1, startingAt: query)
        var weights: [Tensor<Float>] = []
        for (layer, block) in blocks.enumerated() {
            x = try apply(block, layer: layer, to: x, angles: angles, options: options) { q, k, v in
                try caches[layer].append(key: k, value: v)
                let result = try scaledDotProductAttention(query: q, cache: caches[layer], mask: mask(layer: layer, queries: 1), returning: .weights,
                                                           options: options)
                if let w = result.weights { weights.append(try w.reshaped([configuration.heads, query + 1])) }
                return result.output
            }
        }
        return weights
    }

    /// The key/value head that query head `head` (from 0) reads: consecutive query heads share
    /// one, `head / (heads / keyValueHeads)`, as transformers' `repeat_kv` pairs them.
    public func keyValueHead(of head: Int) -> Int {
        head / (configuration.heads / configuration.keyValueHeads)
    }

    /// The most positions ``logits(appending:to:lastOnly:options:)`` runs through the layers at once:
    /// longer inputs go in chunks of this many, so that a windowed layer's cache needs to hold only
    /// `slidingWindow + prefillChunk − 1` positions (and the activations stay bounded).
    public static let prefillChunk = 512

    /// Chunks of up to this many positions ask for their caches' memory ahead of each layer
    /// (``KVCache/prefetch(appending:readBudget:)``): on SmolLM2, decoding's appends took a third of
    /// the time and its attention a fifth less (AMD Zen 4, 64 positions).
    static let prefetchedChunk = 16

    /// Products of up to this many rows have the next product's weights read ahead while the step
    /// works on one thread (``QuantizedMatrix/readAhead(_:options:)``): SmolLM2's single-stream
    /// decoding steps took 4-8% less time, steps with and without alternating in one process (AMD
    /// Zen 4, 2 threads). Eight streams stepping together gain less: their attention keeps both
    /// threads busy, so the reader has only the short gaps around the norms.
    static let readAheadRows = 8

    /// Empty key/value caches, one per layer (`keyValueHeads` heads: grouped-query attention reads
    /// them without copies), for up to `capacity` positions. A windowed layer's cache is a ring that
    /// holds only the last `slidingWindow + ` ``prefillChunk`` `− 1` positions (`KVCache`'s sliding
    /// window), when that takes less memory than `capacity` positions: for Gemma 3 at 8,192 positions,
    /// 15 of its 18 caches take a quarter of the memory.
    public func makeCaches(capacity: Int, storage: KVCache.Storage = .float32) throws -> [KVCache] {
        let c = configuration
        guard (1...c.contextLength).contains(capacity) else {
            throw AttentionError.invalidArgument(argument: "capacity", reason: "must be in 1...\(c.contextLength) (the model's context), got \(capacity)")
        }
        return try (0..<c.layers).map { layer in
            // A ring stores each position twice (one contiguous window at every step).
            if !c.isGlobal(layer), let window = c.slidingWindow, 2 * (window + Self.prefillChunk - 1) < capacity {
                return try KVCache(keyValueHeads: c.keyValueHeads, headDimension: c.headDimension, capacity: window + Self.prefillChunk - 1,
                                   storage: storage, slidingWindow: window)
            }
            return try KVCache(keyValueHeads: c.keyValueHeads, headDimension: c.headDimension, capacity: capacity, storage: storage)
        }
    }

    /// Logits for `ids` appended after the positions already in `caches`, `[ids.count, vocabularySize]`
    /// (the last row only when `lastOnly`); their keys and values join the caches. More than
    /// ``prefillChunk`` ids (or than a windowed cache takes at once) run through the layers in chunks.
    /// - Throws: `AttentionError` if the caches are not this model's (a ring only on a windowed layer,
    ///   with the model's window) or would overflow, an id is outside the vocabulary, or the options
    ///   cannot run; the caches are then unchanged.
    public func logits(appending ids: [Int], to caches: inout [KVCache], lastOnly: Bool = false,
                       options: AttentionOptions = AttentionOptions()) throws -> Tensor<Float> {
        let c = configuration
        try check(ids, appendingTo: caches)
        try options.validate(for: Float.self)
        let chunk = caches.compactMap(\.largestChunk).reduce(Self.prefillChunk, min)
        var rows: [Float] = []
        var last = try Tensor<Float>(zeros: [0, c.vocabularySize])
        for from in stride(from: 0, to: ids.count, by: chunk) {
            let piece = Array(ids[from..<min(ids.count, from + chunk)])
            last = try logits(appendingChunk: piece, to: &caches, lastOnly: lastOnly, options: options)
            if !lastOnly { rows += last.scalars }
        }
        return lastOnly || ids.count <= chunk ? last : Tensor(uncheckedShape: [ids.count, c.vocabularySize], scalars: rows)
    }

    /// One step of several sequences at once, each with its own caches (from ``makeCaches(capacity:storage:)``):
    /// `pieces[i]` is appended to `caches[i]`, and the result's element i is the logits of the last
    /// position of `pieces[i]` (nil where `needed[i]` is false; every sequence's when `needed` is nil).
    ///
    /// The products and norms run on the rows of every sequence together, so that each weight is read
    /// once per step for all of them (a server's batched decoding); each sequence attends only to its
    /// own caches. A sequence's logits are those it would get on its own, up to the rounding of
    /// products of another number of rows. Pieces longer than ``prefillChunk`` run in rounds of chunks.
    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` if the counts differ, a sequence's
    ///   caches are not this model's or would overflow, an id is outside the vocabulary, or the options
    ///   cannot run; every check is made before any cache changes.
    public func nextTokenLogits(appendingEach pieces: [[Int]], to caches: inout [[KVCache]], needed: [Bool]?,
                                options: AttentionOptions = AttentionOptions()) throws -> [[Float]?] {
        try checkBatch(pieces, caches, needed)
        for i in pieces.indices { try check(pieces[i], appendingTo: caches[i]) }
        try options.validate(for: Float.self)
        let chunk = caches.joined().compactMap(\.largestChunk).reduce(Self.prefillChunk, min)
        var result = [[Float]?](repeating: nil, count: pieces.count)
        for from in stride(from: 0, to: pieces.map(\.count).max() ?? 0, by: chunk) {
            let round = pieces.indices.filter { pieces[$0].count > from }.map { (sequence: $0, ids: Array(pieces[$0][from..<min(pieces[$0].count, from + chunk)])) }
            let wanted = round.map { from + chunk >= pieces[$0.sequence].count && needed?[$0.sequence] ?? true }
            for (piece, row) in zip(round.map(\.sequence), try logits(appendingChunks: round, to: &caches, wanted: wanted, options: options)) {
                result[piece] = row
            }
        }
        return result
    }

    /// One round of ``nextTokenLogits(appendingEach:to:needed:options:)``: pieces every cache takes at
    /// once; the last row's logits of each piece whose `wanted` flag is set (nil for the others).
    private func logits(appendingChunks pieces: [(sequence: Int, ids: [Int])], to caches: inout [[KVCache]], wanted: [Bool],
                        options: AttentionOptions) throws -> [[Float]?] {
        let c = configuration
        var x = try embed(pieces.flatMap(\.ids))
        var segments: [(rows: Range<Int>, angles: StepAngles)] = []
        for piece in pieces {
            let start = segments.last?.rows.upperBound ?? 0
            segments.append((start..<(start + piece.ids.count), try rotaryAngles(positions: piece.ids.count, startingAt: caches[piece.sequence][0].count)))
        }
        // The sequences attend at once, each to its own caches: through the buffer's pointer, each
        // changes only its own element.
        try caches.withUnsafeMutableBufferPointer { caches in
            for (layer, block) in blocks.enumerated() {
                x = try apply(block, layer: layer, to: x, segments: segments, options: options) { s, q, k, v, options in
                    let sequence = pieces[s].sequence
                    try caches[sequence][layer].append(key: k, value: v)
                    return try scaledDotProductAttention(query: q, cache: caches[sequence][layer], mask: mask(layer: layer, queries: pieces[s].ids.count),
                                                         options: options).output
                }
            }
        }
        let rows = pieces.indices.filter { wanted[$0] }
        guard !rows.isEmpty else { return wanted.map { _ in nil } }
        var last: [Float] = []
        for s in rows { last += x.scalars[((segments[s].rows.upperBound - 1) * c.width)..<(segments[s].rows.upperBound * c.width)] }
        let logits = try head(finalNorm(Tensor(shape: [rows.count, c.width], scalars: last)), options: options)
        var result = [[Float]?](repeating: nil, count: pieces.count)
        for (n, s) in rows.enumerated() { result[s] = Array(logits.scalars[(n * c.vocabularySize)..<((n + 1) * c.vocabularySize)]) }
        return result
    }

    /// ``logits(appending:to:lastOnly:options:)`` for a chunk that every cache takes at once.
    private func logits(appendingChunk ids: [Int], to caches: inout [KVCache], lastOnly: Bool, options: AttentionOptions) throws -> Tensor<Float> {
        let c = configuration
        var x = try embed(ids)
        let angles = try rotaryAngles(positions: ids.count, startingAt: caches[0].count)
        for (layer, block) in blocks.enumerated() {
            // A decoding step (or a short chunk): the cache lines its keys and values go to, and the
            // history it attends to, fetched while the projections run (see KVCache.prefetch).
            if ids.count <= Self.prefetchedChunk { caches[layer].prefetch(appending: ids.count) }
            x = try apply(block, layer: layer, to: x, angles: angles, options: options) { q, k, v in
                try caches[layer].append(key: k, value: v)
                return try scaledDotProductAttention(query: q, cache: caches[layer], mask: mask(layer: layer, queries: ids.count), options: options).output
            }
        }
        if lastOnly && ids.count > 1 {
            x = try Tensor(shape: [1, c.width], scalars: Array(x.scalars[((ids.count - 1) * c.width)...]))
        }
        return try head(finalNorm(x), options: options)
    }

    /// Checks that `caches` are this model's (from ``makeCaches(capacity:storage:)``) and take `ids` after their positions.
    func check(_ ids: [Int], appendingTo caches: [KVCache]) throws {
        let c = configuration
        guard caches.count == c.layers, caches.allSatisfy({ $0.keyValueHeads == c.keyValueHeads && $0.headDimension == c.headDimension && $0.batchSize == 1 }),
              caches.allSatisfy({ $0.count == caches[0].count }),
              caches.indices.allSatisfy({ caches[$0].slidingWindow == nil || (!c.isGlobal($0) && caches[$0].slidingWindow == c.slidingWindow) }) else {
            throw AttentionError.invalidArgument(
                argument: "caches",
                reason: "need \(c.layers) caches of \(c.keyValueHeads) heads of \(c.headDimension), all of one length, windowed only on windowed layers (from makeCaches)")
        }
        let start = caches[0].count, capacity = capacity(of: caches)
        try check(ids, from: start)
        guard start + ids.count <= capacity else {
            throw AttentionError.invalidArgument(argument: "ids", reason: "\(ids.count) tokens after \(start) exceed the caches' capacity of \(capacity)")
        }
    }

    func check(_ ids: [Int], from start: Int) throws {
        let c = configuration
        guard !ids.isEmpty else { throw AttentionError.invalidArgument(argument: "ids", reason: "need at least one token") }
        guard start + ids.count <= c.contextLength else {
            throw AttentionError.invalidArgument(argument: "ids", reason: "positions \(start)..<\(start + ids.count) exceed the model's context of \(c.contextLength)")
        }
        if let bad = ids.first(where: { $0 < 0 || $0 >= c.vocabularySize }) {
            throw AttentionError.invalidArgument(argument: "ids", reason: "token id \(bad) is outside the vocabulary of \(c.vocabularySize)")
        }
    }

    /// Rows `ids` of the token embedding, `[T, C]`, times √C for families that scale them.
    func embed(_ ids: [Int]) throws -> Tensor<Float> {
        let w = configuration.width
        var rows: Tensor<Float>
        switch embeddings {
        case let .quantized(table):
            rows = try table.rows(ids)
        case let .float(table):
            var x = [Float](repeating: 0, count: ids.count * w)
            table.withUnsafeBufferPointer { table in
                for (t, id) in ids.enumerated() {
                    for k in 0..<w { x[t * w + k] = table[id * w + k] }
                }
            }
            rows = try Tensor(shape: [ids.count, w], scalars: x)
        }
        if configuration.family.scalesEmbeddings {
            let scale = Float(Double(w).squareRoot())
            rows = Tensor(uncheckedShape: rows.shape, scalars: rows.scalars.map { $0 * scale })
        }
        return rows
    }

    /// The rotations of `positions` positions from `start` for the global layers and the windowed
    /// ones (the same when their bases are): computed once per forward pass, for every layer.
    private func rotaryAngles(positions: Int, startingAt start: Int) throws -> StepAngles {
        let global = try rotary.angles(positions: positions, startingAt: start)
        return (global, windowedRotary == rotary ? global : try windowedRotary.angles(positions: positions, startingAt: start))
    }

    /// The rotations of one step's positions: the global layers' and the windowed ones'.
    typealias StepAngles = (global: RotaryEmbedding.Angles, windowed: RotaryEmbedding.Angles)

    /// One block on `x` `[T, C]` whose rows are at the positions of `angles`; `attend` maps queries
    /// `[1, H, T, D]`, keys and values `[1, Hkv, T, D]` (rotated) to the attention output `[1, H, T, D]`.
    private func apply(
        _ block: Block, layer: Int, to x: Tensor<Float>, angles: StepAngles, options: AttentionOptions,
        attend: (Tensor<Float>, Tensor<Float>, Tensor<Float>) throws -> Tensor<Float>
    ) throws -> Tensor<Float> {
        try apply(block, layer: layer, to: x, segments: [(0..<x.shape[0], angles)], options: options) { _, q, k, v, _ in try attend(q, k, v) }
    }

    /// One block on `x` `[T, C]`, the rows of several sequences stacked: `segments[s]` gives the rows
    /// of sequence s and their rotations. The products and norms run on every row at once; each
    /// sequence's rows are rotated and attend on their own, `attend(s, q, k, v, options)` as above.
    /// With several sequences, they run at once on the worker threads, each single-threaded (the
    /// options `attend` gets): a loop per layer rather than a few inside each sequence's calls, which
    /// for one token each cost more than the work.
    private func apply(
        _ block: Block, layer: Int, to x: Tensor<Float>, segments: [(rows: Range<Int>, angles: StepAngles)], options: AttentionOptions,
        attend: (Int, Tensor<Float>, Tensor<Float>, Tensor<Float>, AttentionOptions) throws -> Tensor<Float>
    ) throws -> Tensor<Float> {
        let c = configuration
        let qWidth = c.heads * c.headDimension
        /// While this thread works alone after a product (attention, norms), a pool thread reads the
        /// next product's weights (``QuantizedMatrix/readAhead(_:options:)``): for decoding, whose steps read
        /// every weight from memory once.
        func readAhead(_ matrices: [QuantizedMatrix]) {
            if x.shape[0] <= Self.readAheadRows && !matrices.isEmpty { QuantizedMatrix.readAhead(matrices, options: options) }
        }
        let products = products[layer]
        let normed = try block.attentionNorm(x)
        let projected = try Self.project(normed, by: products.queryKeyValue, or: [block.query, block.key, block.value], options: options)
        readAhead(products.attentionOutputAhead)
        var single = options
        if segments.count > 1 { single.threads = 1 }
        /// Sequence s's attention output `[t, H·D]`.
        func attention(_ s: Int) throws -> Tensor<Float> {
            let segment = segments[s], t = segment.rows.count
            // Sequence s's heads of a projection `[T, heads·D]`: `[1, heads, t, D]`. One position's
            // row already lies in that order (decoding): a copy of it, not a transpose.
            func heads(_ m: Tensor<Float>, _ count: Int) throws -> Tensor<Float> {
                let width = count * c.headDimension
                let rows = (segment.rows.lowerBound * width)..<(segment.rows.upperBound * width)
                if t == 1 { return Tensor(uncheckedShape: [1, count, 1, c.headDimension], scalars: Array(m.scalars[rows])) }
                let mine = segments.count == 1 ? m : Tensor(uncheckedShape: [t, width], scalars: Array(m.scalars[rows]))
                return try splitHeads(mine, batch: 1, tokens: t, width: width, heads: count, part: 0, parts: 1)
            }
            let (rotate, rotations) = c.isGlobal(layer) ? (rotary, segment.angles.global) : (windowedRotary, segment.angles.windowed)
            var q = try heads(projected[0], c.heads), k = try heads(projected[1], c.keyValueHeads)
            if let queryNorm = block.queryNorm, let keyNorm = block.keyNorm { (q, k) = (try queryNorm(q), try keyNorm(k)) }
            try rotate.rotate(&q, angles: rotations)
            try rotate.rotate(&k, angles: rotations)
            let attended = try attend(s, q, k, try heads(projected[2], c.keyValueHeads), single)
            // One position's output `[1, H, 1, D]` is already its row of `[t, H·D]`.
            return t == 1 ? Tensor(uncheckedShape: [1, qWidth], scalars: attended.scalars)
                : try mergeHeads([attended], batch: 1, tokens: t, width: qWidth, heads: c.heads)
        }
        var attended: Tensor<Float>
        if segments.count == 1 {
            attended = try attention(0)
        } else {
            var stacked = [Float](repeating: 0, count: x.shape[0] * qWidth)
            try stacked.withUnsafeMutableBufferPointer { out in
                try options.forEach(segments.count) { s in
                    let merged = try attention(s)
                    merged.withUnsafeBufferPointer { m in
                        // Each sequence writes only its own rows.
                        out.baseAddress!.advanced(by: segments[s].rows.lowerBound * qWidth).update(from: m.baseAddress!, count: m.count)
                    }
                }
            }
            attended = Tensor(uncheckedShape: [x.shape[0], qWidth], scalars: stacked)
        }
        var output = try block.attentionOutput(attended, options: options)
        readAhead(products.gateAndUpAhead)
        if let norm = block.attentionOutputNorm { output = try norm(output) }
        var residual = try add(x, output)
        let inner = try block.feedForwardNorm(residual)
        let gateAndUp = try Self.project(inner, by: products.gateAndUp, or: [block.gate, block.up], options: options)
        readAhead(products.downAhead)
        let gated = try c.family.activation.gated(gateAndUp[0], by: gateAndUp[1], options: options)
        output = try block.down(gated, options: options)
        readAhead(products.nextAhead)
        if let norm = block.feedForwardOutputNorm { output = try norm(output) }
        residual = try add(residual, output)
        return residual
    }

    /// The layers applied to the same input: in one product when they are quantized without a
    /// bias (`grouped`, their matrices: see ``QuantizedMatrix/multiply(_:by:argument:options:)``), else
    /// one by one.
    private static func project(_ x: Tensor<Float>, by grouped: [QuantizedMatrix]?, or layers: @autoclosure () -> [Linear<Float>],
                                options: AttentionOptions) throws -> [Tensor<Float>] {
        if let grouped { return try QuantizedMatrix.multiply(x, by: grouped, options: options) }
        return try layers().map { try $0(x, options: options) }
    }

    /// `a + b` (of one shape), in a plain loop over their buffers that the compiler vectorizes. (A
    /// helper taking the operation as a closure was not inlined: a call per element, 5% of a batched
    /// decoding step in perf.)
    private func add(_ a: Tensor<Float>, _ b: Tensor<Float>) throws -> Tensor<Float> {
        guard a.shape == b.shape else {
            throw AttentionError.shapeMismatch(argument: "b", shape: b.shape, other: "a", otherShape: a.shape, reason: "element-wise operands need one shape")
        }
        let count = a.count
        let scalars = [Float](unsafeUninitializedCapacity: count) { out, initialized in
            a.withUnsafeBufferPointer { x in
                b.withUnsafeBufferPointer { y in
                    guard let x = x.baseAddress, let y = y.baseAddress, let o = out.baseAddress else { return }
                    for i in 0..<count { o[i] = x[i] + y[i] }
                }
            }
            initialized = count
        }
        return Tensor(uncheckedShape: a.shape, scalars: scalars)
    }
}

extension LlamaModel: AutoregressiveModel {
    /// Logits per position.
    public var vocabularySize: Int { configuration.vocabularySize }
    /// `llama.context_length`.
    public var maximumPositions: Int { configuration.contextLength }
    /// ``makeCaches(capacity:storage:)``.
    public func generationCaches(capacity: Int, storage: KVCache.Storage) throws -> [KVCache] {
        try makeCaches(capacity: capacity, storage: storage)
    }
}
