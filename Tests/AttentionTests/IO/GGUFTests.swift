import Attention
import AttentionTestSupport
import Foundation
import Testing

@Suite("GGUF")
struct GGUFTests {
    static let folder = Fixtures.root.appendingPathComponent("gguf")

    func reason(_ bytes: [UInt8]) -> String {
        do { _ = try GGUF(data: Data(bytes), path: "m.gguf"); return "no error" } catch { return "\(error)" }
    }

    /// One F32 tensor of four elements after `metadata` pairs written by `body`.
    func file(metadata: UInt64 = 0, _ body: (inout GGUFBuilder) -> Void = { _ in }) -> [UInt8] {
        var b = GGUFBuilder()
        b.header(tensors: 1, metadata: metadata)
        body(&b)
        b.tensor("w", [4], type: 0, offset: 0)
        b.pad(to: 32)
        for v: Float in [1, 2, 3, 4] { b.u32(v.bitPattern) }
        return b.bytes
    }

    @Test("The fixture gguf wrote: metadata of every type, 64-byte alignment, every tensor as gguf's Python reader dequantizes it")
    func fixture() throws {
        let file = try GGUF(contentsOf: Self.folder.appendingPathComponent("types.gguf"))
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.folder.appendingPathComponent("manifest.json"))) as? [String: Any]
        let metadata = try #require(manifest?["metadata"] as? [String: Any])
        let tensors = try #require(manifest?["tensors"] as? [String: [String: Any]])
        #expect(file.version == 3)
        #expect(file.alignment == 64)
        #expect(file.metadata["general.architecture"] == .string("fixture"))
        #expect(file.metadataKeys.first == "general.architecture")

        // Each scalar kept its type and value (the edges of each integer type included).
        #expect(file.metadata["test.uint8"] == .uint8(200))
        #expect(file.metadata["test.int8"] == .int8(-100))
        #expect(file.metadata["test.uint16"] == .uint16(60000))
        #expect(file.metadata["test.int16"] == .int16(-30000))
        #expect(file.metadata["test.uint32"] == .uint32(4_000_000_000))
        #expect(file.metadata["test.int32"] == .int32(-2_000_000_000))
        #expect(file.metadata["test.uint64"] == .uint64(9_223_372_036_854_775_813))
        #expect(file.metadata["test.uint64"]?.integer == nil)   // does not fit an Int
        #expect(file.metadata["test.int64"] == .int64(-(1 << 62)))
        #expect(file.metadata["test.float32"] == .float32(0.1))
        #expect(file.metadata["test.float64"]?.floatingPoint == metadata["test.float64"] as? Double)
        #expect(file.metadata["test.bool"]?.bool == true)
        #expect(file.metadata["test.string"]?.string == metadata["test.string"] as? String)
        #expect(file.metadata["test.empty_string"]?.string == "")
        #expect(file.metadata["test.int32s"]?.integers == metadata["test.int32s"] as? [Int])
        #expect(file.metadata["test.strings"]?.strings == metadata["test.strings"] as? [String])
        #expect(file.metadata["test.floats"] == .array(elementType: .float32, [.float32(0.5), .float32(-1.25), .float32(1e-3)]))
        #expect(file.metadata["test.nested"] == .array(elementType: .array, [
            .array(elementType: .int32, [.int32(1), .int32(2)]), .array(elementType: .int32, [.int32(3)])]))

        #expect(Set(file.tensors.map(\.name)) == Set(tensors.keys))
        for entry in file.tensors {
            let expected = try #require(tensors[entry.name])
            #expect(entry.type.name == expected["type"] as? String, "\(entry.name)")
            #expect(entry.dimensions == expected["dimensions"] as? [Int], "\(entry.name)")
            #expect(entry.range.lowerBound % 64 == 0, "\(entry.name)")
            guard entry.type.isConvertible else { continue }
            let reference = try NPY.read(contentsOf: Self.folder.appendingPathComponent("\(entry.name).npy"))
            guard case .float32(let want) = reference else { Issue.record("\(entry.name).npy is not float32"); continue }
            let got = try file.tensor(entry.name)
            #expect(got.shape == want.shape, "\(entry.name)")
            // Bit for bit: the same products and sums, rounded the same way.
            let differing = zip(got.scalars, want.scalars).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(differing == 0, "\(entry.name): \(differing) of \(want.scalars.count) elements differ")
        }
        // Every k-quant converts (compared above); a codebook type is listed, sized and readable as
        // bytes, but not converted.
        #expect(Set(file.tensors.filter { $0.type.blockSize == 256 }.map(\.type)) == [.Q2_K, .Q3_K, .Q4_K, .Q5_K, .Q6_K, .IQ2_XXS])
        let k = try #require(file.info("iq2_xxs"))
        #expect(k.shape == [2, 256] && k.range.count == 2 * 66)
        #expect(try file.withUnsafeBytes(of: "iq2_xxs") { $0.count } == 132)
        #expect(thrownError { try file.tensor("iq2_xxs") } == .invalidFile("types.gguf"))
        #expect(thrownError { try file.tensor("missing") } == .invalidFile("types.gguf"))
    }

    @Test("Blocks dequantize as the format defines them (values worked out by hand)")
    func blocks() throws {
        // Q4_1: d = 0.5 (half 0x3800), m = -1 (0xBC00); byte i holds q[i] = i (low) and q[i + 16] = 15 - i (high).
        var q41: [UInt8] = [0x00, 0x38, 0x00, 0xBC]
        q41 += (0..<16).map { UInt8($0) | UInt8(15 - $0) << 4 }
        // Q4_0: d = -2 (0xC000): x = -2 (q - 8).
        let q40: [UInt8] = [0x00, 0xC0] + (0..<16).map { UInt8($0) | UInt8(15 - $0) << 4 }
        // Q8_0: d = 0.25 (0x3400), q = -16 ... 15.
        let q80: [UInt8] = [0x00, 0x34] + (0..<32).map { UInt8(bitPattern: Int8($0 - 16)) }
        // Q5_0: d = 1, the fifth bits 0x000100FF (elements 0-7 and 16): x = q + 16·bit - 16.
        let q50: [UInt8] = [0x00, 0x3C, 0xFF, 0x00, 0x01, 0x00] + (0..<16).map { UInt8($0) | UInt8(15 - $0) << 4 }
        func run(_ type: GGUF.TensorType, _ bytes: [UInt8]) throws -> [Float] {
            var out = [Float](repeating: .nan, count: 32)
            try bytes.withUnsafeBytes { raw in try out.withUnsafeMutableBufferPointer { try type.dequantize(raw, into: $0) } }
            return out
        }
        let nibbles = (0..<16).map(Float.init) + (0..<16).map { Float(15 - $0) }
        #expect(try run(.Q4_1, q41) == nibbles.map { 0.5 * $0 - 1 })
        #expect(try run(.Q4_0, q40) == nibbles.map { -2 * ($0 - 8) })
        #expect(try run(.Q8_0, q80) == (0..<32).map { 0.25 * Float($0 - 16) })
        #expect(try run(.Q5_0, q50) == nibbles.enumerated().map { $1 + ($0 < 8 || $0 == 16 ? 16 : 0) - 16 })
        // The wrong number of bytes, or a type that does not convert, is refused.
        #expect(thrownError { try run(.Q4_1, Array(q41.dropLast())) } == .invalidArgument("bytes"))
        #expect(thrownError { try run(.IQ2_XXS, q41) } == .invalidArgument("type"))
    }

    @Test("A minimal file: default alignment 32, dimensions innermost first, version 2 read too")
    func minimal() throws {
        for version: UInt32 in [2, 3] {
            var b = GGUFBuilder()
            b.header(version: version, tensors: 2, metadata: 1)
            b.string("general.name"); b.u32(8); b.string("tiny")
            b.tensor("m", [3, 2], type: 0, offset: 0)
            b.tensor("empty", [0, 5], type: 2, offset: 0)   // no elements: a zero-byte tensor
            b.pad(to: 32)
            for v in 0..<6 { b.u32(Float(v).bitPattern) }
            let file = try GGUF(data: b.data)
            #expect(file.version == Int(version) && file.alignment == 32)
            #expect(file.metadata["general.name"]?.string == "tiny")
            #expect(try file.tensor("m") == Tensor(shape: [2, 3], scalars: [0, 1, 2, 3, 4, 5]))
            #expect(try file.tensor("empty").shape == [5, 0])
        }
    }

    @Test("Truncated and hostile files get clear errors and allocate nothing")
    func hostile() {
        let ok = file()
        #expect(reason(ok) == "no error")
        // Every prefix of a valid file is refused (the header, the table and the data each end early).
        for length in [0, 3, 4, 8, 23, 30, 40, ok.count - 1] {
            #expect(reason(Array(ok.prefix(length))) != "no error", "prefix \(length)")
        }
        #expect(reason(Array("GGML".utf8) + ok.dropFirst(4)).contains("not a GGUF file"))
        var v1 = GGUFBuilder(); v1.header(version: 1, tensors: 0, metadata: 0)
        #expect(reason(v1.bytes).contains("version 1 is obsolete"))
        var big = GGUFBuilder(); big.header(version: 3 << 24, tensors: 0, metadata: 0)
        #expect(reason(big.bytes).contains("big-endian"))
        var many = GGUFBuilder(); many.header(tensors: .max, metadata: 0)
        #expect(reason(many.bytes).contains("the tensor count is"))
        var manyKeys = GGUFBuilder(); manyKeys.header(tensors: 0, metadata: 1 << 60)
        #expect(reason(manyKeys.bytes).contains("the metadata count is"))

        #expect(reason(file(metadata: 1) { $0.u64(.max) }).contains("claims"))
        #expect(reason(file(metadata: 1) { $0.string("k"); $0.u32(13) }).contains("unknown value type 13"))
        #expect(reason(file(metadata: 1) { $0.string("k"); $0.u32(7); $0.u8(2) }).contains("not 0 or 1"))
        #expect(reason(file(metadata: 1) { $0.u64(2); $0.bytes += [0xC3, 0x28]; $0.u32(0); $0.u8(0) }).contains("not valid UTF-8"))
        #expect(reason(file(metadata: 2) { b in
            for _ in 0..<2 { b.string("k"); b.u32(0); b.u8(1) }
        }).contains("appears twice"))
        #expect(reason(file(metadata: 1) { $0.string("k"); $0.u32(9); $0.u32(4); $0.u64(1 << 40) }).contains("element count"))
        // Arrays of arrays nested past the limit (each level: element type array, one element).
        #expect(reason(file(metadata: 1) { b in
            b.string("k"); b.u32(9)
            for _ in 0...GGUF.maximumArrayDepth { b.u32(9); b.u64(1) }
            b.u32(0); b.u64(0)
        }).contains("nests arrays"))
        #expect(reason(file(metadata: 1) { $0.string("general.alignment"); $0.u32(10); $0.u64(32) }).contains("not uint32"))
        #expect(reason(file(metadata: 1) { $0.string("general.alignment"); $0.u32(4); $0.u32(48) }).contains("not a power of two"))
        #expect(reason(file(metadata: 1) { $0.string("general.alignment"); $0.u32(4); $0.u32(0) }).contains("not a power of two"))

        func table(_ body: (inout GGUFBuilder) -> Void, count: UInt64 = 1, data: Int = 64) -> [UInt8] {
            var b = GGUFBuilder()
            b.header(tensors: count, metadata: 0)
            body(&b)
            b.pad(to: 32)
            b.bytes += [UInt8](repeating: 0, count: data)
            return b.bytes
        }
        #expect(reason(table { $0.tensor("w", [1, 1, 1, 1, 1], type: 0, offset: 0) }).contains("5 dimensions"))
        #expect(reason(table { $0.tensor("w", [4], type: 31, offset: 0) }).contains("unknown type 31"))
        #expect(reason(table { $0.tensor("w", [48], type: 2, offset: 0) }).contains("not a multiple of its block of 32"))
        #expect(reason(table { $0.tensor("w", [1 << 62, 1 << 62], type: 0, offset: 0) }).contains("overflows"))
        #expect(reason(table { $0.tensor("w", [1 << 62], type: 0, offset: 0) }).contains("needs more than"))
        #expect(reason(table { $0.tensor("w", [UInt64.max], type: 0, offset: 0) }).contains("too large"))
        #expect(reason(table { $0.tensor("w", [4], type: 0, offset: 8) }).contains("not a multiple of the alignment"))
        #expect(reason(table { $0.tensor("w", [4], type: 0, offset: UInt64.max - 31) }).contains("beyond any file"))
        #expect(reason(table { $0.tensor("w", [32], type: 0, offset: 0) }).contains("ends at byte 128 of a data section of 64"))
        #expect(reason(table({ b in
            b.tensor("a", [16], type: 0, offset: 0); b.tensor("b", [4], type: 0, offset: 32)
        }, count: 2)).contains("overlap"))
        #expect(reason(table({ b in
            b.tensor("a", [4], type: 0, offset: 0); b.tensor("a", [4], type: 0, offset: 32)
        }, count: 2)).contains("appears twice"))
        #expect(thrownError { try GGUF(contentsOf: URL(fileURLWithPath: "/nonexistent.gguf")) } == .invalidFile("nonexistent.gguf"))
    }
}
