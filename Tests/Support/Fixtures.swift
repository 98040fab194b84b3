import Attention
import Foundation

/// The PyTorch fixtures written by scripts/make-fixtures.py.
public enum Fixtures {
    /// `Tests/Fixtures`, found from this source file's location.
    public static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// One scaled-dot-product case: the mask specification and where its arrays are.
    public struct AttentionCase: Decodable, Sendable, CustomStringConvertible {
        public let name: String
        public let scale: Double?
        public let causal: String?
        public let window: [Int]?
        public let keyLengths: [Int]?
        public let mask: Bool
        public let bias: Bool
        public let rank: Int
        public let deadRows: Int

        public var description: String { name }
        public var folder: URL { root.appendingPathComponent("sdpa").appendingPathComponent(name) }
        public func file(_ name: String) -> URL { folder.appendingPathComponent("\(name).npy") }

        /// A float64 array of the case, converted to `Scalar`.
        public func tensor<Scalar: AttentionScalar>(_ name: String, as: Scalar.Type = Scalar.self) throws -> Tensor<Scalar> {
            try NPY.read(contentsOf: file(name)).floatingPoint(as: Scalar.self, path: file(name).path)
        }

        /// The mask rebuilt from the manifest with the library's mask API.
        public func attentionMask() throws -> AttentionMask {
            var result = AttentionMask.none
            if let causal { result = result && .causal(causal == "topLeft" ? .topLeft : .bottomRight) }
            if let window { result = result && .slidingWindow(left: window[0], right: window[1]) }
            if let keyLengths { result = result && .keyLengths(keyLengths) }
            if mask, case .bool(let m) = try NPY.read(contentsOf: file("mask")) { result = result && .boolean(m) }
            return result
        }
    }

    /// One nn.MultiheadAttention case.
    public struct MultiHeadCase: Decodable, Sendable, CustomStringConvertible {
        public let name: String
        public let embed: Int
        public let heads: Int
        public let kdim: Int
        public let vdim: Int
        public let causal: Bool
        public let keyLengths: [Int]?

        public var description: String { name }
        public func tensor(_ file: String) throws -> Tensor<Double> {
            let url = root.appendingPathComponent("mha").appendingPathComponent(name).appendingPathComponent("\(file).npy")
            return try NPY.read(contentsOf: url).floatingPoint(as: Double.self, path: url.path)
        }
    }

    public static var attentionCases: [AttentionCase] { load("sdpa") }
    public static var multiHeadCases: [MultiHeadCase] { load("mha") }

    private static func load<T: Decodable>(_ folder: String) -> [T] {
        let url = root.appendingPathComponent(folder).appendingPathComponent("manifest.json")
        // A missing or broken manifest must fail the tests loudly, not give zero cases. (Test
        // arguments are computed before any test runs, where nothing can be thrown.)
        let cases: [T]
        do {
            cases = try JSONDecoder().decode([T].self, from: Data(contentsOf: url))
        } catch {
            preconditionFailure("cannot read fixture manifest \(url.path): \(error); run scripts/make-fixtures.py")
        }
        guard !cases.isEmpty else { preconditionFailure("fixture manifest \(url.path) lists no cases: run scripts/make-fixtures.py") }
        return cases
    }
}

/// The largest absolute difference between two equally long sequences (infinity if lengths differ;
/// equal infinities count as 0, so -inf log-sum-exp of dead rows compare equal).
public func maxAbsDifference<A: AttentionScalar, B: AttentionScalar>(_ a: [A], _ b: [B]) -> Double {
    guard a.count == b.count else { return .infinity }
    var worst = 0.0
    for (x, y) in zip(a, b) {
        let (dx, dy) = (x.doubleValue, y.doubleValue)
        if dx == dy { continue }
        worst = max(worst, abs(dx - dy).isNaN ? .infinity : abs(dx - dy))
    }
    return worst
}
