import ArgumentParser
import Foundation
import GRDB
import TandemClient
import TandemCore
import TandemServer
import TandemStore

/// Issue 5's write-to-visible benchmark, idle: two devices of one member each run
/// `tandem sync --watch` (the release `tandem` beside this binary); this process writes a
/// journal entry into device A's store and measures the time from that commit until the
/// entry is committed in device B's store, one write at a time. The server runs in this
/// process. (Under ingest load: not yet; see docs/benchmarks.md.)
struct WriteToVisibleBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "write-to-visible",
        abstract: "Latency from a commit on device A to the commit on device B through sync --watch (idle)."
    )

    /// Whether device B's store holds the entry (synchronous: no hop per poll).
    static func holds(_ reader: DatabaseQueue, _ key: Data) throws -> Bool {
        try reader.read { db in try Bool.fetchOne(db, sql: "SELECT 1 FROM journal_entry WHERE id = ?", arguments: [key]) } == true
    }

    @Option(help: "Writes to measure.")
    var writes = 1_000

    func run() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let tandem = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("tandem")
        guard FileManager.default.isExecutableFile(atPath: tandem.path) else {
            throw BenchError.badInput("build tandem first: swift build -c release --product tandem")
        }

        let storage = try SQLiteServerStorage(path: folder + "/center.sqlite")
        _ = try storage.initialize(staffName: "Bench", nowMillis: UInt64(now() * 1000))
        let (port, serverTask) = try await startServer(storage)
        defer { serverTask.cancel() }
        let url = "http://127.0.0.1:\(port)"

        // Two homes of one member, enrolled the way `tandem enroll` does.
        var homes: [String] = []
        var stores: [ReplicaStore] = []
        for name in ["a", "b"] {
            let home = folder + "/" + name
            try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let store = try ReplicaStore.create(at: home + "/replica.sqlite", name: name, role: .patient, wallMillis: UInt64(now() * 1000))
            let code: String
            if let first = stores.first {
                code = try await Syncer(store: first).link().code
            } else {
                code = try storage.invite(role: .patient, name: "Bench", nowMillis: UInt64(now() * 1000))
            }
            _ = try await Syncer.enroll(store: store, server: url, code: code, deviceName: name, role: nil, allowInsecure: false)
            homes.append(home)
            stores.append(store)
        }
        var watchers: [Process] = []
        defer { for watcher in watchers { watcher.terminate() } }
        for home in homes {
            let watcher = Process()
            watcher.executableURL = tandem
            watcher.arguments = ["sync", "--watch", "--json", "--home", home]
            watcher.standardOutput = FileHandle.nullDevice
            FileManager.default.createFile(atPath: home + ".log", contents: nil)
            watcher.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: home + ".log"))
            try watcher.run()
            watchers.append(watcher)
        }
        try await Task.sleep(for: .seconds(2))

        let reader = try DatabaseQueue(path: homes[1] + "/replica.sqlite")
        var latencies: [Double] = []
        var lost = 0
        for index in 0..<writes {
            var edit = JournalEdit()
            edit.mood = index % 11
            edit.craving = 3
            let (id, _) = try stores[0].write(try edit.recordEdit(), to: nil, clock: SystemWallClock())
            let committed = now()
            let key = Data(id.bytes)
            var seen = false
            while now() - committed < 5 {
                if try Self.holds(reader, key) {
                    seen = true
                    break
                }
                try await Task.sleep(for: .microseconds(250))
            }
            if seen { latencies.append((now() - committed) * 1000) } else { lost += 1 }
            try await Task.sleep(for: .milliseconds(5))
        }
        for home in homes {
            let log = (try? String(contentsOfFile: home + ".log", encoding: .utf8)) ?? ""
            let lines = log.split(separator: "\n")
            if lines.count > 1 { print("device \(home.suffix(1)) said: " + lines.suffix(5).joined(separator: " | ")) }
        }
        latencies.sort()
        func percentile(_ p: Double) -> Double { latencies.isEmpty ? .nan : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        print("""
        Write-to-visible, idle, \(latencies.count) of \(writes) writes seen on device B (\(lost) not within 5 s):
          p50  \(format(percentile(0.50), 2)) ms
          p90  \(format(percentile(0.90), 2)) ms
          p99  \(format(percentile(0.99), 2)) ms   (target < 20 ms: \(percentile(0.99) < 20 ? "met" : "NOT met"))
          max  \(format(latencies.last ?? .nan, 2)) ms
        (B's store is polled every 0.25 ms: figures include up to that much.)
        """)
    }
}
