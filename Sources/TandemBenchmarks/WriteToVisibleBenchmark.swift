import ArgumentParser
import Foundation
import TandemProcess
import GRDB
import TandemClient
import TandemCore
import TandemProtocol
import TandemServer
import TandemStore

/// Issue 5's write-to-visible benchmark: two devices of one member each run
/// `tandem sync --watch` (the release `tandem` beside this binary); this process writes a
/// journal entry into device A's store and measures the time from that commit until the
/// entry is committed in device B's store, one write at a time: first with the server idle,
/// then while 200 other devices push 10,000 changes/s at it (the ingest benchmark's load,
/// from this process). The server runs in a child process.
struct WriteToVisibleBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "write-to-visible",
        abstract: "Latency from a commit on device A to the commit on device B through sync --watch, idle and under ingest load."
    )

    @Option(help: "Writes to measure per phase.")
    var writes = 1_000

    @Option(help: "Changes/s the other devices push in the second phase (0: no second phase).")
    var loadRate = 10_000

    @Option(help: "Devices pushing in the second phase, in batches of 20.")
    var loadDevices = 200

    @Option(help: "Seconds the load runs before the second phase's writes start.")
    var loadWarmup = 10

    @Option(help: "Longest the second phase's writes go on under load, in seconds (the ingest benchmark's 60 by default).")
    var loadSeconds = 60

    func run() async throws {
        raiseFileLimit()
        let folder = try BenchFolder()
        defer { folder.remove() }
        let tandem = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("tandem")
        guard FileManager.default.isExecutableFile(atPath: tandem.path) else {
            throw BenchError.badInput("build tandem first: swift build -c release --product tandem")
        }

        // The center: an invitation for the measured member, and the load's devices enrolled
        // straight into the store before the server starts.
        let db = folder.path + "/center.sqlite"
        let code: String
        var loaders: [BenchDevice] = []
        do {
            let storage = try SQLiteServerStorage(path: db)
            _ = try storage.initialize(staffName: "Bench", nowMillis: UInt64(now() * 1000))
            code = try await storage.invite(role: .patient, name: "Bench", nowMillis: UInt64(now() * 1000))
            if loadRate > 0 {
                for index in 0..<loadDevices { loaders.append(try await BenchDevice.enroll("load-\(index)", into: storage)) }
            }
        }
        let (server, port) = try spawnServer(db: db)
        defer { server.terminate() }
        let url = "http://127.0.0.1:\(port)"

        // Two homes of one member, enrolled the way `tandem enroll` and `tandem device link` do.
        var homes: [String] = []
        var stores: [ReplicaStore] = []
        for name in ["a", "b"] {
            let home = folder.path + "/" + name
            try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let store = try ReplicaStore.create(at: home + "/replica.sqlite", name: name, role: .patient, wallMillis: UInt64(now() * 1000))
            var enrollment = code
            if let first = stores.first { enrollment = try await Syncer(store: first).link().code }
            _ = try await Syncer.enroll(store: store, server: url, code: enrollment, deviceName: name, role: nil, allowInsecure: false)
            homes.append(home)
            stores.append(store)
        }
        var watchers: [Subprocess] = []
        defer { for watcher in watchers { watcher.terminate() } }
        for home in homes {
            let watcher = try Subprocess(
                tandem.path, ["sync", "--watch", "--json", "--home", home], input: .inherit, output: .null, error: .file(home + ".log"))
            watchers.append(watcher)
        }
        try await Task.sleep(for: .seconds(2))
        // The probe's reads wait out a busy store (a WAL restart) instead of failing.
        var readerConfiguration = Configuration()
        readerConfiguration.busyMode = .timeout(5)
        let probe = Probe(
            writer: stores[0], reader: try DatabaseQueue(path: homes[1] + "/replica.sqlite", configuration: readerConfiguration), watched: homes[1])
        var reasons: [String] = []
        let serverPID = server.pid

        func watchersCPU() -> Double { watchers.reduce(0) { $0 + cpuSeconds(of: $1.pid) } }
        var cpu = cpuSeconds(of: serverPID)
        var watching = watchersCPU()
        let idle = await probe.measure(writes: writes, until: .distantFuture)
        print("Write-to-visible (device A's commit → device B's commit through sync --watch; B's store looked at on each write to its home, within 0.1 ms):")
        report("idle", idle, serverCPU: cpuSeconds(of: serverPID) - cpu, watchersCPU: watchersCPU() - watching)
        reasons += idle.failures("idle", asked: writes)

        if loadRate > 0 {
            let batch = 20
            let interval = Double(batch * loadDevices) / Double(loadRate)
            let perDevice = Int((Double(loadWarmup + loadSeconds) / interval).rounded(.up))
            let plan = try PushPlan(devices: loaders, batchesPerDevice: perDevice, batch: batch)
            let client = PushClient(base: url, connections: loadDevices)
            let devices = loaders
            let load = Task {
                await openLoop(clients: devices.count, perClient: perDevice, interval: interval, warmup: Double(loadWarmup)) { device, index in
                    try await client.push(plan.bodies[device][index], token: devices[device].token)
                }
            }
            try await Task.sleep(for: .seconds(loadWarmup))
            cpu = cpuSeconds(of: serverPID)
            watching = watchersCPU()
            let loaded = await probe.measure(writes: writes, until: Date().addingTimeInterval(Double(loadSeconds)))
            let serverCPU = cpuSeconds(of: serverPID) - cpu
            let watchingCPU = watchersCPU() - watching
            load.cancel()
            let pushed = await load.value
            report("under load: \(loadDevices) devices offering \(loadRate) changes/s in batches of \(batch)", loaded, serverCPU: serverCPU, watchersCPU: watchingCPU, target: 100)
            reasons += loaded.failures("under load", asked: nil)
            print("""
                the load meanwhile: \(pushed.returned) of \(pushed.measured * batch) changes accepted, \(pushed.failures) batches failed; \
            push p50 \(format(pushed.percentile(0.5), 2)) ms, p99 \(format(pushed.percentile(0.99), 2)) ms; load generator CPU \(format(pushed.cpu, 1)) s
            """)
            try await client.shutdown()
            if pushed.failures > 0 { reasons.append("the load: \(pushed.failures) batches refused or timed out") }
            if pushed.returned != pushed.measured * batch {
                reasons.append("the load: \(pushed.returned) of \(pushed.measured * batch) changes accepted")
            }
        }
        for home in homes {
            let lines = ((try? String(contentsOfFile: home + ".log", encoding: .utf8)) ?? "").split(separator: "\n")
            if lines.count > 1 { print("device \(home.suffix(1)) said: " + lines.suffix(5).joined(separator: " | ")) }
        }
        if !reasons.isEmpty { throw BenchmarkFailure(reasons: reasons) }
    }

    func report(_ phase: String, _ run: Probe.Run, serverCPU: Double, watchersCPU: Double, target: Double = 20) {
        let latencies = run.latencies
        func percentile(_ p: Double) -> Double { LoadRun.percentile(p, of: latencies) }
        print("""
          \(phase): \(latencies.count) writes seen on device B, \(run.lost) not within 5 s \
        (\(run.stuckOnA) of them still in A's outbox then), \(run.failed) failed\(run.firstError.map { " (first: \($0))" } ?? "")
            p50 \(format(percentile(0.50), 2)) ms   p90 \(format(percentile(0.90), 2)) ms   p99 \(format(percentile(0.99), 2)) ms   \
        max \(format(latencies.last ?? .nan, 2)) ms   (target p99 < \(format(target, 0)) ms: \(percentile(0.99) < target ? "met" : "NOT met"))
            CPU over the phase: server \(format(serverCPU, 1)) s, the two `sync --watch` processes \(format(watchersCPU, 1)) s, in \(format(run.seconds, 1)) s
        """)
    }
}

/// Writes on device A and watches for them on device B, on a thread of its own, so that
/// a load generator's tasks in this process do not delay it. It looks at B's store when
/// B's home is written (inotify), then every 0.1 ms for 1 ms (B's commit becomes visible
/// just after its WAL write), and at least every 2 ms: close to the moment, at little CPU
/// (polling every 0.25 ms took a fifth of a core from the two the server shares).
struct Probe: Sendable {
    let writer: ReplicaStore
    let reader: DatabaseQueue
    /// Device B's home.
    let watched: String

    struct Run: Sendable {
        /// Milliseconds from A's commit to B's, sorted.
        var latencies: [Double] = []
        /// Writes device B did not hold within 5 s of A's commit.
        var lost = 0
        /// Of those, the ones still in A's outbox at 5 s (A's watcher missed them; the
        /// others were lost downstream: the server, its notice or B's pull).
        var stuckOnA = 0
        /// Writes or reads of the probe itself that failed, and the first error.
        var failed = 0
        var firstError: String? = nil
        /// Writes made (the phase may end before all were made).
        var made = 0
        /// Wall-clock seconds the phase took.
        var seconds = 0.0
    }

    func measure(writes: Int, until end: Date) async -> Run {
        // (`Run.failures` says what of a run makes the benchmark fail.)
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                let events = inotify_init1(Int32(IN_CLOEXEC) | Int32(IN_NONBLOCK))
                _ = inotify_add_watch(events, watched, UInt32(IN_MODIFY) | UInt32(IN_CLOSE_WRITE))
                defer { close(events) }
                var buffer = [UInt8](repeating: 0, count: 4096)
                var run = Run()
                let started = now()
                for index in 0..<writes where Date() < end {
                    do {
                        var edit = JournalEdit()
                        edit.mood = index % 11
                        edit.craving = 3
                        let (id, _) = try writer.write(try edit.recordEdit(), to: nil, clock: SystemWallClock())
                        let committed = now()
                        let key = Data(id.bytes)
                        func holds() throws -> Bool {
                            try reader.read { db in
                                try Bool.fetchOne(db, sql: "SELECT 1 FROM journal_entry WHERE id = ?", arguments: [key]) ?? false
                            }
                        }
                        var seen = false
                        while now() - committed < 5, !seen {
                            var waiting = pollfd(fd: events, events: Int16(POLLIN), revents: 0)
                            let written = poll(&waiting, 1, 2) > 0
                            if written { while read(events, &buffer, buffer.count) > 0 {} }
                            seen = try holds()
                            var looks = written ? 10 : 0
                            while !seen, looks > 0 {
                                usleep(100)
                                seen = try holds()
                                looks -= 1
                            }
                        }
                        run.made += 1
                        if seen { run.latencies.append((now() - committed) * 1000) } else {
                            run.lost += 1
                            if (try? writer.outboxEntries(limit: 10_000).contains { $0.change.record == id }) == true { run.stuckOnA += 1 }
                        }
                    } catch {
                        run.failed += 1
                        if run.firstError == nil { run.firstError = "\(error)" }
                    }
                    usleep(5_000)
                }
                run.latencies.sort()
                run.seconds = now() - started
                continuation.resume(returning: run)
            }
        }
    }
}

extension Probe.Run {
    /// What makes the phase's figures untrue: any write not seen, any failure, and (with
    /// `asked`) fewer writes made than asked for.
    func failures(_ phase: String, asked: Int?) -> [String] {
        var reasons: [String] = []
        if lost > 0 { reasons.append("\(phase): \(lost) writes not seen on device B within 5 s (\(stuckOnA) still in A's outbox)") }
        if failed > 0 { reasons.append("\(phase): \(failed) writes or reads failed (first: \(firstError ?? "?"))") }
        if let asked, made < asked { reasons.append("\(phase): \(made) of \(asked) writes made") }
        return reasons
    }
}
