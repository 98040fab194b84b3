import AttentionDistributed
import Foundation

/// One rank's traffic, time and memory, as `attend --distributed` and `bench --distributed` report them.
struct RankFigures: Encodable, Equatable {
    let rank: Int
    /// Which host, numbered in rank order of first appearance (0: rank 0's).
    let host: Int
    let queries: Int
    let bytesSent: Int
    let computeSeconds: Double
    let waitSeconds: Double
    let peakResidentBytes: Int

    /// Every rank's figures, on every rank (a collective: every rank calls it).
    static func gather(_ statistics: RingStatistics, queries: Int, world: some Communicator, timeout: Duration) throws
        -> [RankFigures]
    {
        var hostHash: UInt64 = 0xcbf2_9ce4_8422_2325   // FNV-1a of the host name
        for byte in ProcessInfo.processInfo.hostName.utf8 { hostHash = (hostHash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let mine: [Int64] = [Int64(queries), Int64(statistics.bytesSent), Int64(statistics.computeSeconds * 1e6),
                             Int64(statistics.waitSeconds * 1e6), Int64(AttentionCLI.peakResidentBytes()), Int64(bitPattern: hostHash >> 1)]
        let all = try world.allGather(mine, timeout: timeout)
        var hosts: [Int64] = []
        for figures in all where !hosts.contains(figures[5]) { hosts.append(figures[5]) }
        return all.enumerated().map { rank, f in
            RankFigures(rank: rank, host: hosts.firstIndex(of: f[5]) ?? 0, queries: Int(f[0]), bytesSent: Int(f[1]),
                        computeSeconds: Double(f[2]) / 1e6, waitSeconds: Double(f[3]) / 1e6, peakResidentBytes: Int(f[4]))
        }
    }

    /// `rank 1: host 0, 4096 queries, sent 16.8 MB, attended 0.629 s, waited 0.000 s, peak memory 153.6 MiB`.
    var line: String {
        "rank \(rank): host \(host), \(queries) queries, sent \(Format.number(Double(bytesSent) / 1e6, 1)) MB, attended \(Format.number(computeSeconds, 3)) s, waited \(Format.number(waitSeconds, 3)) s on transfers, peak memory \(Format.number(Double(peakResidentBytes) / 1_048_576, 1)) MiB"
    }
}
