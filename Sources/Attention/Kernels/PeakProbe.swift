import Dispatch
import _AttentionKernels
import _AttentionKernelsAVX512

/// The machine's multiply-add peak in GFLOP/s, measured now: `threads` threads each run a
/// register-only loop of independent vector FMAs for about `seconds`.
///
/// Benchmarks report efficiency against this rather than a datasheet number, because clocks,
/// turbo and sharing differ from machine to machine and from minute to minute.
public func measureMultiplyAddPeak(
    threads: Int, instructionSet: KernelInstructionSet = .best, seconds: Double = 0.2
) -> Double {
    let useAVX512 = instructionSet == .avx512 && instructionSet.isSupported
    @Sendable func probe(_ iterations: Int, _ seed: Float) -> Float {
        useAVX512 ? AVX512Kernels.probe(iterations: iterations, seed: seed)
            : PortableKernels.probe(iterations: iterations, seed: seed)
    }
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
    let workers = max(1, threads)
    let start = DispatchTime.now().uptimeNanoseconds
    let count = iterations
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
        _ = probe(count, Float(worker + 1))
    }
    let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
    return Double(workers) * Double(iterations) * 512 / elapsed / 1e9
}
