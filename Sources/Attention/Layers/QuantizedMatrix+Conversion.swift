import Foundation

extension QuantizedMatrix.Format {
    /// The format a matrix of GGUF type `type` is kept in (``QuantizedMatrix/init(type:rows:columns:bytes:)``,
    /// ``QuantizedMatrix/init(gguf:name:)``): the type's own when the kernels read it, Q6_K for Q3_K,
    /// Q8_0 for IQ4_NL, nil for any other type.
    ///
    /// Q8_0 holds every IQ4_NL value exactly: `d·v[q]` with `v[q]` one of sixteen signed bytes is a
    /// Q8_0 value `d·q₈` with `q₈ = v[q]`, under the same half-precision `d` (34 bytes per 32 values
    /// where the file has 18). llama.cpp writes IQ4_NL for the Q2_K, Q3_K and IQ4_XS matrices whose
    /// rows are not a whole number of 256-value super-blocks: most of SmolLM2's (576 values).
    ///
    /// Q6_K holds every Q3_K value exactly. A Q3_K value is `(d·(s − 32))·v` with `v = q − 4·(1 − h)`
    /// in −4 ... 3 and `s` a 6-bit scale per 16 values; Q6_K's is `(d·s₈)·(q₆ − 32)` with a signed
    /// 8-bit scale per 16 values and a 6-bit `q₆`: `s₈ = s − 32` and `q₆ = v + 32`, under the same
    /// half-precision `d`. So the copy costs 210 bytes per 256 values where the file has 110, and
    /// the products run on Q6_K's integer kernels rather than on Float weights (1,024 bytes).
    public init?(keeping type: GGUF.TensorType) {
        switch type {
        case .Q3_K: self = .q6_k
        case .IQ4_NL: self = .q8_0
        default: self.init(type)
        }
    }
}

extension QuantizedMatrix {
    /// A matrix over blocks of a GGUF type, kept in the format ``Format/init(keeping:)`` names: the
    /// blocks themselves, or for Q3_K and IQ4_NL a Q6_K or Q8_0 copy of them (the same values, exactly).
    /// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` if the kernels keep no format
    ///   for `type` (argument `type`), or for the shapes and sizes
    ///   ``init(format:rows:columns:bytes:)`` refuses.
    public init(type: GGUF.TensorType, rows: Int, columns: Int, bytes: Data) throws {
        guard let format = Format(keeping: type) else {
            throw AttentionError.invalidArgument(
                argument: "type", reason: "\(type.name) blocks are not kept by the quantized kernels, which read \(Self.keptTypeNames)")
        }
        guard format.tensorType != type else {
            try self.init(format: format, rows: rows, columns: columns, bytes: bytes)
            return
        }
        // Q3_K or IQ4_NL: the stored blocks must be whole before they are converted.
        let count = try Self.blockCount(of: type, rows: rows, columns: columns, bytes: bytes)
        let (source, target) = (type.bytesPerBlock, format.bytesPerBlock)
        var converted = Data(count: count * target)
        converted.withUnsafeMutableBytes { out in
            bytes.withUnsafeBytes { raw in
                let convert = type == .Q3_K ? q6KBlock(fromQ3K:into:) : q80Block(fromIQ4NL:into:)
                for b in 0..<count { convert(raw.baseAddress! + b * source, out.baseAddress! + b * target) }
            }
        }
        try self.init(format: format, rows: rows, columns: columns, bytes: converted)
    }

    /// The GGUF types the kernels keep, for error messages.
    static var keptTypeNames: String {
        Format.allCases.map(\.rawValue).joined(separator: ", ") + ", Q3_K (as Q6_K) and IQ4_NL (as Q8_0)"
    }
}

/// One Q3_K super-block (110 bytes at `source`, the layout ``GGUF/TensorType/dequantize(_:into:)``
/// describes) written as the Q6_K super-block of the same 256 values (210 bytes at `destination`).
func q6KBlock(fromQ3K source: UnsafeRawPointer, into destination: UnsafeMutableRawPointer) {
    let q3 = source.assumingMemoryBound(to: UInt8.self), q6 = destination.assumingMemoryBound(to: UInt8.self)
    q6.initialize(repeating: 0, count: 208)
    // Element e = 128c + 32s + i (c < 2, s < 4, i < 32): low 2 bits at bits 2s of byte 32 + 32c + i,
    // high bit at bit e / 32 of byte i. In Q6_K, with e = 128c + 64h + t: its low nibble is nibble h
    // of byte 64c + t, its top two bits bits 2s of byte 128 + 32c + i.
    for c in 0..<2 {
        for s in 0..<4 {
            for i in 0..<32 {
                let e = 128 * c + 32 * s + i
                let low = (q3[32 + 32 * c + i] >> UInt8(2 * s)) & 3, high = (q3[i] >> UInt8(e / 32)) & 1
                let q = low &+ (high == 1 ? 32 : 28)   // (low − 4·(1 − high)) + 32, in 28 ... 35
                let t = e % 64, h = (e % 128) / 64
                q6[64 * c + t] |= (q & 0x0F) << UInt8(4 * h)
                q6[128 + 32 * c + i] |= (q >> 4) << UInt8(2 * s)
            }
        }
    }
    // Scale j: low 4 bits from byte 96 + j mod 8 (nibble j / 8), high 2 from byte 104 + j mod 4
    // (bits 2·(j / 4)); Q6_K stores s − 32 as a signed byte.
    for j in 0..<16 {
        let scale = Int((q3[96 + j % 8] >> UInt8(4 * (j / 8))) & 0x0F) | Int((q3[104 + j % 4] >> UInt8(2 * (j / 4))) & 3) << 4
        q6[192 + j] = UInt8(bitPattern: Int8(scale - 32))
    }
    q6[208] = q3[108]
    q6[209] = q3[109]
}

/// One IQ4_NL block (18 bytes at `source`: `d`, then sixteen bytes whose low nibbles name elements
/// 0 ..< 16 and high nibbles elements 16 ..< 32) written as the Q8_0 block of the same 32 values
/// (34 bytes at `destination`: `d`, then the 32 signed bytes the nibbles name).
func q80Block(fromIQ4NL source: UnsafeRawPointer, into destination: UnsafeMutableRawPointer) {
    let nl = source.assumingMemoryBound(to: UInt8.self), q8 = destination.assumingMemoryBound(to: UInt8.self)
    (q8[0], q8[1]) = (nl[0], nl[1])
    let values = GGUF.TensorType.iq4NonlinearValues
    for i in 0..<16 {
        q8[2 + i] = UInt8(bitPattern: values[Int(nl[2 + i] & 0x0F)])
        q8[18 + i] = UInt8(bitPattern: values[Int(nl[2 + i] >> 4)])
    }
}
