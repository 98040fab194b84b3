import Attention
import Foundation

/// One rank's rows of `.npy` arrays: each rank reads only its positions of the sequence axis (the
/// second-to-last), from a memory-mapped file, and rank 0 writes a whole array from every rank's rows.
public enum NPYShards {
    /// The dtype, shape and data offset of a `.npy` file, reading only its header.
    ///
    /// - Throws: `AttentionError.invalidFile` naming the path when it cannot be read or is not a
    ///   well-formed `.npy` file.
    public static func layout(of url: URL) throws -> NPYLayout {
        try NPY.layout(of: try mapped(url), path: url.path)
    }

    /// The rows at `ranges` of the sequence axis of the float array in `url`, concatenated: an array
    /// of shape `[..., N, X]` gives `[..., n, X]`, `n` the ranges' total length. Only those rows are read.
    ///
    /// - Throws: `AttentionError.invalidFile` when the file is not a `.npy` array of `Scalar`
    ///   (`float32` for `Float`) of rank 2 or more, or a range lies outside its sequence axis.
    public static func read<Scalar: AttentionScalar & NPYElement>(
        _ url: URL, ranges: [Range<Int>], as _: Scalar.Type = Scalar.self
    ) throws -> Tensor<Scalar> {
        let data = try mapped(url)
        let layout = try NPY.layout(of: data, path: url.path)
        guard layout.dtype.rawValue == dtypeName(Scalar.self) else {
            throw AttentionError.invalidFile(
                path: url.path, reason: "holds \(layout.dtype.rawValue), expected \(dtypeName(Scalar.self))")
        }
        guard layout.shape.count >= 2 else {
            throw AttentionError.invalidFile(
                path: url.path, reason: "shape \(layout.shape) has no sequence axis: a distributed input is [..., N, D]")
        }
        guard layout.elementCount > 0 else {
            throw AttentionError.invalidFile(path: url.path, reason: "shape \(layout.shape) holds no elements")
        }
        // Every partial product of the extents is at most the element count: none overflows.
        let (N, X) = (layout.shape[layout.shape.count - 2], layout.shape[layout.shape.count - 1])
        if let bad = ranges.first(where: { $0.lowerBound < 0 || $0.upperBound > N }) {
            throw AttentionError.invalidFile(path: url.path, reason: "positions \(bad) lie outside its \(N) positions")
        }
        let heads = layout.shape.dropLast(2).reduce(1, *)
        let n = ranges.reduce(0) { $0 + $1.count }
        var scalars: [Scalar] = []
        scalars.reserveCapacity(heads * n * X)
        data.withUnsafeBytes { raw in
            for head in 0..<heads {
                for range in ranges {
                    let start = layout.dataOffset + (head * N + range.lowerBound) * X * MemoryLayout<Scalar>.size
                    let bytes = UnsafeRawBufferPointer(rebasing: raw[start ..< start + range.count * X * MemoryLayout<Scalar>.size])
                    // .npy data is little-endian, as every platform the package runs on; copied as
                    // bytes, since a header of another writer's length may leave the data unaligned.
                    let first = scalars.count
                    scalars.append(contentsOf: repeatElement(0, count: range.count * X))
                    scalars.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[(first * MemoryLayout<Scalar>.size)...]).copyMemory(from: bytes) }
                }
            }
        }
        return try Tensor(shape: Array(layout.shape.dropLast(2)) + [n, X], scalars: scalars)
    }

    /// Writes the array of `shape` whose sequence axis (by default the second-to-last) is dealt out as `shards`:
    /// every rank passes its rows, `local`; rank 0 receives each other rank's in turn and writes the
    /// file atomically (a temporary file in the same folder, renamed when complete), holding one
    /// rank's rows at a time. Every rank returns when the file is written; every rank throws if it
    /// could not be.
    ///
    /// - Parameters:
    ///   - local: this rank's rows, `[..., n, X]` with `n = shards.count(ofRank: rank)`.
    ///   - shards: how the sequence axis is dealt out.
    ///   - shape: the whole array's shape, `[..., shards.length, X]`.
    ///   - sequenceAxis: which axis of `shape` is the sequence; default the second-to-last (the last
    ///     for a log-sum-exp `[B, H, N]`).
    ///   - url: where rank 0 writes it.
    ///   - communicator: the ranks.
    ///   - timeout: how long to wait for any one rank's rows.
    ///   - failureCode: what rank 0 tells the others when it cannot write, as in
    ///     ``Communicator/agreeing(timeout:failureCode:_:)``.
    public static func write<Scalar: AttentionScalar & NPYElement>(
        _ local: Tensor<Scalar>, shards: SequenceShards, shape: [Int], sequenceAxis: Int? = nil, to url: URL,
        communicator: some Communicator, timeout: Duration, failureCode: (any Error) -> Int64 = { _ in 1 }
    ) throws {
        let tag = 1 << 20
        _ = try checkedElementCount(shape, argument: "shape")
        let axis = sequenceAxis ?? shape.count - 2
        guard shape.indices.contains(axis), shape[axis] == shards.length else {
            throw AttentionError.invalidArgument(
                argument: "sequenceAxis", reason: "axis \(axis) of \(shape) does not have the shards' \(shards.length) positions")
        }
        let heads = shape[..<axis].reduce(1, *)
        let X = shape[(axis + 1)...].reduce(1, *)
        func bytes(of rank: Int) -> Int { heads * shards.count(ofRank: rank) * X * MemoryLayout<Scalar>.stride }
        let rank = communicator.rank
        guard local.count * MemoryLayout<Scalar>.stride == bytes(of: rank) else {
            throw AttentionError.invalidShape(argument: "local", shape: local.shape,
                                              reason: "rank \(rank) holds \(shards.count(ofRank: rank)) positions of \(shape)")
        }
        guard rank == 0 else {
            let buffer = MessageBuffer(byteCount: bytes(of: rank))
            local.withUnsafeBufferPointer { buffer.bytes.copyMemory(from: UnsafeRawBufferPointer($0)) }
            let send = try communicator.send(buffer, byteCount: bytes(of: rank), to: 0, tag: tag)
            // Rank 0 gives its verdict once it has written everything, or failed: a failure does
            // not leave this rank waiting for its rows to be taken.
            let codes = try communicator.failureCodes(thisRank: 0, timeout: timeout)
            if let code = codes.max(), code != 0 {
                throw DistributedError.peersFailed(ranks: codes.indices.filter { codes[$0] != 0 }, code: code)
            }
            try communicator.wait(for: [send], timeout: timeout)
            return
        }
        try communicator.agreeing(timeout: timeout, failureCode: failureCode) {
            let file = try PartialFile(url, header: NPY.header(shape: shape, descriptor: Scalar.npyDescriptor))
            try local.withUnsafeBufferPointer { rows in
                try file.write(UnsafeRawBufferPointer(rows), shardRanges: shards.ranges(ofRank: 0), heads: heads,
                               length: shards.length, rowBytes: X * MemoryLayout<Scalar>.stride)
            }
            var buffer = MessageBuffer(byteCount: 0)
            for source in 1 ..< communicator.size {
                if buffer.bytes.count < bytes(of: source) { buffer = MessageBuffer(byteCount: bytes(of: source)) }
                try communicator.wait(
                    for: [try communicator.receive(into: buffer, byteCount: bytes(of: source), from: source, tag: tag)],
                    timeout: timeout)
                try file.write(UnsafeRawBufferPointer(rebasing: buffer.bytes[0 ..< bytes(of: source)]),
                               shardRanges: shards.ranges(ofRank: source), heads: heads, length: shards.length,
                               rowBytes: X * MemoryLayout<Scalar>.stride)
            }
            try file.commit()
        }
    }

    private static func mapped(_ url: URL) throws -> Data {
        do {
            return try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw AttentionError.invalidFile(path: url.path, reason: "cannot be read (\(error.localizedDescription))")
        }
    }

    private static func dtypeName<Scalar>(_: Scalar.Type) -> String { Scalar.self == Float.self ? "float32" : "float64" }
}

/// A file written in place at offsets, then renamed over its destination; removed if never committed.
private final class PartialFile {
    let destination: URL
    let temporary: URL
    let handle: FileHandle
    let dataOffset: Int
    var committed = false

    init(_ destination: URL, header: Data) throws {
        self.destination = destination
        temporary = destination.deletingLastPathComponent()
            .appendingPathComponent(".\(destination.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).partial")
        guard FileManager.default.createFile(atPath: temporary.path, contents: header) else {
            throw AttentionError.invalidFile(path: destination.path, reason: "cannot be written (creating \(temporary.lastPathComponent) failed)")
        }
        do {
            handle = try FileHandle(forWritingTo: temporary)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw AttentionError.invalidFile(path: destination.path, reason: "cannot be written (\(error.localizedDescription))")
        }
        dataOffset = header.count
    }

    /// Writes rows `[heads, n, row]` of a shard at `shardRanges` of a sequence of `length`.
    func write(_ rows: UnsafeRawBufferPointer, shardRanges: [Range<Int>], heads: Int, length: Int, rowBytes: Int) throws {
        let n = shardRanges.reduce(0) { $0 + $1.count }
        do {
            for head in 0..<heads {
                var row = 0
                for range in shardRanges {
                    try handle.seek(toOffset: UInt64(dataOffset + (head * length + range.lowerBound) * rowBytes))
                    let start = (head * n + row) * rowBytes
                    try handle.write(contentsOf: UnsafeRawBufferPointer(rebasing: rows[start ..< start + range.count * rowBytes]))
                    row += range.count
                }
            }
        } catch {
            throw AttentionError.invalidFile(path: destination.path, reason: "writing failed midway (\(error.localizedDescription))")
        }
    }

    /// Flushes and renames the file over its destination.
    func commit() throws {
        do {
            try handle.synchronize()
            try handle.close()
        } catch {
            throw AttentionError.invalidFile(path: destination.path, reason: "writing failed midway (\(error.localizedDescription))")
        }
        guard rename(temporary.path, destination.path) == 0 else {
            throw AttentionError.invalidFile(path: destination.path, reason: "cannot be written (\(String(cString: strerror(errno))))")
        }
        committed = true
    }

    deinit {
        if !committed {
            try? handle.close()
            try? FileManager.default.removeItem(at: temporary)
        }
    }
}
