/// Arithmetic on integers that come from outside: an API argument, a flag, a JSON field, a config or
/// file-header value. Any of them can be `Int.min`, `-1`, `0` or `Int.max`, so no operation here traps:
/// a sum or product either saturates at the ends of `Int` (where the caller compares the result with a
/// limit afterwards) or reports the overflow (where the caller refuses it with a typed error).
///
/// Use these where an outside value enters a sum or product; values already bounded by an allocation
/// (tensor extents, indices into them) need not.
extension Int {
    /// `self + other`, or `Int.max` / `Int.min` where the exact sum lies beyond them.
    @inlinable package func saturatingAdding(_ other: Int) -> Int {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }

    /// `self - other`, or `Int.max` / `Int.min` where the exact difference lies beyond them.
    @inlinable package func saturatingSubtracting(_ other: Int) -> Int {
        let (difference, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other < 0 ? .max : .min) : difference
    }

    /// `self × other`, or `Int.max` / `Int.min` where the exact product lies beyond them.
    @inlinable package func saturatingMultiplied(by other: Int) -> Int {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? ((self < 0) == (other < 0) ? .max : .min) : product
    }

    /// The nearest value within `range`.
    @inlinable package func clamped(to range: ClosedRange<Int>) -> Int {
        Swift.min(Swift.max(self, range.lowerBound), range.upperBound)
    }
}

/// The product of `extents` (a tensor's element count, a batch's work), checked before anything is
/// allocated: a user's flags or file can ask for sizes that overflow `Int` or exceed any memory.
///
/// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` naming `argument` when an extent is
///   negative, or the product overflows or exceeds `limit`.
public func checkedElementCount(_ extents: [Int], argument: String, atMost limit: Int = 1 << 34) throws -> Int {
    guard extents.allSatisfy({ $0 >= 0 }) else {
        throw AttentionError.invalidArgument(argument: argument, reason: "sizes \(extents) include a negative one")
    }
    let (product, overflow) = Tensor<Float>.elementCount(reportingOverflow: extents)
    guard !overflow, product <= limit else {
        throw AttentionError.invalidArgument(
            argument: argument, reason: "sizes \(extents) make \(overflow ? "more than 2^63" : "\(product)") elements, more than the \(limit) allowed")
    }
    return product
}

/// Checks that an outside integer lies in `range`, naming it.
///
/// - Throws: ``AttentionError/invalidArgument(argument:reason:)``: "must be in 1...64, got -1".
package func checkedInteger(_ value: Int, in range: ClosedRange<Int>, argument: String) throws -> Int {
    guard range.contains(value) else {
        let bounds = range.upperBound == .max ? "at least \(range.lowerBound)" : "in \(range.lowerBound)...\(range.upperBound)"
        throw AttentionError.invalidArgument(argument: argument, reason: "must be \(bounds), got \(value)")
    }
    return value
}
