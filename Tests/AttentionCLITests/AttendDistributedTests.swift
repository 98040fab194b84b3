import Attention
import AttentionCLI
import AttentionTestSupport
import Foundation
import Testing

/// `mpirun -np P attention attend --distributed` against one process: real MPI processes on this
/// machine, each reading its shard of the files.
///
/// Needs Open MPI (`mpirun`). Without it the suite is skipped, saying so, unless
/// `ATTENTION_REQUIRE_MPI=1` (as CI sets), where a missing `mpirun` fails it.
@Suite("attend --distributed under mpirun", .serialized, .enabled(if: MPI.runnable, MPI.skipReason))
struct AttendDistributedTests {
    let scratch: TemporaryDirectory

    init() throws { scratch = try TemporaryDirectory("attend-distributed") }

    func path(_ name: String) -> String { scratch.url.appendingPathComponent(name).path }

    func save(_ tensor: Tensor<Float>, _ name: String) throws -> String {
        try NPY.write(tensor, to: scratch.url.appendingPathComponent(name))
        return path(name)
    }

    func load(_ name: String) throws -> Tensor<Float> {
        try NPY.read(contentsOf: scratch.url.appendingPathComponent(name)).floatingPoint(as: Float.self, path: name)
    }

    struct Case: CustomStringConvertible, Sendable {
        let name: String
        let Nq, Nk: Int
        let flags: [String]
        let mask: AttentionMask
        var description: String { "\(name) Nq\(Nq) Nk\(Nk)" }
    }

    static let cases = [
        Case(name: "causal", Nq: 45, Nk: 45, flags: ["--causal"], mask: .causal),
        Case(name: "causal window, key lengths", Nq: 39, Nk: 47, flags: ["--causal", "--window", "6,0", "--key-lengths", "40,29"],
             mask: .causal && .slidingWindow(left: 6, right: 0) && .keyLengths([40, 29])),
        Case(name: "no mask", Nq: 23, Nk: 38, flags: [], mask: .none),
    ]

    @Test("Over 1 to 4 processes, output and log-sum-exp equal one process's (GQA, odd lengths)", arguments: 1...4, cases)
    func equalsOneProcess(ranks: Int, _ c: Case) throws {
        var g = SplitMix64(seed: UInt64(c.Nq * 7 + c.Nk))
        let q = try Tensor<Float>.randomNormal(shape: [2, 4, c.Nq, 16], using: &g)
        let k = try Tensor<Float>.randomNormal(shape: [2, 2, c.Nk, 16], using: &g)
        let v = try Tensor<Float>.randomNormal(shape: [2, 2, c.Nk, 12], using: &g)
        let run = try MPI.run(ranks, ["attend", "--distributed", "--query", save(q, "q.npy"), "--key", save(k, "k.npy"),
                                      "--value", save(v, "v.npy"), "--output", path("o.npy"), "--lse", path("lse.npy"), "--json"]
                                     + c.flags)
        try #require(run.status == 0, "\(c) over \(ranks): \(run.error)")
        let output = try load("o.npy"), lse = try load("lse.npy")
        #expect(output.shape == [2, 4, c.Nq, 12] && lse.shape == [2, 4, c.Nq])
        let (error, naive, reference) = try errorsAgainstReference(output.scalars, query: q, key: k, value: v, mask: c.mask)
        let single = try scaledDotProductAttention(query: q, key: k, value: v, mask: c.mask)
        let (singleError, _, _) = try errorsAgainstReference(single.output.scalars, query: q, key: k, value: v, mask: c.mask)
        #expect(error <= ringTolerance(naive: naive, single: singleError),
                "\(c) over \(ranks): error \(error), naive \(naive), one process \(singleError)")
        #expect(maxAbsDifference(lse.scalars, reference.logSumExp!.scalars) <= 1e-5)
        // One report, from rank 0, with every rank's figures.
        #expect(run.output.components(separatedBy: "\"wrote\"").count == 2, "\(run.output)")
        #expect((0..<ranks).allSatisfy { run.output.contains("\"rank\" : \($0)") }, "\(run.output)")
    }

    @Test("Started without mpirun it is a world of one process")
    func withoutMPIRun() throws {
        var g = SplitMix64(seed: 3)
        let x = try Tensor<Float>.randomNormal(shape: [3, 9, 8], using: &g)
        let r = try ExitStatusTests.run(["attend", "--distributed", "--query", save(x, "x.npy"), "--key", path("x.npy"),
                                         "--value", path("x.npy"), "--output", path("o.npy")], environment: MPI.environment)
        #expect(r.status == 0, "\(r.error)")
        let single = try scaledDotProductAttention(query: x, key: x, value: x)
        #expect(maxAbsDifference(try load("o.npy").scalars, single.output.scalars) <= 1e-6)
    }

    @Test("An input missing on one rank ends every rank with its status, and writes nothing")
    func missingInputOnOneRank() throws {
        var g = SplitMix64(seed: 4)
        let x = try save(Tensor<Float>.randomNormal(shape: [1, 2, 16, 8], using: &g), "x.npy")
        let good = ["attend", "--distributed", "--query", x, "--key", x, "--value", x, "--output", path("o.npy")]
        var bad = good
        bad[3] = path("missing.npy")
        let run = try MPI.run([good, bad])
        #expect(run.status == AttentionCLI.ExitStatus.noInput.rawValue, "\(run.error)")
        #expect(run.error.contains("Error: rank 1 of 2: --query \(path("missing.npy")): no such file"), "\(run.error)")
        #expect(run.error.contains("Error: rank 0 of 2: rank 1 failed (see its message)"), "\(run.error)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.url.path) == ["x.npy"])
    }

    @Test("Ranks launched with different problems all stop, naming what differs")
    func disagreement() throws {
        var g = SplitMix64(seed: 5)
        let x = try save(Tensor<Float>.randomNormal(shape: [1, 2, 16, 8], using: &g), "x.npy")
        let plain = ["attend", "--distributed", "--query", x, "--key", x, "--value", x, "--output", path("o.npy")]
        let run = try MPI.run([plain, plain + ["--scale", "0.5"]])
        #expect(run.status == AttentionCLI.ExitStatus.dataError.rawValue, "\(run.error)")
        #expect(run.error.contains("rank 0 of 2: the ranks disagree on the scale: every rank must be given the same problem"),
                "\(run.error)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.url.path) == ["x.npy"])
    }

    @Test("What ring attention cannot do is a usage error naming the flag")
    func unsupportedFlags() throws {
        let r = try ExitStatusTests.run(["attend", "--distributed", "--query", "q", "--key", "k", "--value", "v", "--output", "o",
                                         "--weights", "w.npy"])
        #expect(r.status == AttentionCLI.ExitStatus.usage.rawValue)
        #expect(r.error.contains("--distributed does not take --weights"), "\(r.error)")
        let t = try ExitStatusTests.run(["attend", "--query", "q", "--key", "k", "--value", "v", "--output", "o", "--timeout", "5"])
        #expect(t.status == AttentionCLI.ExitStatus.usage.rawValue)
        #expect(t.error.contains("--timeout is for --distributed"), "\(t.error)")
    }
}

/// Open MPI's launcher, as the tests use it.
enum MPI {
    /// `mpirun` on the PATH, if there is one.
    static let launcher: URL? = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        .split(separator: ":").map { URL(fileURLWithPath: String($0)).appendingPathComponent("mpirun") }
        .first { FileManager.default.isExecutableFile(atPath: $0.path) }

    static let required = ProcessInfo.processInfo.environment["ATTENTION_REQUIRE_MPI"] == "1"

    /// Whether the suite runs: mpirun is there, or it is required (and then fails without it).
    static var runnable: Bool { launcher != nil || required }

    static let skipReason: Comment = "mpirun not found: install Open MPI (apt-get install openmpi-bin) to run these"

    /// Root may run ranks in a container; shared-memory single copy needs a capability containers lack.
    static let environment = ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                              "OMPI_MCA_btl_vader_single_copy_mechanism": "none", "OMPI_MCA_rmaps_base_oversubscribe": "1"]

    /// `mpirun -np ranks attention arguments`.
    static func run(_ ranks: Int, _ arguments: [String]) throws -> ExitStatusTests.Run {
        try run(Array(repeating: arguments, count: ranks))
    }

    /// One process per element, each with its own arguments (`mpirun -np 1 A : -np 1 B`).
    static func run(_ perRank: [[String]]) throws -> ExitStatusTests.Run {
        guard let launcher else {
            Issue.record("mpirun not found, and ATTENTION_REQUIRE_MPI=1: install openmpi-bin")
            return ExitStatusTests.Run(status: -1, output: "", error: "mpirun not found")
        }
        let arguments = perRank.enumerated().flatMap { index, rank in
            (index == 0 ? [] : [":"]) + ["-np", "1", ExitStatusTests.executable.path] + rank
        }
        return try ExitStatusTests.run(arguments, program: launcher, environment: environment)
    }
}
