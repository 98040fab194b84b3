/// Where a block of keys and values sits in memory its caller owns: `[B, Hkv, rowsPerHead, D]` keys
/// and `[B, Hkv, rowsPerHead, Dv]` values, of which the block is rows `firstRow ..< firstRow + count`
/// of every head. Ring attention attends to a block of the message it received this way, without
/// copying it out.
package struct KeyValueRows<Scalar: AttentionScalar> {
    package let keys: UnsafeBufferPointer<Scalar>
    package let values: UnsafeBufferPointer<Scalar>
    package let batchSize: Int
    package let heads: Int
    package let rowsPerHead: Int
    package let firstRow: Int
    package let count: Int
    package let keyDimension: Int
    package let valueDimension: Int

    package init(keys: UnsafeBufferPointer<Scalar>, values: UnsafeBufferPointer<Scalar>, batchSize: Int, heads: Int,
                 rowsPerHead: Int, firstRow: Int, count: Int, keyDimension: Int, valueDimension: Int) {
        (self.keys, self.values, self.batchSize, self.heads) = (keys, values, batchSize, heads)
        (self.rowsPerHead, self.firstRow, self.count) = (rowsPerHead, firstRow, count)
        (self.keyDimension, self.valueDimension) = (keyDimension, valueDimension)
    }

    /// The block's rows of `buffer` (`width` scalars each), copied: `[B, Hkv, count, width]`.
    func copied(_ buffer: UnsafeBufferPointer<Scalar>, width: Int) -> [Scalar] {
        var rows: [Scalar] = []
        rows.reserveCapacity(batchSize * heads * count * width)
        for head in 0 ..< batchSize * heads {
            let start = (head * rowsPerHead + firstRow) * width
            rows.append(contentsOf: buffer[start ..< start + count * width])
        }
        return rows
    }
}

/// Scaled dot-product attention of rank-4 `query` over keys and values in caller memory: the same
/// semantics and paths as ``scaledDotProductAttention(query:key:value:mask:bias:scale:returning:options:)``;
/// the tiled kernel reads the rows where they are. For the package's own modules.
package func scaledDotProductAttention<Scalar: AttentionScalar>(
    query: Tensor<Scalar>, rows: KeyValueRows<Scalar>, mask: AttentionMask, scale: Scalar?,
    returning outputs: AttentionOutputs, options: AttentionOptions
) throws -> AttentionResult<Scalar> {
    let kernels = Scalar._kernels
    let execution = try options.execution(tiledComputes: kernels != nil, scalar: Scalar.self)
    guard let isa = execution.instructionSet, let kernels else {
        let key = Tensor(uncheckedShape: [rows.batchSize, rows.heads, rows.count, rows.keyDimension],
                         scalars: rows.copied(rows.keys, width: rows.keyDimension))
        let value = Tensor(uncheckedShape: [rows.batchSize, rows.heads, rows.count, rows.valueDimension],
                           scalars: rows.copied(rows.values, width: rows.valueDimension))
        return try scaledDotProductAttention(query: query, key: key, value: value, mask: mask, scale: scale,
                                             returning: outputs, options: options)
    }
    let q = query.shape
    guard q.count == 4, q[0] == rows.batchSize, q[3] == rows.keyDimension, q[1] % rows.heads == 0, rows.count > 0,
          rows.firstRow >= 0, rows.firstRow + rows.count <= rows.rowsPerHead,
          rows.keys.count >= rows.batchSize * rows.heads * rows.rowsPerHead * rows.keyDimension,
          rows.values.count >= rows.batchSize * rows.heads * rows.rowsPerHead * rows.valueDimension,
          let keys = rows.keys.baseAddress, let values = rows.values.baseAddress else {
        throw AttentionError.invalidShape(
            argument: "rows", shape: q, reason: "the query does not fit key/value rows [\(rows.batchSize), \(rows.heads), \(rows.rowsPerHead), \(rows.keyDimension)]")
    }
    let shape = AttentionShape(B: q[0], Hq: q[1], Hkv: rows.heads, Nq: q[2], Nk: rows.count, D: q[3],
                               Dv: rows.valueDimension, inputRank: 4)
    let resolved = try ResolvedMask(mask, batchSize: shape.B, heads: shape.Hq, queryLength: shape.Nq, keyLength: shape.Nk,
                                    weightsShape: shape.weightsShape)
    let problem = AttentionProblem(shape: shape, query: query.scalars, key: [], value: [], mask: resolved, bias: nil,
                                   scale: try AttentionProblem.checkedScale(scale, headDimension: shape.D))
    let source = TiledAttention.KeyValueSource(
        keys: UnsafeRawPointer(keys), values: UnsafeRawPointer(values), storage: .float32, rowsPerHead: rows.rowsPerHead,
        rowOffsets: Array(repeating: rows.firstRow, count: shape.B))
    return kernels.attentionOverSource(problem, source, outputs, isa, execution.threads)
}
