import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TandemCompression
import TandemCore
import TandemServer

/// Issue 5's caught-up pull benchmark: N devices, each caught up with its member's channel
/// (the store holding M changes in all), pull once a second while other devices push
/// R changes/s; latency at the client. Baseline: an echo route on the same server, same
/// schedule, same body size. The server runs in a child process; this process is the load.
struct CaughtUpPullBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "caught-up-pull",
        abstract: "Pull latency of caught-up devices (1/s each) with M changes stored and R changes/s pushed; echo route as baseline."
    )

    @Option(help: "Devices pulling, one member each.")
    var devices = 200

    @Option(help: "Changes stored before the run, spread over the pulling devices' channels.")
    var stored = 1_000_000

    @Option(help: "Changes per second pushed meanwhile (by 20 other devices, batches of 20).")
    var pushRate = 1_000

    @Option(help: "Seconds measured per phase (echo, then pull), after 3 s of warm-up each.")
    var duration = 30

    func run() async throws {
        raiseFileLimit()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let db = folder + "/center.sqlite"
        let pushers = 20
        let warmup = 3

        // Members and devices; the stored changes pushed through ServerStorage in batches of 1,000.
        var pullTokens: [String] = []
        var pushTokens: [String] = []
        var pushWriters: [ChangeWriter] = []
        let fillStarted = now()
        let head: Int64
        do {
            let storage = try SQLiteServerStorage(path: db)
            let clock = UInt64(now() * 1000)
            _ = try storage.initialize(staffName: "Bench", nowMillis: clock)
            func enroll(_ name: String) async throws -> (token: String, principal: Principal, replica: ReplicaID) {
                let code = try storage.invite(role: .patient, name: name, nowMillis: clock)
                let token = "bench-token-\(name)-\(UUID().uuidString)"
                let replica = ReplicaID.random()
                _ = try await storage.enroll(
                    codeHash: Secrets.hashCode(code), replica: replica, deviceName: name, tokenHash: Secrets.hash(token),
                    expectedRole: nil, expectedMember: nil, nowMillis: clock)
                return (token, try await storage.authenticate(tokenHash: Secrets.hash(token)), replica)
            }
            var fillers: [(principal: Principal, writer: ChangeWriter)] = []
            for index in 0..<devices {
                let device = try await enroll("puller-\(index)")
                pullTokens.append(device.token)
                fillers.append((device.principal, ChangeWriter(replica: device.replica)))
            }
            for index in 0..<pushers {
                let device = try await enroll("pusher-\(index)")
                pushTokens.append(device.token)
                pushWriters.append(ChangeWriter(replica: device.replica))
            }
            let perDevice = stored / devices
            for index in 0..<devices {
                var stream: [Change] = []
                while stream.count < perDevice {
                    stream += try fillers[index].writer.write(
                        try Self.entry(index + stream.count), to: .random(), current: nil, wallMillis: UInt64(now() * 1000))
                }
                for start in stride(from: 0, to: perDevice, by: 1_000) {
                    let changes = Array(stream[start..<min(start + 1_000, perDevice)])
                    _ = try await storage.push(changes, from: fillers[index].principal, repush: false, nowMillis: UInt64(now() * 1000), maxSkewMillis: 60_000)
                }
            }
            head = try await storage.head()
        }
        print("""
        Caught-up pull: \(devices) devices pulling once a second, \(head) changes stored (filled in \(format(now() - fillStarted, 0)) s, \
        \(fileBytes(db) / 1_048_576) MiB), \(pushRate) changes/s pushed by \(pushers) other devices; \(warmup) s warm-up + \(duration) s per phase.
        """)

        let (server, port) = try spawnServer(db: db, echo: true)
        defer { server.terminate() }
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = devices + pushers
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let base = "http://127.0.0.1:\(port)"

        // Each puller learns its subscription's key and the epoch, then starts at the head.
        var bodies: [[UInt8]] = []
        for token in pullTokens {
            let first = try await post(client, base + "/v1/pull", token: token, json: PullRequest(cursors: [:], limit: 1))
            let answer = try JSONDecoder().decode(PullResponse.self, from: Data(first))
            var cursors: [String: String] = [:]
            for page in answer.pages { cursors[page.key] = Cursor(epoch: answer.epoch, key: page.key, sequence: head).encoded }
            bodies.append(Array(try JSONEncoder().encode(PullRequest(cursors: cursors))))
        }

        // The pushers: pre-encoded batches on an open-loop schedule, for both phases.
        let pushInterval = Double(20 * pushers) / Double(pushRate)
        let pushBatches = Int((Double(2 * (warmup + duration) + 2) / pushInterval).rounded(.up))
        var pushBodies: [[[UInt8]]] = []
        for index in 0..<pushers {
            var stream: [Change] = []
            while stream.count < pushBatches * 20 {
                stream += try pushWriters[index].write(try Self.entry(stream.count), to: .random(), current: nil, wallMillis: UInt64(now() * 1000))
            }
            pushBodies.append(try stride(from: 0, to: pushBatches * 20, by: 20).map { try Deflate.compress(ChangeBatch(Array(stream[$0..<$0 + 20])).encoded()) })
        }
        let pushTokensCopy = pushTokens
        let pushBodiesCopy = pushBodies
        let pushing = Task {
            try await openLoop(clients: pushers, perClient: pushBatches, interval: pushInterval, warmup: 0) { device, index in
                _ = try await self.post(client, base + "/v1/push", token: pushTokensCopy[device], body: pushBodiesCopy[device][index], type: "application/octet-stream")
            }
        }

        let serverPID = server.processIdentifier
        let tokens = pullTokens
        let pullBodies = bodies
        let perDevice = warmup + duration
        var cpu = (server: cpuSeconds(of: serverPID), client: cpuSeconds())
        let echo = try await openLoop(clients: devices, perClient: perDevice, interval: 1, warmup: Double(warmup)) { device, _ in
            _ = try await self.post(client, base + "/bench/echo", token: tokens[device], body: pullBodies[device], type: "application/json")
        }
        report("baseline: echo route (same server, same body)", echo, cpu: (cpuSeconds(of: serverPID) - cpu.server, cpuSeconds() - cpu.client))
        cpu = (cpuSeconds(of: serverPID), cpuSeconds())
        let pulls = try await openLoop(clients: devices, perClient: perDevice, interval: 1, warmup: Double(warmup)) { device, _ in
            let answer = try await self.post(client, base + "/v1/pull", token: tokens[device], body: pullBodies[device], type: "application/json")
            guard answer.count < 4096 else { throw BenchError.childFailed("a caught-up pull returned \(answer.count) bytes") }
        }
        report("POST /v1/pull, caught up", pulls, cpu: (cpuSeconds(of: serverPID) - cpu.server, cpuSeconds() - cpu.client))
        let pushed = try await pushing.value
        print("  pushes meanwhile: \(pushed.latencies.count) batches, failed \(pushed.failures), p99 \(format(pushed.percentile(0.99), 2)) ms")
        try await client.shutdown()
    }

    static func entry(_ seed: Int) throws -> RecordEdit {
        var edit = JournalEdit()
        edit.mood = seed % 11
        edit.craving = (seed / 11) % 11
        edit.hoursSlept = Double(seed % 40) / 4
        edit.addSymptoms = [Symptom.allCases[seed % Symptom.allCases.count]]
        return try edit.recordEdit()
    }

    func post<Body: Encodable>(_ client: HTTPClient, _ url: String, token: String, json: Body) async throws -> [UInt8] {
        try await post(client, url, token: token, body: Array(try JSONEncoder().encode(json)), type: "application/json")
    }

    func post(_ client: HTTPClient, _ url: String, token: String, body: [UInt8], type: String) async throws -> [UInt8] {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Content-Type", value: type)
        request.headers.add(name: "Tandem-Protocol", value: SyncServer.protocolVersion)
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await client.execute(request, timeout: .seconds(30))
        let answer = try await response.body.collect(upTo: 16 << 20)
        guard response.status == .ok else { throw BenchError.childFailed("\(url) answered \(response.status.code)") }
        return Array(answer.readableBytesView)
    }

    func report(_ title: String, _ run: LoadRun, cpu: (server: Double, client: Double)) {
        print("""
          \(title):
            requests measured  \(run.latencies.count), failed \(run.failures)
            latency at client  p50 \(format(run.percentile(0.50), 3)) ms   p90 \(format(run.percentile(0.90), 3)) ms   \
        p99 \(format(run.percentile(0.99), 3)) ms   max \(format(run.latencies.last ?? .nan, 3)) ms   (target p99 < 2 ms: \(run.percentile(0.99) < 2 ? "met" : "NOT met"))
            CPU                server \(format(cpu.server, 2)) s   load generator \(format(cpu.client, 2)) s
        """)
    }
}

/// Latencies (ms, sorted, from each request's scheduled time) of an open-loop run.
struct LoadRun: Sendable {
    var latencies: [Double]
    var failures: Int
    func percentile(_ p: Double) -> Double {
        latencies.isEmpty ? .nan : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]
    }
}

/// Client `c` sends request `i` at `start + (c / clients + i) × interval` (or when its
/// previous request came back, if later); requests scheduled in the warm-up are not measured.
func openLoop(
    clients: Int, perClient: Int, interval: Double, warmup: Double, send: @escaping @Sendable (Int, Int) async throws -> Void
) async throws -> LoadRun {
    let clock = ContinuousClock()
    let start = clock.now + .milliseconds(100)
    return await withTaskGroup(of: LoadRun.self) { group in
        for client in 0..<clients {
            group.addTask {
                var run = LoadRun(latencies: [], failures: 0)
                for index in 0..<perClient {
                    let offset = (Double(client) / Double(clients) + Double(index)) * interval
                    let scheduled = start + .nanoseconds(Int64(offset * 1e9))
                    if scheduled > clock.now { try? await Task.sleep(until: scheduled, clock: clock) }
                    do {
                        try await send(client, index)
                        if offset >= warmup {
                            let elapsed = clock.now - scheduled
                            run.latencies.append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
                        }
                    } catch {
                        run.failures += 1
                    }
                }
                return run
            }
        }
        var all = LoadRun(latencies: [], failures: 0)
        for await run in group {
            all.latencies += run.latencies
            all.failures += run.failures
        }
        all.latencies.sort()
        return all
    }
}
