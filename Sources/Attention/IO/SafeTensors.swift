import Foundation

/// A reader for the safetensors format: an 8-byte little-endian header length `N`, `N` bytes of JSON
/// describing each tensor (`dtype`, `shape`, `data_offsets` into the data that follows), then the data.
///
/// The file is memory-mapped; nothing is read until a tensor is asked for. The header is validated
/// before any tensor is used: its size is bounded and inside the file, it is a JSON object, every dtype
/// is known, every shape matches its byte range, every range lies inside the data section, and no two
/// ranges overlap. A truncated or hostile file gets an ``AttentionError/invalidFile(path:reason:)``.
public struct SafeTensors: Sendable {
    /// Element types of the format, with their sizes in bytes.
    public enum DType: String, Sendable, CaseIterable {
        /// Floating-point, signed and unsigned integer and boolean elements, named as in the file.
        case F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL
        /// Wider unsigned integers and the two 8-bit float formats (listed, not converted).
        case U64, U32, U16, F8_E4M3 = "F8_E4M3", F8_E5M2 = "F8_E5M2"

        /// Bytes per element.
        public var byteCount: Int {
            switch self {
            case .F64, .I64, .U64: 8
            case .F32, .I32, .U32: 4
            case .F16, .BF16, .I16, .U16: 2
            case .I8, .U8, .BOOL, .F8_E4M3, .F8_E5M2: 1
            }
        }
    }

    /// One tensor's description.
    public struct Entry: Sendable, Equatable {
        /// The tensor's name in the header.
        public let name: String
        /// The element type of its bytes.
        public let dtype: DType
        /// Its extents, outermost first.
        public let shape: [Int]
        /// Byte range inside the data section.
        public let range: Range<Int>
    }

    /// The largest header accepted (the format's reference implementation uses 100 MB).
    public static let maximumHeaderSize = 100_000_000

    /// The file the tensors were read from, as errors name it (`<data>` for bytes in memory).
    public let path: String
    /// Every tensor, by name.
    public let entries: [String: Entry]
    /// The `__metadata__` strings, if any.
    public let metadata: [String: String]
    private let data: Data
    private let dataStart: Int

    /// Opens and validates a file.
    public init(contentsOf url: URL) throws {
        try self.init(data: mappedContents(of: url), path: url.path)
    }

    /// Parses safetensors bytes; `path` only names the source in errors.
    public init(data: Data, path: String = "<data>") throws {
        func fail(_ reason: String) -> AttentionError { .invalidFile(path: path, reason: reason) }
        guard data.count >= 8 else { throw fail("truncated: \(data.count) bytes, not even the 8-byte header length") }
        let headerSize = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerSize <= UInt64(Self.maximumHeaderSize) else {
            throw fail("header length \(headerSize) exceeds the limit of \(Self.maximumHeaderSize) bytes")
        }
        guard Int(headerSize) <= data.count - 8 else {
            throw fail("truncated: the header claims \(headerSize) bytes but only \(data.count - 8) follow")
        }
        let start = data.startIndex
        let headerBytes = data[(start + 8)..<(start + 8 + Int(headerSize))]
        guard let object = try? JSONSerialization.jsonObject(with: headerBytes), let header = object as? [String: Any] else {
            throw fail("the header is not a JSON object")
        }
        let dataStart = 8 + Int(headerSize)
        let dataSize = data.count - dataStart
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                guard let dictionary = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (k, v) in dictionary {
                    guard let text = v as? String else { throw fail("__metadata__ value for '\(k)' is not a string") }
                    metadata[k] = text
                }
                continue
            }
            guard let info = value as? [String: Any] else { throw fail("tensor '\(name)' is not described by an object") }
            guard let dtypeName = info["dtype"] as? String, let dtype = DType(rawValue: dtypeName) else {
                throw fail("tensor '\(name)' has an unknown dtype \(String(describing: info["dtype"] ?? "nil"))")
            }
            guard let shapeValues = info["shape"] as? [Any], let shape = Self.integers(shapeValues), shape.allSatisfy({ $0 >= 0 }) else {
                throw fail("tensor '\(name)' has a malformed shape")
            }
            guard let offsetValues = info["data_offsets"] as? [Any], let offsets = Self.integers(offsetValues), offsets.count == 2,
                  offsets[0] >= 0, offsets[0] <= offsets[1] else {
                throw fail("tensor '\(name)' has malformed data_offsets")
            }
            guard offsets[1] <= dataSize else {
                throw fail("tensor '\(name)' ends at byte \(offsets[1]) of a data section of \(dataSize) bytes (truncated file?)")
            }
            var count = 1
            for extent in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: extent)
                guard !overflow else { throw fail("tensor '\(name)' has a shape whose size overflows") }
                count = product
            }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteCount)
            guard !overflow, bytes == offsets[1] - offsets[0] else {
                // The message must not redo the product that overflowed.
                let needed = overflow ? "more than \(Int.max)" : "\(bytes)"
                throw fail("tensor '\(name)': shape \(shape.shapeDescription) of \(dtype.rawValue) needs \(needed) bytes, its range holds \(offsets[1] - offsets[0])")
            }
            entries[name] = Entry(name: name, dtype: dtype, shape: shape, range: offsets[0]..<offsets[1])
        }
        let sorted = entries.values.filter { !$0.range.isEmpty }.sorted { $0.range.lowerBound < $1.range.lowerBound }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.range.lowerBound < a.range.upperBound {
            throw fail("tensors '\(a.name)' and '\(b.name)' overlap")
        }
        self.path = path
        self.entries = entries
        self.metadata = metadata
        self.data = data
        self.dataStart = dataStart
    }

    /// JSON numbers as Ints (JSONSerialization gives NSNumber); nil if any is not a whole number.
    private static func integers(_ values: [Any]) -> [Int]? {
        var out: [Int] = []
        for value in values {
            guard let number = value as? NSNumber, let exact = Int(exactly: number.doubleValue) else { return nil }
            out.append(exact)
        }
        return out
    }

    /// Where the F32 tensor `name` lies in the file, if it can be read in place: stored as F32 and
    /// 4-byte aligned (the format pads its header to 8 bytes). The mapping stays alive as long as the
    /// value does; nil otherwise, and then ``tensor(_:)`` copies.
    func mappedFloats(_ name: String) -> MappedFloats? {
        guard let entry = entries[name], entry.dtype == .F32, !entry.range.isEmpty else { return nil }
        let offset = dataStart + entry.range.lowerBound
        let aligned = data.withUnsafeBytes { raw in raw.baseAddress.map { Int(bitPattern: $0 + offset) % 4 == 0 } ?? false }
        return aligned ? MappedFloats(data: data, offset: offset, count: entry.range.count / 4) : nil
    }

    /// The tensor `name` converted to Float (from F32, F16, BF16 or F64).
    public func tensor(_ name: String) throws -> Tensor<Float> {
        guard let entry = entries[name] else {
            throw AttentionError.invalidFile(path: path, reason: "no tensor named '\(name)'")
        }
        let count = entry.dtype.byteCount == 0 ? 0 : entry.range.count / entry.dtype.byteCount
        let base = data.startIndex + dataStart + entry.range.lowerBound
        let values: [Float] = try data.withUnsafeBytes { raw in
            func load<T: FixedWidthInteger>(_: T.Type, _ i: Int) -> T {
                T(littleEndian: raw.loadUnaligned(fromByteOffset: base - data.startIndex + i * MemoryLayout<T>.size, as: T.self))
            }
            switch entry.dtype {
            case .F32:
                #if _endian(little)
                // The file's little-endian floats are the machine's: one copy.
                return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                    if count > 0 { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[(base - data.startIndex)..<(base - data.startIndex + count * 4)])) }
                    initialized = count
                }
                #else
                return (0..<count).map { Float(bitPattern: load(UInt32.self, $0)) }
                #endif
            case .F64: return (0..<count).map { Float(Double(bitPattern: load(UInt64.self, $0))) }
            case .BF16: return (0..<count).map { Float(bitPattern: UInt32(load(UInt16.self, $0)) << 16) }
            case .F16: return (0..<count).map { halfToFloat(load(UInt16.self, $0)) }
            default:
                throw AttentionError.invalidFile(path: path, reason: "tensor '\(name)' is \(entry.dtype.rawValue); only F32, F16, BF16 and F64 convert to Float")
            }
        }
        return Tensor(uncheckedShape: entry.shape, scalars: values)
    }
}

/// The bytes of the file at `url`, memory-mapped (nothing is read until used).
/// - Throws: ``AttentionError/invalidFile(path:reason:)`` if it cannot be opened.
func mappedContents(of url: URL) throws -> Data {
    do {
        return try Data(contentsOf: url, options: .alwaysMapped)
    } catch {
        throw AttentionError.invalidFile(path: url.path, reason: "cannot be read (\(error.localizedDescription))")
    }
}

/// IEEE half precision to single, bit by bit (portable: `Float16` is missing on some platforms).
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h >> 15) << 31
    let exponent = UInt32(h >> 10) & 0x1F
    let mantissa = UInt32(h) & 0x3FF
    if exponent == 0 {
        // Zero or subnormal: mantissa · 2^-24.
        let magnitude = Float(mantissa) * 0x1p-24
        return sign == 0 ? magnitude : -magnitude
    }
    if exponent == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13) }   // inf, NaN
    return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
}

/// Float32 values inside a safetensors file's bytes (memory-mapped when the file was opened from
/// disk), read where they lie; holding the value keeps the bytes alive.
struct MappedFloats: @unchecked Sendable {
    let data: Data
    let offset: Int
    let count: Int

    func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try data.withUnsafeBytes { raw in
            let base = raw.baseAddress.map { ($0 + offset).assumingMemoryBound(to: Float.self) }
            return try body(UnsafeBufferPointer(start: base, count: base == nil ? 0 : count))
        }
    }
}
