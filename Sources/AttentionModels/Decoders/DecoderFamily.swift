import Attention

/// What differs between the decoder families the GGUF loader reads, stated once per family: a new
/// family is a value here plus its tests, not a copy of the model.
///
/// | | Llama (SmolLM2, Llama, TinyLlama) | Gemma 3 |
/// |---|---|---|
/// | feed-forward activation | SiLU | GELU, tanh form |
/// | norms | before each sub-layer | before and after each sub-layer |
/// | query and key norms | none | RMSNorm over each head |
/// | norm weights in the file | γ | 1 + γ (the model scales by 1 + γ) |
/// | embeddings | as stored | × √width |
/// | RoPE pairs | adjacent (the converter permuted the weights) | halves (`rotate_half`) |
/// | layers | all global | every sixth global, the rest within a sliding window |
/// | RoPE base | the file's | the file's for global layers, 10,000 for windowed ones |
/// | Float products under int8 | none | the value projections (`attn_v`) |
public struct DecoderFamily: Sendable, Equatable {
    /// `general.architecture`, and the prefix of the family's metadata keys.
    public var architecture: String
    /// The gate's activation in the feed-forward `down(act(gate(x)) · up(x))`.
    public var activation: Activation
    /// Whether each sub-layer's output is normalized before the residual (`post_attention_norm`,
    /// `post_ffw_norm`).
    public var normalizesSublayerOutputs: Bool
    /// Whether queries and keys are normalized per head before RoPE (`attn_q_norm`, `attn_k_norm`).
    public var normalizesQueriesAndKeys: Bool
    /// Whether the file stores each norm's weight as `1 + γ` around a zero-centred γ (the model
    /// computes `x̂ · (1 + γ)`).
    public var storesNormWeightsPlusOne: Bool
    /// Whether token embeddings are scaled by √width on the way in (not on the way out).
    public var scalesEmbeddings: Bool
    /// How RoPE pairs features, given how the family's converter stores query and key weights.
    public var pairing: RotaryEmbedding.Pairing
    /// Every `n`-th layer (the n-th, 2n-th, ...) attends to all earlier tokens, the others only to
    /// the last `attention.sliding_window`; nil: every layer is global.
    public var globalLayerPeriod: Int?
    /// RoPE's base on the windowed layers, which the file does not state; nil: the file's base.
    public var windowedRopeBase: Double?
    /// The family's chat turns, for a file that carries no `tokenizer.chat_template` (a base
    /// model's), in the template language ``ChatTemplate`` renders; nil: none.
    public var turnTemplate: String?
    /// The token that ends a turn in a chat, when it is not the file's end of sequence.
    public var endOfTurn: String?
    /// The block matrices (by their name in the file, `attn_v`) whose products stay in Float under
    /// `QuantizedPrecision.int8`, because rounding their input to 8 bits moves the logits too far
    /// (`QuantizedMatrix.usesIntegerProducts`).
    public var floatProductMatrices: Set<String> = []
    /// The block matrices whose integer products round their input in two passes
    /// (`QuantizedMatrix.refinesIntegerInput`), because one pass of 8 bits moves the logits too far.
    public var refinedInputMatrices: Set<String> = []

    /// Llama's architecture as llama.cpp writes it.
    public static let llama = DecoderFamily(
        architecture: "llama", activation: .silu, normalizesSublayerOutputs: false, normalizesQueriesAndKeys: false,
        storesNormWeightsPlusOne: false, scalesEmbeddings: false, pairing: .adjacent, globalLayerPeriod: nil, windowedRopeBase: nil,
        turnTemplate: nil, endOfTurn: nil)

    /// Gemma 3's text decoder (Gemma3ForCausalLM): the layer pattern and the windowed layers' RoPE
    /// base are transformers' and llama.cpp's defaults for Gemma 3. Its turns are
    /// `<start_of_turn>user\n…<end_of_turn>\n<start_of_turn>model\n` (an assistant's turn is the
    /// model's; the tokenizer adds `<bos>`, so the template does not).
    public static let gemma3 = DecoderFamily(
        architecture: "gemma3", activation: .geluTanh, normalizesSublayerOutputs: true, normalizesQueriesAndKeys: true,
        storesNormWeightsPlusOne: true, scalesEmbeddings: true, pairing: .halves, globalLayerPeriod: 6, windowedRopeBase: 10_000,
        // Newlines inside expressions: chat templates render with trim_blocks, as transformers does.
        turnTemplate: #"{% for message in messages %}{{ '<start_of_turn>' }}{% if message['role'] == 'assistant' %}{{ 'model' }}"#
            + #"{% else %}{{ message['role'] }}{% endif %}{{ '\n' }}{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}{% endfor %}"#
            + #"{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"#,
        endOfTurn: "<end_of_turn>",
        // Measured on Gemma 3 270M Q4_K_M against transformers: with the value projections (Q8_0) on
        // int8 products too, the top logits moved by up to 3.7 (1.3 without) and a greedy token
        // changed at the second step of a prompt; they are 1% of the bytes a decoding step reads.
        // With the down projections' and the attention outputs' (Q4_K, Q6_K) inputs rounded once to
        // 8 bits, the top logits moved by up to 1.78 (1.51 with the attention outputs in Float, 0.64
        // with both in Float) and a greedy token changed where transformers' two best were 0.157
        // apart: the gated GELU's outputs have outliers that 8 bits per block of 32 do not carry.
        // Rounded in two passes (about 15 bits), 0.49, and the greedy tokens hold.
        floatProductMatrices: ["attn_v"], refinedInputMatrices: ["ffn_down", "attn_output"])

    /// Every family the loader reads.
    public static let all: [DecoderFamily] = [.llama, .gemma3]
}

extension GGUF {
    /// `tokenizer.ggml.eos_token_id`: the token that ends a text.
    public var endOfText: Int? { metadata["tokenizer.ggml.eos_token_id"]?.integer }

    /// The token that ends an answer in a chat with a model of `family`: the family's end-of-turn
    /// token (Gemma's `<end_of_turn>`) if the vocabulary has it, else ``endOfText``.
    public func endOfTurn(of family: DecoderFamily) -> Int? {
        family.endOfTurn.flatMap { metadata["tokenizer.ggml.tokens"]?.strings?.firstIndex(of: $0) } ?? endOfText
    }

    /// `tokenizer.chat_template`; a base model's file has none, and takes its family's turns if it has them.
    public func chatTemplate(of family: DecoderFamily) -> String? {
        metadata["tokenizer.chat_template"]?.string ?? family.turnTemplate
    }
}
