import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TandemCompression
import TandemCore
import TandemProtocol
import TandemServer

/// A fresh folder under the temporary directory for one benchmark run; `remove()` it after.
struct BenchFolder {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A device enrolled straight into a server store (no HTTP), with its bearer token.
struct BenchDevice: Sendable {
    var token: String
    var principal: Principal
    var writer: ChangeWriter

    /// Invites a member named `name` (a patient unless told) and enrolls a new replica as
    /// their device.
    static func enroll(_ name: String, role: Role = .patient, into storage: any CenterStore) async throws -> BenchDevice {
        try await enroll(name, role: role, into: storage, replica: .random(), token: "bench-token-\(name)-\(UUID().uuidString)")
    }

    /// Enrolls a given replica with a given token: the same device in two stores (a run and
    /// its baseline), so one plan of changes serves both.
    static func enroll(_ name: String, role: Role = .patient, into storage: any CenterStore, replica: ReplicaID, token: String) async throws -> BenchDevice {
        let clock = UInt64(now() * 1000)
        let code = try await storage.invite(role: role, name: name, nowMillis: clock)
        _ = try await storage.enroll(
            codeHash: Secrets.hashCode(code), replica: replica, deviceName: name, tokenHash: Secrets.hash(token),
            expectedRole: nil, expectedMember: nil, nowMillis: clock)
        return BenchDevice(token: token, principal: try await storage.authenticate(tokenHash: Secrets.hash(token)), writer: ChangeWriter(replica: replica))
    }

    /// A journal entry of five changes (create, mood, craving, sleep, a symptom) from `seed`.
    static func entry(_ seed: Int) throws -> RecordEdit {
        var edit = JournalEdit()
        edit.mood = seed % 11
        edit.craving = (seed / 11) % 11
        edit.hoursSlept = Double(seed % 40) / 4
        edit.addSymptoms = [Symptom.allCases[seed % Symptom.allCases.count]]
        return try edit.recordEdit()
    }

    /// The next `count` changes of this device: whole journal entries under random record
    /// ids (as `ReplicaStore.write` makes them), cut at `count`.
    mutating func changes(_ count: Int, seed: Int) throws -> [Change] {
        var stream: [Change] = []
        while stream.count < count {
            stream += try writer.write(try Self.entry(seed + stream.count), to: .random(), current: nil, wallMillis: UInt64(now() * 1000))
        }
        return Array(stream.prefix(count))
    }
}

/// Each device's pushes, cut into batches and deflated before any clock starts.
struct PushPlan: Sendable {
    var batches: [[[Change]]]
    var bodies: [[[UInt8]]]
    var rawBytes = 0
    var wireBytes = 0

    init(devices: [BenchDevice], batchesPerDevice: Int, batch: Int) throws {
        batches = []
        bodies = []
        for (index, var device) in devices.enumerated() {
            let stream = try device.changes(batchesPerDevice * batch, seed: index)
            var cut: [[Change]] = []
            var encoded: [[UInt8]] = []
            for start in stride(from: 0, to: stream.count, by: batch) {
                let changes = Array(stream[start..<start + batch])
                let raw = ChangeBatch(changes).encoded()
                let body = try Deflate.compress(raw)
                rawBytes += raw.count
                wireBytes += body.count
                cut.append(changes)
                encoded.append(body)
            }
            batches.append(cut)
            bodies.append(encoded)
        }
    }
}

/// What an open-loop run measured: latencies (ms, sorted, from each request's scheduled
/// time) of the requests scheduled after the warm-up, and what they returned.
struct LoadRun: Sendable {
    var latencies: [Double] = []
    /// How late (ms, sorted) this process itself started each measured request after its
    /// scheduled time: the load generator's share of `latencies`, not the server's.
    var lags: [Double] = []
    /// Requests that failed, warm-up included.
    var failures = 0
    /// Requests scheduled after the warm-up that were answered or failed (not those cut
    /// short by ending the run).
    var measured = 0
    /// The sum of what the measured requests returned (changes accepted, for pushes).
    var returned = 0
    /// Measured requests answered, but later than the run's deadline after their scheduled
    /// time: not on time, whatever they returned (`returned` leaves them out).
    var late = 0
    /// CPU seconds this process used during the run, and the run's wall-clock seconds.
    var cpu = 0.0
    var seconds = 0.0

    func percentile(_ p: Double) -> Double { Self.percentile(p, of: latencies) }

    func lag(_ p: Double) -> Double { Self.percentile(p, of: lags) }

    static func percentile(_ p: Double, of sorted: [Double]) -> Double {
        sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }

    mutating func add(_ other: LoadRun) {
        latencies += other.latencies
        lags += other.lags
        failures += other.failures
        measured += other.measured
        returned += other.returned
        late += other.late
    }
}

/// Client `c` sends request `i` at `start + (c / clients + i) × interval`, or when its
/// request `i - 1` came back if that is later (a device pushes in order); requests
/// scheduled in the warm-up are sent but not measured. Cancelling the task ends the run
/// early (each client stops before its next request).
/// With a `deadline` (ms), a measured answer later than that after its scheduled time
/// counts as `late`, and what it returned is not counted.
func openLoop(
    clients: Int, perClient: Int, interval: Double, warmup: Double, deadline: Double? = nil,
    send: @escaping @Sendable (Int, Int) async throws -> Int
) async -> LoadRun {
    let clock = ContinuousClock()
    let start = clock.now + .milliseconds(100)
    let cpuBefore = cpuSeconds()
    var all = await withTaskGroup(of: LoadRun.self) { group in
        for client in 0..<clients {
            group.addTask {
                var run = LoadRun()
                for index in 0..<perClient {
                    let offset = (Double(client) / Double(clients) + Double(index)) * interval
                    let scheduled = start + .nanoseconds(Int64(offset * 1e9))
                    if scheduled > clock.now { try? await Task.sleep(until: scheduled, clock: clock) }
                    if Task.isCancelled { break }
                    let measured = offset >= warmup
                    let lag = clock.now - scheduled
                    do {
                        let returned = try await send(client, index)
                        if measured {
                            let latency = milliseconds(clock.now - scheduled)
                            run.latencies.append(latency)
                            run.lags.append(milliseconds(lag))
                            if let deadline, latency > deadline { run.late += 1 } else { run.returned += returned }
                            run.measured += 1
                        }
                    } catch {
                        // A request cut short by ending the run is neither measured nor failed.
                        guard !Task.isCancelled else { break }
                        run.failures += 1
                        if measured { run.measured += 1 }
                    }
                }
                return run
            }
        }
        var all = LoadRun()
        for await run in group { all.add(run) }
        return all
    }
    all.latencies.sort()
    all.lags.sort()
    all.cpu = cpuSeconds() - cpuBefore
    let elapsed = clock.now - start
    all.seconds = milliseconds(elapsed) / 1000
    return all
}

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

/// The load generator's HTTP client: one connection per device, requests as a device makes
/// them (bearer token, protocol header), answers that are not 200 thrown.
struct PushClient: Sendable {
    let base: String
    let client: HTTPClient

    init(base: String, connections: Int) {
        self.base = base
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = connections
        configuration.timeout.read = .seconds(30)
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Pushes a deflated batch; returns how many changes the server accepted.
    func push(_ body: [UInt8], token: String) async throws -> Int {
        let answer = try await post("/v1/push", token: token, body: body, type: "application/octet-stream")
        return try JSONDecoder().decode(PushResponse.self, from: Data(answer)).accepted
    }

    func post<Body: Encodable>(_ path: String, token: String, json: Body) async throws -> [UInt8] {
        try await post(path, token: token, body: Array(try JSONEncoder().encode(json)), type: "application/json")
    }

    func post(_ path: String, token: String, body: [UInt8], type: String, accept: String? = nil) async throws -> [UInt8] {
        var request = HTTPClientRequest(url: base + path)
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Content-Type", value: type)
        if let accept { request.headers.add(name: "Accept", value: accept) }
        request.headers.add(name: WireProtocol.header, value: WireProtocol.version)
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await client.execute(request, timeout: .seconds(30))
        let answer = try await response.body.collect(upTo: 16 << 20)
        guard response.status == .ok else { throw BenchError.childFailed("\(path) answered \(response.status.code)") }
        return Array(answer.readableBytesView)
    }

    func shutdown() async throws { try await client.shutdown() }
}
