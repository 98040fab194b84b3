import Attention
import Foundation

/// How ``GPT2Training/train(tokens:vocabularySize:endOfText:settings:progress:)`` trains a GPT-2.
public struct GPT2TrainingSettings: Sendable, Codable, Equatable {
    /// Transformer blocks.
    public var layers = 4
    /// Attention heads per block.
    public var heads = 4
    /// The residual stream's width, a multiple of `heads`.
    public var width = 128
    /// Tokens per training sequence (and the model's positions).
    public var context = 128
    /// Sequences per step.
    public var batchSize = 16
    /// Optimizer steps.
    public var steps = 2000
    /// The peak learning rate of AdamW: reached after a warm-up of 5% of the steps, then a cosine
    /// decay to a tenth of it.
    public var learningRate = 2e-3
    /// AdamW's decoupled weight decay.
    public var weightDecay = 0.0
    /// Validation loss every this many steps (and at the last).
    public var evaluationInterval = 100
    /// The share of the tokens held out, from the end, for the validation loss.
    public var validationFraction = 0.05
    /// Seeds the initial weights and the order of the batches: the same seed, the same run.
    public var seed: UInt64 = 42

    /// The defaults: a 4-layer, 128-wide model trained for 2000 steps.
    public init() {}

    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` naming the first setting out of range.
    public func validate() throws {
        for (name, value, range) in [("layers", layers, 1...64), ("heads", heads, 1...64), ("width", width, 1...4096),
                                     ("context", context, 2...4096), ("batchSize", batchSize, 1...4096), ("steps", steps, 1...10_000_000),
                                     ("evaluationInterval", evaluationInterval, 1...10_000_000)] where !range.contains(value) {
            throw AttentionError.invalidArgument(argument: name, reason: "must be in \(range.lowerBound)...\(range.upperBound), got \(value)")
        }
        guard width % heads == 0 else {
            throw AttentionError.invalidArgument(argument: "width", reason: "must be a multiple of heads (\(heads)), got \(width)")
        }
        guard learningRate.isFinite, learningRate > 0, learningRate < 1 else {
            throw AttentionError.invalidArgument(argument: "learningRate", reason: "must be in (0, 1), got \(learningRate)")
        }
        guard weightDecay.isFinite, weightDecay >= 0, weightDecay < 1 else {
            throw AttentionError.invalidArgument(argument: "weightDecay", reason: "must be in [0, 1), got \(weightDecay)")
        }
        guard validationFraction > 0, validationFraction < 0.5 else {
            throw AttentionError.invalidArgument(argument: "validationFraction", reason: "must be in (0, 0.5), got \(validationFraction)")
        }
    }

    /// The learning rate at `step` (from 1).
    public func learningRate(at step: Int) -> Double {
        let warmup = max(1, steps / 20)
        if step <= warmup { return learningRate * Double(step) / Double(warmup) }
        let progress = Double(step.saturatingSubtracting(warmup)) / Double(max(1, steps.saturatingSubtracting(warmup)))
        return learningRate * (0.1 + 0.9 * 0.5 * (1 + cos(Double.pi * progress)))
    }
}

/// Where a training run stands, reported after every step.
public struct GPT2TrainingProgress: Sendable {
    /// The step just done (from 1) and the run's total.
    public let step: Int, steps: Int
    /// This step's training loss (mean cross-entropy, nats per token).
    public let loss: Double
    /// The validation loss, on steps where it was measured.
    public let validationLoss: Double?
    /// Training tokens per second so far.
    public let tokensPerSecond: Double
    /// Seconds since training began.
    public let elapsedSeconds: Double
    /// Estimated from the mean time per step so far.
    public let remainingSeconds: Double
}

/// The history of a training run.
public struct GPT2TrainingHistory: Sendable, Codable {
    /// A validation loss and the step it was measured after.
    public struct Evaluation: Sendable, Codable { public let step: Int, loss: Double }
    /// The settings of the run.
    public let settings: GPT2TrainingSettings
    /// The model's parameter count.
    public let parameters: Int
    /// Tokens trained on, and held out.
    public let trainingTokens: Int, validationTokens: Int
    /// The training loss of every step.
    public let losses: [Double]
    /// Every validation loss, in order.
    public let validation: [Evaluation]
    /// Seconds the run took.
    public let seconds: Double
    /// Training tokens per second over the run.
    public let tokensPerSecond: Double
}

/// Training a GPT-2 from scratch on a token stream: random windows of `context + 1` tokens,
/// AdamW by parameter name, the loss on held-out windows as it goes.
public enum GPT2Training {
    /// Trains a new model and returns it with its history; `progress` is called after every step.
    ///
    /// - Throws: `AttentionError` for settings out of range, or too few tokens for one training
    ///   and one validation window.
    public static func train(
        tokens: [Int], vocabularySize: Int, endOfText: Int?, settings s: GPT2TrainingSettings,
        progress: (GPT2TrainingProgress) throws -> Void = { _ in }
    ) throws -> (model: GPT2Model, history: GPT2TrainingHistory) {
        try s.validate()
        let held = Int(Double(tokens.count) * s.validationFraction)
        let training = Array(tokens[..<(tokens.count - held)]), validation = Array(tokens[(tokens.count - held)...])
        guard training.count > s.context + 1, validation.count > s.context + 1 else {
            throw AttentionError.invalidArgument(
                argument: "tokens", reason: "\(tokens.count) tokens are too few for windows of \(s.context + 1) in both the training and the held-out \(Int(s.validationFraction * 100))%")
        }
        var configuration = GPT2Configuration(vocabularySize: vocabularySize, positions: s.context, width: s.width, layers: s.layers, heads: s.heads)
        configuration.beginningOfTextToken = endOfText
        configuration.endOfTextToken = endOfText
        var model = try GPT2Model(configuration: configuration, seed: s.seed)
        var generator = SplitMix64(seed: s.seed &+ 1)
        // The same held-out windows every time: evenly spaced over the held-out tokens.
        let evaluationWindows = min(4 * s.batchSize, (validation.count - s.context - 1) / max(1, s.context / 2) + 1)
        let evaluationStarts = (0..<evaluationWindows).map { $0 * (validation.count - s.context - 1) / max(1, evaluationWindows - 1) }
        func window(_ stream: [Int], _ start: Int) -> (input: [Int], target: [Int]) {
            (Array(stream[start..<(start + s.context)]), Array(stream[(start + 1)...(start + s.context)]))
        }
        func validationLoss() throws -> Double {
            var total = 0.0
            for chunk in stride(from: 0, to: evaluationStarts.count, by: s.batchSize) {
                let windows = evaluationStarts[chunk..<min(chunk + s.batchSize, evaluationStarts.count)].map { window(validation, $0) }
                total += try model.loss(inputs: windows.map(\.input), targets: windows.map(\.target)) * Double(windows.count)
            }
            return total / Double(evaluationStarts.count)
        }

        var adam = Adam<Float>(learningRate: s.learningRate, beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: s.weightDecay)
        var losses: [Double] = [], evaluations: [GPT2TrainingHistory.Evaluation] = []
        let clock = ContinuousClock(), start = clock.now
        for step in 1...s.steps {
            let windows = (0..<s.batchSize).map { _ in window(training, Int(generator.next() % UInt64(training.count - s.context - 1))) }
            let (loss, gradients) = try model.lossAndGradients(inputs: windows.map(\.input), targets: windows.map(\.target))
            adam.learningRate = s.learningRate(at: step)
            var parameters = model.parameterDictionary
            try adam.update(&parameters, gradients: gradients)
            model = try model.replacingParameters(parameters)
            losses.append(loss)
            var measured: Double?
            if step % s.evaluationInterval == 0 || step == s.steps {
                measured = try validationLoss()
                evaluations.append(.init(step: step, loss: measured!))
            }
            let elapsed = (clock.now - start).seconds
            try progress(GPT2TrainingProgress(
                step: step, steps: s.steps, loss: loss, validationLoss: measured,
                tokensPerSecond: Double(step * s.batchSize * s.context) / max(elapsed, 1e-9), elapsedSeconds: elapsed,
                remainingSeconds: elapsed / Double(step) * Double(s.steps - step)))
        }
        let seconds = (clock.now - start).seconds
        let history = GPT2TrainingHistory(
            settings: s, parameters: model.parameterCount, trainingTokens: training.count, validationTokens: validation.count,
            losses: losses, validation: evaluations, seconds: seconds,
            tokensPerSecond: Double(s.steps * s.batchSize * s.context) / max(seconds, 1e-9))
        return (model, history)
    }
}
