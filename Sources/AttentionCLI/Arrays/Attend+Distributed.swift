import Attention
import AttentionDistributed
import Foundation

/// `attend --distributed`: ring attention across the processes `mpirun` started.
extension Attend {
    /// What `--distributed` ran: the ring's shape and each rank's figures.
    struct DistributedRun {
        let summary: String
        let ranks: [RankFigures]
    }

    /// Runs the ring on this rank. An error every rank learns of ends each rank, after its message,
    /// with the failed rank's status; a timeout or a transfer failure, which the others may not learn
    /// of, ends them all at once (`MPI_Abort`).
    func attendDistributed(reporting log: (Event) -> Void) throws -> DistributedRun? {
        let world = try MPICommunicator.world()
        let timeout = Duration.milliseconds(Int((self.timeout ?? 600) * 1000))
        do {
            let run = try attendDistributed(world, timeout: timeout, log)
            try world.finalize()
            return world.rank == 0 ? run : nil
        } catch {
            let named = (error as? AttentionError).map { $0.naming(flagNames) } ?? error
            let status = AttentionCommand.exitStatus(for: named)
            let message = "rank \(world.rank) of \(world.size): \(AttentionCommand.message(for: named))"
            FileHandle.standardError.write(Data("Error: \(message)\n".utf8))
            if let failure = error as? DistributedError, failure.leavesPeersWaiting { world.abort(status: status) }
            // Every rank knows: each has printed its message before MPI_Finalize, which waits for all,
            // so mpirun does not end a rank (on another's failure) before it has said why.
            try? world.finalize()
            Foundation.exit(status)
        }
    }

    private func attendDistributed(_ world: MPICommunicator, timeout: Duration, _ log: (Event) -> Void) throws -> DistributedRun {
        let layouts = try world.agreeing(timeout: timeout, failureCode: failureCode) {
            for (path, flag) in [(query, "--query"), (key, "--key"), (value, "--value")] { try UserPath.input(path, flag: flag) }
            if world.rank == 0 {
                for (path, flag) in [(output, "--output"), (lse, "--lse")] as [(String?, String)] {
                    if let path { try UserPath.output(path, flag: flag) }
                }
            }
            return try [query, key, value].map { try NPYShards.layout(of: URL(fileURLWithPath: $0)) }
        }
        switch layouts[0].dtype {
        case .float32: return try attendDistributed(Float.self, world, layouts, timeout, log)
        case .float64: return try attendDistributed(Double.self, world, layouts, timeout, log)
        case .bool: throw AttentionError.invalidFile(path: query, reason: "expected float32 or float64 queries, found bool")
        }
    }

    private func attendDistributed<Scalar: AttentionScalar & NPYElement>(
        _: Scalar.Type, _ world: MPICommunicator, _ layouts: [NPYLayout], _ timeout: Duration, _ log: (Event) -> Void
    ) throws -> DistributedRun {
        let (queryShape, keyShape, valueShape) = (layouts[0].shape, layouts[1].shape, layouts[2].shape)
        let ranks = world.size
        let (queryShards, keyShards) = try world.agreeing(timeout: timeout, failureCode: failureCode) { () throws -> (SequenceShards, SequenceShards) in
            guard queryShape.count >= 2, keyShape.count == queryShape.count, valueShape.count == queryShape.count else {
                throw CommandError(
                    "--distributed takes query, key and value of one rank, [B, H, N, D], [H, N, D] or [N, D]; got \(queryShape), \(keyShape), \(valueShape)",
                    status: .dataError)
            }
            let (Nq, Nk) = (queryShape[queryShape.count - 2], keyShape[keyShape.count - 2])
            guard valueShape[valueShape.count - 2] == Nk else {
                throw AttentionError.shapeMismatch(argument: "--value \(value)", shape: valueShape, other: "--key \(key)",
                                                   otherShape: keyShape, reason: "they must hold the same number of positions")
            }
            guard Nq >= ranks, Nk >= ranks else {
                throw CommandError("--distributed over \(ranks) ranks needs at least \(ranks) queries and keys; --query has \(Nq), --key \(Nk)",
                                   status: .dataError)
            }
            // Causal and windowed masks hide whole blocks; zig-zag shards share out the rest evenly.
            let masked = (causal || causalTopLeft || window != nil) && ranks > 1 && Nq >= 2 * ranks && Nk >= 2 * ranks
            let layout: ShardLayout = masked ? .zigZag : .contiguous
            return (try SequenceShards(length: Nq, ranks: ranks, layout: layout),
                    try SequenceShards(length: Nk, ranks: ranks, layout: layout))
        }
        let mine = (queryShards.ranges(ofRank: world.rank), keyShards.ranges(ofRank: world.rank))
        let (q, k, v) = try world.agreeing(timeout: timeout, failureCode: failureCode) { () throws -> (Tensor<Scalar>, Tensor<Scalar>, Tensor<Scalar>) in
            let q = try NPYShards.read(URL(fileURLWithPath: query), ranges: mine.0, as: Scalar.self)
            let k = try NPYShards.read(URL(fileURLWithPath: key), ranges: mine.1, as: Scalar.self)
            let v = try NPYShards.read(URL(fileURLWithPath: value), ranges: mine.1, as: Scalar.self)
            if checkFinite {
                try q.checkFinite(argument: "--query \(query)")
                try k.checkFinite(argument: "--key \(key)")
                try v.checkFinite(argument: "--value \(value)")
            }
            return (q, k, v)
        }
        let result = try ringAttention(
            query: q, key: k, value: v, queryShards: queryShards, keyShards: keyShards, mask: try buildMask(),
            scale: scale.map { Scalar(fromDouble: $0) }, communicator: world, timeout: timeout,
            options: AttentionOptions(implementation: try implementation.parsed(), threads: MPICommunicator.processorsAvailable))
        let outputShape: [Int] = Array(queryShape.dropLast()) + [valueShape[valueShape.count - 1]]
        try NPYShards.write(result.output, shards: queryShards, shape: outputShape, to: URL(fileURLWithPath: output),
                            communicator: world, timeout: timeout, failureCode: failureCode)
        let dtype = Scalar.self == Float.self ? "float32" : "float64"
        if world.rank == 0 { log(.wrote(Written(file: output, shape: outputShape, dtype: dtype))) }
        if let lse {
            let shape: [Int] = Array(queryShape.dropLast())
            try NPYShards.write(result.logSumExp, shards: queryShards, shape: shape, sequenceAxis: shape.count - 1,
                                to: URL(fileURLWithPath: lse), communicator: world, timeout: timeout, failureCode: failureCode)
            if world.rank == 0 { log(.wrote(Written(file: lse, shape: shape, dtype: dtype))) }
        }
        let s = result.statistics
        let reports = try RankFigures.gather(s, queries: q.shape[q.rank - 2], world: world, timeout: timeout)
        let local = result.path.map { "; each rank: \($0)" } ?? ""
        return DistributedRun(
            summary: "ring attention over \(ranks) rank\(ranks == 1 ? "" : "s") (\(queryShards.layout.rawValue) shards of \(queryShards.length) queries and \(keyShards.length) keys, \(s.blocksComputed) blocks computed and \(s.blocksSkipped) skipped on rank \(world.rank))\(local)",
            ranks: reports)
    }

    /// The exit status this rank will end with for `error`, which the other ranks end with too.
    func failureCode(_ error: any Error) -> Int64 {
        Int64(AttentionCommand.exitStatus(for: (error as? AttentionError).map { $0.naming(flagNames) } ?? error))
    }

    /// The library's argument names as the user typed them: flags and files.
    var flagNames: [String: String] {
        var names = ["keyLengths": "--key-lengths", "scale": "--scale", "window": "--window", "slidingWindow": "--window"]
        for (argument, flag, path) in [("query", "--query", query), ("key", "--key", key), ("value", "--value", value),
                                       ("mask", "--mask", mask), ("bias", "--bias", bias), ("outputGradient", "--grad-output", gradOutput)] {
            if let path { names[argument] = "\(flag) \(path)" }
        }
        return names
    }
}

extension DistributedError {
    /// Whether the other ranks may still be waiting on this one: then ending them all is the only way
    /// not to leave them hanging until their own timeouts.
    var leavesPeersWaiting: Bool {
        switch self {
        case .timedOut, .communication: true
        case .mpiUnavailable, .peersFailed, .ranksDisagree: false
        }
    }
}
