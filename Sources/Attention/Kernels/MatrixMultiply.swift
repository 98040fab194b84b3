import Foundation
import _AttentionKernels

/// Up to this many rows, a product runs on the few-rows kernel, its columns shared among the threads.
let fewRows = 4

/// Up to this many rows, ``Linear`` multiplies from the weight as it is stored (see
/// ``multiplyStoredWeight(_:rows:weight:layout:bias:into:n:k:threads:isa:)``); beyond, the weight is read
/// from memory once either way and the tiled kernel's register blocking wins.
let storedWeightRows = 16

/// `y [rows, n] = x [rows, k] · Wᵀ + bias` with W as a ``Linear`` stores it (`[n, k]` output-major,
/// `[k, n]` input-major), over all cores: each thread one contiguous share of the outputs (of whole
/// weight rows output-major, of columns input-major, a multiple of 8 so that every column runs the same
/// code whatever the split).
func multiplyStoredWeight(
    _ x: UnsafePointer<Float>, rows: Int, weight: UnsafePointer<Float>, layout: WeightLayout, bias: UnsafePointer<Float>?,
    into y: UnsafeMutablePointer<Float>, n: Int, k: Int, threads: Int, isa: KernelInstructionSet
) {
    let kernels = isa.kernels
    // One share per thread: a share is one stream through memory, and fewer, longer streams read
    // faster (measured: 23.4 GB/s for two shares, 20.8 GB/s for eight, on two threads).
    let unit = layout == .outputMajor ? 4 : 8
    let shares = min(rows * n * k < 1 << 17 ? 1 : threads, (n + unit - 1) / unit)
    let shared = UncheckedSendable((x, weight, bias, y))
    parallelFor(shares, threads: shares) { share, _ in
        let (x, weight, bias, y) = shared.value
        let units = (n + unit - 1) / unit
        let range = min(n, share * units / shares * unit)..<min(n, (share + 1) * units / shares * unit)
        switch layout {
        case .outputMajor: kernels.multiplyOutputMajor(x, rows, weight, bias, y, range, n, k)
        case .inputMajor: kernels.multiplyInputMajor(x, rows, weight, bias, y, range, n, k)
        }
    }
}

/// `C = activation(A · B + bias)` in Float on the tiled micro-kernel, over all cores: A `[m, k]`
/// row-major, B packed in 32-column panels by `packPanels`, bias `[n]` or none, C `[m, n]` row-major;
/// each block of rows gets its activation as soon as it is written. Used by ``Linear``.

func multiplyMatrices(
    _ a: UnsafePointer<Float>, packedB b: UnsafePointer<Float>, bias: UnsafePointer<Float>?, activation: Activation? = nil,
    into c: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int, threads: Int, isa: KernelInstructionSet
) {
    let kernels = isa.kernels
    let activate = activation?.kernel(kernels)
    let panels = (n + 31) / 32
    if m <= fewRows {
        // A decoding step: one pass over B, shared among the threads by panels of columns.
        let chunks = min(panels, m * n * k < 1 << 18 ? 1 : 8 * threads)
        let shared = UncheckedSendable((a, b, bias, c))
        parallelFor(chunks, threads: min(threads, chunks)) { chunk, _ in
            let (a, b, bias, c) = shared.value
            let range = (chunk * panels / chunks)..<((chunk + 1) * panels / chunks)
            kernels.multiplyFewRows(a, b, bias, c, 0..<m, range, n, k)
        }
        activate?(c, m * n)
        return
    }
    // Blocks of 64 rows: enough work per item to amortize the dispatch, enough items to share.
    let blockRows = 64
    let blocks = (m + blockRows - 1) / blockRows
    let workers = max(1, min(threads, blocks))
    let scratch = (0..<workers).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: 8 * (k + 32)) }
    defer { scratch.forEach { $0.deallocate() } }
    let shared = UncheckedSendable((a, b, bias, c, scratch))
    // Small products are not worth waking threads for.
    let effectiveThreads = m * n * k < 1 << 18 ? 1 : threads
    parallelFor(blocks, threads: effectiveThreads) { block, worker in
        let (a, b, bias, c, scratch) = shared.value
        let rows = (block * blockRows)..<min(m, (block + 1) * blockRows)
        kernels.multiply(a, b, bias, c, rows, n, k, scratch[worker])
        activate?(c + rows.lowerBound * n, rows.count * n)
    }
}
