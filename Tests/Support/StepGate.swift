import Foundation

/// Holds a generator's thread between steps so a test decides when each step may end: install
/// `{ _ in gate.hold() }` as the step observer, then `allow` steps. A step waits at most a minute,
/// so a test that fails before it lets the generator go cannot hang the run.
public final class StepGate: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)

    public init() {}

    /// Waits until a step is allowed (or a minute has passed).
    public func hold() { _ = semaphore.wait(timeout: .now() + 60) }

    /// Lets `steps` more steps end.
    public func allow(_ steps: Int = 1) {
        for _ in 0..<steps { semaphore.signal() }
    }
}
