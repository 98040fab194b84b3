/// Arrays pinned for the length of one closure.
///
/// The tiled passes hand a dozen arrays to the kernels as pointers. A `withUnsafeBufferPointer` per
/// array buried their logic a dozen closures deep; these helpers do the nesting in one place and hand
/// the body every buffer at once. The arrays keep sharing their storage with the caller's (nothing is
/// copied), and the buffers are valid only inside the body.

/// `body` with every array of `arrays` pinned, in order.
/// The buffers are collected in temporary memory, not in an array grown at each level (a decoding
/// step pins a few arrays per attention call).
func withPinned<Element, Result>(_ arrays: [[Element]], _ body: (UnsafeBufferPointer<UnsafeBufferPointer<Element>>) -> Result) -> Result {
    withUnsafeTemporaryAllocation(of: UnsafeBufferPointer<Element>.self, capacity: arrays.count) { pinned in
        func pin(_ index: Int) -> Result {
            guard index < arrays.count else { return body(UnsafeBufferPointer(pinned)) }
            return arrays[index].withUnsafeBufferPointer { buffer in
                pinned.initializeElement(at: index, to: buffer)
                return pin(index + 1)
            }
        }
        return pin(0)
    }
}

/// `body` with `a` and `b` pinned for writing.
func withPinned<Element, Result>(
    _ a: inout [Element], _ b: inout [Element],
    _ body: (UnsafeMutableBufferPointer<Element>, UnsafeMutableBufferPointer<Element>) -> Result
) -> Result {
    a.withUnsafeMutableBufferPointer { a in b.withUnsafeMutableBufferPointer { b in body(a, b) } }
}

/// `body` with `a`, `b` and `c` pinned for writing.
func withPinned<Element, Result>(
    _ a: inout [Element], _ b: inout [Element], _ c: inout [Element],
    _ body: (UnsafeMutableBufferPointer<Element>, UnsafeMutableBufferPointer<Element>, UnsafeMutableBufferPointer<Element>) -> Result
) -> Result {
    withPinned(&a, &b) { a, b in c.withUnsafeMutableBufferPointer { c in body(a, b, c) } }
}

/// `body` with `a`, `b`, `c` and `d` pinned for writing.
func withPinned<Element, Result>(
    _ a: inout [Element], _ b: inout [Element], _ c: inout [Element], _ d: inout [Element],
    _ body: (UnsafeMutableBufferPointer<Element>, UnsafeMutableBufferPointer<Element>, UnsafeMutableBufferPointer<Element>,
             UnsafeMutableBufferPointer<Element>) -> Result
) -> Result {
    withPinned(&a, &b, &c) { a, b, c in d.withUnsafeMutableBufferPointer { d in body(a, b, c, d) } }
}
