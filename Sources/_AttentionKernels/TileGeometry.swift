/// The sizes every kernel and plan derive from the register file, in one place. Which micro-kernel
/// runs on a register shape is decided where it runs (`M.registers == .narrow` picks the narrow
/// variants); how large the tiles, panels and blocks around them are is decided here.
///
/// | shape  | instruction sets   | micro-kernel tiles          | key panel | forward key block (D ≤ 64 / 128 / 256) | probe flops per step |
/// |--------|--------------------|-----------------------------|-----------|----------------------------------------|----------------------|
/// | wide   | AVX-512, baseline  | 8 rows × 2 SIMD16           | 32        | 128 / 64 (128 for ≤ 8 rows) / 64       | 512                  |
/// | narrow | AVX2 + FMA         | 4 rows × 3 SIMD8; 6 × 2, 2 × 4 | 48     | 96                                     | 192                  |
extension RegisterShape {
    /// Query rows per block of the tiled forward, on every shape.
    public static let rowBlock = 64

    /// Keys per panel of packed `Kᵀ`: two 4 × 24 tiles on narrow registers, one 8 × 32 on wide.
    @inlinable public var keyPanelWidth: Int { self == .narrow ? 48 : 32 }

    /// Key tiles the interleaved-key scores take per step: two on wide registers (eight accumulator
    /// chains, enough to cover the FMA latency), one on narrow, where a SIMD16 accumulator takes two
    /// of the sixteen registers.
    @inlinable public var interleavedTilesPerStep: Int { self == .narrow ? 1 : 2 }

    /// Slices of the head dimension over which the interleaved-key scores spread their prefetches:
    /// one burst per call filled the core's outstanding-miss slots and stalled the products. Narrow
    /// registers take one tile per call, so their bursts are half as long already (eight or sixteen
    /// slices measured no better there, AVX2 forced on an Intel Xeon).
    @inlinable public var prefetchSlices: Int { self == .narrow ? 4 : 8 }

    /// Flops of one step of the multiply-add probe: 16 chains of 16 lanes on wide registers, 12 of 8 on
    /// narrow (which leaves AVX2 registers free, so nothing spills).
    @inlinable public var probeFlopsPerIteration: Int { self == .narrow ? 192 : 512 }

    /// Keys per block of the tiled forward for heads of `D` features (the larger of `D` and `Dv`),
    /// when a block serves `rowsPerBlock` query rows.
    ///
    /// With a full row block each block of `K` and `V` serves eight row tiles. At D = 128, 64-key
    /// blocks ran the forward 4-9% faster than 128-key blocks (N = 2048, 1 and 2 threads, Intel Xeon
    /// family 6 model 207, 48 KiB L1): a block of packed keys and one of values (32 KiB each in Float)
    /// are then re-read from nearer caches. At D = 64, 128-key blocks were 7-9% faster than 64 (fewer
    /// per-block softmax steps) and than 256. With up to eight rows (decoding) nothing is re-read, and
    /// longer blocks spend less per block. Narrow registers take 96 keys: two 48-key panels.
    public func keyBlock(headDimension D: Int, rowsPerBlock: Int) -> Int {
        if self == .narrow { return 96 }
        return D > 128 || (D > 64 && rowsPerBlock > 8) ? 64 : 128
    }
}
