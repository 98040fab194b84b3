/// A mask checked against one problem's extents, ready to answer "may query i see key j?".
///
/// Construction validates everything (window bounds, one key length per batch element, boolean
/// masks broadcastable to the weights), so evaluation cannot fail.
package struct ResolvedMask: Sendable {
    /// The structural part, per batch element: the band of visible keys for query `i` is
    /// `max(0, i + lowerOffset) ... min(keyLimit(b) - 1, i + upperOffset)`.
    package let lowerOffset: Int?   // nil: no lower bound
    package let upperOffset: Int?   // nil: no upper bound
    package let keyLengths: [Int]?
    let booleans: [Broadcast<Bool>]
    let keyLength: Int
    /// Per batch element, added to both offsets: over a KV cache whose batch elements hold different
    /// numbers of keys, each one's bottom-right diagonal ends at its own last key. nil: all 0.
    let diagonalShifts: [Int]?

    /// - Parameter diagonalShifts: per batch element, where its bottom-right diagonal sits relative
    ///   to the common one (`keys held - keyLength`, never positive); only for a KV cache.
    package init(
        _ mask: AttentionMask, batchSize: Int, heads: Int, queryLength: Int, keyLength: Int,
        weightsShape: [Int], diagonalShifts: [Int]? = nil
    ) throws {
        var lower: Int? = nil
        var upper: Int? = nil
        var lengths: [Int]? = nil
        var booleans: [Broadcast<Bool>] = []
        // Offsets and window sides are the caller's integers (`Int.max` for "no limit" among them).
        // Beyond ±reach an offset changes nothing: with i < Nq, j < Nk and a diagonal shift in
        // -Nk...0, `i + lower + shift` is below 0 for every query once lower ≤ -reach, and past the
        // last key once lower ≥ reach (likewise for upper). Clamped to that range where they are
        // read, they cannot overflow in any sum below or in the kernels.
        let reach = 2.saturatingMultiplied(by: queryLength.saturatingAdding(keyLength)).saturatingAdding(2)
        func tighten(lower newLower: Int?, upper newUpper: Int?) {
            if let newLower = newLower?.clamped(to: -reach...reach) { lower = Swift.max(lower ?? newLower, newLower) }
            if let newUpper = newUpper?.clamped(to: -reach...reach) { upper = Swift.min(upper ?? newUpper, newUpper) }
        }
        for component in mask.components {
            switch component {
            case .causal(let alignment):
                tighten(lower: nil,
                        upper: alignment.diagonalOffset(queryLength: queryLength, keyLength: keyLength))
            case let .slidingWindow(left, right, alignment):
                guard left >= 0, right >= 0 else {
                    throw AttentionError.invalidArgument(
                        argument: "mask",
                        reason: "sliding window (left: \(left), right: \(right)) must not have a negative side")
                }
                // A side wider than the sequences is no limit on that side.
                let diagonal = alignment.diagonalOffset(queryLength: queryLength, keyLength: keyLength)
                tighten(lower: diagonal.saturatingSubtracting(Swift.min(left, reach)),
                        upper: diagonal.saturatingAdding(Swift.min(right, reach)))
            case let .diagonalBand(lowerOffset, upperOffset):
                tighten(lower: lowerOffset, upper: upperOffset)
            case .keyLengths(let given):
                guard given.count == batchSize else {
                    throw AttentionError.invalidArgument(
                        argument: "keyLengths",
                        reason: "\(given.count) lengths given for a batch of \(batchSize) (one per batch element)")
                }
                if let bad = given.firstIndex(where: { $0 < 0 || $0 > keyLength }) {
                    throw AttentionError.invalidArgument(
                        argument: "keyLengths",
                        reason: "length \(given[bad]) of batch element \(bad) is outside 0...\(keyLength) (the key length)")
                }
                lengths = zip(lengths ?? given, given).map { Swift.min($0, $1) }
            case .boolean(let tensor):
                booleans.append(try Broadcast(tensor, to: weightsShape, argument: "mask"))
            }
        }
        self.lowerOffset = lower
        self.upperOffset = upper
        self.keyLengths = lengths
        self.booleans = booleans
        self.keyLength = keyLength
        self.diagonalShifts = diagonalShifts
    }

    /// Whether boolean masks restrict anything beyond the band and the key lengths.
    package var hasBooleanMasks: Bool { !booleans.isEmpty }

    /// The contiguous range of keys that the structural components (causal, window, key lengths)
    /// leave visible to query `i` of batch element `b`; boolean masks may hide more inside it.
    func keyRange(batch b: Int, query i: Int) -> Range<Int> {
        let shift = diagonalShifts?[b] ?? 0
        let start = Swift.max(0, lowerOffset.map { i + $0 + shift } ?? 0)
        var end = keyLengths?[b] ?? keyLength
        if let upperOffset { end = Swift.min(end, i + upperOffset + shift + 1) }
        return start < end ? start..<end : 0..<0
    }

    /// Whether query `i` of batch element `b`, head `h`, may attend to key `j`.
    func allows(batch b: Int, head h: Int, query i: Int, key j: Int) -> Bool {
        guard keyRange(batch: b, query: i).contains(j) else { return false }
        for boolean in booleans where !boolean[b, h, i, j] { return false }
        return true
    }
}

/// A tensor broadcast to a rank-4 target `[B, H, Nq, Nk]` without copying: trailing dimensions
/// align, and a dimension of extent 1 repeats.
struct Broadcast<Element: Sendable>: Sendable {
    let scalars: [Element]
    let strides: (Int, Int, Int, Int)

    /// - Parameter targetShape: the shape as the user sees it (rank 1 to 4); it is padded with
    ///   leading ones to rank 4 for indexing.
    init(_ tensor: Tensor<Element>, to targetShape: [Int], argument: String) throws {
        guard tensor.rank <= targetShape.count else {
            throw AttentionError.shapeMismatch(
                argument: argument, shape: tensor.shape, other: "the attention weights", otherShape: targetShape,
                reason: "it has more dimensions than the weights")
        }
        let padded = Array(repeating: 1, count: targetShape.count - tensor.rank) + tensor.shape
        var strides = Array(repeating: 0, count: padded.count)
        var stride = 1
        for axis in padded.indices.reversed() {
            let extent = padded[axis]
            guard extent == targetShape[axis] || extent == 1 else {
                throw AttentionError.shapeMismatch(
                    argument: argument, shape: tensor.shape, other: "the attention weights", otherShape: targetShape,
                    reason: "dimension \(axis - (targetShape.count - tensor.rank)) has extent \(extent), which is neither \(targetShape[axis]) nor 1")
            }
            strides[axis] = extent == 1 ? 0 : stride
            stride *= extent
        }
        let four = Array(repeating: 0, count: 4 - strides.count) + strides
        self.scalars = tensor.scalars
        self.strides = (four[0], four[1], four[2], four[3])
    }

    subscript(b: Int, h: Int, i: Int, j: Int) -> Element {
        scalars[b * strides.0 + h * strides.1 + i * strides.2 + j * strides.3]
    }
}
