import Attention
import AttentionTestSupport
import Testing

/// Every way a caller can get the shapes or values wrong gets a typed error that names the argument.
@Suite("Errors")
struct ErrorTests {
    func zeros(_ shape: [Int]) throws -> Tensor<Float> { try Tensor(zeros: shape) }

    func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "no error"
    }

    @Test("Head dimensions of query and key differ")
    func headDimensionMismatch() throws {
        let error = message {
            _ = try scaledDotProductAttention(query: zeros([1, 2, 3, 8]), key: zeros([1, 2, 4, 6]), value: zeros([1, 2, 4, 6]))
        }
        #expect(error.contains("key") && error.contains("[1, 2, 4, 6]") && error.contains("[1, 2, 3, 8]"))
    }

    @Test("Key and value lengths differ")
    func lengthMismatch() throws {
        #expect(thrownError {
            try scaledDotProductAttention(query: zeros([3, 4]), key: zeros([5, 4]), value: zeros([6, 4]))
        } == .shapeMismatch("value"))
    }

    @Test("Batch sizes differ")
    func batchMismatch() throws {
        #expect(thrownError {
            try scaledDotProductAttention(query: zeros([2, 1, 3, 4]), key: zeros([1, 1, 5, 4]), value: zeros([1, 1, 5, 4]))
        } == .shapeMismatch("key"))
    }

    @Test("Ranks differ or are unsupported")
    func ranks() throws {
        #expect(thrownError {
            try scaledDotProductAttention(query: zeros([1, 2, 3, 4]), key: zeros([5, 4]), value: zeros([5, 4]))
        } == .shapeMismatch("key"))
        #expect(thrownError {
            try scaledDotProductAttention(query: zeros([1, 1, 1, 3, 4]), key: zeros([1, 1, 1, 5, 4]), value: zeros([1, 1, 1, 5, 4]))
        } == .invalidShape("query"))
        #expect(thrownError {
            try scaledDotProductAttention(query: zeros([]), key: zeros([5, 4]), value: zeros([5, 4]))
        } == .invalidShape("query"))
    }

    @Test("Empty sequences, batches and feature dimensions", arguments: [
        ([0, 4], [5, 4], [5, 4]), ([3, 4], [0, 4], [0, 4]), ([3, 0], [5, 0], [5, 4]), ([3, 4], [5, 4], [5, 0]),
        ([0, 1, 3, 4], [0, 1, 5, 4], [0, 1, 5, 4]),
    ])
    func empty(shapes: ([Int], [Int], [Int])) throws {
        do {
            _ = try scaledDotProductAttention(query: zeros(shapes.0), key: zeros(shapes.1), value: zeros(shapes.2))
            Issue.record("expected an error")
        } catch let error as AttentionError {
            guard case .emptySequence = error else { Issue.record("wrong error \(error)"); return }
        }
    }

    @Test("A non-finite scale, a NaN or +inf bias")
    func nonFiniteArguments() throws {
        let q = try zeros([2, 4]), k = try zeros([3, 4])
        #expect(thrownError { try scaledDotProductAttention(query: q, key: k, value: k, scale: .nan) } == .invalidArgument("scale"))
        let nanBias = try Tensor<Float>(shape: [2, 3], scalars: [0, 0, .nan, 0, 0, 0])
        do {
            _ = try scaledDotProductAttention(query: q, key: k, value: k, bias: nanBias)
            Issue.record("expected an error")
        } catch let AttentionError.nonFinite(argument, index, value) {
            #expect(argument == "bias" && index == [0, 2] && value.isNaN)
        }
        let plusInf = try Tensor<Float>(shape: [3], scalars: [0, .infinity, 0])
        #expect(thrownError { try scaledDotProductAttention(query: q, key: k, value: k, bias: plusInf) } == .nonFinite("bias"))
    }

    @Test("A bias or mask that does not broadcast to the weights")
    func broadcast() throws {
        let q = try zeros([1, 2, 3, 4]), k = try zeros([1, 2, 5, 4])
        let error = message {
            _ = try scaledDotProductAttention(query: q, key: k, value: k, bias: zeros([3, 4]))
        }
        #expect(error.contains("bias") && error.contains("[1, 2, 3, 5]"))
        #expect(thrownError {
            try scaledDotProductAttention(query: q, key: k, value: k, mask: .boolean(Tensor(repeating: true, shape: [2, 2, 3, 5])))
        } == .shapeMismatch("mask"))
    }

    @Test("checkFinite names the argument and the index")
    func checkFinite() throws {
        let t = try Tensor<Double>(shape: [2, 2], scalars: [1, 2, .infinity, 4])
        #expect(throws: AttentionError.nonFinite(argument: "key", index: [1, 0], value: .infinity)) {
            try t.checkFinite(argument: "key")
        }
    }

    @Test("Tensor construction errors")
    func tensors() throws {
        #expect(thrownError { try Tensor<Float>(shape: [2, 3], scalars: [1, 2]) } == .invalidShape("scalars"))
        #expect(thrownError { try Tensor<Float>(zeros: [-1]) } == .invalidShape("shape"))
        #expect(thrownError { try Tensor<Float>(zeros: [Int.max, 4]) } == .invalidShape("shape"))
        #expect(thrownError { try Tensor<Float>(zeros: [2, 3]).reshaped([4, 2]) } == .invalidShape("shape"))
        #expect(thrownError { try Tensor<Float>(zeros: [2, 3]).view(2) } == .invalidArgument("indices"))
        #expect(thrownError { try Tensor<Float>(zeros: [2, 3]).view(0, 0, 0) } == .invalidArgument("indices"))
    }

    @Test("Messages read well")
    func messages() {
        #expect("\(AttentionError.headCountMismatch(queryHeads: 6, keyValueHeads: 4))".contains("multiple"))
        #expect(AttentionError.emptySequence(argument: "key", shape: [0, 4]).localizedDescription.contains("key has shape [0, 4]"))
    }
}
