import Attention
import AttentionTestSupport
import Foundation
import Testing

@Suite(".npy files")
struct NPYTests {
    let scratch: TemporaryDirectory

    init() throws { scratch = try TemporaryDirectory("attention-npy") }

    func temporaryFile(_ name: String) -> URL { scratch.file(name) }

    @Test("Round trips float32, float64 and bool of every rank 0 to 4")
    func roundTrip() throws {
        for shape in [[], [3], [2, 3], [2, 1, 3], [1, 2, 3, 2]] as [[Int]] {
            let f = try Tensor<Float>.randomNormal(shape: shape, seed: 1)
            let d = try Tensor<Double>.randomNormal(shape: shape, seed: 2)
            let b = f.map { $0 > 0 }
            #expect(try NPY.decode(NPY.encode(f)) == .float32(f))
            #expect(try NPY.decode(NPY.encode(d)) == .float64(d))
            #expect(try NPY.decode(NPY.encode(b)) == .bool(b))
            // The data starts on a 64-byte boundary, as the format asks.
            let encoded = [UInt8](NPY.encode(d))
            #expect((10 + Int(encoded[8]) + Int(encoded[9]) << 8) % 64 == 0)
        }
        let url = temporaryFile("x.npy")
        let t = try Tensor<Double>([[1, 2], [3, 4]])
        try NPY.write(t, to: url)
        #expect(try NPY.read(contentsOf: url) == .float64(t))
    }

    @Test("Reads what NumPy wrote (the fixtures), with the header padded to 64 bytes")
    func readsNumPy() throws {
        let url = Fixtures.root.appendingPathComponent("sdpa/plain/q.npy")
        let array = try NPY.read(contentsOf: url)
        #expect(array.shape == [2, 3, 5, 8])
        #expect(array.dtypeName == "float64")
        let header = try Data(contentsOf: url)
        let ours = NPY.encode(try array.floatingPoint(as: Double.self, path: url.path))
        #expect(ours == header)   // byte for byte what NumPy writes
    }

    func header(_ dict: String, version: UInt8 = 1) -> Data {
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [version, 0]
        let text = Array((dict + "\n").utf8)
        bytes += version == 1 ? [UInt8(text.count & 0xFF), UInt8(text.count >> 8)]
            : [UInt8(text.count & 0xFF), UInt8(text.count >> 8), 0, 0]
        return Data(bytes + text)
    }

    func reason(_ data: Data) -> String {
        do { _ = try NPY.decode(data, path: "x.npy"); return "no error" } catch { return "\(error)" }
    }

    @Test("Version 2 headers are read")
    func version2() throws {
        var data = header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", version: 2)
        for x in [Float(1.5), -2] { withUnsafeBytes(of: x.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        #expect(try NPY.decode(data) == .float32(Tensor([1.5, -2])))
    }

    @Test("Anything else is a clear error naming what was found")
    func errors() {
        #expect(reason(Data("hello".utf8)).contains("not a .npy file"))
        #expect(reason(header("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }") + Data(count: 4)).contains("'>f4' (big-endian)"))
        #expect(reason(header("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }") + Data(count: 8)).contains("'<i8'"))
        #expect(reason(header("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }") + Data(count: 16)).contains("Fortran"))
        #expect(reason(header("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }") + Data(count: 8)).contains("needs 3 × 4 bytes"))
        #expect(reason(header("{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }")).contains("malformed"))
        #expect(reason(header("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }")).contains("x.npy"))
        #expect(reason(header("{'descr': '<f4', 'fortran_order': False}")).contains("no 'shape'"))
        #expect(reason(header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", version: 7)).contains("version 7"))
        var truncated = header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }")
        truncated[8] = 0xFF
        #expect(reason(truncated).contains("claims"))
        #expect(thrownError { try NPY.read(contentsOf: URL(fileURLWithPath: "/nonexistent/q.npy")) } == .invalidFile("q.npy"))
        #expect(thrownError { try NPYArray.bool(Tensor([true])).floatingPoint(as: Float.self, path: "m.npy") } == .invalidFile("m.npy"))
    }
}
