import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TandemCompression
import TandemCore
import TandemServer

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

    func run() async throws {
        raiseFileLimit()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }

        // Devices enrolled straight into a store, which both runs start from (a copy each).
        let template = folder + "/template.sqlite"
        var tokens: [String] = []
        var principals: [Principal] = []
        var writers: [ChangeWriter] = []
        do {
            let storage = try SQLiteServerStorage(path: template)
            let clock = UInt64(now() * 1000)
            _ = try storage.initialize(staffName: "Bench", nowMillis: clock)
            for index in 0..<devices {
                let code = try storage.invite(role: .patient, name: "P\(index)", nowMillis: clock)
                let token = "bench-token-\(index)-\(UUID().uuidString)"
                let replica = ReplicaID.random()
                _ = try await storage.enroll(
                    codeHash: Secrets.hashCode(code), replica: replica, deviceName: "d\(index)", tokenHash: Secrets.hash(token),
                    expectedRole: nil, expectedMember: nil, nowMillis: clock)
                tokens.append(token)
                principals.append(try await storage.authenticate(tokenHash: Secrets.hash(token)))
                writers.append(ChangeWriter(replica: replica))
            }
            try storage.backup(to: folder + "/baseline.sqlite")
            try storage.backup(to: folder + "/server.sqlite")
        }

        // Each device's stream: journal entries of five changes (create, mood, craving,
        // sleep, a symptom), cut into batches; encoded and deflated before the clock starts.
        let interval = Double(batch * devices) / Double(rate)
        let perDevice = Int((Double(warmup + duration) / interval).rounded(.up))
        let symptoms = Symptom.allCases
        var plans: [[[Change]]] = []
        var bodies: [[[UInt8]]] = []
        var rawBytes = 0
        var wireBytes = 0
        for index in 0..<devices {
            var stream: [Change] = []
            var entry = 0
            while stream.count < perDevice * batch {
                var edit = JournalEdit()
                edit.mood = (index + entry) % 11
                edit.craving = (index * 7 + entry) % 11
                edit.hoursSlept = Double((index + entry) % 40) / 4
                edit.addSymptoms = [symptoms[(index + entry) % symptoms.count]]
                // Record ids as devices make them (ReplicaStore.write): random.
                stream += try writers[index].write(try edit.recordEdit(), to: .random(), current: nil, wallMillis: UInt64(now() * 1000))
                entry += 1
            }
            var batches: [[Change]] = []
            var encoded: [[UInt8]] = []
            for start in stride(from: 0, to: perDevice * batch, by: batch) {
                let changes = Array(stream[start..<start + batch])
                let raw = ChangeBatch(changes).encoded()
                let body = try Deflate.compress(raw)
                rawBytes += raw.count
                wireBytes += body.count
                batches.append(changes)
                encoded.append(body)
            }
            plans.append(batches)
            bodies.append(encoded)
        }
        let offered = devices * perDevice
        print("""
        Ingest, open loop: \(devices) devices offering \(rate) changes/s in batches of \(batch) \
        (\(format(Double(rate) / Double(batch), 0)) batches/s; each device every \(format(interval * 1000, 0)) ms), \
        \(warmup) s warm-up + \(duration) s measured; \(offered) batches, \(format(Double(wireBytes) / Double(offered * batch), 1)) B/change deflated \
        (\(format(Double(rawBytes) / Double(offered * batch), 1)) raw).
        """)

        // Baseline: ServerStorage in this process, same batches, same schedule.
        if !skipBaseline {
        let baselineStorage = try SQLiteServerStorage(path: folder + "/baseline.sqlite")
        try baselineStorage.checkpointInBackground()
        let allPrincipals = principals
        let allPlans = plans
        let baseline = try await openLoop(devices: devices, perDevice: perDevice, interval: interval) { device, index in
            let outcome = try await baselineStorage.push(
                allPlans[device][index], from: allPrincipals[device], repush: false, nowMillis: UInt64(now() * 1000), maxSkewMillis: 60_000)
            return outcome.accepted
        }
        report("baseline: ServerStorage.push in-process", baseline, serverCPU: nil)
        let baselineGroups = baselineStorage.groupCommitStatistics
        print("    group commits: \(baselineGroups.groups) for \(baselineGroups.batches) batches")
        }

        // The server in its own process, over HTTP on loopback.
        let (server, port) = try spawnServer(db: folder + "/server.sqlite")
        defer { server.terminate() }
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = devices
        configuration.timeout.read = .seconds(30)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let url = "http://127.0.0.1:\(port)/v1/push"
        let allTokens = tokens
        let allBodies = bodies
        let serverPID = server.processIdentifier
        let serverCPUBefore = cpuSeconds(of: serverPID)
        let measured = try await openLoop(devices: devices, perDevice: perDevice, interval: interval) { device, index in
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(allTokens[device])")
            request.headers.add(name: "Content-Type", value: "application/octet-stream")
            request.headers.add(name: "Tandem-Protocol", value: SyncServer.protocolVersion)
            request.body = .bytes(ByteBuffer(bytes: allBodies[device][index]))
            let response = try await client.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 1 << 20)
            guard response.status == .ok else { throw BenchError.childFailed("push answered \(response.status.code)") }
            return try JSONDecoder().decode(PushResponse.self, from: Data(body.readableBytesView)).accepted
        }
        let serverCPU = cpuSeconds(of: serverPID) - serverCPUBefore
        report("server over HTTP (loopback, own process)", measured, serverCPU: serverCPU)
        try await client.shutdown()
    }

    struct Run {
        /// Latency of each measured batch, in ms, sorted.
        var latencies: [Double]
        var measuredAccepted: Int
        var measuredOffered: Int
        var failures: Int
        var notAccepted: Int
        var generatorCPU: Double
        var seconds: Double
    }

    /// Runs the schedule: device `d` sends batch `i` at `start + (d / devices + i) × interval`
    /// (or when its batch `i - 1` came back, if later). Batches scheduled in the warm-up are
    /// sent but not measured.
    func openLoop(
        devices: Int, perDevice: Int, interval: Double, send: @escaping @Sendable (Int, Int) async throws -> Int
    ) async throws -> Run {
        let clock = ContinuousClock()
        let start = clock.now + .milliseconds(200)
        let warmupEnd = Double(warmup)
        let batchSize = batch
        let cpuBefore = cpuSeconds()
        let results = await withTaskGroup(of: (latencies: [Double], accepted: Int, offered: Int, failures: Int, short: Int).self) { group in
            for device in 0..<devices {
                group.addTask {
                    var latencies: [Double] = []
                    var accepted = 0
                    var offered = 0
                    var failures = 0
                    var short = 0
                    for index in 0..<perDevice {
                        let offset = (Double(device) / Double(devices) + Double(index)) * interval
                        let scheduled = start + .nanoseconds(Int64(offset * 1e9))
                        if scheduled > clock.now { try? await Task.sleep(until: scheduled, clock: clock) }
                        if offset >= warmupEnd { offered += batchSize }
                        do {
                            let count = try await send(device, index)
                            if count != batchSize { short += 1 }
                            if offset >= warmupEnd {
                                let elapsed = clock.now - scheduled
                                latencies.append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
                                accepted += count
                            }
                        } catch {
                            failures += 1
                        }
                    }
                    return (latencies, accepted, offered, failures, short)
                }
            }
            var all: (latencies: [Double], accepted: Int, offered: Int, failures: Int, short: Int) = ([], 0, 0, 0, 0)
            for await result in group {
                all.latencies += result.latencies
                all.accepted += result.accepted
                all.offered += result.offered
                all.failures += result.failures
                all.short += result.short
            }
            return all
        }
        let elapsed = clock.now - start
        return Run(
            latencies: results.latencies.sorted(), measuredAccepted: results.accepted, measuredOffered: results.offered, failures: results.failures,
            notAccepted: results.short, generatorCPU: cpuSeconds() - cpuBefore,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    func report(_ title: String, _ run: Run, serverCPU: Double?) {
        func percentile(_ p: Double) -> Double {
            run.latencies.isEmpty ? .nan : run.latencies[min(run.latencies.count - 1, Int(Double(run.latencies.count) * p))]
        }
        let allAccepted = run.failures == 0 && run.notAccepted == 0 && run.measuredAccepted == run.measuredOffered
        let schedule = Double(warmup + duration)
        print("""
          \(title):
            measured window                  \(run.measuredAccepted) of \(run.measuredOffered) changes offered accepted; \
        failed batches \(run.failures), partly accepted \(run.notAccepted)   (all accepted: \(allAccepted ? "yes" : "NO")); \
        the \(format(schedule, 0)) s schedule took \(format(run.seconds, 1)) s
            latency from scheduled send      p50 \(format(percentile(0.50), 2)) ms   p90 \(format(percentile(0.90), 2)) ms   \
        p99 \(format(percentile(0.99), 2)) ms   max \(format(run.latencies.last ?? .nan, 2)) ms   (target p99 < 100 ms: \(percentile(0.99) < 100 ? "met" : "NOT met"))
            CPU over \(format(run.seconds, 1)) s                   load generator \(format(run.generatorCPU, 2)) s\(serverCPU.map { "   server \(format($0, 2)) s" } ?? " (same process as the store)")
        """)
    }
}
