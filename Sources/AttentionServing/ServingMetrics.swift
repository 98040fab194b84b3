import AttentionModels
import Prometheus

/// What `/metrics` shows, in Prometheus's text format: requests by endpoint and status, tokens,
/// the queue, and histograms of the time to the first token, of whole requests and of the
/// generator's steps.
final class ServingMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let promptTokens: Counter
    private let generatedTokens: Counter
    private let queued: Gauge
    private let running: Gauge
    private let tokensPerSecond: Gauge
    private let firstToken: DurationHistogram
    private let requestDuration: DurationHistogram
    private let step: DurationHistogram

    init(generator: BatchedGenerator) {
        let seconds: [Duration] = [.milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                                   .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30)]
        promptTokens = registry.makeCounter(descriptor: Self.name("prompt_tokens", "total", "Prompt tokens run through the model."), labels: [])
        generatedTokens = registry.makeCounter(descriptor: Self.name("generated_tokens", "total", "Tokens generated; rate() of it is tokens/s."), labels: [])
        queued = registry.makeGauge(descriptor: Self.name("queue_length", "", "Requests waiting for a slot."))
        running = registry.makeGauge(descriptor: Self.name("running_requests", "", "Requests in slots, decoding together."))
        tokensPerSecond = registry.makeGauge(descriptor: Self.name("step_tokens_per_second", "", "Tokens per second of the last step."))
        firstToken = registry.makeDurationHistogram(descriptor: Self.name("time_to_first_token", "seconds", "From a request's arrival to its first token."),
                                                    buckets: seconds)
        requestDuration = registry.makeDurationHistogram(descriptor: Self.name("request_duration", "seconds", "From a request's arrival to its last token."),
                                                         buckets: seconds)
        step = registry.makeDurationHistogram(descriptor: Self.name("step_duration", "seconds", "One step of the model for every sequence in flight."),
                                              buckets: seconds)
        generator.observeSteps { [step, promptTokens, generatedTokens, tokensPerSecond] report in
            step.record(report.duration)
            promptTokens.increment(by: Int64(report.promptTokens))
            generatedTokens.increment(by: Int64(report.newTokens))
            let seconds = report.duration.seconds
            if report.newTokens > 0, seconds > 0 { tokensPerSecond.set(Double(report.newTokens) / seconds) }
        }
    }

    /// Counts a request that got `status` on `endpoint`.
    func request(_ endpoint: String, status: Int) {
        registry.makeCounter(descriptor: Self.name("requests", "total", "Requests by endpoint and status."),
                             labels: [("endpoint", endpoint), ("status", String(status))]).increment()
    }

    /// `attention_NAME_UNIT` (no unit: `attention_NAME`) with its help line.
    private static func name(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "attention", metricName: name, unitName: unit, helpText: help)
    }

    /// Records an answered request's time to its first token and in all.
    func answered(firstToken: Duration?, total: Duration) {
        if let firstToken { self.firstToken.record(firstToken) }
        requestDuration.record(total)
    }

    /// The page, with the queue's gauges read now.
    func page(_ statistics: BatchedGenerator.Statistics) -> String {
        queued.set(to: Double(statistics.queued))
        running.set(to: Double(statistics.running))
        return registry.emitToString()
    }
}
