import Attention
import AttentionTestSupport
import Foundation
import Testing

@Suite("safetensors")
struct SafeTensorsTests {
    /// A file from a header object and data bytes.
    func file(_ header: String, _ data: [UInt8], headerLength: UInt64? = nil) -> Data {
        let json = Array(header.utf8)
        let length = headerLength ?? UInt64(json.count)
        return Data((0..<8).map { UInt8((length >> (8 * UInt64($0))) & 0xFF) } + json + data)
    }

    func reason(_ data: Data) -> String {
        do { _ = try SafeTensors(data: data, path: "m.safetensors"); return "no error" } catch { return "\(error)" }
    }

    func bytes(_ values: [Float]) -> [UInt8] { values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) } }

    @Test("Reads F32, F16, BF16 and F64 tensors into Float, with metadata")
    func reads() throws {
        let f32 = bytes([1.5, -2, 0.25, 8])
        let f16: [UInt8] = [0x00, 0x3C, 0x00, 0xC0, 0x00, 0x7C, 0x01, 0x00]            // 1, -2, inf, 2^-24
        let bf16: [UInt8] = [0xC0, 0x3F, 0x80, 0xBF]                                    // 1.5, -1
        let f64 = withUnsafeBytes(of: (0.1).bitPattern.littleEndian, Array.init)
        let header = """
            {"__metadata__": {"format": "pt"},
             "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
             "h": {"dtype": "F16", "shape": [4], "data_offsets": [16, 24]},
             "b": {"dtype": "BF16", "shape": [2], "data_offsets": [24, 28]},
             "d": {"dtype": "F64", "shape": [], "data_offsets": [28, 36]}}
            """
        let st = try SafeTensors(data: file(header, f32 + f16 + bf16 + f64))
        #expect(st.metadata == ["format": "pt"])
        #expect(try st.tensor("a") == Tensor(shape: [2, 2], scalars: [1.5, -2, 0.25, 8]))
        #expect(try st.tensor("h").scalars == [1, -2, .infinity, 0x1p-24])
        #expect(try st.tensor("b").scalars == [1.5, -1])
        #expect(try st.tensor("d").scalars == [Float(0.1)])
        #expect(thrownError { try st.tensor("missing") } == .invalidFile("<data>"))
    }

    @Test("Truncated and hostile files get clear errors")
    func hostile() {
        let ok = "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}"
        #expect(reason(Data([1, 2, 3])).contains("truncated"))
        #expect(reason(file(ok, [], headerLength: 1 << 40)).contains("exceeds the limit"))
        #expect(reason(file(ok, [], headerLength: 5000)).contains("truncated"))
        #expect(reason(file("[1, 2]", [])).contains("not a JSON object"))
        #expect(reason(file("{not json", [])).contains("not a JSON object"))
        #expect(reason(file(ok, [0, 0, 0, 0])).contains("ends at byte 8"))
        #expect(reason(file("{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", Array(repeating: 0, count: 8))).contains("needs 12 bytes"))
        #expect(reason(file("{\"a\": {\"dtype\": \"Q4\", \"shape\": [2], \"data_offsets\": [0, 8]}}", Array(repeating: 0, count: 8))).contains("unknown dtype"))
        #expect(reason(file("{\"a\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", Array(repeating: 0, count: 8))).contains("malformed shape"))
        #expect(reason(file("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", Array(repeating: 0, count: 8))).contains("malformed data_offsets"))
        #expect(reason(file("{\"a\": {\"dtype\": \"F32\", \"shape\": [4611686018427387904, 4], \"data_offsets\": [0, 8]}}", Array(repeating: 0, count: 8))).contains("overflows"))
        let overlap = """
            {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
            """
        #expect(reason(file(overlap, Array(repeating: 0, count: 12))).contains("overlap"))
        #expect(thrownError { try SafeTensors(contentsOf: URL(fileURLWithPath: "/nonexistent.safetensors")) } == .invalidFile("nonexistent.safetensors"))
    }

    @Test("Integer tensors are listed but do not convert to Float")
    func integers() throws {
        let st = try SafeTensors(data: file("{\"i\": {\"dtype\": \"I64\", \"shape\": [1], \"data_offsets\": [0, 8]}}", Array(repeating: 0, count: 8)))
        #expect(st.entries["i"]?.dtype == .I64)
        #expect(thrownError { try st.tensor("i") } == .invalidFile("<data>"))
    }
}
