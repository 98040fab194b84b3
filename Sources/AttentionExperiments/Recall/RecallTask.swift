import Attention

/// Associative recall: a sequence of `length` key→value pairs with distinct keys, then a query key;
/// the answer is the value paired with that key.
///
/// Each position holds one pair: its vector is the sum of the key's and the value's embeddings, so a
/// single attention layer can find the matching position from the query and read the value there.
/// Keys come from `keyVocabulary` ids (so `length ≤ keyVocabulary`), values from `valueVocabulary`
/// ids; chance accuracy is `1 / valueVocabulary`.
public struct RecallBatch: Sendable {
    /// Sequences in the batch.
    public let count: Int
    /// Pairs per sequence.
    public let length: Int
    /// `[count · length]`: the keys of each sequence, distinct within a sequence.
    public let keys: [Int]
    /// `[count · length]`: the value paired with each key.
    public let values: [Int]
    /// `[count]`: the queried key of each sequence.
    public let queries: [Int]
    /// `[count]`: the position of the queried key in its sequence.
    public let positions: [Int]
    /// `[count]`: the value to recall.
    public var targets: [Int] { (0..<count).map { values[$0 * length + positions[$0]] } }

    /// Draws `count` sequences.
    ///
    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` if a size is not positive or `length`
    ///   exceeds `keyVocabulary`.
    public init(count: Int, length: Int, keyVocabulary: Int, valueVocabulary: Int, using generator: inout SplitMix64) throws {
        guard count > 0, length > 0, valueVocabulary > 0 else {
            throw AttentionError.invalidArgument(
                argument: "count/length/valueVocabulary", reason: "must be positive, got \(count), \(length), \(valueVocabulary)")
        }
        guard length <= keyVocabulary else {
            throw AttentionError.invalidArgument(
                argument: "length", reason: "\(length) pairs need at least \(length) distinct keys; the key vocabulary has \(keyVocabulary)")
        }
        var keys: [Int] = [], values: [Int] = [], queries: [Int] = [], positions: [Int] = []
        keys.reserveCapacity(count * length)
        var pool = Array(0..<keyVocabulary)
        for _ in 0..<count {
            // A partial Fisher–Yates shuffle: the first `length` entries are distinct random keys.
            for i in 0..<length {
                let j = i + Int(generator.next() % UInt64(keyVocabulary - i))
                pool.swapAt(i, j)
            }
            keys += pool[0..<length]
            for _ in 0..<length { values.append(Int(generator.next() % UInt64(valueVocabulary))) }
            let position = Int(generator.next() % UInt64(length))
            positions.append(position)
            queries.append(pool[position])
        }
        self.count = count
        self.length = length
        self.keys = keys
        self.values = values
        self.queries = queries
        self.positions = positions
    }
}

/// The key and value embedding tables shared by the recall models' inputs.
struct PairEmbedding {
    var keys: Embedding<Float>
    var values: Embedding<Float>
    var dimension: Int { keys.table.shape[1] }

    init(keyVocabulary: Int, valueVocabulary: Int, dimension: Int, seed: UInt64) throws {
        keys = try Embedding(vocabulary: keyVocabulary, dimension: dimension, seed: seed)
        values = try Embedding(vocabulary: valueVocabulary, dimension: dimension, seed: seed &+ 1)
    }

    /// `[count, length, d]`: key embedding + value embedding at every position.
    func pairs(_ batch: RecallBatch) throws -> Tensor<Float> {
        let k = try keys(batch.keys), v = try values(batch.values)
        return try Tensor(shape: [batch.count, batch.length, dimension], scalars: zip(k.scalars, v.scalars).map { $0 + $1 })
    }

    /// `[count, d]`: the query keys' embeddings.
    func queries(_ batch: RecallBatch) throws -> Tensor<Float> { try keys(batch.queries) }

    /// The tables' gradients from the gradients of ``pairs(_:)`` and ``queries(_:)``, in
    /// ``namedParameters`` order.
    func backward(_ batch: RecallBatch, pairs dPairs: Tensor<Float>, queries dQueries: Tensor<Float>) throws -> [Tensor<Float>] {
        let flat = try dPairs.reshaped([batch.count * batch.length, dimension])
        let dKeys = try keys.backward(ids: batch.keys, outputGradient: flat)
        let dQueryKeys = try keys.backward(ids: batch.queries, outputGradient: dQueries.reshaped([batch.count, dimension]))
        let dValues = try values.backward(ids: batch.values, outputGradient: flat)
        return [try Tensor(shape: dKeys.shape, scalars: zip(dKeys.scalars, dQueryKeys.scalars).map { $0 + $1 }), dValues]
    }

}

extension PairEmbedding: NamedParameters {
    /// `keys.weight` and `values.weight`, the two tables.
    var namedParameters: [(name: String, tensor: Tensor<Float>)] {
        keys.namedParameters(prefixedBy: "keys") + values.namedParameters(prefixedBy: "values")
    }

    func replacingParameters(_ p: [String: Tensor<Float>]) throws -> PairEmbedding {
        var copy = self
        copy.keys = try keys.replacingParameters(p.parameters(under: "keys"))
        copy.values = try values.replacingParameters(p.parameters(under: "values"))
        return copy
    }
}
