import ArgumentParser
import Attention
import AttentionModels
import Foundation

/// `attention bench`: time the forward pass on random inputs.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time the attention forward pass on random float32 inputs.",
        discussion: """
            Prints the median time of one call, GFLOP/s counting 2·D + 2·Dv flops per
            visible (query, key) pair per head (4·B·H·Nq·Nk·D without a mask; with
            --backward, forward and backward together, 14·D per pair), the code that ran,
            the percentage of the multiply-add peak of the widest instruction set this
            CPU has (AVX-512, else AVX2, else the baseline) whatever ran, measured by a
            probe in the same run, and the peak resident memory of the process. Build in
            release for meaningful numbers.

            With --kv-dtype the keys and values sit in a KV cache of that storage type
            (float32, float16 or bfloat16) and the queries attend to it, as in decoding.
            With few queries (--query-len up to 16) the speed that matters is memory's:
            the bench also reports the gigabytes of keys and values read per second and
            their share of the read bandwidth a probe measures in the same run.

            Examples:
              swift run -c release attention bench --heads 8 --seq 2048 --dim 64
              swift run -c release attention bench --heads 8 --seq 4096 --dim 64 \\
                  --causal --json
              swift run -c release attention bench --heads 32 --kv-heads 8 --seq 32768 \\
                  --query-len 1 --dim 128
              swift run -c release attention bench --heads 32 --kv-heads 8 --seq 65536 \\
                  --query-len 1 --dim 128 --kv-dtype float16
              swift run -c release attention bench --embed-batch 32   # the real model
              swift run -c release attention bench --linear 512x384x1536   # one product
              swift run -c release attention bench --model FILE.gguf --streams 8
              mpirun -np 2 .build/release/attention bench --distributed --heads 8 \\
                  --seq 16384 --causal --threads 1
            """
    )

    @Option(help: "Batch size B.") var batch = 1
    @Option(help: "Query heads Hq.") var heads = 8
    @Option(help: "Key/value heads Hkv (default: --heads); Hq must be a multiple.") var kvHeads: Int?
    @Option(help: "Key length Nk.") var seq = 1024
    @Option(help: "Query length Nq (default: --seq).") var queryLen: Int?
    @Option(help: "Head dimension D (and Dv).") var dim = 64
    @Option(help: "Keep keys and values in a KV cache of this storage type: float32, float16 or bfloat16.")
    var kvDtype: KVCache.Storage?
    @Flag(help: "Bottom-right aligned causal mask.") var causal = false
    @Option(name: .customLong("repeat"), help: "Timed repetitions (the median is reported).") var repetitions = 5
    @Option(help: "Worker threads (default: every active processor).") var threads: Int?
    @OptionGroup var implementation: ImplementationOption
    @Flag(help: "Print one JSON object instead of text.") var json = false
    @Flag(help: "Time forward and backward together (the gradients of Q, K and V for a random output gradient).")
    var backward = false
    @Option(help: "Instead of attention alone: time all-MiniLM-L6-v2 embedding batches of this many sentences (about 16 tokens each).")
    var embedBatch: Int?
    @Flag(help: "With --embed-batch: sentences of mixed lengths, 8 to 128 tokens spread evenly, in one batch.")
    var mixedLengths = false
    @Option(help: ArgumentHelp("Instead of attention: time a Linear layer (with bias) on ROWSxINxOUT, e.g. 512x384x1536, counting 2·ROWS·IN·OUT flops.",
                               valueName: "ROWSxINxOUT"))
    var linear: LinearShape?
    @Option(help: ArgumentHelp("With --linear: random weights in this GGUF block format (q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k or q6_k), in copies filling 256 MiB called in turn as a model's layers are, so that they come from memory; reports the gigabytes of blocks read per second and their share of a read-bandwidth probe.",
                               valueName: "format"))
    var weights: QuantizedMatrix.Format?
    @Option(help: precisionHelp) var precision: QuantizedPrecision = .int8
    @OptionGroup var location: ModelLocation
    @Option(help: ArgumentHelp("Instead of attention: time batched decoding of this GGUF chat model (any family generate reads), one stream against --streams streams stepping together, as attention serve decodes.",
                               valueName: "FILE.gguf"))
    var model: String?
    @Option(help: "With --model: the sequences decoding together, each its own prompt and caches (default 8).") var streams: Int?
    @Option(help: "With --model: the tokens each stream generates after its prompt (default 48).") var tokens: Int?
    @Flag(help: "Ring attention across the processes of 'mpirun -np P' (each makes its shard of the inputs): time, GFLOP/s, each rank's traffic, wait and memory, and a model of the time on P hosts.")
    var distributed = false
    @Option(help: ArgumentHelp("With --distributed: the link speed between hosts that the scaling model assumes (default 1.25, 10 Gb Ethernet).",
                               valueName: "GB/s"))
    var linkBandwidth = 1.25

    func validate() throws {
        for (name, value) in [("--batch", batch), ("--heads", heads), ("--seq", seq), ("--dim", dim),
                              ("--repeat", repetitions), ("--kv-heads", kvHeads ?? 1), ("--query-len", queryLen ?? 1),
                              ("--threads", threads ?? 1)] where value < 1 {
            throw ValidationError("\(name) must be at least 1, got \(value)")
        }
        if repetitions > 10_000 { throw ValidationError("--repeat must be at most 10000, got \(repetitions)") }
        if let threads, threads > AttentionOptions.maximumThreads {
            throw ValidationError("--threads must be at most \(AttentionOptions.maximumThreads), got \(threads)")
        }
        // The modes that time something other than the attention forward on random inputs.
        let modes = [("--kv-dtype", kvDtype != nil), ("--backward", backward), ("--embed-batch", embedBatch != nil)]
        if distributed {
            if let first = (modes + [("--linear", linear != nil)]).first(where: { $0.1 }) {
                throw ValidationError("--distributed times the ring's forward pass; it does not combine with \(first.0)")
            }
            guard linkBandwidth > 0, linkBandwidth.isFinite else {
                throw ValidationError("--link-bandwidth must be a positive number of GB/s, got \(linkBandwidth)")
            }
        }
        if linear != nil, let other = modes.first(where: { $0.1 }) {
            throw ValidationError("--linear times one matrix product; it does not combine with \(other.0)")
        }
        if let linear {
            let memory = Int(clamping: ProcessInfo.processInfo.physicalMemory)
            // The input, the weight (and its packed copy) and the output, each in Float.
            let matrices = [[linear.rows, linear.inputs], [linear.inputs, linear.outputs, 2], [linear.rows, linear.outputs]]
            guard matrices.allSatisfy({ (try? checkedElementCount($0 + [MemoryLayout<Float>.size], argument: "--linear", atMost: memory)) != nil }) else {
                throw ValidationError("--linear \(linear) would need more than this machine's \(memory) bytes of memory")
            }
        }
        if let weights {
            guard let linear else { throw ValidationError("--weights gives the format of --linear's weights; give --linear ROWSxINxOUT") }
            guard linear.inputs % weights.valuesPerBlock == 0 else {
                throw ValidationError(
                    "--weights \(weights.rawValue.lowercased()) needs --linear's IN to be a multiple of \(weights.valuesPerBlock) (the block size), got \(linear.inputs)")
            }
        }
        if model != nil, let other = (modes.dropFirst() + [("--linear", linear != nil), ("--distributed", distributed)]).first(where: { $0.1 }) {
            throw ValidationError("--model times a chat model's decoding; it does not combine with \(other.0)")
        }
        for (name, value) in [("--streams", streams), ("--tokens", tokens)] where value != nil && model == nil {
            throw ValidationError("\(name) shapes the decoding of --model; give --model FILE.gguf")
        }
        if let streams, !(1...BatchedGenerator.maximumSlots).contains(streams) {
            throw ValidationError("--streams must be in 1...\(BatchedGenerator.maximumSlots) (the sequences --model decodes together), got \(streams)")
        }
        if let tokens, !(2...4096).contains(tokens) {
            throw ValidationError("--tokens must be in 2...4096 (the first of each --model stream comes from its prompt's step), got \(tokens)")
        }
        if mixedLengths, embedBatch == nil { throw ValidationError("--mixed-lengths shapes the batches of --embed-batch; give --embed-batch B") }
        if let embedBatch, embedBatch > Self.largestEmbedBatch {
            throw ValidationError("--embed-batch must be at most \(Self.largestEmbedBatch), got \(embedBatch)")
        }
        // The random inputs must fit in memory: refuse before allocating, naming the flags.
        let (nq, hkv) = (queryLen ?? seq, kvHeads ?? heads)
        let memory = Int(clamping: ProcessInfo.processInfo.physicalMemory)
        for (name, shape) in [("query", [batch, heads, nq, dim]), ("key and value", [batch, hkv, seq, dim])] {
            guard (try? checkedElementCount(shape + [MemoryLayout<Float>.size], argument: name, atMost: memory)) != nil else {
                throw ValidationError("the \(name) of shape \(shape) (from --batch, --heads, --kv-heads, --seq, --query-len, --dim) "
                                      + "would need more than this machine's \(memory) bytes of memory")
            }
        }
    }

    /// The most sentences `--embed-batch` takes (a batch that large takes minutes already).
    static let largestEmbedBatch = 65_536

    func run() throws {
        if distributed { return try benchDistributed(implementation: try implementation.parsed()) }
        let threadCount = threads ?? ProcessInfo.processInfo.activeProcessorCount
        let processors = ProcessInfo.processInfo.activeProcessorCount
        if threadCount > processors {
            // Said once: every line below reports the same count, and the peak is measured on it too.
            FileHandle.standardError.write(Data("note: --threads \(threadCount) is more than the \(processors) processors here; the threads share them\n".utf8))
        }
        let options = AttentionOptions(implementation: try implementation.parsed(), threads: threadCount, quantizedPrecision: precision)
        if let embedBatch { return try benchEmbeddings(batch: embedBatch, options: options) }
        if let model { return try benchStreams(model, options: options, threads: threadCount) }
        if let linear, let weights { return try benchQuantized(linear, format: weights, options: options, threads: threadCount) }
        if let linear { return try benchLinear(linear, options: options, threads: threadCount) }
        let nq = queryLen ?? seq, hkv = kvHeads ?? heads
        var generator = SplitMix64(seed: 1)
        let q = try Tensor<Float>.randomNormal(shape: [batch, heads, nq, dim], using: &generator)
        let k = try Tensor<Float>.randomNormal(shape: [batch, hkv, seq, dim], using: &generator)
        let v = try Tensor<Float>.randomNormal(shape: [batch, hkv, seq, dim], using: &generator)
        let mask: AttentionMask = causal ? .causal : .none

        let dO = backward ? try Tensor<Float>.randomNormal(shape: [batch, heads, nq, dim], using: &generator) : q
        var cache: KVCache? = nil
        if let kvDtype {
            guard !backward else { throw ValidationError("--kv-dtype times the forward pass over a KV cache; it does not combine with --backward") }
            var filled = try KVCache(batchSize: batch, keyValueHeads: hkv, headDimension: dim, capacity: seq, storage: kvDtype)
            try filled.append(key: k, value: v)
            cache = filled
        }
        var taken: AttentionPath?
        var times: [Double] = []
        for trial in 0...repetitions {   // trial 0 warms up
            let start = DispatchTime.now().uptimeNanoseconds
            if let cache {
                taken = try scaledDotProductAttention(query: q, cache: cache, mask: mask, options: options).path
            } else if backward {
                // What training runs: the forward (keeping its log-sum-exp), then the backward from it.
                let forward = try scaledDotProductAttention(query: q, key: k, value: v, mask: mask, returning: .logSumExp, options: options)
                taken = try scaledDotProductAttentionBackward(query: q, key: k, value: v, outputGradient: dO, mask: mask,
                                                              forward: forward, options: options).path
            } else {
                taken = try scaledDotProductAttention(query: q, key: k, value: v, mask: mask, options: options).path
            }
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
            if trial > 0 { times.append(elapsed) }
        }
        let median = times.sorted()[times.count / 2]
        let pairs = try visiblePairs(queries: nq, keys: seq, mask: mask)
        // Forward: QKᵀ and PV (4·D per pair). With --backward add the recomputed QKᵀ, dO·Vᵀ, Pᵀ·dO,
        // dSᵀ·Q and dS·K: 10·D more per pair, counted as the work actually done.
        let flops = Double(batch * heads) * Double(pairs) * Double((backward ? 14 : 4) * dim)
        let gflops = flops / median / 1e9
        // The share is of the machine's limit: the peak of the widest FMA unit this CPU has, whatever
        // ran (a forced portable or reference path reads as the slow path it is).
        let instructionSet = KernelInstructionSet.best
        let path = taken?.description ?? ""
        let ran: String
        switch taken?.implementation {
        case .tiled(let isa): ran = isa.rawValue
        case .reference, .automatic, nil: ran = "reference"
        }
        // Before the bandwidth probe, whose 512 MiB buffer is not the attention's.
        let rss = peakResidentBytes()
        let peak = measureMultiplyAddPeak(threads: threadCount, instructionSet: instructionSet)
        // Decoding: bytes of K and V read per second against the memory's read bandwidth.
        let decoding = nq <= 16 && !backward
        let storage = kvDtype ?? .float32
        let kvBytes = Double(batch * hkv * seq * 2 * dim * storage.bytesPerElement)
        let gigabytesPerSecond = kvBytes / median / 1e9
        let bandwidth = decoding ? measureReadBandwidth(threads: threadCount, instructionSet: instructionSet) : 0

        if json {
            let fields: [(String, String)] = [
                ("batch", "\(batch)"), ("heads", "\(heads)"), ("kvHeads", "\(hkv)"), ("queryLength", "\(nq)"),
                ("keyLength", "\(seq)"), ("dim", "\(dim)"), ("causal", "\(causal)"), ("threads", "\(threadCount)"),
                ("medianSeconds", "\(median)"), ("gflops", "\(gflops)"), ("instructionSet", "\"\(ran)\""),
                ("peakInstructionSet", "\"\(instructionSet.rawValue)\""), ("peakGflops", "\(peak)"),
                ("percentOfPeak", "\(100 * gflops / peak)"), ("peakResidentBytes", "\(rss)"),
                ("kvDtype", "\"\(storage.rawValue)\""),
            ] + (decoding ? [
                ("gigabytesPerSecond", "\(gigabytesPerSecond)"), ("bandwidthGigabytesPerSecond", "\(bandwidth)"),
                ("percentOfBandwidth", "\(100 * gigabytesPerSecond / bandwidth)"),
            ] : []) + [
                ("path", "\"\(path.replacingOccurrences(of: "\"", with: "'"))\""),
            ]
            print("{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
        } else {
            print("shape      B=\(batch) Hq=\(heads) Hkv=\(hkv) Nq=\(nq) Nk=\(seq) D=\(dim)\(causal ? " causal" : "")")
            print("path       \(path)")
            print("median     \(Format.number(median * 1e3, 3)) ms over \(repetitions) runs")
            print("speed      \(Format.number(gflops, 1)) GFLOP/s on \(ran) = \(Format.number(100 * gflops / peak, 1))% of this CPU's \(instructionSet.rawValue) FMA peak \(Format.number(peak, 1)) GFLOP/s measured now (\(threadCount) threads)")
            if decoding {
                print("memory     \(Format.number(gigabytesPerSecond, 1)) GB/s of \(storage.rawValue) keys and values read = \(Format.number(100 * gigabytesPerSecond / bandwidth, 1))% of the read bandwidth \(Format.number(bandwidth, 1)) GB/s measured now (\(threadCount) threads)")
            }
            print("resident   peak \(Format.number(Double(rss) / 1_048_576, 1)) MiB (inputs and output: \(Format.number(Double(4 * (q.count + k.count + v.count + q.count)) / 1_048_576, 1)) MiB)")
        }
    }

    /// Sentences per second of the real model on batches of `batch` sentences, run with `options`.
    func benchEmbeddings(batch: Int, options: AttentionOptions) throws {
        guard batch >= 1 else { throw ValidationError("--embed-batch must be at least 1, got \(batch)") }
        let model = try location.load()
        // Mixed: sentence i has 8 + 120·i/(batch-1) tokens, [CLS] and [SEP] included ("cat" is one token).
        let sentences = mixedLengths
            ? (0..<batch).map { i in
                Array(repeating: "cat", count: 6 + (batch > 1 ? 120 * i / (batch - 1) : 0)).joined(separator: " ")
            }
            : (0..<batch).map { "Sentence number \($0) tells how a small cat sat on the warm mat today" }
        let lengths = sentences.map { model.tokenize($0).count }
        let tokens = lengths.reduce(0, +) / batch
        var times: [Double] = []
        for trial in 0...repetitions {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try model.embed(sentences, options: options)
            if trial > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9) }
        }
        let median = times.sorted()[times.count / 2]
        // Per token and layer: the Q, K, V and output projections (8·C²) and the MLP (4·C·I), which
        // is 24·C² for I = 4·C; per sequence and layer, attention's QKᵀ and PV (4·T²·C).
        let c = model.encoder.configuration
        let (C, I) = (Double(c.hiddenSize), Double(c.intermediateSize))
        let flops = Double(c.layers) * lengths.reduce(0) { sum, length in
            let T = Double(length)
            return sum + T * (8 * C * C + 4 * C * I) + 4 * T * T * C
        }
        let gflops = flops / median / 1e9
        let instructionSet = KernelInstructionSet.best
        let peak = measureMultiplyAddPeak(threads: options.threads ?? ProcessInfo.processInfo.activeProcessorCount,
                                          instructionSet: instructionSet)
        if json {
            print("{\"batch\": \(batch), \"tokens\": \(tokens), \"mixedLengths\": \(mixedLengths), \"medianSeconds\": \(median), \"sentencesPerSecond\": \(Double(batch) / median), "
                  + "\"gflops\": \(gflops), \"peakInstructionSet\": \"\(instructionSet.rawValue)\", \"peakGflops\": \(peak), "
                  + "\"percentOfPeak\": \(100 * gflops / peak)}")
        } else {
            let shape = mixedLengths ? "\(lengths.min() ?? 0) to \(lengths.max() ?? 0) tokens (\(tokens) on average)" : "\(tokens) tokens"
            print("all-MiniLM-L6-v2, \(batch) sentences of \(shape): median \(Format.number(median * 1e3, 1)) ms = \(Format.number(Double(batch) / median, 1)) sentences/s")
            print("speed      \(Format.number(gflops, 1)) GFLOP/s = \(Format.number(100 * gflops / peak, 1))% of this CPU's \(instructionSet.rawValue) FMA peak \(Format.number(peak, 1)) GFLOP/s measured now")
        }
    }

    /// GFLOP/s of one Linear layer (random weights and bias, packed as the models pack theirs).
    func benchLinear(_ shape: LinearShape, options: AttentionOptions, threads: Int) throws {
        var generator = SplitMix64(seed: 1)
        let layer = try Linear<Float>(inputDimension: shape.inputs, outputDimension: shape.outputs, using: &generator)
        let x = try Tensor<Float>.randomNormal(shape: [shape.rows, shape.inputs], using: &generator)
        var times: [Double] = []
        for trial in 0...repetitions {   // trial 0 warms up (and packs the weight)
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try layer(x, options: options)
            if trial > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9) }
        }
        let median = times.sorted()[times.count / 2]
        let gflops = 2 * Double(shape.rows) * Double(shape.inputs) * Double(shape.outputs) / median / 1e9
        let instructionSet = KernelInstructionSet.best
        let peak = measureMultiplyAddPeak(threads: threads, instructionSet: instructionSet)
        if json {
            print("{\"rows\": \(shape.rows), \"inputs\": \(shape.inputs), \"outputs\": \(shape.outputs), \"threads\": \(threads), "
                  + "\"medianSeconds\": \(median), \"gflops\": \(gflops), \"peakInstructionSet\": \"\(instructionSet.rawValue)\", "
                  + "\"peakGflops\": \(peak), \"percentOfPeak\": \(100 * gflops / peak)}")
        } else {
            print("Linear \(shape.inputs) -> \(shape.outputs) on \(shape.rows) rows: median \(Format.number(median * 1e3, 3)) ms over \(repetitions) runs")
            print("speed      \(Format.number(gflops, 1)) GFLOP/s = \(Format.number(100 * gflops / peak, 1))% of this CPU's \(instructionSet.rawValue) FMA peak \(Format.number(peak, 1)) GFLOP/s measured now (\(threads) threads)")
        }
    }

    /// `--linear ROWSxINxOUT --weights FORMAT`: random blocks, copies of the matrix enough to fill
    /// 256 MiB called one after another (as a model's layers are), so the blocks come from memory.
    func benchQuantized(_ shape: LinearShape, format: QuantizedMatrix.Format, options: AttentionOptions, threads: Int) throws {
        let (valuesPerBlock, bytesPerBlock) = (format.valuesPerBlock, format.bytesPerBlock)
        let matrixBytes = shape.outputs * shape.inputs / valuesPerBlock * bytesPerBlock
        let copies = max(1, (256 << 20) / matrixBytes)
        var generator = SplitMix64(seed: 1)
        var bytes = [UInt8](repeating: 0, count: matrixBytes)
        for b in stride(from: 0, to: matrixBytes, by: bytesPerBlock) {
            for i in b..<(b + bytesPerBlock) { bytes[i] = UInt8(truncatingIfNeeded: generator.next()) }
            // Scales (and minimums) of ordinary size: half precision with a small exponent.
            for s in format.halfPrecisionScaleOffsets.map({ b + $0 }) { bytes[s + 1] = 0x20 | (bytes[s + 1] & 0x83) }
        }
        // The same values in separate memory for each copy.
        let matrices = try (0..<copies).map { _ in
            try QuantizedMatrix(format: format, rows: shape.outputs, columns: shape.inputs, bytes: Data(bytes))
        }
        let x = try Tensor<Float>.randomNormal(shape: [shape.rows, shape.inputs], using: &generator)
        var times: [Double] = []
        for trial in 0...repetitions {   // trial 0 warms up
            let start = DispatchTime.now().uptimeNanoseconds
            for matrix in matrices { _ = try matrix.multiply(x, options: options) }
            if trial > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 / Double(copies)) }
        }
        let median = times.sorted()[times.count / 2]
        let gflops = 2 * Double(shape.rows) * Double(shape.inputs) * Double(shape.outputs) / median / 1e9
        let gigabytesPerSecond = Double(matrixBytes) / median / 1e9
        let instructionSet = KernelInstructionSet.best
        // Which products ran: the integer ones (and their instructions) or Float.
        let ran = options.quantizedPrecision == .int8 && format.hasIntegerProducts
            ? "int8 (\(instructionSet.integerDotUnit))" : "float32"
        let peak = measureMultiplyAddPeak(threads: threads, instructionSet: instructionSet)
        let bandwidth = measureReadBandwidth(threads: threads, instructionSet: instructionSet)
        if json {
            print("{\"rows\": \(shape.rows), \"inputs\": \(shape.inputs), \"outputs\": \(shape.outputs), \"weights\": \"\(format.rawValue)\", \"products\": \"\(ran)\", "
                  + "\"copies\": \(copies), \"threads\": \(threads), \"medianSeconds\": \(median), \"gflops\": \(gflops), "
                  + "\"peakInstructionSet\": \"\(instructionSet.rawValue)\", \"peakGflops\": \(peak), \"percentOfPeak\": \(100 * gflops / peak), "
                  + "\"gigabytesPerSecond\": \(gigabytesPerSecond), \"bandwidthGigabytesPerSecond\": \(bandwidth), "
                  + "\"percentOfBandwidth\": \(100 * gigabytesPerSecond / bandwidth)}")
        } else {
            print("\(format.rawValue) weights \(shape.inputs) -> \(shape.outputs) on \(shape.rows) rows, \(ran) products: median \(Format.number(median * 1e6, 1)) µs per product over \(repetitions) runs of \(copies) copies")
            print("speed      \(Format.number(gflops, 1)) GFLOP/s = \(Format.number(100 * gflops / peak, 1))% of this CPU's \(instructionSet.rawValue) FMA peak \(Format.number(peak, 1)) GFLOP/s measured now (\(threads) threads)")
            print("memory     \(Format.number(gigabytesPerSecond, 1)) GB/s of blocks read = \(Format.number(100 * gigabytesPerSecond / bandwidth, 1))% of the read bandwidth \(Format.number(bandwidth, 1)) GB/s measured now")
        }
    }

    /// Σ over queries of the keys each may see (all heads alike here).
    func visiblePairs(queries: Int, keys: Int, mask: AttentionMask) throws -> Int {
        guard causal else { return queries * keys }
        return (0..<queries).reduce(0) { $0 + min(keys, max(0, $1 + keys - queries + 1)) }
    }
}

/// The process's peak resident set size in bytes.
func peakResidentBytes() -> Int {
    var usage = rusage()
    #if os(Linux)
    getrusage(RUSAGE_SELF.rawValue, &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    #if os(Linux)
    return usage.ru_maxrss * 1024   // kilobytes on Linux
    #else
    return usage.ru_maxrss          // bytes on Apple platforms
    #endif
}

/// `--linear ROWSxINxOUT`: the shape of one Linear product.
struct LinearShape: ExpressibleByArgument, CustomStringConvertible {
    let rows: Int, inputs: Int, outputs: Int

    init?(argument: String) {
        let parts = argument.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 3, let rows = parts[0], let inputs = parts[1], let outputs = parts[2],
              rows >= 1, inputs >= 1, outputs >= 1 else { return nil }
        (self.rows, self.inputs, self.outputs) = (rows, inputs, outputs)
    }

    var description: String { "\(rows)x\(inputs)x\(outputs)" }
}
