import Foundation
import _AttentionKernels

/// Runs the tiled kernel for a validated Float problem: runs its ``ForwardPlan`` (tiles, key splits,
/// packing), keeps every buffer alive while the workers run, and merges split results.
enum TiledAttention {
    /// Where the kernel reads keys and values: the problem's own Float arrays, or a KV cache's storage
    /// (16-bit elements, heads `rowsPerHead` rows apart, per batch element a first row). The pointers
    /// must stay valid for the call.
    struct KeyValueSource {
        var keys: UnsafeRawPointer, values: UnsafeRawPointer
        var storage: KeyValueStorage
        var rowsPerHead: Int
        var rowOffsets: [Int]? = nil
        /// Keys interleaved by sixteen positions (a KV cache's layout, ``keyTilePositions``).
        var keysInterleaved = false
    }

    static func forward(
        _ p: AttentionProblem<Float>, outputs: AttentionOutputs, isa: KernelInstructionSet, threads: Int
    ) -> AttentionResult<Float> {
        p.key.withUnsafeBufferPointer { k in
            p.value.withUnsafeBufferPointer { v in
                // Validated shapes have no empty extent, so the arrays have storage.
                let source = KeyValueSource(keys: UnsafeRawPointer(k.baseAddress!), values: UnsafeRawPointer(v.baseAddress!),
                                            storage: .float32, rowsPerHead: p.shape.Nk)
                return forward(p, source: source, outputs: outputs, isa: isa, threads: threads)
            }
        }
    }

    static func forward(
        _ p: AttentionProblem<Float>, source: KeyValueSource, outputs: AttentionOutputs, isa: KernelInstructionSet,
        threads: Int
    ) -> AttentionResult<Float> {
        let s = p.shape
        let kernels = isa.kernels
        // The kernel writes every element of its outputs exactly once, so they start uninitialized.
        func uninitialized(_ count: Int) -> [Float] {
            // Not for 0: that writes the count of the shared empty array, a (harmless) race between
            // concurrent calls that ThreadSanitizer reports.
            count == 0 ? [] : [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
        }
        var output = uninitialized(s.B * s.Hq * s.Nq * s.Dv)
        var lse = outputs.contains(.logSumExp) ? uninitialized(s.B * s.Hq * s.Nq) : []
        var weights = outputs.contains(.weights) ? uninitialized(s.B * s.Hq * s.Nq * s.Nk) : []
        let plan = ForwardPlan(shape: s, wantsWeights: outputs.contains(.weights), threads: threads, instructionSet: isa,
                               storage: source.storage)
        let rowOffsets = source.rowOffsets ?? [], shifts = p.mask.diagonalShifts ?? []

        p.query.withUnsafeBufferPointer { q in
        rowOffsets.withUnsafeBufferPointer { rowOffsets in
        shifts.withUnsafeBufferPointer { shifts in
        withPinned(&output, &lse, &weights) { o, lse, w in
        withMaskPointers(p) { keyLengths, booleans, bias in
            guard let q = q.baseAddress, let o = o.baseAddress else { return }
            var d = descriptor(p, q: q, k: source.keys, v: source.values, o: o, keyLengths: keyLengths, booleans: booleans)
            d.storage = source.storage
            d.keyRowsPerHead = source.rowsPerHead
            d.keysInterleaved = source.keysInterleaved
            d.keyRowOffsets = source.rowOffsets == nil ? nil : rowOffsets.baseAddress
            d.diagonalShifts = p.mask.diagonalShifts == nil ? nil : shifts.baseAddress
            // An empty array may still have a base address (shared empty storage): never hand it out.
            d.lse = lse.isEmpty ? nil : lse.baseAddress
            d.weights = w.isEmpty ? nil : w.baseAddress
            d.bias = bias
            plan.apply(to: &d)
            assert(d.items == plan.workItems, "the plan and the kernel count work items differently")
            var partialOutput = uninitialized(d.splits > 1 ? s.B * s.Hq * s.Nq * d.splits * s.Dv : 0)
            var partialLSE = uninitialized(d.splits > 1 ? s.B * s.Hq * s.Nq * d.splits : 0)
            // Each key block serves several row blocks: pack K transposed once, up front.
            let prepack = plan.keysPackedOnce
            // From the scratch pool: pages an earlier call touched, not fresh ones (see `ScratchPool`).
            ScratchPool.shared.withBuffer(count: prepack ? s.B * s.Hkv * d.keyBlocks * s.D * d.keyBlock : 0) { packedBase in
            withPinned(&partialOutput, &partialLSE) { partialOutput, partialLSE in
                if prepack {
                    let blockFloats = d.D * d.keyBlock
                    withUnsafePointer(to: d) { descriptor in
                        parallelFor(s.B * s.Hkv * d.keyBlocks, threads: plan.threads) { block, _ in
                            kernels.packKeys(descriptor, block, packedBase + block * blockFloats)
                        }
                    }
                    d.packedKeys = UnsafePointer(packedBase)
                }
                if d.splits > 1 {
                    d.partialOutput = partialOutput.baseAddress
                    d.partialLogSumExp = partialLSE.baseAddress
                }
                let scratch = (0..<plan.threads).map { _ in ForwardScratch(floats: plan.scratchFloatsPerThread, rows: d.rowBlock + 8) }
                withUnsafePointer(to: d) { descriptor in
                    parallelFor(d.items, threads: plan.threads) { item, worker in
                        kernels.forward(descriptor, item, scratch[worker])
                    }
                    if d.splits > 1 {
                        let rows = s.B * s.Hq * s.Nq, chunk = max(1, (rows + 4 * plan.threads - 1) / (4 * plan.threads))
                        parallelFor((rows + chunk - 1) / chunk, threads: plan.threads) { item, _ in
                            kernels.merge(descriptor, (item * chunk)..<min(rows, (item + 1) * chunk))
                        }
                    }
                }
            }
            }
        }
        }
        }
        }
        }
        let path = AttentionPath(tiled: isa, plan: plan)
        return AttentionResult(
            output: Tensor(uncheckedShape: s.outputShape, scalars: output),
            weights: outputs.contains(.weights) ? Tensor(uncheckedShape: s.weightsShape, scalars: weights) : nil,
            logSumExp: outputs.contains(.logSumExp) ? Tensor(uncheckedShape: s.logSumExpShape, scalars: lse) : nil,
            path: path)
    }

    /// The descriptor fields every pass shares: extents, scale, the structural mask and boolean masks.
    static func descriptor(
        _ p: AttentionProblem<Float>, q: UnsafePointer<Float>, k: UnsafeRawPointer, v: UnsafeRawPointer,
        o: UnsafeMutablePointer<Float>, keyLengths: UnsafePointer<Int>?, booleans: UnsafeBufferPointer<BroadcastView<Bool>>
    ) -> ForwardDescriptor {
        let s = p.shape
        var d = ForwardDescriptor(q: q, k: k, v: v, o: o)
        (d.B, d.Hq, d.Hkv, d.Nq, d.Nk, d.D, d.Dv) = (s.B, s.Hq, s.Hkv, s.Nq, s.Nk, s.D, s.Dv)
        d.keyRowsPerHead = s.Nk
        d.scaleLog2 = Float(p.scale * 1.442_695_040_888_963_4)
        d.lowerOffset = p.mask.lowerOffset ?? -ForwardDescriptor.unbounded
        d.upperOffset = p.mask.upperOffset ?? ForwardDescriptor.unbounded
        d.keyLengths = keyLengths
        d.booleanMasks = booleans
        d.rowBlock = ForwardPlan.rowBlock
        return d
    }

    /// Calls `body` with raw pointers to the mask's key lengths, boolean masks and bias, valid for
    /// the duration of the call.
    static func withMaskPointers(
        _ p: AttentionProblem<Float>,
        _ body: (UnsafePointer<Int>?, UnsafeBufferPointer<BroadcastView<Bool>>, BroadcastView<Float>?) -> Void
    ) {
        // What the closures need, read out of `p` first: a closure that captures the whole problem
        // copied it (every array in it retained and released) at each level of withPinned's nesting,
        // an eighth of a decoding step's attention call (perf, 48 keys, AMD Zen 4).
        let keyLengths = p.mask.keyLengths, booleans = p.mask.booleans, bias = p.bias
        let lengths = keyLengths ?? [], biasScalars = bias?.scalars ?? []
        lengths.withUnsafeBufferPointer { lengths in
        biasScalars.withUnsafeBufferPointer { biasBuffer in
            let lengthsPointer = keyLengths == nil ? nil : lengths.baseAddress
            let biasView = bias.flatMap { bias in biasBuffer.baseAddress.map { BroadcastView(base: $0, strides: bias.strides) } }
            guard !booleans.isEmpty else { return body(lengthsPointer, UnsafeBufferPointer(start: nil, count: 0), biasView) }
            withPinned(booleans.map(\.scalars)) { scalars in
                var views: [BroadcastView<Bool>] = []
                for (mask, buffer) in zip(booleans, scalars) {
                    guard let base = buffer.baseAddress else { return }
                    views.append(BroadcastView(base: base, strides: mask.strides))
                }
                views.withUnsafeBufferPointer { body(lengthsPointer, $0, biasView) }
            }
        }
        }
    }
}

extension TiledAttention {
    /// The tiled backward pass for a validated Float problem: forward (for O and the log-sum-exp, unless
    /// saved), then
    /// one item per key block (its dK and dV; dQ and the bias gradient into per-worker buffers, summed).
    /// `saved`: the forward pass's output and log-sum-exp for these inputs, when the caller has them.
    static func backward(
        _ p: AttentionProblem<Float>, outputGradient: [Float], saved: (output: [Float], logSumExp: [Float])? = nil,
        isa: KernelInstructionSet, threads: Int
    ) -> (dQ: [Float], dK: [Float], dV: [Float], dBias: [Float]?, detail: String) {
        let s = p.shape
        let output: [Float], lse: [Float]
        if let saved {
            (output, lse) = saved
        } else {
            let forwardResult = forward(p, outputs: .logSumExp, isa: isa, threads: threads)
            (output, lse) = (forwardResult.output.scalars, forwardResult.logSumExp?.scalars ?? [])
        }
        let kernels = isa.kernels
        // Not zeroed here: every key item writes all of its keys' rows of dK and dV, and dQ is zeroed
        // head by head on the workers (fresh pages, faulted in once, on both threads instead of one).
        func uninitialized(_ count: Int) -> [Float] { [Float](unsafeUninitializedCapacity: count) { _, n in n = count } }
        var dQ = uninitialized(p.query.count), dK = uninitialized(p.key.count), dV = uninitialized(p.value.count)
        let biasCount = p.bias?.scalars.count ?? 0
        var dBias = [Float](repeating: 0, count: biasCount)
        var detail = ""
        withPinned([p.query, p.key, p.value, output, lse, outputGradient]) { inputs in
        withPinned(&dQ, &dK, &dV, &dBias) { dQ, dK, dV, dBias in
        withMaskPointers(p) { keyLengths, booleans, bias in
            guard let q = inputs[0].baseAddress, let k = inputs[1].baseAddress, let v = inputs[2].baseAddress,
                  let o = inputs[3].baseAddress, let l = inputs[4].baseAddress, let dO = inputs[5].baseAddress,
                  let dQ = dQ.baseAddress, let dK = dK.baseAddress, let dV = dV.baseAddress else {
                // Not reached (validated shapes have no empty tensor), but the gradients are never left unwritten.
                for buffer in [dQ, dK, dV] { buffer.initialize(repeating: 0) }
                return
            }
            var d = descriptor(p, q: q, k: k, v: v, o: UnsafeMutablePointer(mutating: o), keyLengths: keyLengths, booleans: booleans)
            // The backward's tiles are the wide ones (8 × 32, keys in 32-key panels) on every instruction set.
            d.keyBlock = RegisterShape.wide.keyBlock(headDimension: max(s.D, s.Dv), rowsPerBlock: RegisterShape.rowBlock)
            d.bias = bias
            let heads = s.B * s.Hq, stride = BackwardDescriptor.transposedStride(rows: s.Nq)
            let paddedD = BackwardDescriptor.paddedFeatures(s.D), paddedDv = BackwardDescriptor.paddedFeatures(s.Dv)
            let headFloats = s.Nq * s.D
            // A small problem runs on one thread: the transposed copies and dQ buffers a second thread
            // would read from the first one's cache cost more than its share of the products (Zen 4,
            // B = 2, H = 4, N = 64, D = 32 causal: 0.31 ms on two threads, 0.27 on one).
            let small = s.B * s.Hq * s.Nq * s.Nk * (s.D + s.Dv) < 1 << 22
            let workers = small ? 1 : max(1, min(threads, s.B * s.Hkv * d.keyBlocks))
            // From the pool (pages earlier calls touched): Q and dO transposed, and a dQ buffer per worker
            // after the first (worker 0 accumulates straight into dQ; the others are summed after).
            let transposedFloats = heads * (paddedD + paddedDv) * stride, dQFloats = heads * headFloats
            ScratchPool.shared.withBuffer(count: transposedFloats + (workers - 1) * dQFloats) { pooled in
            let qT = pooled, dOT = pooled + heads * paddedD * stride
            let buffers = [dQ] + (1..<workers).map { pooled + transposedFloats + ($0 - 1) * dQFloats }
            let bd = BackwardDescriptor(forward: d, dO: dO, output: o, logSumExp: l, dQ: dQ, dK: dK, dV: dV, scale: Float(p.scale),
                                        transposedQuery: qT, transposedOutputGradient: dOT)
            let scratch = (0..<workers).map { _ in ForwardScratch(floats: bd.scratchFloats, rows: d.rowBlock + 8) }
            // Per head, on the workers: Q and dO transposed for the key-side products (see
            // BackwardDescriptor), and the dQ buffers zeroed.
            parallelFor(heads, threads: workers) { head, _ in
                transposeForBackward(q + head * headFloats, rows: s.Nq, columns: s.D, stride: stride, into: qT + head * paddedD * stride)
                transposeForBackward(dO + head * s.Nq * s.Dv, rows: s.Nq, columns: s.Dv, stride: stride,
                                     into: dOT + head * paddedDv * stride)
                for buffer in buffers { (buffer + head * headFloats).initialize(repeating: 0, count: headFloats) }
            }
            // The bias gradient likewise: a broadcast bias entry collects from many items.
            let extraBias = bias == nil ? [] : (1..<max(1, workers)).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: biasCount) }
            defer { extraBias.forEach { $0.deallocate() } }
            for buffer in extraBias { buffer.initialize(repeating: 0, count: biasCount) }
            let biasBuffers: [UnsafeMutablePointer<Float>?] = bias == nil ? Array(repeating: nil, count: workers) : [dBias.baseAddress] + extraBias
            withUnsafePointer(to: bd) { descriptor in
                parallelFor(bd.keyItems, threads: workers) { item, worker in
                    kernels.backward(descriptor, item, scratch[worker], buffers[worker], biasBuffers[worker])
                }
            }
            for buffer in buffers.dropFirst() { for n in 0..<dQFloats { dQ[n] += buffer[n] } }
            for buffer in extraBias { for n in 0..<biasCount { dBias[n] += buffer[n] } }
            detail = "\(saved == nil ? "forward recomputed, " : "saved forward, ")\(workers) thread(s), \(bd.keyItems) key-block items, dQ\(bias == nil ? "" : " and the bias gradient") summed over \(workers) worker buffer(s)"
            }
        }
        }
        }
        return (dQ, dK, dV, p.bias == nil ? nil : dBias, detail)
    }
}
