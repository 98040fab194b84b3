import _AttentionKernels

/// The fast kernels for one scalar type, reached through ``AttentionScalar/_kernels``: the library
/// asks the type for them instead of casting values to `Float` at run time. `Float` has them;
/// `Double` and other conformers run the reference code. Not API to call or to provide: its members
/// are internal to this module.
public struct _ScalarKernels<Scalar: AttentionScalar>: Sendable {
    /// The tiled forward pass.
    let attention: @Sendable (AttentionProblem<Scalar>, AttentionOutputs, KernelInstructionSet, _ threads: Int)
        -> AttentionResult<Scalar>
    /// The tiled forward pass over keys and values the source points to (the problem's own are empty).
    let attentionOverSource: @Sendable (AttentionProblem<Scalar>, TiledAttention.KeyValueSource, AttentionOutputs,
                                        KernelInstructionSet, _ threads: Int) -> AttentionResult<Scalar>
    /// The tiled backward pass, reusing a saved forward (output, log-sum-exp) when given.
    let attentionBackward: @Sendable (AttentionProblem<Scalar>, _ outputGradient: [Scalar],
                                      _ saved: (output: [Scalar], logSumExp: [Scalar])?, KernelInstructionSet, _ threads: Int)
        -> (dQ: [Scalar], dK: [Scalar], dV: [Scalar], dBias: [Scalar]?, detail: String)
    /// An activation applied in place, then (when given) multiplied element by element by a tensor
    /// of the same size, on the instruction set the call resolved (as every entry point here: none
    /// picks one itself).
    let activation: @Sendable (inout [Scalar], _ multiplier: [Scalar]?, Activation, KernelInstructionSet, _ threads: Int) -> Void
    /// Layer normalization of every `n`-wide row of `x` in place, after adding `residual` (of `x`'s
    /// size) when given; γ and β of `n` each.
    let layerNorm: @Sendable (_ x: inout [Scalar], _ residual: [Scalar]?, _ weight: [Scalar], _ bias: [Scalar], _ epsilon: Double,
                              _ n: Int, KernelInstructionSet, _ threads: Int) -> Void
    /// The tanh form's backward: `dx` from `x` and `dy`.
    let geluTanhBackward: @Sendable (_ x: [Scalar], _ dy: [Scalar], KernelInstructionSet) -> [Scalar]
    /// A linear layer's weight of `n` outputs and `k` inputs, stored in `layout`, packed for ``linear``.
    let packLinearWeight: @Sendable (_ weight: UnsafeBufferPointer<Scalar>, _ n: Int, _ k: Int, _ layout: WeightLayout) -> [Scalar]
    /// `y = x·Wᵀ + b` for `rows` rows of `k` features into `n` outputs: up to ``storedWeightRows`` rows
    /// from the weight as stored in `layout`, more from the panels `packed` gives (by ``packLinearWeight``).
    let linear: @Sendable (_ x: [Scalar], _ weight: UnsafeBufferPointer<Scalar>, _ layout: WeightLayout, _ packed: () -> [Scalar],
                           _ bias: [Scalar]?, _ activation: Activation?, _ rows: Int, _ n: Int, _ k: Int, KernelInstructionSet,
                           _ threads: Int) -> [Scalar]
    /// The linear layer's backward: `dx = dy·W`, `dW = dyᵀ·x`, `db = Σ_rows dy` (accumulated in Double).
    let linearBackward: @Sendable (_ x: [Scalar], _ dy: [Scalar], _ weight: [Scalar], _ rows: Int, _ n: Int, _ m: Int,
                                   KernelInstructionSet, _ threads: Int) -> (dx: [Scalar], dw: [Scalar], db: [Double])
}

extension _ScalarKernels where Scalar == Float {
    /// `Float`'s kernels: the tiled attention passes, the matrix kernel and the elementwise ones, each
    /// on the instruction set its call resolved from its options.
    static let float = _ScalarKernels(
        attention: { TiledAttention.forward($0, outputs: $1, isa: $2, threads: $3) },
        attentionOverSource: { TiledAttention.forward($0, source: $1, outputs: $2, isa: $3, threads: $4) },
        attentionBackward: { TiledAttention.backward($0, outputGradient: $1, saved: $2, isa: $3, threads: $4) },
        activation: { values, multiplier, activation, isa, threads in
            // One piece per thread, each of at least 4 Ki elements: an element costs a nanosecond or
            // two (an exponential), so smaller pieces are not worth waking a thread for.
            let count = values.count, pieces = max(1, min(threads, count / 4096))
            let kernel = activation.kernel(isa.kernels)
            values.withUnsafeMutableBufferPointer { buffer in
                (multiplier ?? []).withUnsafeBufferPointer { m in
                    guard let base = buffer.baseAddress else { return }
                    let shared = UncheckedSendable((base, multiplier == nil ? nil : m.baseAddress))
                    parallelFor(pieces, threads: threads) { p, _ in
                        let (base, m) = shared.value
                        let range = (p * count / pieces)..<((p + 1) * count / pieces)
                        kernel(base + range.lowerBound, range.count)
                        guard let m else { return }
                        for i in range { base[i] *= m[i] }
                    }
                }
            }
        },
        layerNorm: { x, residual, weight, bias, epsilon, n, isa, threads in
            let rows = x.count / n
            // Rows in chunks of about 64 Ki floats: small inputs are not worth waking threads for.
            let chunkRows = max(1, (1 << 16) / n), chunks = (rows + chunkRows - 1) / chunkRows
            x.withUnsafeMutableBufferPointer { x in
            weight.withUnsafeBufferPointer { weight in
            bias.withUnsafeBufferPointer { bias in
            (residual ?? []).withUnsafeBufferPointer { residual in
                guard let xb = x.baseAddress, let wb = weight.baseAddress, let bb = bias.baseAddress else { return }
                let shared = UncheckedSendable((xb, residual.isEmpty ? nil : residual.baseAddress, wb, bb))
                let kernel = isa.kernels.layerNorm
                parallelFor(chunks, threads: threads) { chunk, _ in
                    let (x, residual, weight, bias) = shared.value
                    kernel(x, residual, weight, bias, Float(epsilon), (chunk * chunkRows)..<min(rows, (chunk + 1) * chunkRows), n)
                }
            }
            }
            }
            }
        },
        geluTanhBackward: { x, dy, isa in
            [Float](unsafeUninitializedCapacity: x.count) { dx, count in
                x.withUnsafeBufferPointer { x in
                    dy.withUnsafeBufferPointer { dy in
                        if let xb = x.baseAddress, let dyb = dy.baseAddress, let dxb = dx.baseAddress {
                            isa.kernels.geluTanhBackward(xb, dyb, dxb, x.count)
                        }
                    }
                }
                count = x.count
            }
        },
        packLinearWeight: { weight, n, k, layout in
            [Float](unsafeUninitializedCapacity: (n + 31) / 32 * 32 * k) { buffer, count in
                guard let s = weight.baseAddress, let d = buffer.baseAddress else { return }
                switch layout {
                case .outputMajor: packPanels(s, k: k, n: n, into: d)
                case .inputMajor: packRowMajorPanels(s, k: k, n: n, into: d)
                }
                count = buffer.count
            }
        },
        linear: { x, weight, layout, packed, bias, activation, rows, n, k, isa, threads in
            let fromStorage = rows <= storedWeightRows
            let panels = fromStorage ? [] : packed()
            return [Float](unsafeUninitializedCapacity: rows * n) { y, count in
                x.withUnsafeBufferPointer { x in
                panels.withUnsafeBufferPointer { p in
                (bias ?? []).withUnsafeBufferPointer { b in
                    guard let x = x.baseAddress, let y = y.baseAddress else { return }
                    let bias = b.isEmpty ? nil : b.baseAddress
                    if fromStorage, let w = weight.baseAddress {
                        multiplyStoredWeight(x, rows: rows, weight: w, layout: layout, bias: bias, into: y, n: n, k: k, threads: threads, isa: isa)
                        activation?.kernel(isa.kernels)(y, rows * n)
                    } else if let p = p.baseAddress {
                        multiplyMatrices(x, packedB: p, bias: bias, activation: activation, into: y, m: rows, n: n, k: k, threads: threads,
                                         isa: isa)
                    }
                }
                }
                }
                count = rows * n
            }
        },
        linearBackward: { x, dy, w, rows, n, m, isa, threads in
            floatLinearBackward(x: x, dy: dy, w: w, rows: rows, n: n, m: m, isa: isa, threads: threads)
        })
}
