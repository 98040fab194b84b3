import _KernelIntrinsics

/// The kernels' entry points for one instruction set: a table of functions, built once per kernel
/// module by ``KernelEntryPoints/compiled(for:)``.
///
/// The kernels are always-inlined generic functions; the module that calls `compiled(for:)` is the
/// one whose code generation flags they are compiled with. This module builds the baseline table
/// (SSE2 on x86-64, NEON on arm64); `_AttentionKernelsAVX2` and `_AttentionKernelsAVX512` build the
/// same table for their instruction sets. Pointers in, nothing returned by SIMD value: a SIMD value
/// crossing a non-inlined call is split into 128-bit pieces.
///
/// A class: every call that runs a kernel takes its instruction set's table, and copying a struct of
/// some twenty closures retained and released each (one contended cache line per closure when two
/// threads take the table at once); a reference is one count.
public final class KernelEntryPoints: Sendable {
    /// One work item of the tiled forward pass (see ``forwardItem(_:item:scratch:_:)``).
    public let forward: @Sendable (_ descriptor: UnsafePointer<ForwardDescriptor>, _ item: Int, _ scratch: ForwardScratch) -> Void
    /// One key/value head's group of single queries over a KV cache (see
    /// ``singleQueryItem(_:pair:scratch:_:)``).
    public let singleQuery: @Sendable (_ descriptor: UnsafePointer<SingleQueryDescriptor>, _ pair: Int, _ scratch: UnsafeMutablePointer<Float>) -> Void
    /// Key block `block` (of `B·Hkv·keyBlocks`) packed transposed, in the panels this instruction
    /// set's forward reads (see ``packKeyBlock(_:block:into:_:)``).
    public let packKeys: @Sendable (_ descriptor: UnsafePointer<ForwardDescriptor>, _ block: Int, _ into: UnsafeMutablePointer<Float>) -> Void
    /// Merges key splits for a range of rows (see ``mergeSplits(_:rows:)``).
    public let merge: @Sendable (_ descriptor: UnsafePointer<ForwardDescriptor>, _ rows: Range<Int>) -> Void
    /// The tiled backward for one key block: its dK and dV, and its parts of dQ into `dQBuffer` and of
    /// the bias gradient into `dBiasBuffer` (see ``backwardKeyItem(_:item:scratch:dQBuffer:dBiasBuffer:_:)``).
    public let backward: @Sendable (_ descriptor: UnsafePointer<BackwardDescriptor>, _ item: Int, _ scratch: ForwardScratch,
                                    _ dQBuffer: UnsafeMutablePointer<Float>, _ dBiasBuffer: UnsafeMutablePointer<Float>?) -> Void
    /// `C = A · B + bias` for a range of rows (see ``multiplyRows(a:packedB:bias:c:rows:n:k:scratch:_:)``).
    public let multiply: @Sendable (_ a: UnsafePointer<Float>, _ packedB: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                                    _ c: UnsafeMutablePointer<Float>, _ rows: Range<Int>, _ n: Int, _ k: Int,
                                    _ scratch: UnsafeMutablePointer<Float>) -> Void
    /// `C = A · B + bias` for a few rows over a range of B's panels (see
    /// ``multiplyFewRows(a:packedB:bias:c:rows:panels:n:k:_:)``).
    public let multiplyFewRows: @Sendable (_ a: UnsafePointer<Float>, _ packedB: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                                           _ c: UnsafeMutablePointer<Float>, _ rows: Range<Int>, _ panels: Range<Int>, _ n: Int, _ k: Int) -> Void
    /// A few rows times an output-major weight, for a range of outputs (see
    /// ``multiplyOutputMajor(x:rows:weight:bias:y:outputs:n:k:_:)``).
    public let multiplyOutputMajor: @Sendable (_ x: UnsafePointer<Float>, _ rows: Int, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                                               _ y: UnsafeMutablePointer<Float>, _ outputs: Range<Int>, _ n: Int, _ k: Int) -> Void
    /// A few rows times an input-major weight, for a range of columns (see
    /// ``multiplyInputMajor(x:rows:weight:bias:y:columns:n:k:_:)``).
    public let multiplyInputMajor: @Sendable (_ x: UnsafePointer<Float>, _ rows: Int, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                                              _ y: UnsafeMutablePointer<Float>, _ columns: Range<Int>, _ n: Int, _ k: Int) -> Void
    /// The products over block-quantized weights, compiled for `format` (see ``QuantizedFormatKernels``).
    public let quantized: @Sendable (_ format: QuantizedBlockFormat) -> QuantizedFormatKernels
    /// Rows of an input quantized to 8-bit integers per block of 32, for the integer products (see
    /// ``quantizeInput(_:rows:k:values:scales:sums:firstHalfSums:_:)``).
    public let quantizeInput: @Sendable (_ x: UnsafePointer<Float>, _ rows: Int, _ k: Int, _ values: UnsafeMutablePointer<Int8>,
                                         _ scales: UnsafeMutablePointer<Float>, _ sums: UnsafeMutablePointer<Int32>,
                                         _ firstHalfSums: UnsafeMutablePointer<Int32>) -> Void
    /// What the integer products run on: ``IntegerDotUnit``.
    public let integerDot: IntegerDotUnit
    /// GELU (erf form, absolute error below 2e-7) in place.
    public let gelu: @Sendable (_ values: UnsafeMutablePointer<Float>, _ count: Int) -> Void
    /// GELU's tanh form in place (see ``geluTanhInPlace(_:count:_:)``).
    public let geluTanh: @Sendable (_ values: UnsafeMutablePointer<Float>, _ count: Int) -> Void
    /// The tanh form's backward (see ``geluTanhBackward(_:_:into:count:_:)``).
    public let geluTanhBackward: @Sendable (_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ count: Int) -> Void
    /// SiLU in place (see ``siluInPlace(_:count:_:)``).
    public let silu: @Sendable (_ values: UnsafeMutablePointer<Float>, _ count: Int) -> Void
    /// Layer normalization of a range of rows in place, after adding a residual when given (see
    /// ``layerNormRows(_:residual:weight:bias:epsilon:rows:n:_:)``).
    public let layerNorm: @Sendable (_ x: UnsafeMutablePointer<Float>, _ residual: UnsafePointer<Float>?, _ weight: UnsafePointer<Float>,
                                     _ bias: UnsafePointer<Float>, _ epsilon: Float, _ rows: Range<Int>, _ n: Int) -> Void
    /// The multiply-add peak loop (see ``multiplyAddProbe(iterations:seed:_:)``).
    public let probe: @Sendable (_ iterations: Int, _ seed: Float) -> Float
    /// The register shape these kernels were compiled for: their tile geometry (``RegisterShape/keyBlock(headDimension:rowsPerBlock:)``
    /// and the rest), and the flops of one iteration of `probe`.
    public let registers: RegisterShape
    /// The read-bandwidth loop (see ``streamingSum(_:count:_:)``).
    public let readProbe: @Sendable (_ values: UnsafePointer<Float>, _ count: Int) -> Float

    /// The table with every kernel specialized for `M` and inlined into the calling module.
    @inlinable @inline(__always)
    public static func compiled<M: MultiplyAdd>(for _: M.Type) -> KernelEntryPoints {
        KernelEntryPoints(
            forward: { forwardItem($0, item: $1, scratch: $2, M.self) },
            singleQuery: { singleQueryItem($0, pair: $1, scratch: $2, M.self) },
            packKeys: { packKeyBlock($0, block: $1, into: $2, M.self) },
            merge: { mergeSplits($0, rows: $1) },
            backward: { backwardKeyItem($0, item: $1, scratch: $2, dQBuffer: $3, dBiasBuffer: $4, M.self) },
            multiply: { multiplyRows(a: $0, packedB: $1, bias: $2, c: $3, rows: $4, n: $5, k: $6, scratch: $7, M.self) },
            multiplyFewRows: { _AttentionKernels.multiplyFewRows(a: $0, packedB: $1, bias: $2, c: $3, rows: $4, panels: $5, n: $6, k: $7, M.self) },
            multiplyOutputMajor: { _AttentionKernels.multiplyOutputMajor(x: $0, rows: $1, weight: $2, bias: $3, y: $4, outputs: $5, n: $6, k: $7, M.self) },
            multiplyInputMajor: { _AttentionKernels.multiplyInputMajor(x: $0, rows: $1, weight: $2, bias: $3, y: $4, columns: $5, n: $6, k: $7, M.self) },
            quantized: { $0.apply(QuantizedKernelsOf<M>()) },
            quantizeInput: { _AttentionKernels.quantizeInput($0, rows: $1, k: $2, values: $3, scales: $4, sums: $5, firstHalfSums: $6, M.self) },
            integerDot: IntegerDotUnit.compiled,
            gelu: { geluInPlace($0, count: $1, M.self) },
            geluTanh: { geluTanhInPlace($0, count: $1, M.self) },
            geluTanhBackward: { _AttentionKernels.geluTanhBackward($0, $1, into: $2, count: $3, M.self) },
            silu: { siluInPlace($0, count: $1, M.self) },
            layerNorm: { layerNormRows($0, residual: $1, weight: $2, bias: $3, epsilon: $4, rows: $5, n: $6, M.self) },
            probe: { multiplyAddProbe(iterations: $0, seed: $1, M.self) },
            registers: M.registers,
            readProbe: { streamingSum($0, count: $1, M.self) })
    }

    @inlinable
    init(
        forward: @escaping @Sendable (UnsafePointer<ForwardDescriptor>, Int, ForwardScratch) -> Void,
        singleQuery: @escaping @Sendable (UnsafePointer<SingleQueryDescriptor>, Int, UnsafeMutablePointer<Float>) -> Void,
        packKeys: @escaping @Sendable (UnsafePointer<ForwardDescriptor>, Int, UnsafeMutablePointer<Float>) -> Void,
        merge: @escaping @Sendable (UnsafePointer<ForwardDescriptor>, Range<Int>) -> Void,
        backward: @escaping @Sendable (UnsafePointer<BackwardDescriptor>, Int, ForwardScratch, UnsafeMutablePointer<Float>,
                                       UnsafeMutablePointer<Float>?) -> Void,
        multiply: @escaping @Sendable (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>?, UnsafeMutablePointer<Float>,
                                       Range<Int>, Int, Int, UnsafeMutablePointer<Float>) -> Void,
        multiplyFewRows: @escaping @Sendable (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>?, UnsafeMutablePointer<Float>,
                                              Range<Int>, Range<Int>, Int, Int) -> Void,
        multiplyOutputMajor: @escaping @Sendable (UnsafePointer<Float>, Int, UnsafePointer<Float>, UnsafePointer<Float>?,
                                                  UnsafeMutablePointer<Float>, Range<Int>, Int, Int) -> Void,
        multiplyInputMajor: @escaping @Sendable (UnsafePointer<Float>, Int, UnsafePointer<Float>, UnsafePointer<Float>?,
                                                 UnsafeMutablePointer<Float>, Range<Int>, Int, Int) -> Void,
        quantized: @escaping @Sendable (QuantizedBlockFormat) -> QuantizedFormatKernels,
        quantizeInput: @escaping @Sendable (UnsafePointer<Float>, Int, Int, UnsafeMutablePointer<Int8>, UnsafeMutablePointer<Float>,
                                            UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>) -> Void,
        integerDot: IntegerDotUnit,
        gelu: @escaping @Sendable (UnsafeMutablePointer<Float>, Int) -> Void,
        geluTanh: @escaping @Sendable (UnsafeMutablePointer<Float>, Int) -> Void,
        geluTanhBackward: @escaping @Sendable (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void,
        silu: @escaping @Sendable (UnsafeMutablePointer<Float>, Int) -> Void,
        layerNorm: @escaping @Sendable (UnsafeMutablePointer<Float>, UnsafePointer<Float>?, UnsafePointer<Float>, UnsafePointer<Float>,
                                        Float, Range<Int>, Int) -> Void,
        probe: @escaping @Sendable (Int, Float) -> Float,
        registers: RegisterShape,
        readProbe: @escaping @Sendable (UnsafePointer<Float>, Int) -> Float
    ) {
        self.forward = forward
        self.singleQuery = singleQuery
        self.packKeys = packKeys
        self.merge = merge
        self.backward = backward
        self.multiply = multiply
        self.multiplyFewRows = multiplyFewRows
        self.multiplyOutputMajor = multiplyOutputMajor
        self.multiplyInputMajor = multiplyInputMajor
        self.quantized = quantized
        self.quantizeInput = quantizeInput
        self.integerDot = integerDot
        self.gelu = gelu
        self.geluTanh = geluTanh
        self.geluTanhBackward = geluTanhBackward
        self.silu = silu
        self.layerNorm = layerNorm
        self.probe = probe
        self.registers = registers
        self.readProbe = readProbe
    }
}

extension KernelEntryPoints {
    /// The block-quantized products of another kernel module (`quantized`, `quantizeInput` and
    /// `integerDot` from `other`), everything else from this table: for a module that compiles only
    /// those for an extension of this table's instruction set (AVX-512 VNNI).
    public func replacingQuantized(with other: QuantizedEntryPoints) -> KernelEntryPoints {
        KernelEntryPoints(
            forward: forward, singleQuery: singleQuery, packKeys: packKeys, merge: merge, backward: backward, multiply: multiply,
            multiplyFewRows: multiplyFewRows,
            multiplyOutputMajor: multiplyOutputMajor, multiplyInputMajor: multiplyInputMajor, quantized: other.quantized,
            quantizeInput: other.quantizeInput, integerDot: other.integerDot, gelu: gelu, geluTanh: geluTanh,
            geluTanhBackward: geluTanhBackward, silu: silu, layerNorm: layerNorm, probe: probe, registers: registers, readProbe: readProbe)
    }
}

/// The block-quantized products alone, compiled for one instruction set (see
/// ``KernelEntryPoints/replacingQuantized(with:)``).
public struct QuantizedEntryPoints: Sendable {
    public let quantized: @Sendable (_ format: QuantizedBlockFormat) -> QuantizedFormatKernels
    public let quantizeInput: @Sendable (_ x: UnsafePointer<Float>, _ rows: Int, _ k: Int, _ values: UnsafeMutablePointer<Int8>,
                                         _ scales: UnsafeMutablePointer<Float>, _ sums: UnsafeMutablePointer<Int32>,
                                         _ firstHalfSums: UnsafeMutablePointer<Int32>) -> Void
    public let integerDot: IntegerDotUnit

    /// The products specialized for `M` and inlined into the calling module.
    @inlinable @inline(__always)
    public static func compiled<M: MultiplyAdd>(for _: M.Type) -> QuantizedEntryPoints {
        QuantizedEntryPoints(
            quantized: { $0.apply(QuantizedKernelsOf<M>()) },
            quantizeInput: { _AttentionKernels.quantizeInput($0, rows: $1, k: $2, values: $3, scales: $4, sums: $5, firstHalfSums: $6, M.self) },
            integerDot: IntegerDotUnit.compiled)
    }

    @inlinable
    init(quantized: @escaping @Sendable (QuantizedBlockFormat) -> QuantizedFormatKernels,
         quantizeInput: @escaping @Sendable (UnsafePointer<Float>, Int, Int, UnsafeMutablePointer<Int8>, UnsafeMutablePointer<Float>,
                                             UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>) -> Void,
         integerDot: IntegerDotUnit) {
        (self.quantized, self.quantizeInput, self.integerDot) = (quantized, quantizeInput, integerDot)
    }
}

/// The instructions the integer products of a kernel module run on (`_KernelIntrinsics/IntegerDot.h`).
public enum IntegerDotUnit: String, Sendable {
    /// AVX-512 VNNI's `vpdpbusd`: sixteen rows × four products summed per instruction.
    case vnni = "avx512-vnni"
    /// `vpmaddubsw` and `vpmaddwd` (AVX-512 BW or AVX2): products into pairs of 16 bits, then 32.
    case multiplyAddBytes = "maddubs"
    /// 32-bit vector arithmetic (the portable kernels).
    case vector

    /// The unit of the module that inlines this.
    @inlinable @inline(__always)
    public static var compiled: IntegerDotUnit {
        switch attention_integer_dot_kind() {
        case 1: .vnni
        case 2: .multiplyAddBytes
        default: .vector
        }
    }
}

/// One block format's products, compiled for one instruction set: a row of the kernel table per
/// format, which the format's type builds (``QuantizedBlock/kernels(_:)``).
public struct QuantizedFormatKernels: Sendable {
    /// A few rows times a block-quantized output-major weight, for a range of outputs (see
    /// ``multiplyQuantizedRows(x:rows:weight:interleaved:y:outputs:n:k:scratch:_:_:)``; scratch
    /// ``quantizedRowsScratch(k:rows:)`` floats).
    public let multiplyRows: @Sendable (_ x: UnsafePointer<Float>, _ rows: Int, _ weight: UnsafeRawPointer, _ interleaved: InterleavedRows,
                                        _ y: UnsafeMutablePointer<Float>, _ outputs: Range<Int>, _ n: Int, _ k: Int,
                                        _ scratch: UnsafeMutablePointer<Float>) -> Void
    /// Many rows times a block-quantized output-major weight, for a range of 32-column panels (see
    /// ``multiplyQuantizedPanels(a:rows:weight:interleaved:c:panels:n:k:scratch:_:_:)``; scratch
    /// ``quantizedPanelScratch(k:)`` floats).
    public let multiplyPanels: @Sendable (_ a: UnsafePointer<Float>, _ rows: Int, _ weight: UnsafeRawPointer, _ interleaved: InterleavedRows,
                                          _ c: UnsafeMutablePointer<Float>, _ panels: Range<Int>, _ n: Int, _ k: Int,
                                          _ scratch: UnsafeMutablePointer<Float>) -> Void
    /// One row times an interleaved block-quantized weight, for a range of groups of sixteen outputs
    /// (see ``multiplyInterleavedRow(_:sums:weight:y:groups:blocks:_:_:)``); nil for formats that
    /// are not interleaved.
    public let multiplyInterleavedRow: (@Sendable (_ prepared: UnsafePointer<Float>, _ sums: UnsafePointer<Float>, _ weight: UnsafeRawPointer,
                                                   _ y: UnsafeMutablePointer<Float>, _ groups: Range<Int>, _ blocks: Int) -> Void)?
    /// The integer products with an input quantized per block (see `IntegerProducts.swift`) for the
    /// interleaved groups `groups` and the stored output rows `stored` (past the groups) of a matrix:
    /// `y [rows, n]`. Nil for formats whose products are not integer.
    public let multiplyInteger: (@Sendable (_ input: QuantizedInput, _ rows: Int, _ weight: UnsafeRawPointer, _ interleaved: InterleavedRows,
                                            _ groups: Range<Int>, _ stored: Range<Int>, _ y: UnsafeMutablePointer<Float>, _ n: Int) -> Void)?

    /// The products for a 32-value format `B`, specialized for `M` in the calling module: blocks
    /// read from registers, and interleaved by sixteen rows.
    @inlinable @inline(__always)
    public init<B: InterleavedQuantizedBlock, M: MultiplyAdd>(interleaved _: B.Type, _: M.Type) {
        multiplyRows = {
            multiplyQuantizedRows(x: $0, rows: $1, weight: $2, interleaved: $3, y: $4, outputs: $5, n: $6, k: $7, scratch: $8, B.self, M.self)
        }
        multiplyPanels = {
            multiplyQuantizedPanels(a: $0, rows: $1, weight: $2, interleaved: $3, c: $4, panels: $5, n: $6, k: $7, scratch: $8, B.self, M.self)
        }
        multiplyInterleavedRow = {
            _AttentionKernels.multiplyInterleavedRow($0, sums: $1, weight: $2, y: $3, groups: $4, blocks: $5, B.self, M.self)
        }
        multiplyInteger = nil
    }

    /// The products for a 32-value format `B` with integer products, specialized for `M` in the
    /// calling module: those of ``init(interleaved:_:)`` and ``multiplyInteger``.
    @inlinable @inline(__always)
    public init<B: IntegerInterleavedBlock, M: MultiplyAdd>(integer _: B.Type, _: M.Type) {
        let floats = QuantizedFormatKernels(interleaved: B.self, M.self)
        (multiplyRows, multiplyPanels, multiplyInterleavedRow) = (floats.multiplyRows, floats.multiplyPanels, floats.multiplyInterleavedRow)
        multiplyInteger = { input, rows, weight, interleaved, groups, stored, y, n in
            multiplyIntegerGroups(input, rows: rows, interleaved: interleaved, groups: groups, y: y, n: n, B.self, M.self)
            multiplyIntegerStoredRows(input, rows: rows, weight: weight, outputs: stored, y: y, n: n, B.self, M.self)
        }
    }

    /// The products for a format of super-blocks `B`, specialized for `M` in the calling module: one
    /// row's from registers, more rows' from each weight row dequantized into L1 (no interleaved copy).
    @inlinable @inline(__always)
    public init<B: SuperQuantizedBlock, M: MultiplyAdd>(superBlocks _: B.Type, _: M.Type) {
        multiplyRows = {
            if $1 == 1 {
                multiplySuperBlockRow(x: $0, weight: $2, y: $4, outputs: $5, k: $7, scratch: $8, B.self, M.self)
            } else {
                multiplyDequantizedRows(x: $0, rows: $1, weight: $2, y: $4, outputs: $5, n: $6, k: $7, scratch: $8, B.self, M.self)
            }
        }
        multiplyPanels = {
            multiplyDequantizedPanels(a: $0, rows: $1, weight: $2, c: $4, panels: $5, n: $6, k: $7, scratch: $8, B.self, M.self)
        }
        multiplyInterleavedRow = nil
        multiplyInteger = nil
    }
}

/// The visitor that compiles a format's row of the kernel table.
@usableFromInline
struct QuantizedKernelsOf<M: MultiplyAdd>: QuantizedBlockVisitor {
    @inlinable init() {}
    @inlinable @inline(__always)
    func callAsFunction<B: QuantizedBlock>(_: B.Type) -> QuantizedFormatKernels { B.kernels(M.self) }
}

/// The kernels compiled for the target's baseline: SSE2 on x86-64 (no FMA: multiply, then add),
/// NEON with FMA on arm64.
#if arch(arm64)
public let portableKernels = KernelEntryPoints.compiled(for: FusedMultiplyAdd.self)
#else
public let portableKernels = KernelEntryPoints.compiled(for: SeparateMultiplyAdd.self)
#endif
