import Attention

// Head split and merge for the decoders: rows of `[B·T, parts·C]` (a fused projection's outputs side
// by side) to and from heads `[B, H, T, C/H]`.

/// Part `part` of `parts` (query, key, value) of `[B·T, parts·C]` as heads `[B, H, T, C/H]`.
func splitHeads(_ x: Tensor<Float>, batch: Int, tokens t: Int, width w: Int, heads h: Int, part: Int, parts: Int) throws -> Tensor<Float> {
    let d = w / h, stride = parts * w
    let out = [Float](unsafeUninitializedCapacity: batch * t * w) { out, count in
        x.withUnsafeBufferPointer { s in
            guard let source = s.baseAddress, let destination = out.baseAddress else { return }
            for b in 0..<batch {
                for head in 0..<h {
                    for i in 0..<t {
                        (destination + ((b * h + head) * t + i) * d).initialize(from: source + (b * t + i) * stride + part * w + head * d, count: d)
                    }
                }
            }
        }
        count = batch * t * w
    }
    return try Tensor(shape: [batch, h, t, d], scalars: out)
}

/// Heads `[B, H, T, C/H]`, one tensor per part, side by side as `[B·T, parts·C]`.
func mergeHeads(_ parts: [Tensor<Float>], batch: Int, tokens t: Int, width w: Int, heads h: Int) throws -> Tensor<Float> {
    let d = w / h, stride = parts.count * w
    var out = [Float](repeating: 0, count: batch * t * stride)
    out.withUnsafeMutableBufferPointer { o in
        guard let destination = o.baseAddress else { return }
        for (part, tensor) in parts.enumerated() {
            tensor.withUnsafeBufferPointer { s in
                guard let source = s.baseAddress else { return }
                for b in 0..<batch {
                    for head in 0..<h {
                        for i in 0..<t {
                            (destination + (b * t + i) * stride + part * w + head * d).update(from: source + ((b * h + head) * t + i) * d, count: d)
                        }
                    }
                }
            }
        }
    }
    return try Tensor(shape: [batch * t, stride], scalars: out)
}
