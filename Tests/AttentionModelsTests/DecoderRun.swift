import Attention
import AttentionModels
import Testing

/// How a decoder test runs a GGUF model (its weights as stored or in Float, its products in Float or
/// int8), and how near transformers' logits it must come: each suite lists its runs with the
/// figures measured for its model.
struct DecoderRun: Sendable, CustomTestStringConvertible {
    let weights: LlamaModel.WeightPrecision
    let products: QuantizedPrecision
    /// The most a top logit may differ from transformers'.
    let tolerance: Float
    /// Below this gap between transformers' two best logits, another best token is allowed.
    let tie: Float
    /// The same for the top logit at every position of a prompt (the logits test), where it differs.
    var positionTie: Float? = nil
    var options: AttentionOptions { AttentionOptions(quantizedPrecision: products) }
    var testDescription: String { "weights \(weights), \(products) products" }
}
