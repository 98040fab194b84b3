import Attention
import AttentionDistributed
import AttentionTestSupport
import Foundation
import Testing

@Suite(".npy shards")
struct NPYShardsTests {
    let scratch: TemporaryDirectory

    init() throws { scratch = try TemporaryDirectory("npy-shards") }

    @Test("Each rank reads its rows; rank 0 writes the whole from every rank's, equal to the original", arguments: ShardLayout.allCases)
    func roundTrip(_ layout: ShardLayout) throws {
        var g = SplitMix64(seed: 2)
        let whole = try Tensor<Float>.randomNormal(shape: [2, 3, 23, 5], using: &g)
        let source = scratch.file("whole-\(layout).npy"), copy = scratch.file("copy-\(layout).npy")
        try NPY.write(whole, to: source)
        let shards = try SequenceShards(length: 23, ranks: 3, layout: layout)
        let results = onRanks(3) { world in
            let mine = try NPYShards.read(source, ranges: shards.ranges(ofRank: world.rank), as: Float.self)
            try NPYShards.write(mine, shards: shards, shape: [2, 3, 23, 5], to: copy, communicator: world, timeout: .seconds(20))
            return mine.shape
        }
        for (rank, result) in results.enumerated() { #expect(try result.get() == [2, 3, shards.count(ofRank: rank), 5]) }
        #expect(try NPY.read(contentsOf: copy) == .float32(whole))
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.url.path).sorted()
                == ["copy-\(layout).npy", "whole-\(layout).npy"])
    }

    @Test("Data that starts unaligned (a header of another writer's length) reads the same")
    func unalignedData() throws {
        let values: [Float] = (0..<12).map { Float($0) + 0.5 }
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }\n"   // 10 + 61 bytes: data at 71
        var data = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(header.utf8.count), 0])
        data.append(contentsOf: Array(header.utf8))
        values.withUnsafeBytes { data.append(contentsOf: $0) }
        let url = scratch.file("unaligned.npy")
        try data.write(to: url)
        #expect(try NPYShards.layout(of: url).dataOffset % 4 != 0)
        let rows = try NPYShards.read(url, ranges: [1..<2, 3..<4], as: Float.self)
        #expect(rows.shape == [2, 3] && rows.scalars == [3.5, 4.5, 5.5, 9.5, 10.5, 11.5])
    }

    @Test("The wrong dtype, a rank-1 array or rows outside the sequence are errors naming the file")
    func errors() throws {
        let url = scratch.file("x.npy")
        try NPY.write(try Tensor<Float>(zeros: [4, 3]), to: url)
        #expect(thrownError { try NPYShards.read(url, ranges: [0..<1], as: Double.self) } == .invalidFile("x.npy"))
        #expect(thrownError { try NPYShards.read(url, ranges: [3..<5], as: Float.self) } == .invalidFile("x.npy"))
        let flat = scratch.file("flat.npy")
        try NPY.write(try Tensor<Float>(zeros: [4]), to: flat)
        #expect(thrownError { try NPYShards.read(flat, ranges: [0..<1], as: Float.self) } == .invalidFile("flat.npy"))
        // Extents whose product overflows before the 0 that makes it empty.
        let empty = scratch.file("empty.npy")
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776, 0, 3), }\n"
        var data = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(header.utf8.count), 0])
        data.append(contentsOf: Array(header.utf8))
        try data.write(to: empty)
        #expect(try NPYShards.layout(of: empty).elementCount == 0)
        #expect(thrownError { try NPYShards.read(empty, ranges: [0..<0], as: Float.self) } == .invalidFile("empty.npy"))
    }
}
