import Dispatch

/// The machine's multiply-add peak in GFLOP/s, measured now: `threads` threads each run a
/// register-only loop of independent vector FMAs for about `seconds`, five times; the best round counts.
/// `threads` is brought into 1 ... the active processors (more threads cannot add to a peak).
///
/// Benchmarks report efficiency against this rather than a datasheet number, because clocks,
/// turbo and sharing differ from machine to machine and from minute to minute.
public func measureMultiplyAddPeak(
    threads: Int, instructionSet: KernelInstructionSet = .best, seconds: Double = 0.2
) -> Double {
    let kernels = (instructionSet.isSupported ? instructionSet : .portable).kernels
    let probe = kernels.probe
    // Calibrate one thread's iteration count to the requested duration, then run all threads at once.
    var iterations = 100_000
    while true {
        let start = DispatchTime.now().uptimeNanoseconds
        _ = probe(iterations, 1)
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        if elapsed > seconds / 4 || iterations > 1 << 34 {
            iterations = Int(Double(iterations) * seconds / max(elapsed, 1e-9))
            break
        }
        iterations *= 4
    }
    // The best of five rounds: a peak is what the machine can do, and a round that shared the core
    // with another process would flatter every efficiency computed against it.
    let workers = threads.clamped(to: 1...availableProcessors)
    let count = iterations
    var best = 0.0
    for _ in 0..<5 {
        let start = DispatchTime.now().uptimeNanoseconds
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            _ = probe(count, Float(worker + 1))
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        best = max(best, Double(workers) * Double(count) * Double(kernels.registers.probeFlopsPerIteration) / elapsed / 1e9)
    }
    return best
}

/// The machine's memory read bandwidth in GB/s (10⁹ bytes per second), measured now: `threads`
/// threads each sum their share of a buffer of `bytes` (default 512 MiB, far beyond any cache) with
/// vector loads, six times; the best round counts. `threads` is brought into 1 ... the active
/// processors, and `bytes` into 128 per thread ... half this machine's memory.
///
/// Decoding reads every cached key and value once per step and does little arithmetic on each, so
/// its speed is bounded by this, not by the multiply-add peak: `attention bench` reports decoding's
/// bytes per second as a share of it.
public func measureReadBandwidth(
    threads: Int, instructionSet: KernelInstructionSet = .best, bytes: Int = 512 << 20
) -> Double {
    let kernels = (instructionSet.isSupported ? instructionSet : .portable).kernels
    let workers = threads.clamped(to: 1...availableProcessors)
    let count = bytes.clamped(to: 128 * workers...physicalMemoryBytes / 2) / 4 & ~31
    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
    defer { buffer.deallocate() }
    let chunk = (count / workers) & ~31
    // Each thread touches its own share first, so its pages are faulted in (and placed) before timing.
    parallelFor(workers, threads: workers) { worker, _ in
        let start = worker * chunk, end = worker == workers - 1 ? count : start + chunk
        (buffer + start).initialize(repeating: Float(worker & 7), count: end - start)
    }
    var best = 0.0
    for _ in 0..<6 {
        let start = DispatchTime.now().uptimeNanoseconds
        parallelFor(workers, threads: workers) { worker, _ in
            let first = worker * chunk, length = worker == workers - 1 ? (count - first) & ~31 : chunk
            _ = kernels.readProbe(buffer + first, length)
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        best = max(best, Double(count * 4) / elapsed / 1e9)
    }
    return best
}
