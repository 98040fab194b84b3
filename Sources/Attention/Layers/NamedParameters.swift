import Foundation

/// A layer or model whose parameters have names: dotted paths as PyTorch's `state_dict` spells them
/// (`h.0.attn.c_attn.weight`), so that checkpoints load and save by name, and optimizers keep their
/// state by name.
///
/// A container lists its parameters (``namedParameters``) and rebuilds itself from a set of them
/// (``replacingParameters(_:)``); loading, saving and Adam's update by name
/// (``Adam/update(_:gradients:)-([String:Tensor<Float>],_)``) work on any container through those two.
public protocol NamedParameters {
    /// Every parameter, by name, in a fixed order (the order a checkpoint is written in).
    var namedParameters: [(name: String, tensor: Tensor<Float>)] { get }

    /// A copy with every parameter replaced by the tensor of the same name in `parameters`.
    ///
    /// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` if a name is missing or a
    ///   shape differs; names that are not this container's are the caller's to refuse (see
    ///   ``loadingParameters(_:path:)``).
    func replacingParameters(_ parameters: [String: Tensor<Float>]) throws -> Self
}

extension NamedParameters {
    /// The parameters as a dictionary.
    public var parameterDictionary: [String: Tensor<Float>] {
        Dictionary(namedParameters.map { ($0.name, $0.tensor) }, uniquingKeysWith: { first, _ in first })
    }

    /// How many numbers the parameters hold.
    public var parameterCount: Int { namedParameters.reduce(0) { $0 + $1.tensor.count } }

    /// A copy with the parameters of `tensors`, which must name each of this container's parameters
    /// once, with its shape, and nothing else.
    ///
    /// - Throws: ``AttentionError/invalidFile(path:reason:)`` naming every missing and unexpected
    ///   name, or the first tensor whose shape differs (with both shapes).
    public func loadingParameters(_ tensors: [String: Tensor<Float>], path: String = "<parameters>") throws -> Self {
        let own = namedParameters
        let names = Set(own.map(\.name))
        let missing = own.map(\.name).filter { tensors[$0] == nil }
        let unexpected = tensors.keys.filter { !names.contains($0) }.sorted()
        guard missing.isEmpty, unexpected.isEmpty else {
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing \(Self.list(missing))") }
            if !unexpected.isEmpty { parts.append("unexpected \(Self.list(unexpected))") }
            throw AttentionError.invalidFile(path: path, reason: parts.joined(separator: "; "))
        }
        for (name, tensor) in own where tensors[name]!.shape != tensor.shape {
            throw AttentionError.invalidFile(path: path, reason: "'\(name)' has shape \(tensors[name]!.shape), expected \(tensor.shape)")
        }
        return try replacingParameters(tensors)
    }

    /// A copy with the parameters read from a `.safetensors` file by name (F32, F16, BF16 or F64).
    ///
    /// - Throws: ``AttentionError/invalidFile(path:reason:)`` for a name missing from the file, a
    ///   tensor the container does not have, a shape that differs, or an integer dtype.
    public func loadingParameters(from file: SafeTensors) throws -> Self {
        var tensors: [String: Tensor<Float>] = [:]
        for name in file.entries.keys { tensors[name] = try file.tensor(name) }
        return try loadingParameters(tensors, path: file.path)
    }

    /// Writes the parameters to a `.safetensors` file (F32, in ``namedParameters`` order), atomically.
    public func saveParameters(to url: URL, metadata: [String: String] = [:]) throws {
        try SafeTensors.write(namedParameters, to: url, metadata: metadata)
    }

    private static func list(_ names: [String]) -> String {
        names.prefix(8).map { "'\($0)'" }.joined(separator: ", ") + (names.count > 8 ? " and \(names.count - 8) more" : "")
    }
}

extension NamedParameters {
    /// The parameters with `prefix` and a dot before each name: how a container lists a child's.
    public func namedParameters(prefixedBy prefix: String) -> [(name: String, tensor: Tensor<Float>)] {
        namedParameters.map { (prefix + "." + $0.name, $0.tensor) }
    }
}

extension Dictionary where Key == String, Value == Tensor<Float> {
    /// The entries under `prefix.`, with the prefix removed: a child's parameters, for its
    /// ``NamedParameters/replacingParameters(_:)``.
    public func parameters(under prefix: String) -> [String: Tensor<Float>] {
        let head = prefix + "."
        var out: [String: Tensor<Float>] = [:]
        for (name, tensor) in self where name.hasPrefix(head) { out[String(name.dropFirst(head.count))] = tensor }
        return out
    }
}

/// The tensor named `name`, of `shape`, from a set of parameters.
///
/// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` if it is missing or its shape differs.
func parameter(_ parameters: [String: Tensor<Float>], _ name: String, shape: [Int]) throws -> Tensor<Float> {
    guard let tensor = parameters[name] else {
        throw AttentionError.invalidArgument(argument: "parameters", reason: "no parameter '\(name)'")
    }
    guard tensor.shape == shape else {
        throw AttentionError.invalidArgument(argument: "parameters", reason: "'\(name)' has shape \(tensor.shape), expected \(shape)")
    }
    return tensor
}

extension Linear: NamedParameters where Scalar == Float {
    /// `weight` `[out, in]` and, if the layer has one, `bias`.
    public var namedParameters: [(name: String, tensor: Tensor<Float>)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    /// A layer of the same configuration with the parameters `p` holds, by ``namedParameters``' names.
    public func replacingParameters(_ p: [String: Tensor<Float>]) throws -> Linear<Float> {
        try Linear(weight: parameter(p, "weight", shape: weight.shape),
                   bias: bias.map { try parameter(p, "bias", shape: $0.shape) })
    }
}

extension LayerNorm: NamedParameters where Scalar == Float {
    /// `weight` (γ) and `bias` (β).
    public var namedParameters: [(name: String, tensor: Tensor<Float>)] { [("weight", weight), ("bias", bias)] }

    /// A layer of the same configuration with the parameters `p` holds, by ``namedParameters``' names.
    public func replacingParameters(_ p: [String: Tensor<Float>]) throws -> LayerNorm<Float> {
        try LayerNorm(weight: parameter(p, "weight", shape: weight.shape), bias: parameter(p, "bias", shape: bias.shape), epsilon: epsilon)
    }
}

extension Embedding: NamedParameters where Scalar == Float {
    /// `weight`, the table `[vocabulary, dimension]` (PyTorch's `nn.Embedding` name).
    public var namedParameters: [(name: String, tensor: Tensor<Float>)] { [("weight", table)] }

    /// A layer of the same configuration with the parameters `p` holds, by ``namedParameters``' names.
    public func replacingParameters(_ p: [String: Tensor<Float>]) throws -> Embedding<Float> {
        try Embedding(table: parameter(p, "weight", shape: table.shape))
    }
}

extension MultiHeadAttention: NamedParameters where Scalar == Float {
    /// `query`, `key`, `value` and `output`, each a ``Linear`` (`query.weight`, `query.bias`, …).
    public var namedParameters: [(name: String, tensor: Tensor<Float>)] {
        queryProjection.namedParameters(prefixedBy: "query") + keyProjection.namedParameters(prefixedBy: "key") + valueProjection.namedParameters(prefixedBy: "value")
            + outputProjection.namedParameters(prefixedBy: "output")
    }

    /// A layer of the same configuration with the parameters `p` holds, by ``namedParameters``' names.
    public func replacingParameters(_ p: [String: Tensor<Float>]) throws -> MultiHeadAttention<Float> {
        var copy = self
        for (projection, layer) in [(Projection.query, queryProjection), (.key, keyProjection), (.value, valueProjection), (.output, outputProjection)] {
            let replaced = try layer.replacingParameters(p.parameters(under: projection.rawValue))
            try copy.setWeights(projection, weight: replaced.weight, bias: replaced.bias)
        }
        return copy
    }
}

extension Adam where Scalar == Float {
    /// Updates parameters by name from gradients by name (every parameter needs its gradient, of its
    /// shape); the moments are kept by name, so the order of the dictionaries does not matter.
    public mutating func update(_ parameters: inout [String: Tensor<Float>], gradients: [String: Tensor<Float>]) throws {
        let names = parameters.keys.sorted()
        guard Set(gradients.keys) == Set(names) else {
            let missing = names.filter { gradients[$0] == nil }, extra = gradients.keys.filter { parameters[$0] == nil }.sorted()
            throw AttentionError.invalidArgument(argument: "gradients", reason: "need one gradient per parameter; missing \(missing), unexpected \(extra)")
        }
        var values = names.map { parameters[$0]! }
        try update(&values, gradients: names.map { gradients[$0]! })
        for (name, value) in zip(names, values) { parameters[name] = value }
    }
}

extension SafeTensors {
    /// Writes tensors as a `.safetensors` file (F32, little-endian, in the given order), atomically:
    /// the file appears complete or not at all.
    ///
    /// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` for a repeated or empty name,
    ///   ``AttentionError/invalidFile(path:reason:)`` if the file cannot be written.
    public static func write(_ tensors: [(name: String, tensor: Tensor<Float>)], to url: URL, metadata: [String: String] = [:]) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for (name, tensor) in tensors {
            guard !name.isEmpty, name != "__metadata__", header[name] == nil else {
                throw AttentionError.invalidArgument(argument: "tensors", reason: "names must be unique and not empty, got '\(name)' twice or reserved")
            }
            header[name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + 4 * tensor.count]]
            offset += 4 * tensor.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad the header with spaces so that the data starts 8-byte aligned, as the reference writer does.
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var file = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(json)
        for (_, tensor) in tensors {
            tensor.withUnsafeBufferPointer { values in
                #if _endian(little)
                file.append(values)
                #else
                for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { file.append(contentsOf: $0) } }
                #endif
            }
        }
        do {
            try file.write(to: url, options: .atomic)
        } catch {
            throw AttentionError.invalidFile(path: url.path, reason: "cannot be written (\(error.localizedDescription))")
        }
    }
}
