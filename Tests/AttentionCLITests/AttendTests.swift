import ArgumentParser
import Attention
import AttentionCLI
import AttentionTestSupport
import Foundation
import Testing

/// `attention attend` end to end: .npy in, .npy out, against PyTorch's results.
@Suite("attention attend")
struct AttendTests {
    let scratch: TemporaryDirectory
    var directory: URL { scratch.url }

    init() throws { scratch = try TemporaryDirectory("attention-attend") }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func run(_ arguments: [String]) throws {
        var command = try AttentionCommand.parseAsRoot(["attend"] + arguments)
        try command.run()
    }

    /// Writes a case's inputs in `Scalar`'s dtype and returns the flags that describe it.
    func prepare<Scalar: AttentionScalar & NPYElement>(_ c: Fixtures.AttentionCase, _: Scalar.Type) throws -> [String] {
        for name in ["q", "k", "v"] + (c.bias ? ["bias"] : []) {
            let t: Tensor<Scalar> = try c.tensor(name)
            try NPY.write(t, to: URL(fileURLWithPath: path("\(name).npy")))
        }
        var flags = ["--query", path("q.npy"), "--key", path("k.npy"), "--value", path("v.npy"),
                     "--output", path("o.npy"), "--weights", path("w.npy"), "--lse", path("l.npy")]
        if let scale = c.scale { flags += ["--scale", "\(scale)"] }
        if c.causal == "bottomRight" { flags.append("--causal") }
        if c.causal == "topLeft" { flags.append("--causal-top-left") }
        if let w = c.window { flags += ["--window", "\(w[0]),\(w[1])"] }
        if let lengths = c.keyLengths { flags += ["--key-lengths", lengths.map(String.init).joined(separator: ",")] }
        if c.mask { flags += ["--mask", c.file("mask").path] }
        if c.bias { flags += ["--bias", path("bias.npy")] }
        return flags
    }

    func check<Scalar: AttentionScalar & NPYElement>(_ c: Fixtures.AttentionCase, _: Scalar.Type, tolerance: Double) throws {
        try run(prepare(c, Scalar.self))
        for (ours, theirs) in [("o", "out"), ("w", "weights"), ("l", "lse")] {
            let written = try NPY.read(contentsOf: URL(fileURLWithPath: path("\(ours).npy")))
            let expected: Tensor<Double> = try c.tensor(theirs)
            #expect(written.dtypeName == (Scalar.self == Float.self ? "float32" : "float64"))
            #expect(written.shape == expected.shape)
            let values: Tensor<Double> = try written.floatingPoint(path: ours)
            #expect(maxAbsDifference(values.scalars, expected.scalars) <= tolerance, "\(theirs)")
        }
    }

    @Test("float64 agrees with PyTorch to 1e-10", arguments: Fixtures.attentionCases)
    func float64(_ c: Fixtures.AttentionCase) throws {
        try check(c, Double.self, tolerance: 1e-10)
    }

    @Test("float32 agrees with PyTorch to 2e-5", arguments: Fixtures.attentionCases)
    func float32(_ c: Fixtures.AttentionCase) throws {
        try check(c, Float.self, tolerance: 2e-5)
    }

    func failure(_ arguments: [String]) -> String {
        do {
            try run(arguments)
            return "no error"
        } catch {
            return AttentionCommand.message(for: error)
        }
    }

    func writeInputs(query: [Int] = [3, 4], keyDType: String = "float32", nonFinite: Bool = false) throws -> [String] {
        var q = try Tensor<Float>.randomNormal(shape: query, seed: 1)
        if nonFinite { q.withUnsafeMutableBufferPointer { $0[1] = .nan } }
        try NPY.write(q, to: URL(fileURLWithPath: path("q.npy")))
        let k = try Tensor<Float>.randomNormal(shape: [5, 4], seed: 2)
        if keyDType == "float64" {
            try NPY.write(k.map { Double($0) }, to: URL(fileURLWithPath: path("k.npy")))
        } else {
            try NPY.write(k, to: URL(fileURLWithPath: path("k.npy")))
        }
        try NPY.write(k, to: URL(fileURLWithPath: path("v.npy")))
        return ["--query", path("q.npy"), "--key", path("k.npy"), "--value", path("v.npy"), "--output", path("o.npy")]
    }

    @Test("Bad input gets a clear error and writes nothing")
    func errors() throws {
        let base = try writeInputs()
        #expect(failure(base + ["--causal", "--causal-top-left"]).contains("pass one of them"))
        #expect(failure(base + ["--window", "3"]).contains("--window"))
        #expect(failure(base + ["--window", "-1,2"]).contains("--window"))
        #expect(failure(base + ["--window", "a,b"]).contains("window"))
        #expect(failure(base + ["--key-lengths", "-2"]).contains("--key-lengths"))
        #expect(failure(base + ["--key-lengths", "2,3"]).contains("2 lengths given for a batch of 1"))
        #expect(failure(base + ["--mask", path("q.npy")]).contains("bool"))
        #expect(!FileManager.default.fileExists(atPath: path("o.npy")))

        let mixed = try writeInputs(keyDType: "float64")
        #expect(failure(mixed).contains("key is float64 but the query is float32"))
        let nan = try writeInputs(nonFinite: true)
        #expect(failure(nan) == "--query \(path("q.npy")) holds the non-finite value nan at index [0, 1]")
        #expect(!FileManager.default.fileExists(atPath: path("o.npy")))
        try run(nan + ["--no-check-finite"])   // the caller's choice: NaN in, NaN out
        #expect(FileManager.default.fileExists(atPath: path("o.npy")))

        let wrongShape = try writeInputs(query: [3, 6])
        #expect(failure(wrongShape).contains("head dimension"))
        #expect(failure(["--query", path("missing.npy"), "--key", path("k.npy"), "--value", path("v.npy"),
                         "--output", path("o.npy")]) == "--query \(path("missing.npy")): no such file")
        #expect(failure(Array(base.dropLast(2))).contains("--output"))
    }

    @Test("Gradients through attend agree with PyTorch autograd", arguments: Fixtures.attentionCases.filter { $0.rank == 4 })
    func gradients(_ c: Fixtures.AttentionCase) throws {
        var flags = try prepare(c, Float.self)
        let dO: Tensor<Float> = try c.tensor("do")
        try NPY.write(dO, to: URL(fileURLWithPath: path("do.npy")))
        flags += ["--grad-output", path("do.npy"), "--grad-query", path("dq.npy"), "--grad-key", path("dk.npy"), "--grad-value", path("dv.npy")]
        if c.bias { flags += ["--grad-bias", path("db.npy")] }
        try run(flags)
        for (ours, theirs) in [("dq", "dq"), ("dk", "dk"), ("dv", "dv")] + (c.bias ? [("db", "dbias")] : []) {
            let written: Tensor<Double> = try NPY.read(contentsOf: URL(fileURLWithPath: path("\(ours).npy"))).floatingPoint(path: ours)
            let expected: Tensor<Double> = try c.tensor(theirs)
            #expect(written.shape == expected.shape)
            #expect(maxAbsDifference(written.scalars, expected.scalars) <= 1e-4 * max(1, expected.scalars.map(abs).max() ?? 0), "\(theirs)")
        }
    }

    @Test("Gradient flags are validated")
    func gradientFlags() throws {
        let base = try writeInputs()
        #expect(failure(base + ["--grad-query", path("dq.npy")]).contains("need --grad-output"))
        #expect(failure(base + ["--grad-output", path("q.npy")]).contains("needs at least one"))
        #expect(failure(base + ["--grad-output", path("q.npy"), "--grad-bias", path("db.npy")]).contains("--grad-bias needs --bias"))
        #expect(failure(base + ["--grad-output", path("k.npy"), "--grad-query", path("dq.npy")])
            == "--grad-output \(path("k.npy")) with shape [5, 4] does not fit the output with shape [3, 4]: the output gradient must have the output's shape")
    }

    @Test("A single query [D] with --weights and --lse gives [Dv], [Nk] and a scalar")
    func singleQuery() throws {
        let flags = try writeInputs(query: [4])
        try run(flags + ["--weights", path("w.npy"), "--lse", path("l.npy")])
        #expect(try NPY.read(contentsOf: URL(fileURLWithPath: path("o.npy"))).shape == [4])
        #expect(try NPY.read(contentsOf: URL(fileURLWithPath: path("w.npy"))).shape == [5])
        #expect(try NPY.read(contentsOf: URL(fileURLWithPath: path("l.npy"))).shape == [])
    }

    @Test("--explain names the path: the tiled kernel for float32, the reference for float64")
    func explain() throws {
        let flags = try writeInputs()
        func explained() throws -> [String] {
            var lines: [String] = []
            try Attend.parse(flags + ["--explain"]).execute { lines.append($0) }
            return lines
        }
        #expect(try explained().contains { $0.hasPrefix("path: tiled (\(KernelInstructionSet.best.rawValue))") })
        let q = try Tensor<Double>.randomNormal(shape: [3, 4], seed: 3)
        for name in ["q", "k", "v"] { try NPY.write(q, to: URL(fileURLWithPath: path("\(name).npy"))) }
        #expect(try explained().contains { $0.hasPrefix("path: reference: Double runs on the reference") })
    }

    @Test("Every command's help explains its options with an example", arguments: [["attend"], ["demo"], ["bench"], []])
    func help(_ subcommand: [String]) throws {
        let help = AttentionCommand.helpMessage(for: subcommand.isEmpty ? AttentionCommand.self
                                                : try #require(AttentionCommand.configuration.subcommands.first {
                                                    $0._commandName == subcommand[0] }))
        #expect(help.contains("attention"))
        #expect(help.lowercased().contains("example") || help.contains("attention demo"))
        if subcommand == ["attend"] {
            for option in ["--query", "--key", "--value", "--output", "--weights", "--lse", "--scale", "--causal",
                           "--causal-top-left", "--window", "--key-lengths", "--mask", "--bias", "--explain"] {
                #expect(help.contains(option), "help does not mention \(option)")
            }
        }
    }
}
