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
        promptTokens = registry.makeCounter(name: "attention_prompt_tokens_total", help: "Prompt tokens run through the model.")
        generatedTokens = registry.makeCounter(name: "attention_generated_tokens_total", help: "Tokens generated; rate() of it is tokens/s.")
        queued = registry.makeGauge(name: "attention_queue_length", help: "Requests waiting for a slot.")
        running = registry.makeGauge(name: "attention_running_requests", help: "Requests in slots, decoding together.")
        tokensPerSecond = registry.makeGauge(name: "attention_step_tokens_per_second", help: "Tokens per second of the last step.")
        firstToken = registry.makeDurationHistogram(name: "attention_time_to_first_token_seconds", buckets: seconds,
                                                    help: "From a request's arrival to its first token.")
        requestDuration = registry.makeDurationHistogram(name: "attention_request_duration_seconds", buckets: seconds,
                                                         help: "From a request's arrival to its last token.")
        step = registry.makeDurationHistogram(name: "attention_step_duration_seconds", buckets: seconds,
                                              help: "One step of the model for every sequence in flight.")
        generator.observeSteps { [step, promptTokens, generatedTokens, tokensPerSecond] report in
            step.record(report.duration)
            promptTokens.increment(by: Int64(report.promptTokens))
            generatedTokens.increment(by: Int64(report.newTokens))
            let seconds = Double(report.duration.components.seconds) + Double(report.duration.components.attoseconds) * 1e-18
            if report.newTokens > 0, seconds > 0 { tokensPerSecond.set(Double(report.newTokens) / seconds) }
        }
    }

    /// Counts a request that got `status` on `endpoint`.
    func request(_ endpoint: String, status: Int) {
        registry.makeCounter(name: "attention_requests_total", labels: [("endpoint", endpoint), ("status", String(status))],
                             help: "Requests by endpoint and status.").increment()
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
