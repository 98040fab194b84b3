import Foundation

/// An element type that `.npy` files can hold: `Float` (`<f4`), `Double` (`<f8`) or `Bool` (`|b1`).
public protocol NPYElement: Sendable {
    /// The NumPy type descriptor, little-endian.
    static var npyDescriptor: String { get }
    /// Appends the element's little-endian bytes.
    func appendNPYBytes(to data: inout Data)
}

extension Float: NPYElement {
    /// Little-endian float32.
    public static var npyDescriptor: String { "<f4" }
    /// Appends the value's four little-endian bytes.
    public func appendNPYBytes(to data: inout Data) {
        withUnsafeBytes(of: bitPattern.littleEndian) { data.append(contentsOf: $0) }
    }
}

extension Double: NPYElement {
    /// Little-endian float64.
    public static var npyDescriptor: String { "<f8" }
    /// Appends the value's eight little-endian bytes.
    public func appendNPYBytes(to data: inout Data) {
        withUnsafeBytes(of: bitPattern.littleEndian) { data.append(contentsOf: $0) }
    }
}

extension Bool: NPYElement {
    /// One byte per value, 0 or 1.
    public static var npyDescriptor: String { "|b1" }
    /// Appends 1 for true, 0 for false.
    public func appendNPYBytes(to data: inout Data) { data.append(self ? 1 : 0) }
}

/// The contents of a `.npy` file: one of the element types the library reads.
public enum NPYArray: Sendable, Equatable {
    /// A `<f4` array.
    case float32(Tensor<Float>)
    /// A `<f8` array.
    case float64(Tensor<Double>)
    /// A `|b1` array (a boolean mask).
    case bool(Tensor<Bool>)

    /// The array's shape.
    public var shape: [Int] {
        switch self {
        case .float32(let t): t.shape
        case .float64(let t): t.shape
        case .bool(let t): t.shape
        }
    }

    /// The NumPy name of the element type: `float32`, `float64` or `bool`.
    public var dtypeName: String {
        switch self {
        case .float32: "float32"
        case .float64: "float64"
        case .bool: "bool"
        }
    }

    /// The values as `Scalar`, converting between float32 and float64 if needed.
    ///
    /// - Throws: ``AttentionError/invalidFile(path:reason:)`` for a bool array.
    public func floatingPoint<Scalar: AttentionScalar>(as: Scalar.Type = Scalar.self, path: String) throws -> Tensor<Scalar> {
        switch self {
        case .float32(let t): return t.map { Scalar(fromDouble: Double($0)) }
        case .float64(let t): return t.map { Scalar(fromDouble: $0) }
        case .bool:
            throw AttentionError.invalidFile(path: path, reason: "expected float32 or float64 data, found bool")
        }
    }
}

/// Reading and writing NumPy's `.npy` format (versions 1.0, 2.0 and 3.0): little-endian float32,
/// float64 and bool arrays in C order. Anything else is rejected with an error that names what was found.
public enum NPY {
    private static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]   // "\x93NUMPY"

    /// Reads a `.npy` file.
    public static func read(contentsOf url: URL) throws -> NPYArray {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw AttentionError.invalidFile(path: url.path, reason: "cannot be read (\(error.localizedDescription))")
        }
        return try decode(data, path: url.path)
    }

    /// Writes a tensor as a `.npy` file, atomically: the file appears complete or not at all.
    public static func write<Element: NPYElement>(_ tensor: Tensor<Element>, to url: URL) throws {
        do {
            try encode(tensor).write(to: url, options: .atomic)
        } catch {
            throw AttentionError.invalidFile(path: url.path, reason: "cannot be written (\(error.localizedDescription))")
        }
    }

    /// The `.npy` bytes of a tensor: format version 1.0, or 2.0 (a 4-byte header length) when the
    /// header is longer than 1.0's 65,535 bytes (a tensor of thousands of dimensions), as NumPy does.
    public static func encode<Element: NPYElement>(_ tensor: Tensor<Element>) -> Data {
        var data = header(shape: tensor.shape, descriptor: Element.npyDescriptor)
        for element in tensor.scalars { element.appendNPYBytes(to: &data) }
        return data
    }

    /// The bytes of a `.npy` header for an array of `shape` and dtype `descriptor` (`<f4`, `<f8`,
    /// `|b1`), padded as NumPy pads it; the data follows in C order.
    public static func header(shape: [Int], descriptor: String) -> Data {
        let shape = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descriptor)', 'fortran_order': False, 'shape': \(shape), }"
        // Pad with spaces so that magic (6) + version (2) + length (2 or 4) + header ends on 64 bytes, then "\n".
        let long = 10 + header.utf8.count + 64 > Int(UInt16.max)
        let preamble = long ? 12 : 10
        let unpadded = preamble + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data(magic + [long ? 2 : 1, 0])
        let length = header.utf8.count
        for byte in 0..<(long ? 4 : 2) { data.append(UInt8(truncatingIfNeeded: length >> (8 * byte))) }
        data.append(contentsOf: Array(header.utf8))
        return data
    }

    /// Parses `.npy` bytes; `path` only names the source in errors.
    public static func decode(_ data: Data, path: String = "<data>") throws -> NPYArray {
        let layout = try layout(of: data, path: path)
        let count = layout.elementCount
        func elements<Bits: FixedWidthInteger, T>(_ bits: Bits.Type, _ make: (Bits) -> T) -> [T] {
            let size = MemoryLayout<Bits>.size
            return data.withUnsafeBytes { raw in
                (0..<count).map { n in
                    make(Bits(littleEndian: raw.loadUnaligned(fromByteOffset: layout.dataOffset + n * size, as: Bits.self)))
                }
            }
        }
        switch layout.dtype {
        case .float32: return .float32(Tensor(uncheckedShape: layout.shape, scalars: elements(UInt32.self) { Float(bitPattern: $0) }))
        case .float64: return .float64(Tensor(uncheckedShape: layout.shape, scalars: elements(UInt64.self) { Double(bitPattern: $0) }))
        case .bool: return .bool(Tensor(uncheckedShape: layout.shape, scalars: elements(UInt8.self) { $0 != 0 }))
        }
    }

    /// Reads and checks a `.npy` header without touching the data: the dtype, the shape and where
    /// the data starts. The data's size is checked against the shape, so `dataOffset` plus
    /// `elementCount × dtype.size` bytes are there.
    ///
    /// For reading part of a large file: map it (`Data(contentsOf:options: .alwaysMapped)`) and read
    /// the rows needed from `dataOffset` on.
    public static func layout(of data: Data, path: String = "<data>") throws -> NPYLayout {
        func fail(_ reason: String) -> AttentionError { .invalidFile(path: path, reason: reason) }
        func byte(_ i: Int) -> Int { Int(data[data.startIndex + i]) }

        guard data.count >= 10, (0..<6).allSatisfy({ UInt8(byte($0)) == magic[$0] }) else {
            throw fail("not a .npy file (it does not start with \\x93NUMPY)")
        }
        let major = byte(6)
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = byte(8) | byte(9) << 8
            headerStart = 10
        case 2, 3:
            guard data.count >= 12 else { throw fail("truncated .npy header") }
            headerLength = (0..<4).reduce(0) { $0 | byte(8 + $1) << (8 * $1) }
            headerStart = 12
        default:
            throw fail("unsupported .npy format version \(major).\(byte(7))")
        }
        guard headerLength <= data.count - headerStart else {
            throw fail("the header claims \(headerLength) bytes but the file has only \(data.count - headerStart) after the preamble")
        }
        let headerBytes = data[(data.startIndex + headerStart)..<(data.startIndex + headerStart + headerLength)]
        guard let header = String(bytes: headerBytes, encoding: .utf8) else {
            throw fail("the header is not text")
        }
        let fields = try NPYHeader(parsing: header, path: path)
        guard !fields.fortranOrder else {
            throw fail("Fortran-order (column-major) arrays are not supported; save a C-order array (np.ascontiguousarray)")
        }
        guard let count = try? checkedElementCount(fields.shape, argument: "shape", atMost: .max) else {
            throw fail("shape \(fields.shape.shapeDescription) has more elements than Int holds (or a negative extent)")
        }
        let dtype: NPYLayout.DType
        switch fields.descr {
        case "<f4", "=f4": dtype = .float32
        case "<f8", "=f8": dtype = .float64
        case "|b1", "?": dtype = .bool
        default:
            let kind = fields.descr.hasPrefix(">") ? " (big-endian)" : ""
            throw fail("unsupported dtype '\(fields.descr)'\(kind); expected little-endian float32 ('<f4'), float64 ('<f8') or bool ('|b1')")
        }
        let bodyStart = headerStart + headerLength
        let bodyCount = data.count - bodyStart
        let (needed, overflow) = count.multipliedReportingOverflow(by: dtype.size)
        guard !overflow, bodyCount == needed else {
            throw fail("shape \(fields.shape.shapeDescription) of \(fields.descr) needs \(count) × \(dtype.size) bytes of data, the file has \(bodyCount)")
        }
        return NPYLayout(dtype: dtype, shape: fields.shape, dataOffset: bodyStart, elementCount: count)
    }
}

/// Where a `.npy` file keeps its array: see ``NPY/layout(of:path:)``.
public struct NPYLayout: Sendable, Equatable {
    /// The element types the reader supports.
    public enum DType: String, Sendable {
        /// Little-endian `float32` (`<f4`).
        case float32
        /// Little-endian `float64` (`<f8`).
        case float64
        /// `bool` (`|b1`), one byte each.
        case bool

        /// Bytes per element.
        public var size: Int {
            switch self {
            case .float32: 4
            case .float64: 8
            case .bool: 1
            }
        }
    }

    /// The element type.
    public let dtype: DType
    /// The array's shape (C order).
    public let shape: [Int]
    /// The byte offset of the first element in the file.
    public let dataOffset: Int
    /// The number of elements (checked: a shape such as `(2**40, 2**40, 0)` holds 0, without
    /// overflowing on the way).
    public let elementCount: Int
}

/// The three fields of a `.npy` header, a Python dict literal such as
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
private struct NPYHeader {
    var descr = ""
    var fortranOrder = false
    var shape: [Int] = []

    init(parsing header: String, path: String) throws {
        func fail(_ reason: String) -> AttentionError {
            .invalidFile(path: path, reason: "malformed .npy header (\(reason)): \(header.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        func value(after key: String) throws -> Substring {
            guard let keyRange = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\""),
                  let colon = header[keyRange.upperBound...].firstIndex(of: ":") else {
                throw fail("no '\(key)'")
            }
            return header[header.index(after: colon)...].drop(while: { $0 == " " })
        }
        let descrText = try value(after: "descr")
        guard let quote = descrText.first, quote == "'" || quote == "\"",
              let end = descrText.dropFirst().firstIndex(of: quote) else {
            throw fail("'descr' is not a string")
        }
        descr = String(descrText[descrText.index(after: descrText.startIndex)..<end])

        let orderText = try value(after: "fortran_order")
        if orderText.hasPrefix("True") { fortranOrder = true }
        else if orderText.hasPrefix("False") { fortranOrder = false }
        else { throw fail("'fortran_order' is neither True nor False") }

        let shapeText = try value(after: "shape")
        guard shapeText.first == "(", let close = shapeText.firstIndex(of: ")") else {
            throw fail("'shape' is not a tuple")
        }
        let inner = shapeText[shapeText.index(after: shapeText.startIndex)..<close]
        shape = try inner.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
            .map { text in
                guard let n = Int(text), n >= 0 else { throw fail("'shape' holds '\(text)'") }
                return n
            }
    }
}
