import Attention

/// Reads a model's tensors by name, each checked against the shape its configuration implies:
/// what the BERT and GPT-2 loaders share, whether the tensors come from a file or from a dictionary.
struct CheckpointReader {
    /// The tensor of a name, nil if there is none.
    let lookup: (String) throws -> Tensor<Float>?
    /// Names the source in errors.
    let path: String
    /// How errors spell a name (GPT-2 adds `transformer.`).
    var displayPrefix = ""
    /// The file the tensors come from, if they do, and a name's full name in it: weight matrices
    /// are then read in place (`Linear.init(weights:name:shape:bias:layout:)`), not copied.
    var file: (weights: SafeTensors, fullName: (String) -> String)?

    /// The tensor `name`, which must have `shape`.
    /// - Throws: `AttentionError.invalidFile(path:reason:)` if it is missing or its shape differs.
    func tensor(_ name: String, _ shape: [Int]) throws -> Tensor<Float> {
        guard let t = try lookup(name) else {
            throw AttentionError.invalidFile(path: path, reason: "no tensor named '\(displayPrefix + name)'" + (displayPrefix.isEmpty ? "" : " (or '\(name)')"))
        }
        guard t.shape == shape else {
            throw AttentionError.invalidFile(path: path, reason: "'\(displayPrefix + name)' has shape \(t.shape), the config implies \(shape)")
        }
        return t
    }

    /// `name.weight` and `name.bias` of `features` as a LayerNorm.
    func layerNorm(_ name: String, features: Int, epsilon: Double) throws -> LayerNorm<Float> {
        try LayerNorm(weight: tensor(name + ".weight", [features]), bias: tensor(name + ".bias", [features]), epsilon: epsilon)
    }

    /// `name.weight` `[output, input]` (PyTorch's `nn.Linear`) and `name.bias` as a Linear.
    func linear(_ name: String, input: Int, output: Int) throws -> Linear<Float> {
        try matrix(name + ".weight", [output, input], bias: tensor(name + ".bias", [output]), layout: .outputMajor)
    }

    /// The weight matrix `name` of `shape` as a Linear in `layout`: read in place from the file when
    /// there is one, a tensor otherwise.
    func matrix(_ name: String, _ shape: [Int], bias: Tensor<Float>?, layout: WeightLayout) throws -> Linear<Float> {
        guard let file, let entry = file.weights.entries[file.fullName(name)] else {
            return try Linear(weight: tensor(name, shape), bias: bias, layout: layout)
        }
        guard entry.shape == shape else {
            throw AttentionError.invalidFile(path: path, reason: "'\(displayPrefix + name)' has shape \(entry.shape), the config implies \(shape)")
        }
        return try Linear(weights: file.weights, name: file.fullName(name), shape: shape, bias: bias, layout: layout)
    }

    /// `name.weight` `[input, output]` (transformers' `Conv1D`, `y = x·W + b`) and `name.bias`, as a Linear
    /// that keeps the weight in that layout.
    func conv1D(_ name: String, input: Int, output: Int) throws -> Linear<Float> {
        try matrix(name + ".weight", [input, output], bias: tensor(name + ".bias", [output]), layout: .inputMajor)
    }
}
