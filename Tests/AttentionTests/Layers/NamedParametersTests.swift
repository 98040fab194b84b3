import Attention
import AttentionTestSupport
import Foundation
import Testing

/// Parameters by name: what layers list, loading and saving `.safetensors` by name, Adam by name.
@Suite("Named parameters")
struct NamedParametersTests {
    let scratch: TemporaryDirectory
    var directory: URL { scratch.url }

    init() throws { scratch = try TemporaryDirectory("attention-parameters") }

    func layer() throws -> MultiHeadAttention<Float> {
        try MultiHeadAttention<Float>(embedDimension: 8, numHeads: 2, numKeyValueHeads: 1, seed: 3)
    }

    @Test("Layers name their parameters as PyTorch does")
    func names() throws {
        var g = SplitMix64(seed: 1)
        #expect(try Linear<Float>(inputDimension: 3, outputDimension: 2, using: &g).namedParameters.map(\.name) == ["weight", "bias"])
        #expect(try Linear<Float>(inputDimension: 3, outputDimension: 2, bias: false, using: &g).namedParameters.map(\.name) == ["weight"])
        #expect(try LayerNorm<Float>(features: 4).namedParameters.map(\.name) == ["weight", "bias"])
        let attention = try layer()
        #expect(attention.namedParameters.map(\.name) == ["query.weight", "query.bias", "key.weight", "key.bias", "value.weight",
                                                            "value.bias", "output.weight", "output.bias"])
        #expect(attention.parameterDictionary["key.weight"]?.shape == [4, 8])
        #expect(attention.parameterCount == 8 * 8 + 8 + 2 * (4 * 8 + 4) + 8 * 8 + 8)
    }

    @Test("Saved and loaded by name, a layer computes exactly what it did")
    func roundTrip() throws {
        let original = try layer()
        let url = directory.appendingPathComponent("mha.safetensors")
        try original.saveParameters(to: url, metadata: ["note": "test"])
        let file = try SafeTensors(contentsOf: url)
        #expect(file.metadata == ["note": "test"])
        #expect(Set(file.entries.keys) == Set(original.namedParameters.map(\.name)))
        // A layer with other weights, then the saved ones loaded into it.
        let other = try MultiHeadAttention<Float>(embedDimension: 8, numHeads: 2, numKeyValueHeads: 1, seed: 99)
        let loaded = try other.loadingParameters(from: file)
        let x = try Tensor<Float>.randomNormal(shape: [5, 8], seed: 4)
        #expect(try loaded(x).output.scalars == original(x).output.scalars)
        #expect(try other(x).output.scalars != original(x).output.scalars)
        // Nothing but the file itself is left in the folder (written atomically).
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["mha.safetensors"])
    }

    @Test("A missing, unexpected or misshapen parameter is refused, naming it")
    func loadErrors() throws {
        let attention = try layer()
        var parameters = attention.parameterDictionary
        parameters["key.bias"] = nil
        #expect { try attention.loadingParameters(parameters) } throws: { "\($0)".contains("missing 'key.bias'") }
        parameters = attention.parameterDictionary
        parameters["extra.weight"] = try Tensor(zeros: [1])
        #expect { try attention.loadingParameters(parameters) } throws: { "\($0)".contains("unexpected 'extra.weight'") }
        parameters = attention.parameterDictionary
        parameters["value.weight"] = try Tensor(zeros: [8, 8])
        #expect { try attention.loadingParameters(parameters) } throws: { "\($0)".contains("'value.weight' has shape [8, 8], expected [4, 8]") }
        #expect(thrownError {
            try SafeTensors.write([("a", try Tensor(zeros: [1])), ("a", try Tensor(zeros: [2]))], to: directory.appendingPathComponent("x.safetensors"))
        } == .invalidArgument("tensors"))
        #expect(thrownError {
            try SafeTensors.write([("a", try Tensor(zeros: [1]))], to: URL(fileURLWithPath: "/nonexistent-folder/x.safetensors"))
        } == .invalidFile("x.safetensors"))
    }

    @Test("Written safetensors read back: names, shapes, values, an empty tensor, 8-byte aligned data")
    func safetensorsWrite() throws {
        let a = try Tensor<Float>(shape: [2, 3], scalars: [1, -2, 3.5, .pi, -0, 1e-30])
        let empty = try Tensor<Float>(shape: [0, 4], scalars: [])
        let url = directory.appendingPathComponent("t.safetensors")
        try SafeTensors.write([("a", a), ("b.empty", empty)], to: url)
        let file = try SafeTensors(contentsOf: url)
        #expect(try file.tensor("a").scalars == a.scalars)
        #expect(try file.tensor("a").shape == [2, 3])
        #expect(try file.tensor("b.empty").shape == [0, 4])
        let bytes = try Data(contentsOf: url)
        let headerLength = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect((8 + headerLength) % 8 == 0)
        #expect(bytes.count == 8 + headerLength + 24)
    }

    @Test("Adam by name equals Adam by position, whatever the order of the names")
    func adamByName() throws {
        let attention = try layer()
        var byName = attention.parameterDictionary
        var byPosition = attention.namedParameters.map(\.tensor)
        let gradients = try attention.namedParameters.enumerated().map { n, p in
            (p.name, try Tensor<Float>.randomNormal(shape: p.tensor.shape, seed: UInt64(n + 10)))
        }
        var named = Adam<Float>(learningRate: 0.01), positional = Adam<Float>(learningRate: 0.01)
        for _ in 0..<3 {
            try named.update(&byName, gradients: Dictionary(uniqueKeysWithValues: gradients.reversed()))
            try positional.update(&byPosition, gradients: gradients.map(\.1))
        }
        for (n, p) in attention.namedParameters.enumerated() {
            #expect(byName[p.name]?.scalars == byPosition[n].scalars, "\(p.name)")
            #expect(byName[p.name]?.scalars != p.tensor.scalars)
        }
        var incomplete = Dictionary(uniqueKeysWithValues: gradients)
        incomplete["query.bias"] = nil
        #expect(thrownError { try named.update(&byName, gradients: incomplete) } == .invalidArgument("gradients"))
    }
}
