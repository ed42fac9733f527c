import ArgumentParser
import AsyncHTTPClient
import Foundation
import TandemProcess
import TandemCore
import TandemServer
import TandemServerPostgres

/// Issue 5's ingest benchmark, open loop: N devices together offer R changes/s in batches of
/// B (pre-encoded, deflated), each device sending its next batch at its scheduled time (or
/// at once when its previous batch came back late: a device pushes in order); latency is
/// measured from the scheduled send time, so queueing counts. The server runs in a child
/// process on a `synchronous=FULL` store; this process is the load generator. Baseline: the
/// same batches on the same schedule through `ServerStorage.push` in this process.
struct IngestBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Open-loop push load: N devices, R changes/s in batches of B; latency from the scheduled send time."
    )

    @Option(help: "Devices pushing.")
    var devices = 200

    @Option(help: "Changes per second offered, all devices together.")
    var rate = 10_000

    @Option(help: "Changes per batch.")
    var batch = 20

    @Option(help: "Seconds measured, after the warm-up.")
    var duration = 60

    @Option(help: "Seconds of warm-up, not measured.")
    var warmup = 10

    @Flag(help: "Skip the in-process baseline (to profile the server alone).")
    var skipBaseline = false

    @Option(help: "A batch answered later than this after its scheduled send is not accepted on time (ms).")
    var deadlineMs = 1_000.0

    @Option(help: ArgumentHelp(
        "Run on PostgreSQL instead of SQLite: a URL of the cluster's maintenance database; the benchmark creates (and drops) its own databases.",
        valueName: "postgres://user@host:port/postgres"))
    var postgres: String?

    @Option(help: "Server instances (PostgreSQL only): devices are spread over them.")
    var instances = 1

    func run() async throws {
        raiseFileLimit()
        let folder = try BenchFolder()
        defer { folder.remove() }

        guard instances == 1 || postgres != nil else { throw ValidationError("--instances needs --postgres: several instances share PostgreSQL.") }
        // Devices enrolled straight into a store, which both runs start from (a copy each;
        // on PostgreSQL, the same replicas and tokens enrolled into two new databases).
        var enrolled: [BenchDevice] = []
        let databases = try postgres.map { try BenchDatabases(maintenance: $0) }
        defer { databases?.drop() }
        let baselineStore: any CenterStore
        if let databases {
            let server = try PostgresServerStorage(location: try databases.create("server"))
            let baseline = try PostgresServerStorage(location: try databases.create("baseline"))
            for store in [server, baseline] as [any CenterStore] { _ = try await store.initialize(staffName: "Bench", nowMillis: UInt64(now() * 1000)) }
            for index in 0..<devices {
                let device = try await BenchDevice.enroll("p\(index)", into: server)
                _ = try await BenchDevice.enroll("p\(index)", into: baseline, replica: device.writer.replica, token: device.token)
                enrolled.append(device)
            }
            baselineStore = baseline
        } else {
            let storage = try SQLiteServerStorage(path: folder.path + "/template.sqlite")
            _ = try storage.initialize(staffName: "Bench", nowMillis: UInt64(now() * 1000))
            for index in 0..<devices { enrolled.append(try await BenchDevice.enroll("p\(index)", into: storage)) }
            try storage.backup(to: folder.path + "/baseline.sqlite")
            try storage.backup(to: folder.path + "/server.sqlite")
            let baseline = try SQLiteServerStorage(path: folder.path + "/baseline.sqlite")
            try baseline.checkpointInBackground()
            baselineStore = baseline
        }

        // Each device's stream of journal entries, cut into batches, encoded and deflated
        // before the clock starts.
        let interval = Double(batch * devices) / Double(rate)
        let perDevice = Int((Double(warmup + duration) / interval).rounded(.up))
        let plan = try PushPlan(devices: enrolled, batchesPerDevice: perDevice, batch: batch)
        let fleet = enrolled
        let offered = devices * perDevice
        print("""
        Ingest, open loop, on \(postgres == nil ? "SQLite" : "PostgreSQL, \(instances) instance(s)"): \(devices) devices offering \(rate) changes/s in batches of \(batch) \
        (\(format(Double(rate) / Double(batch), 0)) batches/s; each device every \(format(interval * 1000, 0)) ms), \
        \(warmup) s warm-up + \(duration) s measured; \(offered) batches, \(format(Double(plan.wireBytes) / Double(offered * batch), 1)) B/change deflated \
        (\(format(Double(plan.rawBytes) / Double(offered * batch), 1)) raw).
        """)

        // Baseline: ServerStorage in this process, same batches, same schedule.
        var reasons: [String] = []
        if !skipBaseline {
            let baselineStorage = baselineStore
            let baseline = await openLoop(clients: fleet.count, perClient: perDevice, interval: interval, warmup: Double(warmup), deadline: deadlineMs) { device, index in
                try await baselineStorage.push(
                    plan.batches[device][index], from: fleet[device].principal, repush: false, nowMillis: UInt64(now() * 1000),
                    maxSkewMillis: 60_000
                ).accepted
            }
            reasons += report("baseline: ServerStorage.push in-process", baseline, serverCPU: nil)
            let baselineGroups = (baselineStorage as? SQLiteServerStorage)?.groupCommitStatistics
                ?? (baselineStorage as? PostgresServerStorage)?.groupCommitStatistics ?? (groups: 0, batches: 0)
            print("    group commits: \(baselineGroups.groups) for \(baselineGroups.batches) batches")
        }

        // The server in its own process (one per instance), over HTTP on loopback; device i
        // pushes to instance i mod N.
        let servers = try (0..<instances).map { _ in
            try databases.map { try spawnServer(postgres: $0.url("server")) } ?? spawnServer(db: folder.path + "/server.sqlite")
        }
        defer { for server in servers { server.process.terminate() } }
        let clients = servers.map { PushClient(base: "http://127.0.0.1:\($0.port)", connections: (fleet.count + instances - 1) / instances) }
        let serverCPUBefore = servers.map { cpuSeconds(of: $0.process.pid) }
        let measured = await openLoop(clients: fleet.count, perClient: perDevice, interval: interval, warmup: Double(warmup), deadline: deadlineMs) { device, index in
            try await clients[device % clients.count].push(plan.bodies[device][index], token: fleet[device].token)
        }
        let serverCPU = zip(servers, serverCPUBefore).map { cpuSeconds(of: $0.process.pid) - $1 }.reduce(0, +)
        reasons += report("server over HTTP (loopback, \(instances) process(es))", measured, serverCPU: serverCPU)
        for client in clients { try await client.shutdown() }
        if !reasons.isEmpty { throw BenchmarkFailure(reasons: reasons) }
    }

    /// Prints a run's figures; returns what makes them fail: a batch refused, timed out or
    /// answered after the deadline, fewer changes accepted than offered, or a load not
    /// offered on schedule (this process started the measured batches, p99, more than
    /// 100 ms after their time).
    func report(_ title: String, _ run: LoadRun, serverCPU: Double?) -> [String] {
        let offered = run.measured * batch
        let allAccepted = run.failures == 0 && run.late == 0 && run.returned == offered
        let schedule = Double(warmup + duration)
        print("""
          \(title):
            measured window                  \(run.returned) of \(offered) changes offered accepted within \(format(deadlineMs, 0)) ms; \
        failed batches \(run.failures), late \(run.late)   (all accepted on time: \(allAccepted ? "yes" : "NO")); \
        the \(format(schedule, 0)) s schedule took \(format(run.seconds, 1)) s
            latency from scheduled send      p50 \(format(run.percentile(0.50), 2)) ms   p90 \(format(run.percentile(0.90), 2)) ms   \
        p99 \(format(run.percentile(0.99), 2)) ms   max \(format(run.latencies.last ?? .nan, 2)) ms   (target p99 < 100 ms: \(run.percentile(0.99) < 100 ? "met" : "NOT met"))
            sent after their time            p50 \(format(run.lag(0.50), 2)) ms   p99 \(format(run.lag(0.99), 2)) ms
            CPU over \(format(run.seconds, 1)) s                   load generator \(format(run.cpu, 2)) s\(serverCPU.map { "   server \(format($0, 2)) s" } ?? " (same process as the store)")
        """)
        var reasons: [String] = []
        if run.failures > 0 { reasons.append("\(title): \(run.failures) batches refused or failed") }
        if run.late > 0 { reasons.append("\(title): \(run.late) batches answered after \(format(deadlineMs, 0)) ms") }
        if run.returned != offered - run.late * batch, run.failures == 0 {
            reasons.append("\(title): \(run.returned) of \(offered) changes accepted")
        }
        if run.lag(0.99) > 100 { reasons.append("\(title): the load was not offered on schedule (sent p99 \(format(run.lag(0.99), 0)) ms late)") }
        return reasons
    }
}
