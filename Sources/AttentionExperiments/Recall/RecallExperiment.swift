import Attention
import Foundation

/// Trains three models of the same size on associative recall (``RecallBatch``) and measures how well
/// each recalls at each sequence length:
/// - **attention**: one multi-head attention layer, the query key attending over the pairs;
/// - **mean pooling**: the average of the pairs next to the query key, through a hidden layer;
/// - **GRU**: a recurrent network reading the pairs one by one, its hidden state sized so that its
///   parameter count is closest to the attention model's.
///
/// Each model is trained once, on batches whose length cycles through `lengths` (step `s` has length
/// `lengths[s % lengths.count]`), so that what it learns on short sequences can carry to long ones;
/// then it is scored at every length. All three share the embedding tables' shapes, see the same
/// training batches (drawn from `seed`) and are scored on the same held-out sequences. Training is
/// Adam on the mean cross-entropy.
public enum RecallExperiment {
    /// The three models compared.
    public enum Model: String, Codable, Sendable, CaseIterable {
        /// One multi-head attention layer.
        case attention
        /// The mean of the pairs through a hidden layer.
        case meanPooling = "mean pooling"
        /// A GRU reading the pairs in order.
        case gru = "GRU"
    }

    /// What to train and how.
    public struct Configuration: Codable, Sendable, Equatable {
        /// Sequence lengths trained on (cycled) and scored at; each at most `keyVocabulary`.
        public var lengths: [Int] = [8, 16, 32, 64, 128, 256]
        /// Distinct keys.
        public var keyVocabulary = 256
        /// Distinct values; chance accuracy is its inverse.
        public var valueVocabulary = 16
        /// Width of the embeddings and of every model.
        public var embedDimension = 64
        /// Heads of the attention model.
        public var heads = 4
        /// Per head; nil is `embedDimension / heads`.
        public var headDimension: Int?
        /// Training steps per model.
        public var steps = 600
        /// Sequences per step.
        public var batchSize = 32
        /// Adam's learning rate.
        public var learningRate = 3e-3
        /// Held-out sequences per length.
        public var evaluationSize = 500
        /// Whether attention scales `Q·Kᵀ` by `1/√d_k` (false multiplies by 1).
        public var scaled = true
        /// The models to train.
        public var models: [Model] = Model.allCases
        /// Whether to measure the scores' gradient norm (costs an extra forward pass per step).
        public var probeScores = false
        /// Loss is logged as the mean over this many steps (a multiple of the number of lengths keeps
        /// every block's mix of lengths the same).
        public var logEvery = 24
        /// Seeds the weights, the batches and the held-out sets.
        public var seed: UInt64 = 0

        /// The defaults the lessons' experiment uses.
        public init() {}

        /// `headDimension`, or its default.
        public var resolvedHeadDimension: Int { headDimension ?? max(1, embedDimension / heads) }

        func validate() throws {
            let positive = [("steps", steps), ("batchSize", batchSize), ("evaluationSize", evaluationSize), ("embedDimension", embedDimension),
                            ("heads", heads), ("headDimension", resolvedHeadDimension), ("valueVocabulary", valueVocabulary), ("logEvery", logEvery)]
            for (name, value) in positive where value <= 0 {
                throw AttentionError.invalidArgument(argument: name, reason: "must be positive, got \(value)")
            }
            // Steps run one after another: a count no run finishes is refused, not started.
            _ = try checkedInteger(steps, in: 1...10_000_000, argument: "steps")
            guard !lengths.isEmpty, !models.isEmpty else {
                throw AttentionError.invalidArgument(argument: "lengths/models", reason: "need at least one length and one model")
            }
            for length in lengths where length < 1 || length > keyVocabulary {
                throw AttentionError.invalidArgument(
                    argument: "lengths", reason: "\(length) is outside 1...\(keyVocabulary) (a sequence's keys are distinct ids of the key vocabulary)")
            }
            // Each step holds activations of [batch, length, width]; refuse sizes no memory holds.
            let heads = try checkedElementCount([heads, resolvedHeadDimension], argument: "heads/headDimension", atMost: 1 << 24)
            let longest = lengths.max() ?? 1, width = max(embedDimension, heads)
            _ = try checkedElementCount([keyVocabulary, embedDimension], argument: "keyVocabulary/embedDimension", atMost: 1 << 30)
            _ = try checkedElementCount([valueVocabulary, embedDimension], argument: "valueVocabulary/embedDimension", atMost: 1 << 30)
            _ = try checkedElementCount([batchSize, longest, width], argument: "batchSize/lengths/embedDimension/heads/headDimension", atMost: 1 << 30)
            _ = try checkedElementCount([evaluationSize, longest, width], argument: "evaluationSize/lengths/embedDimension/heads/headDimension", atMost: 1 << 30)
            _ = try checkedElementCount([embedDimension, width], argument: "embedDimension/heads/headDimension", atMost: 1 << 30)
            guard learningRate > 0, learningRate.isFinite else {
                throw AttentionError.invalidArgument(argument: "learningRate", reason: "must be positive and finite, got \(learningRate)")
            }
        }
    }

    /// One model, trained and scored.
    public struct Run: Codable, Sendable, Equatable {
        /// The model trained.
        public let model: Model
        /// Trainable parameters outside the embedding tables.
        public let parameters: Int
        /// Mean training loss of each block of `logEvery` steps.
        public let losses: [Double]
        /// ‖∂L/∂W_q, ∂L/∂W_k‖, averaged the same way (attention only).
        public let queryKeyGradientNorms: [Double]
        /// ‖∂L/∂S‖, the gradient the softmax passes back to the scores, averaged the same way (attention
        /// with `probeScores` only).
        public let scoreGradientNorms: [Double]
        /// Held-out accuracy after training at each of the configuration's lengths.
        public let accuracies: [Double]
        /// Seconds its training and scoring took.
        public let seconds: Double
    }

    /// Where the trained attention model looks, at the longest length that is at most 16 (a heatmap that fits a terminal).
    public struct Inspection: Codable, Sendable, Equatable {
        /// The sequence length inspected.
        public let length: Int
        /// `[head][position]` for one held-out sequence.
        public let weights: [[Double]]
        /// The position of the queried key in that sequence.
        public let matchingPosition: Int
        /// Per head, the mean weight on the matching position over the held-out set.
        public let weightOnMatch: [Double]
        /// Similarity of the heads' weights over the held-out set (``HeadsExperiment/similarity(_:heads:)``).
        public let diversity: HeadsExperiment.Row
    }

    /// What ``run(_:progress:)`` measured.
    public struct Result: Codable, Sendable, Equatable {
        /// The configuration it ran.
        public let configuration: Configuration
        /// One run per model, in the configuration's order.
        public let runs: [Run]
        /// Where the attention model looks, if it was trained.
        public let inspection: Inspection?
        /// The accuracy of guessing: one over the values.
        public var chance: Double { 1 / Double(configuration.valueVocabulary) }

        /// The run of `model`, if it was trained.
        public func run(_ model: Model) -> Run? { runs.first { $0.model == model } }

        /// `model`'s held-out accuracy at `length`, if both were run.
        public func accuracy(_ model: Model, length: Int) -> Double? {
            guard let run = run(model), let i = configuration.lengths.firstIndex(of: length) else { return nil }
            return run.accuracies[i]
        }
    }

    /// Trains and scores every model.
    ///
    /// - Parameters:
    ///   - configuration: what to train and how.
    ///   - progress: called after each model, for a progress line.
    /// - Throws: `AttentionError` if the configuration is invalid.
    public static func run(_ configuration: Configuration, progress: (Run) -> Void = { _ in }) throws -> Result {
        try configuration.validate()
        var runs: [Run] = []
        var inspection: Inspection?
        let inspectionLength = configuration.lengths.filter { $0 <= 16 }.max() ?? configuration.lengths.min() ?? 0
        for model in configuration.models {
            let (run, trained) = try train(model, configuration)
            runs.append(run)
            progress(run)
            if let trained = trained as? AttentionRecallModel {
                inspection = try inspect(trained, length: inspectionLength, configuration)
            }
        }
        return Result(configuration: configuration, runs: runs, inspection: inspection)
    }

    /// The held-out sequences of one length: the same for every model.
    static func evaluationBatch(length: Int, _ c: Configuration) throws -> RecallBatch {
        var generator = SplitMix64(seed: c.seed ^ 0x5EED_0000_0000 ^ UInt64(length))
        return try RecallBatch(count: c.evaluationSize, length: length, keyVocabulary: c.keyVocabulary,
                               valueVocabulary: c.valueVocabulary, using: &generator)
    }

    static func makeModel(_ model: Model, _ c: Configuration) throws -> any RecallModel {
        let embedding = try PairEmbedding(keyVocabulary: c.keyVocabulary, valueVocabulary: c.valueVocabulary,
                                          dimension: c.embedDimension, seed: c.seed &+ 11)
        var attention = try AttentionRecallModel(
            embedding: embedding, heads: c.heads, headDimension: c.resolvedHeadDimension, valueVocabulary: c.valueVocabulary,
            scale: c.scaled ? nil : 1, seed: c.seed &+ 12)
        attention.probesScores = c.probeScores
        switch model {
        case .attention:
            return attention
        case .meanPooling:
            return try MeanPoolingRecallModel(embedding: embedding, hiddenDimension: 2 * c.embedDimension,
                                              valueVocabulary: c.valueVocabulary, seed: c.seed &+ 13)
        case .gru:
            // The hidden size whose parameter count is closest to the attention model's.
            let target = attention.parameterCountOutsideEmbeddings
            let hidden = (1...(8 * c.embedDimension)).min {
                abs(GRURecallModel.parameterCount(embedDimension: c.embedDimension, hiddenDimension: $0, valueVocabulary: c.valueVocabulary) - target)
                    < abs(GRURecallModel.parameterCount(embedDimension: c.embedDimension, hiddenDimension: $1, valueVocabulary: c.valueVocabulary) - target)
            } ?? c.embedDimension
            return try GRURecallModel(embedding: embedding, hiddenDimension: hidden, valueVocabulary: c.valueVocabulary, seed: c.seed &+ 14)
        }
    }

    static func train(_ kind: Model, _ c: Configuration) throws -> (Run, any RecallModel) {
        let start = Date()
        var model = try makeModel(kind, c)
        var optimizer = Adam<Float>(learningRate: c.learningRate)
        var generator = SplitMix64(seed: c.seed &* 0x9E37_79B9_7F4A_7C15 &+ 1)
        var losses: [Double] = [], norms: [Double] = [], scoreNorms: [Double] = []
        var lossSum = 0.0, normSum = 0.0, scoreSum = 0.0, inBlock = 0
        for step in 0..<c.steps {
            let batch = try RecallBatch(count: c.batchSize, length: c.lengths[step % c.lengths.count], keyVocabulary: c.keyVocabulary,
                                        valueVocabulary: c.valueVocabulary, using: &generator)
            let (loss, gradients, probe) = try model.lossAndGradients(batch)
            var parameters = model.parameterDictionary
            try optimizer.update(&parameters, gradients: gradients)
            model = try model.replacingParameters(parameters)
            lossSum += loss
            normSum += probe.queryKey
            scoreSum += probe.scores
            inBlock += 1
            if inBlock == c.logEvery || step == c.steps - 1 {
                losses.append(lossSum / Double(inBlock))
                norms.append(normSum / Double(inBlock))
                scoreNorms.append(scoreSum / Double(inBlock))
                (lossSum, normSum, scoreSum, inBlock) = (0, 0, 0, 0)
            }
        }
        let accuracies = try c.lengths.map { try accuracy(model, on: evaluationBatch(length: $0, c)) }
        let run = Run(model: kind, parameters: model.parameterCountOutsideEmbeddings, losses: losses,
                      queryKeyGradientNorms: kind == .attention ? norms : [],
                      scoreGradientNorms: kind == .attention && c.probeScores ? scoreNorms : [], accuracies: accuracies,
                      seconds: Date().timeIntervalSince(start))
        return (run, model)
    }

    static func accuracy(_ model: any RecallModel, on batch: RecallBatch) throws -> Double {
        let logits = try model.logits(batch)
        let classes = logits.shape[1]
        let targets = batch.targets
        var correct = 0
        for b in 0..<batch.count {
            let row = logits.scalars[(b * classes)..<((b + 1) * classes)]
            if let best = row.indices.max(by: { row[$0] < row[$1] }), best - b * classes == targets[b] { correct += 1 }
        }
        return Double(correct) / Double(batch.count)
    }

    static func inspect(_ model: AttentionRecallModel, length: Int, _ c: Configuration) throws -> Inspection {
        let batch = try evaluationBatch(length: length, c)
        let w = try model.weights(batch)
        let heads = w.shape[1]
        func weight(_ b: Int, _ h: Int, _ i: Int) -> Double { Double(w.scalars[(b * heads + h) * length + i]) }
        let onMatch = (0..<heads).map { h in (0..<batch.count).reduce(0.0) { $0 + weight($1, h, batch.positions[$1]) } / Double(batch.count) }
        let maps = (0..<heads).map { h in (0..<batch.count).flatMap { b in (0..<length).map { weight(b, h, $0) } } }
        return Inspection(
            length: length, weights: (0..<heads).map { h in (0..<length).map { weight(0, h, $0) } },
            matchingPosition: batch.positions[0], weightOnMatch: onMatch,
            diversity: try HeadsExperiment.similarity(maps, heads: heads))
    }
}

extension RecallExperiment {
    /// One parameter tensor's backward pass checked against the loss itself: along a random unit direction
    /// `u`, the analytic `Σ ∂L/∂θ · u` against the central difference `(L(θ + hu) - L(θ - hu)) / 2h`.
    public struct GradientCheck: Sendable, Equatable {
        /// The parameter's name (`embedding.keys.weight`, `attention.query.weight`, `readout.bias`, …).
        public let parameter: String
        /// The backward pass's directional derivative.
        public let analytic: Double
        /// The central difference of the loss.
        public let numeric: Double
    }

    /// Directional derivative checks of every parameter of `model` (built from `configuration`) on
    /// one batch of `count` sequences of `length` pairs. The models compute in Float: with `step` around
    /// 1e-2 the two agree to about 1e-3 relative when the backward pass is right.
    public static func gradientChecks(
        _ model: Model, _ configuration: Configuration, length: Int, count: Int = 4, step: Double = 1e-2
    ) throws -> [GradientCheck] {
        var generator = SplitMix64(seed: configuration.seed &+ 99)
        let batch = try RecallBatch(count: count, length: length, keyVocabulary: configuration.keyVocabulary,
                                    valueVocabulary: configuration.valueVocabulary, using: &generator)
        let subject = try makeModel(model, configuration)
        let (_, gradients, _) = try subject.lossAndGradients(batch)
        let original = subject.parameterDictionary
        func loss(_ parameters: [String: Tensor<Float>]) throws -> Double {
            try subject.replacingParameters(parameters).lossAndGradients(batch).loss
        }
        return try subject.namedParameters.map { name, tensor in
            let draw = try Tensor<Float>.randomNormal(shape: tensor.shape, using: &generator)
            let length = draw.scalars.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let direction = draw.map { $0 / length }
            func moved(_ sign: Float) throws -> [String: Tensor<Float>] {
                var parameters = original
                parameters[name] = try Tensor(shape: tensor.shape, scalars: zip(tensor.scalars, direction.scalars).map {
                    $0 + sign * Float(step) * $1
                })
                return parameters
            }
            let numeric = (try loss(moved(1)) - loss(moved(-1))) / (2 * step)
            let analytic = zip(gradients[name]?.scalars ?? [], direction.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            return GradientCheck(parameter: name, analytic: analytic, numeric: numeric)
        }
    }
}
