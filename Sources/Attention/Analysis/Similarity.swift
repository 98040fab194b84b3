/// The cosine of the angle between two vectors, `a·b / (|a| |b|)`, in [-1, 1]; 0 if either is zero.
/// Computed in Double.
///
/// - Throws: ``AttentionError/shapeMismatch(argument:shape:other:otherShape:reason:)`` if the vectors
///   differ in length (a cosine of the common prefix would be a silent wrong answer).
@inlinable
public func cosineSimilarity<Scalar: AttentionScalar>(_ a: [Scalar], _ b: [Scalar]) throws -> Double {
    guard a.count == b.count else {
        throw AttentionError.shapeMismatch(argument: "a", shape: [a.count], other: "b", otherShape: [b.count],
                                           reason: "the vectors must have the same length")
    }
    var dot = 0.0, aa = 0.0, bb = 0.0
    for i in a.indices {
        let (x, y) = (a[i].doubleValue, b[i].doubleValue)
        dot += x * y
        aa += x * x
        bb += y * y
    }
    return aa > 0 && bb > 0 ? dot / (aa.squareRoot() * bb.squareRoot()) : 0
}
