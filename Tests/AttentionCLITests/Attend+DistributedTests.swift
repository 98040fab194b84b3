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

    @Test("Two ranks as two hosts: network namespaces joined by a veth link, MPI over TCP between them",
          .enabled(if: NetworkNamespaces.available, NetworkNamespaces.skipReason))
    func twoHosts() throws {
        var g = SplitMix64(seed: 6)
        let q = try Tensor<Float>.randomNormal(shape: [2, 4, 67, 16], using: &g)
        let k = try Tensor<Float>.randomNormal(shape: [2, 2, 67, 16], using: &g)
        let v = try Tensor<Float>.randomNormal(shape: [2, 2, 67, 12], using: &g)
        let hosts = try NetworkNamespaces(count: 2, scratch: scratch.url)
        let run = try hosts.mpirun(["attend", "--distributed", "--query", save(q, "q.npy"), "--key", save(k, "k.npy"),
                                    "--value", save(v, "v.npy"), "--output", path("o.npy"), "--causal", "--explain"])
        try #require(run.status == 0, "\(run.error)")
        let (error, naive, _) = try errorsAgainstReference(try load("o.npy").scalars, query: q, key: k, value: v, mask: .causal)
        let single = try scaledDotProductAttention(query: q, key: k, value: v, mask: .causal)
        let (singleError, _, _) = try errorsAgainstReference(single.output.scalars, query: q, key: k, value: v, mask: .causal)
        #expect(error <= ringTolerance(naive: naive, single: singleError), "error \(error), naive \(naive)")
        #expect(run.output.contains("ring attention over 2 ranks") && run.output.contains("rank 1: host 1, 34 queries"), "\(run.output)")
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

/// Hosts made of network namespaces on this machine, joined by veth links on 10.231.0.0/24, each
/// with its own hostname; `mpirun` reaches them through an agent script in place of ssh. Removed
/// when released.
final class NetworkNamespaces {
    let names: [String]
    let agent: URL
    static let tool = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Whether this process may make namespaces (root, and a sandbox that allows it), tried once.
    static let available: Bool = {
        guard MPI.launcher != nil, let tool else { return false }
        let name = "attention-probe-\(ProcessInfo.processInfo.processIdentifier)"
        guard (try? shell([tool, "netns", "add", name]))?.status == 0 else { return false }
        _ = try? shell([tool, "netns", "delete", name])
        return true
    }()

    static let skipReason: Comment = "network namespaces are not available here (needs root, iproute2 and a sandbox that allows them): the ranks ran on one host only"

    init(count: Int, scratch: URL) throws {
        let tool = try #require(Self.tool)
        let id = ProcessInfo.processInfo.processIdentifier
        names = (0..<count).map { "attention-h\($0)-\(id)" }
        agent = scratch.appendingPathComponent("netns-agent.sh")
        // A star: host 0 links to every other host.
        for (index, name) in names.enumerated() {
            try Self.check([tool, "netns", "add", name])
            try Self.check([tool, "-n", name, "link", "set", "lo", "up"])
            guard index > 0 else { continue }
            let (a, b) = ("att\(id % 10000)a\(index)", "att\(id % 10000)b\(index)")
            try Self.check([tool, "link", "add", a, "netns", names[0], "type", "veth", "peer", "name", b, "netns", name])
            try Self.check([tool, "-n", names[0], "addr", "add", "10.231.\(index).1/24", "dev", a])
            try Self.check([tool, "-n", name, "addr", "add", "10.231.\(index).2/24", "dev", b])
            try Self.check([tool, "-n", names[0], "link", "set", a, "up"])
            try Self.check([tool, "-n", name, "link", "set", b, "up"])
        }
        let cases = names.indices.map { index in
            index == 0 ? "  10.231.1.1) ns=\(names[0]);;" : "  10.231.\(index).2) ns=\(names[index]);;"
        }.joined(separator: "\n")
        let script = """
            #!/bin/sh
            # mpirun's ssh: AGENT HOST COMMAND runs COMMAND in HOST's namespace, under its own hostname.
            host=$1; shift
            case "$host" in
            \(cases)
              *) echo "no namespace for $host" >&2; exit 1;;
            esac
            exec \(tool) netns exec "$ns" unshare --uts sh -c "hostname $ns; $*"

            """
        try script.write(to: agent, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: agent.path)
    }

    deinit {
        guard let tool = Self.tool else { return }
        for name in names { _ = try? Self.shell([tool, "netns", "delete", name]) }
    }

    /// `mpirun` started in host 0, one rank per host, over TCP on the veth links only.
    func mpirun(_ arguments: [String]) throws -> ExitStatusTests.Run {
        let tool = try #require(Self.tool), launcher = try #require(MPI.launcher)
        let hosts = (["10.231.1.1:1"] + (1..<names.count).map { "10.231.\($0).2:1" }).joined(separator: ",")
        let command = [launcher.path, "-np", "\(names.count)", "--host", hosts, "--mca", "plm_rsh_agent", agent.path,
                       "--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "10.231.0.0/16",
                       "--mca", "oob_tcp_if_include", "10.231.0.0/16", ExitStatusTests.executable.path] + arguments
        let quoted = command.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        return try ExitStatusTests.run(["netns", "exec", names[0], "unshare", "--uts", "sh", "-c", "hostname \(names[0]); exec \(quoted)"],
                                       program: URL(fileURLWithPath: tool), environment: MPI.environment)
    }

    static func shell(_ command: [String]) throws -> ExitStatusTests.Run {
        try ExitStatusTests.run(Array(command.dropFirst()), program: URL(fileURLWithPath: command[0]))
    }

    static func check(_ command: [String]) throws {
        let run = try shell(command)
        guard run.status == 0 else { throw CommandFailure(description: "\(command.joined(separator: " ")): \(run.error)") }
    }

    struct CommandFailure: Error, CustomStringConvertible { let description: String }
}
