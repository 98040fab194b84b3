import ArgumentParser
import Attention
import AttentionDistributed
import Foundation

/// `bench --distributed`: ring attention across the processes of `mpirun`, each generating its own
/// shard of random inputs.
extension Bench {
    /// The time ring attention over this shape would take on `hosts` machines of this one's speed
    /// joined by links of `linkGigabytesPerSecond`: each of the P steps takes the longer of its
    /// compute (1/P² of the visible work, zig-zag balanced, at this machine's measured rate) and its
    /// transfer (one key/value shard).
    struct ScalingModel: Encodable {
        let hosts: Int
        let linkGigabytesPerSecond: Double
        let singleHostGflops: Double
        let stepComputeSeconds: Double
        let stepTransferSeconds: Double
        let modelSeconds: Double
    }

    func benchDistributed(implementation: AttentionImplementation) throws {
        let world = try MPICommunicator.world()
        let available = MPICommunicator.processorsAvailable
        let threadCount = threads ?? available
        if threadCount > available && world.rank == 0 {
            FileHandle.standardError.write(Data("note: each rank may run on \(available) processor\(available == 1 ? "" : "s") (mpirun binds ranks to cores; 'mpirun --bind-to none' lifts it): its --threads \(threadCount) share them\n".utf8))
        }
        do {
            try benchDistributed(world, options: AttentionOptions(implementation: implementation, threads: threadCount))
            try world.finalize()
        } catch {
            FileHandle.standardError.write(Data("Error: rank \(world.rank) of \(world.size): \(AttentionCommand.message(for: error))\n".utf8))
            world.abort(status: AttentionCommand.exitStatus(for: error))
        }
    }

    private func benchDistributed(_ world: MPICommunicator, options: AttentionOptions) throws {
        let timeout = Duration.seconds(3600)
        let (nq, hkv, P) = (queryLen ?? seq, kvHeads ?? heads, world.size)
        let zigZag = causal && P > 1 && nq >= 2 * P && seq >= 2 * P
        let queryShards = try SequenceShards(length: nq, ranks: P, layout: zigZag ? .zigZag : .contiguous)
        let keyShards = try SequenceShards(length: seq, ranks: P, layout: zigZag ? .zigZag : .contiguous)
        var generator = SplitMix64(seed: UInt64(1 + world.rank))
        let (n, m) = (queryShards.count(ofRank: world.rank), keyShards.count(ofRank: world.rank))
        let q = try Tensor<Float>.randomNormal(shape: [batch, heads, n, dim], using: &generator)
        let k = try Tensor<Float>.randomNormal(shape: [batch, hkv, m, dim], using: &generator)
        let v = try Tensor<Float>.randomNormal(shape: [batch, hkv, m, dim], using: &generator)
        let mask: AttentionMask = causal ? .causal : .none

        var times: [Double] = []
        var last: RingAttentionResult<Float>?
        for trial in 0...repetitions {   // trial 0 warms up
            _ = try world.maximum(of: [0], timeout: timeout)   // start together
            let start = DispatchTime.now().uptimeNanoseconds
            last = try ringAttention(query: q, key: k, value: v, queryShards: queryShards, keyShards: keyShards, mask: mask,
                                     communicator: world, timeout: timeout, options: options)
            let mine = Int64(DispatchTime.now().uptimeNanoseconds - start)
            let slowest = try world.maximum(of: [mine], timeout: timeout)[0]   // a step ends when every rank's does
            if trial > 0 { times.append(Double(slowest) * 1e-9) }
        }
        let median = times.sorted()[times.count / 2]
        let statistics = last?.statistics ?? RingStatistics()
        let ranks = try RankFigures.gather(statistics, queries: n, world: world, timeout: timeout)

        // This machine's own speed on a block like a step's (at most 2048 queries by 4096 keys, so
        // that measuring it stays short), and its FMA peak, measured by rank 0 alone.
        var singleHostGflops = 0.0, peak = 0.0
        let instructionSet = KernelInstructionSet.best
        if world.rank == 0 {
            let (rows, keys) = (min(n, 2048), min(m, 4096))
            let blockQuery = try Tensor<Float>.randomNormal(shape: [batch, heads, rows, dim], using: &generator)
            let block = try Tensor<Float>.randomNormal(shape: [batch, hkv, keys, dim], using: &generator)
            let threadCount = options.threads ?? 1
            var best = Double.infinity
            for _ in 0..<3 {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try scaledDotProductAttention(query: blockQuery, key: block, value: block, options: options)
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
            }
            singleHostGflops = Double(batch * heads * rows * keys * 4 * dim) / best / 1e9
            peak = measureMultiplyAddPeak(threads: threadCount, instructionSet: instructionSet)
        }
        _ = try world.maximum(of: [0], timeout: timeout)
        guard world.rank == 0 else { return }

        let pairs = try visiblePairs(queries: nq, keys: seq, mask: mask)
        let flops = Double(batch * heads) * Double(pairs) * Double(4 * dim)
        let gflops = flops / median / 1e9
        let hosts = Set(ranks.map(\.host)).count
        let shardBytes = Double(batch * hkv * (seq + P - 1) / P * 2 * dim * 4)
        let stepCompute = flops / Double(P * P) / (singleHostGflops * 1e9)
        let stepTransfer = shardBytes / (linkBandwidth * 1e9)
        let model = ScalingModel(
            hosts: P, linkGigabytesPerSecond: linkBandwidth, singleHostGflops: singleHostGflops,
            stepComputeSeconds: stepCompute, stepTransferSeconds: stepTransfer,
            modelSeconds: Double(P) * max(stepCompute, stepTransfer))
        let layout = (zigZag ? ShardLayout.zigZag : .contiguous).rawValue
        if json {
            struct Report: Encodable {
                let ranks: Int, hosts: Int, layout: String
                let batch: Int, heads: Int, kvHeads: Int, queryLength: Int, keyLength: Int, dim: Int, causal: Bool
                let medianSeconds: Double, gflops: Double, peakInstructionSet: String, peakGflops: Double, percentOfPeak: Double
                let perRank: [RankFigures]
                let model: ScalingModel
            }
            print(try Format.json(Report(
                ranks: P, hosts: hosts, layout: layout, batch: batch, heads: heads, kvHeads: hkv, queryLength: nq, keyLength: seq,
                dim: dim, causal: causal, medianSeconds: median, gflops: gflops, peakInstructionSet: instructionSet.rawValue,
                peakGflops: peak, percentOfPeak: 100 * gflops / (peak * Double(hosts)), perRank: ranks, model: model)))
            return
        }
        print("shape      B=\(batch) Hq=\(heads) Hkv=\(hkv) Nq=\(nq) Nk=\(seq) D=\(dim)\(causal ? " causal" : "")")
        print("ring       \(P) rank\(P == 1 ? "" : "s") on \(hosts) host\(hosts == 1 ? "" : "s"), \(layout) shards")
        print("median     \(Format.number(median * 1e3, 3)) ms over \(repetitions) runs (the slowest rank's)")
        print("speed      \(Format.number(gflops, 1)) GFLOP/s = \(Format.number(100 * gflops / (peak * Double(hosts)), 1))% of \(hosts) × this host's \(instructionSet.rawValue) FMA peak \(Format.number(peak, 1)) GFLOP/s measured now")
        for r in ranks { print(r.line) }
        print("model      on \(P) hosts like this one (\(Format.number(singleHostGflops, 1)) GFLOP/s each) and \(Format.number(linkBandwidth, 2)) GB/s links: \(P) steps of max(compute \(Format.number(stepCompute * 1e3, 2)) ms, transfer \(Format.number(stepTransfer * 1e3, 2)) ms) = \(Format.number(model.modelSeconds * 1e3, 1)) ms")
    }
}
