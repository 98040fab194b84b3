import _AttentionKernels

/// How the tiled forward pass cuts one call into work: a value computed from the shape, the outputs
/// asked for, the thread count and the instruction set, before any memory is touched.
/// `TiledAttention` runs it, ``AttentionPath/plan`` reports it, and tests check it.
///
/// Notation as in the FlashAttention papers: Br query rows by Bc keys per tile. A work item is one
/// row block of one (batch, key/value head) against one key range; with grouped-query attention and
/// few queries per head (decoding) a row block holds the queries of several heads of a group, so each
/// block of K and V is read once for all of them.
public struct ForwardPlan: Sendable, Equatable, CustomStringConvertible {
    /// The instruction set of the kernel that runs.
    public let instructionSet: KernelInstructionSet
    /// Threads that run items (at most the items there are).
    public let threads: Int
    /// Br: query rows per block.
    public let rowBlock: Int
    /// Bc: keys per block, a multiple of 32.
    public let keyBlock: Int
    /// Whether row blocks run across the query heads of a group (few queries per head).
    public let rowsGroupedAcrossHeads: Bool
    /// Key ranges per row block; above 1 each range's result is merged afterwards.
    public let keySplits: Int
    /// Keys per range, a multiple of `keyBlock`.
    public let splitLength: Int
    /// Whether K is packed transposed once for the whole call (every key block serves several row
    /// blocks) rather than per item.
    public let keysPackedOnce: Bool
    /// Independent work items.
    public let workItems: Int
    /// Floats of scratch memory each thread uses (see `ForwardScratchLayout`).
    public let scratchFloatsPerThread: Int

    /// Query rows per block, and keys per block for an instruction set: the kernel module's geometry
    /// (`RegisterShape.rowBlock` and `RegisterShape.keyBlock(headDimension:rowsPerBlock:)` in `_AttentionKernels`,
    /// with the measurements behind them), read from the kernels compiled for that set.
    static let rowBlock = RegisterShape.rowBlock
    static func keyBlock(headDimension D: Int, instructionSet: KernelInstructionSet, rowsPerBlock: Int) -> Int {
        instructionSet.kernels.registers.keyBlock(headDimension: D, rowsPerBlock: rowsPerBlock)
    }

    /// Below this many multiply-adds (`B·Hq·Nq·Nk·(D + Dv)`) a call runs on one thread: handing items
    /// to another thread and waiting for them costs more than they take. Once 2²¹ (measured on a Zen
    /// 3 when an idle worker slept between loops: a decoding step of 9 query heads over 3 key/value
    /// heads, D = 64, took as long on two threads as on one up to 2048 cached keys). With the pool's
    /// workers spinning between loops, SmolLM2 decoding at 840-904 cached keys ran 129-144 tokens/s
    /// with 2²¹ and 152-166 with 2¹⁷, alternating three runs each (AMD Zen 4, 2 threads); Gemma 3
    /// (4 heads over 1 of 256) was the same within the noise, and short contexts stay on one thread.
    public static let singleThreadWork = 1 << 17

    /// Whether a problem of `shape` is below ``singleThreadWork`` and runs on one thread.
    static func fitsOneThread(_ s: AttentionShape) -> Bool { s.B * s.Hq * s.Nq * s.Nk * (s.D + s.Dv) < singleThreadWork }

    /// The plan for a problem of `shape`.
    /// - Parameter storage: how keys and values are stored (16-bit values need a block widened in scratch).
    init(shape s: AttentionShape, wantsWeights: Bool, threads: Int, instructionSet: KernelInstructionSet,
         storage: KeyValueStorage = .float32) {
        let Br = Self.rowBlock
        let threads = Self.fitsOneThread(s) ? 1 : threads
        let grouped = s.Nq < Br / 2 && s.groupSize > 1
        let Bc = Self.keyBlock(headDimension: max(s.D, s.Dv), instructionSet: instructionSet,
                               rowsPerBlock: min(Br, grouped ? s.groupSize * s.Nq : s.Nq))
        let rowBlocks = ForwardDescriptor.rowBlocksPerGroup(queries: s.Nq, groupSize: s.groupSize, rowBlock: Br,
                                                            rowsAlignedToHeads: !grouped)
        let keyBlocks = (s.Nk + Bc - 1) / Bc
        // Too few items to occupy every thread: split the keys too, and merge the partial results.
        // Weights need every key of a row in one item, so they are never split.
        let unsplit = s.B * s.Hkv * rowBlocks
        var splitLength = keyBlocks * Bc, splits = 1
        if !wantsWeights, unsplit < 2 * threads, keyBlocks >= 4 {
            let wanted = min((4 * threads + unsplit - 1) / unsplit, keyBlocks / 2)
            splitLength = ((keyBlocks + wanted - 1) / wanted) * Bc
            splits = (s.Nk + splitLength - 1) / splitLength
        }
        self.instructionSet = instructionSet
        self.rowBlock = Br
        self.keyBlock = Bc
        self.rowsGroupedAcrossHeads = grouped
        self.keySplits = splits
        self.splitLength = splitLength
        self.keysPackedOnce = rowBlocks >= 2
        self.workItems = unsplit * splits
        self.threads = max(1, min(threads, workItems))
        self.scratchFloatsPerThread = ForwardScratchLayout(rows: Br, D: s.D, Dv: s.Dv, keyBlock: Bc, storage: storage).floats
    }

    /// Sets the descriptor's tiling fields to this plan.
    func apply(to d: inout ForwardDescriptor) {
        d.rowBlock = rowBlock
        d.keyBlock = keyBlock
        d.rowsAlignedToHeads = !rowsGroupedAcrossHeads
        d.splits = keySplits
        d.splitLength = splitLength
    }

    /// The plan in one line: tiles, key splits, threads.
    public var description: String {
        "\(threads) thread(s), \(workItems) work items of \(rowBlock) query rows × \(keyBlock)-key blocks"
            + (rowsGroupedAcrossHeads ? ", rows grouped across the query heads of each key/value head" : "")
            + (keySplits > 1 ? ", keys split \(keySplits) ways and merged" : "")
            + (keysPackedOnce ? ", keys packed once" : "")
    }
}
