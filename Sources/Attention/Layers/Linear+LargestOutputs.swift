import Foundation
import _AttentionKernels

/// The largest outputs of a layer for one input row (``Linear/largestOutputs(_:of:argument:options:)``).
public struct RankedOutputs: Sendable, Equatable {
    /// Output indices, the largest value first; equal values in increasing index.
    public let indices: [Int]
    /// Their values, bit for bit what the layer's ``Linear/callAsFunction(_:argument:options:)`` gives for them.
    public let values: [Float]
    /// How many of the layer's outputs were computed from its Float weight: every one when the call
    /// was not screened, otherwise the few that the screen could not rule out.
    public let outputsComputed: Int
}

extension Linear where Scalar == Float {
    /// The `count` largest outputs of `self(input)` for one input row, largest first (equal values in
    /// increasing index): the same indices and the same values, bit for bit, as ranking the whole
    /// output, for a fraction of the reads when the layer is large.
    ///
    /// This is what choosing the next token needs: the most likely one (greedy), or the `k` most
    /// likely (top-k sampling). A language model's output layer is the largest weight of a decoding
    /// step (GPT-2 small: 154 MB of its 500), and a step reads every byte of it for a handful of
    /// candidates. So the layer keeps a screen, made on the first call: its weight in 8-bit blocks
    /// (Q8_0, a quarter of the bytes), and for each row `v` a radius `r_v` from the row's own
    /// quantization error, `‖w_v − ŵ_v‖`, and a bound on the rounding of both dot products. For an
    /// input `x` the screen's estimate `ŝ_v` is within `‖x‖·r_v` of the output the layer computes
    /// (Cauchy–Schwarz). Every output whose upper bound `ŝ_v + ‖x‖·r_v` falls below the `count`-th
    /// largest lower bound is smaller than `count` others and cannot be ranked; the rest (a few
    /// rows, typically) are computed from the Float weight by the very kernel the layer runs, which
    /// is why their values are those of the whole product.
    ///
    /// The whole product is computed instead, and ranked, when the screen would not pay: a layer
    /// of fewer than 16 outputs, an input-major or block-quantized weight, `count` above a quarter of
    /// the outputs, ``AttentionImplementation/reference``, an input or estimate that is not finite, or
    /// more than a quarter of the outputs left to compute. Only ``RankedOutputs/outputsComputed``
    /// tells the two apart. NaN outputs rank below every number.
    ///
    /// The screen takes about 0.27 bytes per weight (GPT-2 small's output layer: 41 MB) for the life
    /// of the layer and its copies.
    ///
    /// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` for `count` below 1 or options
    ///   this CPU cannot run; ``AttentionError/shapeMismatch(argument:shape:other:otherShape:reason:)``
    ///   for an input that is not one row of ``inputDimension``.
    public func largestOutputs(_ count: Int, of input: Tensor<Float>, argument: String = "input",
                               options: AttentionOptions = AttentionOptions()) throws -> RankedOutputs {
        guard count >= 1 else { throw AttentionError.invalidArgument(argument: "count", reason: "must be at least 1, got \(count)") }
        let execution = try options.execution(tiledComputes: true, scalar: Float.self)
        guard input.count == inputDimension, input.shape.last == inputDimension else {
            throw AttentionError.shapeMismatch(
                argument: argument, shape: input.shape, other: "the layer's weight", otherShape: [outputDimension, inputDimension],
                reason: "need one row of the layer's input dimension \(inputDimension)")
        }
        let k = min(count, outputDimension)
        if let isa = execution.instructionSet, 4 * k <= outputDimension, screenable,
           let screen = screen.value(make: { OutputScreen(self) }),
           let ranked = screen.largest(k, of: input.scalars, layer: self, threads: execution.threads, isa: isa) {
            return ranked
        }
        let all = try self(input, argument: argument, options: options)
        let indices = largestIndices(all.scalars, count: k)
        return RankedOutputs(indices: indices, values: indices.map { all.scalars[$0] }, outputsComputed: outputDimension)
    }

    /// Whether the weight is Float rows a screen can be made of: output-major, not block-quantized.
    private var screenable: Bool {
        if case .quantized = storage { return false }
        return layout == .outputMajor
    }
}

/// The indices of the `count` largest of `values`, largest first, equal values in increasing index,
/// NaN after every number (in increasing index).
func largestIndices(_ values: [Float], count: Int) -> [Int] {
    var heap = SmallestFirst(capacity: count)
    for (i, v) in values.enumerated() where !v.isNaN { heap.offer(v, i) }
    var ranked = heap.ranked()
    for (i, v) in values.enumerated() where v.isNaN && ranked.count < count { ranked.append(i) }
    return ranked
}

/// The `capacity` largest (value, index) pairs offered, ranked by value and then by lower index: a
/// binary heap whose root is the smallest of those kept, so most offers cost one comparison.
struct SmallestFirst {
    private(set) var entries: [(value: Float, index: Int)] = []
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        entries.reserveCapacity(capacity)
    }

    /// Whether `a` ranks below `b`: a smaller value, or the same value and a higher index.
    private static func below(_ a: (value: Float, index: Int), _ b: (value: Float, index: Int)) -> Bool {
        a.value < b.value || (a.value == b.value && a.index > b.index)
    }

    /// The smallest value kept once the heap is full (every pair ranked below it is refused).
    var floor: Float? { entries.count == capacity ? entries.first?.value : nil }

    mutating func offer(_ value: Float, _ index: Int) {
        let new = (value: value, index: index)
        if entries.count < capacity {
            entries.append(new)
            var child = entries.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard Self.below(entries[child], entries[parent]) else { break }
                entries.swapAt(child, parent)
                child = parent
            }
            return
        }
        guard capacity > 0, Self.below(entries[0], new) else { return }
        entries[0] = new
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < entries.count, Self.below(entries[left], entries[smallest]) { smallest = left }
            if right < entries.count, Self.below(entries[right], entries[smallest]) { smallest = right }
            guard smallest != parent else { return }
            entries.swapAt(parent, smallest)
            parent = smallest
        }
    }

    /// The indices kept, the largest first.
    func ranked() -> [Int] {
        entries.sorted { Self.below($1, $0) }.map(\.index)
    }
}

/// A layer's screen, made on first use and shared by every copy of the layer; nil when the weight
/// cannot be screened.
final class OutputScreenBox: @unchecked Sendable {
    private let lock = NSLock()
    private var made = false
    private var screen: OutputScreen?

    func value(make: () -> OutputScreen?) -> OutputScreen? {
        lock.lock()
        defer { lock.unlock() }
        if !made {
            screen = make()
            made = true
        }
        return screen
    }
}

/// The first `16·groups` rows of an output-major Float weight in Q8_0 blocks, interleaved by sixteen
/// for the single-row kernel, each with the radius that bounds how far the estimate it gives can be
/// from the Float product (see ``Linear/largestOutputs(_:of:argument:options:)``). The remaining
/// rows (fewer than sixteen) are always computed from the Float weight.
struct OutputScreen: @unchecked Sendable {
    let blocks: InterleavedBlocks
    /// Rows the screen estimates: `16·groups`.
    let rows: Int
    /// The input dimension rounded up to the block size of 32 (the rest of each row is zeros).
    let columns: Int
    /// `r_v` per screened row: `|x·w_v − estimate_v| ≤ ‖x‖·r_v` with both products rounded in Float.
    let radius: [Float]

    /// The screen of `layer` (output-major, Float), or nil for fewer than sixteen outputs, or for a
    /// weight whose blocks do not fit half precision's scale (values beyond ±8·10⁶) or hold a
    /// value that is not finite.
    init?(_ layer: Linear<Float>) {
        let groups = layer.outputDimension / quantizedGroupRows
        guard groups > 0, layer.layout == .outputMajor else { return nil }
        let inputs = layer.inputDimension, columns = (inputs + 31) / 32 * 32, blockCount = columns / 32
        // Each product's rounding: at most (terms + 1)·u of Σ|x_j·w_j| in any order of summation,
        // twice over for good measure (u = 2⁻²⁴), and Σ|x_j·w_j| ≤ ‖x‖·‖w‖.
        let rounding = 2 * Double(columns + 32) * 0x1p-24
        let rows = groups * quantizedGroupRows
        var radius = [Float](repeating: 0, count: rows)
        var usable = [Bool](repeating: true, count: groups)
        let made = InterleavedBlocks(format: .q8_0, groups: groups, blocks: blockCount) { destination in
            layer.withUnsafeStoredWeight { w in
                radius.withUnsafeMutableBufferPointer { radius in
                    usable.withUnsafeMutableBufferPointer { usable in
                        guard let w = w.baseAddress, let r = radius.baseAddress, let ok = usable.baseAddress else { return }
                        let shared = UncheckedSendable((w, r, ok, destination))
                        let shares = min(groups, availableProcessors)
                        parallelFor(shares, threads: shares) { share, _ in
                            let (w, radius, usable, destination) = shared.value
                            for g in (share * groups / shares)..<((share + 1) * groups / shares) {
                                usable[g] = quantizeGroup(g, of: w, inputs: inputs, blocks: blockCount, rounding: rounding,
                                                          into: destination, radius: radius)
                            }
                        }
                    }
                }
            }
        }
        guard usable.allSatisfy({ $0 }) else { return nil }
        self.blocks = made
        self.rows = rows
        self.columns = columns
        self.radius = radius
    }

    /// The `k` largest outputs of `layer` for the row `x`, or nil when the screen does not pay (an
    /// input or estimate that is not finite, or more than a quarter of the outputs left to compute).
    func largest(_ k: Int, of x: [Float], layer: Linear<Float>, threads: Int, isa: KernelInstructionSet) -> RankedOutputs? {
        let n = layer.outputDimension, inputs = layer.inputDimension
        var squares = 0.0
        for v in x { squares += Double(v) * Double(v) }
        guard squares.isFinite else { return nil }
        // ‖x‖ rounded up, so that every margin below is at least the bound.
        let norm = Float(squares.squareRoot() * (1 + 1e-6)).nextUp
        var padded = x
        padded.append(contentsOf: repeatElement(0, count: columns - inputs))
        var estimates = [Float](repeating: 0, count: rows)
        padded.withUnsafeBufferPointer { xs in
            estimates.withUnsafeMutableBufferPointer { ys in
                multiplyInterleaved(xs.baseAddress!, [SingleRowOperand(interleaved: blocks, stored: UnsafeRawPointer(blocks.base), rows: rows, format: .q8_0)],
                                    into: ys.baseAddress!, k: columns, threads: threads, isa: isa)
            }
        }
        let bias = layer.bias?.scalars
        // The outputs past the screen's rows, from the Float weight; they rank like any other.
        let tail = Array(rows..<n)
        let tailValues = exactOutputs(tail, of: x, layer: layer, isa: isa)
        // The k-th largest lower bound: at least k outputs are at least this large.
        var lowest = SmallestFirst(capacity: k)
        var upper = [Float](repeating: 0, count: rows)
        for v in 0..<rows {
            let b = bias?[v] ?? 0, estimate = estimates[v] + b
            // The margin: the bound, and a millionth of the values for the roundings of adding the
            // bias and of the margin itself (each at most 2⁻²⁴ of them).
            let margin = norm * radius[v] + 1e-6 * (abs(estimates[v]) + abs(b))
            let low = estimate - margin, high = estimate + margin
            guard low.isFinite, high.isFinite else { return nil }
            upper[v] = high
            if lowest.floor.map({ low > $0 }) ?? true { lowest.offer(low, v) }
        }
        for (i, v) in tailValues.enumerated() where !v.isNaN { lowest.offer(v, rows + i) }
        guard let threshold = lowest.floor else { return nil }
        let candidates = (0..<rows).filter { upper[$0] >= threshold }
        guard candidates.count + tail.count <= n / 4 else { return nil }
        let values = exactOutputs(candidates, of: x, layer: layer, isa: isa)
        var ranked = SmallestFirst(capacity: k)
        for (i, v) in zip(candidates + tail, values + tailValues) where !v.isNaN { ranked.offer(v, i) }
        let indices = ranked.ranked()
        guard indices.count == k else { return nil }
        var valueOf: [Int: Float] = [:]
        for (i, v) in zip(candidates + tail, values + tailValues) { valueOf[i] = v }
        return RankedOutputs(indices: indices, values: indices.map { valueOf[$0]! }, outputsComputed: candidates.count + tail.count)
    }
}

/// Outputs `indices` of `layer` for the row `x`, each from the Float weight by the kernel the whole
/// product runs for one row, so each value is the one the whole product gives.
private func exactOutputs(_ indices: [Int], of x: [Float], layer: Linear<Float>, isa: KernelInstructionSet) -> [Float] {
    guard !indices.isEmpty else { return [] }
    let kernels = isa.kernels, k = layer.inputDimension
    return [Float](unsafeUninitializedCapacity: indices.count) { out, count in
        layer.withUnsafeStoredWeight { w in
            x.withUnsafeBufferPointer { xs in
                (layer.bias?.scalars ?? []).withUnsafeBufferPointer { b in
                    guard let w = w.baseAddress, let x = xs.baseAddress, let y = out.baseAddress else { return }
                    // An empty array's buffer may still have an address: no bias means nil.
                    let bias = b.isEmpty ? nil : b.baseAddress
                    for (i, row) in indices.enumerated() {
                        kernels.multiplyOutputMajor(x, 1, w + row * k, bias.map { $0 + row }, y + i, 0..<1, 1, k)
                    }
                }
            }
        }
        count = indices.count
    }
}

/// Quantizes the sixteen rows of group `g` of `w` (`inputs` per row) into Q8_0 blocks in the
/// interleaved layout at `destination` and writes their radii; false if a block's scale is not
/// finite in half precision or a weight is not finite.
///
/// In vectors of eight: a block's scale is `d = max|x| / 127` in half precision and its integers
/// `q = round(x / d)` within ±127, the values the kernel multiplies are `d·q` (exact in Float: 11 by 8
/// significant bits), and the row's squared error, norm and estimate norm are summed in Float, then
/// enlarged by the most those sums can have lost to rounding.
private func quantizeGroup(_ g: Int, of w: UnsafePointer<Float>, inputs: Int, blocks: Int, rounding: Double,
                           into destination: UnsafeMutableRawPointer, radius: UnsafeMutablePointer<Float>) -> Bool {
    let lanes = quantizedGroupRows, groupBlock = interleavedBlockBytes(.q8_0)
    // Each term of the three sums is within 3 roundings of its value, and a sum of n positive terms
    // within n more: twice that, relative, covers it.
    let summing = 1 + 2 * Double(32 * blocks + 8) * 0x1p-24
    for lane in 0..<lanes {
        let row = g * lanes + lane, source = w + row * inputs
        var error = SIMD8<Float>.zero, weight = SIMD8<Float>.zero, estimate = SIMD8<Float>.zero
        for b in 0..<blocks {
            let out = destination + (g * blocks + b) * groupBlock
            let start = 32 * b
            var values = (SIMD8<Float>.zero, SIMD8<Float>.zero, SIMD8<Float>.zero, SIMD8<Float>.zero)
            withUnsafeMutableBytes(of: &values) { block in
                let count = min(32, inputs - start)
                block.baseAddress!.copyMemory(from: source + start, byteCount: count * MemoryLayout<Float>.stride)
            }
            let (v0, v1, v2, v3) = values
            @inline(__always) func magnitude(_ v: SIMD8<Float>) -> SIMD8<Float> {
                unsafeBitCast(unsafeBitCast(v, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: SIMD8<Float>.self)
            }
            let finite = (v0 .== v0) .& (v1 .== v1) .& (v2 .== v2) .& (v3 .== v3)
            guard all(finite) else { return false }
            // (Comparisons and selects: the standard library's pointwise and rounding functions on vectors
            // run lane by lane through library calls in this module.)
            @inline(__always) func larger(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: b .> a) }
            let most = larger(larger(magnitude(v0), magnitude(v1)), larger(magnitude(v2), magnitude(v3)))
            var largest: Float = 0
            for e in 0..<8 { largest = most[e] > largest ? most[e] : largest }
            guard largest.isFinite else { return false }
            let scale = HalfBits(largest / 127)
            let d = scale.floatValue
            guard d.isFinite else { return false }
            out.storeBytes(of: scale.bitPattern.littleEndian, toByteOffset: 2 * lane, as: UInt16.self)
            let inverse = SIMD8<Float>(repeating: d > 0 ? 1 / d : 0), dv = SIMD8<Float>(repeating: d)
            @inline(__always) func quantize(_ v: SIMD8<Float>, _ c: Int) {
                // Round to the nearest integer (ties to even) by adding and taking away 1.5·2²³: exact
                // for |v/d| ≤ 2²², and it is at most 128 here. Then clamp to ±127.
                let magic = SIMD8<Float>(repeating: 12_582_912)
                var q = (v * inverse + magic) - magic
                q = q.replacing(with: 127, where: q .> 127).replacing(with: -127, where: q .< -127)
                let quantized = dv * q
                let difference = v - quantized
                error += difference * difference
                weight += v * v
                estimate += quantized * quantized
                for e in 0..<8 {
                    out.storeBytes(of: Int8(q[e]), toByteOffset: Q8_0Block.interleavedOffset(ofStoredByte: 2 + 8 * c + e, lane: lane), as: Int8.self)
                }
            }
            quantize(v0, 0); quantize(v1, 1); quantize(v2, 2); quantize(v3, 3)
        }
        func norm(_ squares: SIMD8<Float>) -> Double { (Double(squares.sum()) * summing).squareRoot() }
        let r = (norm(error) + rounding * (norm(weight) + norm(estimate))) * (1 + 1e-6)
        guard r.isFinite else { return false }
        radius[row] = Float(r).nextUp
    }
    return true
}
