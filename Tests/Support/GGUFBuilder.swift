import Foundation

/// GGUF bytes built field by field, for valid files and every kind of broken one.
public struct GGUFBuilder {
    public var bytes: [UInt8] = []

    public init() {}

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    public mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); bytes += Array(s.utf8) }
    public mutating func header(version: UInt32 = 3, tensors: UInt64, metadata: UInt64) {
        bytes += Array("GGUF".utf8)
        u32(version); u64(tensors); u64(metadata)
    }
    public mutating func tensor(_ name: String, _ dimensions: [UInt64], type: UInt32, offset: UInt64) {
        string(name); u32(UInt32(dimensions.count))
        for d in dimensions { u64(d) }
        u32(type); u64(offset)
    }
    /// A metadata pair whose value is a string.
    public mutating func metadata(_ key: String, string value: String) { string(key); u32(8); string(value) }
    /// A metadata pair whose value is an array of strings.
    public mutating func metadata(_ key: String, strings values: [String]) {
        string(key); u32(9); u32(8); u64(UInt64(values.count))
        for v in values { string(v) }
    }
    public mutating func pad(to alignment: Int) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }

    public var data: Data { Data(bytes) }
}

extension GGUFBuilder {
    /// A metadata pair whose value is a signed 64-bit integer (GGUF type 11).
    public mutating func metadata(_ key: String, int64 value: Int64) { string(key); u32(11); u64(UInt64(bitPattern: value)) }
    /// A metadata pair whose value is a signed 32-bit integer (GGUF type 5).
    public mutating func metadata(_ key: String, int32 value: Int32) { string(key); u32(5); u32(UInt32(bitPattern: value)) }
    /// A metadata pair whose value is a 32-bit float (GGUF type 6).
    public mutating func metadata(_ key: String, float32 value: Float) { string(key); u32(6); u32(value.bitPattern) }
}
