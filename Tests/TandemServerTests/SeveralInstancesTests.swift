import AsyncHTTPClient
import Foundation
import TandemProcess
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import TandemCompression
import TandemCore
import TandemProtocol
import TandemServer
import TandemServerPostgres
import TandemStore
import TandemTestSupport
import Testing

/// Several `tandem serve` instances on one PostgreSQL database behind Debian's nginx, as a
/// center deploys them (docs/operations.md): real processes, a real proxy, a real cluster.
/// PostgreSQL only: it is the store several instances share (several servers on one SQLite
/// file start, `SeveralServersTests`, but a center that outgrows one machine runs these).
@Suite("Several instances on PostgreSQL", .serialized, .enabled(if: ServerStoreKind.allCases.contains(.postgres)))
struct SeveralInstancesTests {
    /// 100,000 changes by default; `TANDEM_INSTANCES_CHANGES` for a soak (1,000,000), and
    /// 20,000 under ThreadSanitizer in `scripts/test`, where every process is several times slower.
    static let changes = Int(ProcessInfo.processInfo.environment["TANDEM_INSTANCES_CHANGES"] ?? "") ?? 100_000

    /// A device of the center's one patient: its token and its change writer.
    struct Device: Sendable {
        var token: String
        var writer: ChangeWriter
    }

    /// A new center on a new database, with `devices` devices of one patient enrolled.
    static func center(devices: Int, on database: PostgresLocation? = nil) async throws -> (location: PostgresLocation, store: PostgresServerStorage, devices: [Device]) {
        // Off the concurrency pool: creating and migrating a database blocks.
        let location = try await offThePool { try database ?? TestCluster.newDatabase() }
        let store = try await offThePool { try PostgresServerStorage(location: location, connections: 2) }
        let now = SystemWallClock().nowMillis()
        _ = try await store.initialize(staffName: "Admin", nowMillis: now)
        var enrolled: [Device] = []
        var patient: MemberID?
        for index in 0..<devices {
            let code = try await store.invite(role: .patient, name: "Pat", member: patient, nowMillis: now)
            let token = "instances-\(index)-\(UUID().uuidString)"
            let replica = ReplicaID.random()
            let enrollment = try await store.enroll(
                codeHash: Secrets.hashCode(code), replica: replica, deviceName: "device \(index)", tokenHash: Secrets.hash(token),
                expectedRole: nil, expectedMember: nil, nowMillis: now)
            patient = try MemberID(hex: enrollment.member)
            enrolled.append(Device(token: token, writer: ChangeWriter(replica: replica)))
        }
        return (location, store, enrolled)
    }

    /// Two `tandem serve --postgres` instances on `location`, and nginx in front of both.
    static func twoInstances(on location: PostgresLocation) async throws -> (LiveServer, LiveServer, ReverseProxy) {
        let first = try await LiveServer(postgres: location.url)
        let second = try await LiveServer(postgres: location.url)
        return (first, second, try await ReverseProxy(upstreamPorts: [first.port, second.port]))
    }

    /// A journal entry's changes (five fields of a new record): none supersedes another, so
    /// the server holds each change pushed, and a channel's numbers advance by one per change.
    static func entry(_ writer: inout ChangeWriter, seed: Int) throws -> [Change] {
        var edit = JournalEdit()
        edit.mood = seed % 11
        edit.craving = (seed / 11) % 11
        edit.hoursSlept = Double(seed % 40) / 4
        edit.addSymptoms = [Symptom.allCases[seed % Symptom.allCases.count]]
        return try writer.write(try edit.recordEdit(), to: .random(), current: nil, wallMillis: SystemWallClock().nowMillis())
    }

    /// POSTs `body` and returns the answer's status and bytes.
    static func post(_ url: String, token: String, body: [UInt8], type: String) async throws -> (status: Int, body: [UInt8]) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Content-Type", value: type)
        request.headers.add(name: WireProtocol.header, value: WireProtocol.version)
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        return (Int(response.status.code), Array(try await response.body.collect(upTo: 64 << 20).readableBytesView))
    }

    /// Pushes one batch until the server takes it (a failed attempt is tried again: the
    /// server recognizes what it stored before as a replay).
    static func push(_ changes: [Change], to base: String, token: String, refusals: Locked<[(Int, String)]>? = nil) async throws {
        let body = try Deflate.compress(ChangeBatch(changes).encoded())
        for attempt in 1... {
            let answer = try? await post(base + "/v1/push", token: token, body: body, type: "application/octet-stream")
            if let answer, answer.status == 200 { return }
            if let answer { refusals?.withLock { $0.append((answer.status, String(decoding: answer.body, as: UTF8.self))) } }
            guard attempt < 200 else { throw LiveServerError.didNotStart("a push was never taken") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Each pusher pushes `batches` batches of `batch` new changes to `base`, one after
    /// another; returns the ids of every change acknowledged. `acknowledged` counts the
    /// batches as they are; `refusals` keeps every answer other than 200.
    static func pushAll(
        _ pushers: [Device], to base: String, batches: Int, batch: Int, acknowledged: Locked<Int>, refusals: Locked<[(Int, String)]>? = nil
    ) async throws -> Set<ChangeID> {
        try await withThrowingTaskGroup(of: [ChangeID].self) { group in
            for device in pushers {
                group.addTask {
                    var writer = device.writer
                    var ids: [ChangeID] = []
                    for round in 0..<batches {
                        var changes: [Change] = []
                        while changes.count < batch { changes += try Self.entry(&writer, seed: round * batch + changes.count) }
                        changes = Array(changes.prefix(batch))
                        try await Self.push(changes, to: base, token: device.token, refusals: refusals)
                        ids += changes.map(\.id)
                        acknowledged.withLock { $0 += 1 }
                    }
                    return ids
                }
            }
            var all: Set<ChangeID> = []
            for try await ids in group { all.formUnion(ids) }
            return all
        }
    }

    /// What one reader saw: every change id once, and its cursor's positions in order.
    struct Reading: Sendable {
        var received: Set<ChangeID> = []
        var duplicates = 0
        var backwards = 0
        /// Pages whose cursor moved by another number than the changes they carried (a gap).
        var gaps = 0
        var pulls = 0
    }

    /// Pulls the patient's channel from the start until it holds `expected` changes (or the
    /// deadline passes), checking every page as it comes.
    static func read(from base: String, token: String, expected: Int, deadline: ContinuousClock.Instant) async throws -> Reading {
        var reading = Reading()
        var cursor: String?
        var position: Int64 = 0
        while reading.received.count < expected, ContinuousClock.now < deadline {
            let request = PullRequest(cursors: cursor.map { ["own": $0] } ?? [:], limit: 4_000)
            guard let answer = try? await post(base + "/v1/pull", token: token, body: Array(try JSONEncoder().encode(request)), type: "application/json"),
                  answer.status == 200
            else {
                try await Task.sleep(for: .milliseconds(50))
                continue
            }
            reading.pulls += 1
            let response = try JSONDecoder().decode(PullResponse.self, from: Data(answer.body))
            let page = try #require(response.pages.first { $0.key == "own" })
            let packed = try #require(Data(base64Encoded: page.changes))
            let changes = packed.isEmpty ? [] : try ChangeBatch(decoding: try Deflate.decompress(Array(packed), limit: 64 << 20)).changes
            let next = try Cursor(parsing: page.cursor).sequence
            if next < position { reading.backwards += 1 }
            if next - position != Int64(changes.count) { reading.gaps += 1 }
            position = max(position, next)
            cursor = page.cursor
            for change in changes where !reading.received.insert(change.id).inserted { reading.duplicates += 1 }
            if changes.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
        }
        return reading
    }

    @Test func sixteenPushersOverTwoInstances_fourReadersReceiveEveryChangeOnce_andNoCursorGoesBack() async throws {
        let (location, store, devices) = try await Self.center(devices: 20)
        let (first, second, proxy) = try await Self.twoInstances(on: location)
        defer { withExtendedLifetime(store) {} }

        // 16 pushers, half of them straight to each instance, in batches of 250 changes.
        let pushers = Array(devices.prefix(16)), readers = Array(devices.suffix(4))
        let batch = 250, batchesEach = max(1, Self.changes / (pushers.count * batch))
        let expected = pushers.count * batchesEach * batch
        let deadline = ContinuousClock.now + .seconds(600)
        // Readers pull through the proxy, which sends each pull to either instance.
        let reading = Task {
            try await withThrowingTaskGroup(of: Reading.self) { group in
                for reader in readers {
                    group.addTask { try await Self.read(from: proxy.url, token: reader.token, expected: expected, deadline: deadline) }
                }
                var readings: [Reading] = []
                for try await result in group { readings.append(result) }
                return readings
            }
        }
        defer { reading.cancel() }
        let batchesDone = Locked(0)
        async let viaFirst = Self.pushAll(
            pushers.enumerated().filter { $0.offset % 2 == 0 }.map(\.element), to: first.url, batches: batchesEach, batch: batch, acknowledged: batchesDone)
        async let viaSecond = Self.pushAll(
            pushers.enumerated().filter { $0.offset % 2 == 1 }.map(\.element), to: second.url, batches: batchesEach, batch: batch, acknowledged: batchesDone)
        let acknowledged = try await viaFirst.union(try await viaSecond)
        let readings = try await reading.value
        #expect(acknowledged.count == expected)
        #expect(readings.count == 4)
        for (index, reading) in readings.enumerated() {
            #expect(reading.received == acknowledged, "reader \(index): \(reading.received.count) of \(acknowledged.count)")
            #expect(reading.duplicates == 0, "reader \(index)")
            #expect(reading.backwards == 0, "reader \(index)")
            #expect(reading.gaps == 0, "reader \(index)")
        }
        // The store holds each change once.
        #expect(try await store.state(of: try #require(try await store.members().first { $0.role == .patient }).id).heldChanges.count == expected)
        await proxy.stop()
        await first.stop()
        await second.stop()
    }

    /// A device live on `url` (`/v1/live`): each message it hears, with when, until the
    /// server closes the connection (returned with when it closed).
    static func live(_ url: String, token: String, heard: Locked<[(LiveMessage, ContinuousClock.Instant)]>) async throws -> ContinuousClock.Instant {
        var configuration = WebSocketClientConfiguration()
        configuration.additionalHeaders[.authorization] = "Bearer \(token)"
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        _ = try await WebSocketClient.connect(url: url + "/v1/live", configuration: configuration, logger: logger) { inbound, _, _ in
            for try await message in inbound.messages(maxSize: 1 << 16) {
                guard case .text(let text) = message else { continue }
                let decoded = try JSONDecoder().decode(LiveMessage.self, from: Data(text.utf8))
                heard.withLock { $0.append((decoded, .now)) }
            }
        }
        return .now
    }

    @Test func aPushToOneInstance_reachesADeviceLiveOnTheOtherAtOnce_andARevocationClosesItWithinFiveSeconds() async throws {
        let (location, store, devices) = try await Self.center(devices: 2)
        let first = try await LiveServer(postgres: location.url)
        let second = try await LiveServer(postgres: location.url)
        defer { withExtendedLifetime(store) {} }

        // The watcher is live on the first instance; its patient's other device pushes to the second.
        let heard = Locked<[(LiveMessage, ContinuousClock.Instant)]>([])
        let watcher = Task { try await Self.live(first.url, token: devices[0].token, heard: heard) }
        try await within(.seconds(30)) { while heard.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(20)) } }
        #expect(heard.withLock { $0.first?.0.type } == "hello")
        var writer = devices[1].writer
        for round in 0..<5 {
            let changes = try Self.entry(&writer, seed: round)
            let before = heard.withLock { $0.count }
            try await Self.push(changes, to: second.url, token: devices[1].token)
            let acknowledged = ContinuousClock.now
            let notice = try await within(.seconds(60)) { () -> (LiveMessage, ContinuousClock.Instant) in
                while true {
                    if let found = heard.withLock({ $0.dropFirst(before).first { $0.0.type == "advanced" } }) { return found }
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
            #expect(notice.0.subscriptions == ["own"], "round \(round), heard \(notice.1 - acknowledged) after the push")
            // That it comes by notification, not the feed's look every second, is
            // `PostgresNotificationTests`' (how soon, the benchmarks').
        }

        // Revoked through the store (as `tandem admin revoke-device --postgres` does): the
        // watcher's connection on the first instance closes within 5 s.
        let device = try #require(try await store.devices(of: nil).first { $0.name == "device 0" })
        let revoked = ContinuousClock.now
        try await store.revokeDevice(try RecordID(hex: device.id))
        let closed = try await within(.seconds(30)) { try await watcher.value }
        #expect(closed - revoked < .seconds(5), "closed \(closed - revoked) after the revocation")
        await first.stop()
        await second.stop()
    }

    @Test func oneInstanceKilledMidPush_losesNothingAcknowledged_andClientsFailOverThroughTheProxy() async throws {
        let (location, store, devices) = try await Self.center(devices: 9)
        let (first, second, proxy) = try await Self.twoInstances(on: location)
        defer { withExtendedLifetime(store) {} }

        // Eight pushers through the proxy, 40 batches of 50 changes each; the first instance
        // is killed once a quarter of the batches are acknowledged.
        let pushers = Array(devices.prefix(8)), reader = devices[8]
        let batchesEach = 40, batch = 50
        let acknowledgedBatches = Locked(0)
        let killed = Task {
            while acknowledgedBatches.withLock({ $0 }) < pushers.count * batchesEach / 4 { try await Task.sleep(for: .milliseconds(5)) }
            await first.kill9()
        }
        let acknowledged = try await Self.pushAll(pushers, to: proxy.url, batches: batchesEach, batch: batch, acknowledged: acknowledgedBatches)
        try await killed.value
        #expect(acknowledged.count == pushers.count * batchesEach * batch)
        // A device reading through the proxy (only the second instance answers now) gets
        // every acknowledged change, once.
        let reading = try await Self.read(from: proxy.url, token: reader.token, expected: acknowledged.count, deadline: .now + .seconds(120))
        #expect(reading.received == acknowledged)
        #expect(reading.duplicates == 0 && reading.backwards == 0 && reading.gaps == 0)
        await proxy.stop()
        await second.stop()
    }

    /// A PostgreSQL cluster of one test's own (`scripts/postgres`), which it may restart
    /// without disturbing the other tests' cluster.
    final class OwnCluster: Sendable {
        let directory: String
        let url: String
        static let script = URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/postgres").path

        init() async throws {
            directory = NSTemporaryDirectory() + "tandem-own-pg-" + UUID().uuidString
            try await Self.script("start", directory)
            url = try String(contentsOfFile: directory + "/url", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        func restart() async throws { try await Self.script("restart", directory) }
        func stop() async { try? await Self.script("stop", directory) }

        /// Runs the script to its end. Its output goes nowhere: the server it starts would
        /// hold a pipe open, and reading one to its end would never end.
        static func script(_ command: String, _ directory: String) async throws {
            try await offThePool {
                let process = try Subprocess("/bin/bash", [script, command, directory], input: .inherit, output: .null)
                let ended = process.waitUntilExit()
                guard ended == .exited(0) else { throw LiveServerError.didNotStart("scripts/postgres \(command) failed (\(ended))") }
            }
        }
    }

    @Test func postgresRestartedUnderLoad_isAnswered503Plainly_andNothingAcknowledgedIsLost() async throws {
        let cluster = try await OwnCluster()
        do { try await restartUnderLoad(cluster) } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }

    func restartUnderLoad(_ cluster: OwnCluster) async throws {
        let location = try PostgresLocation(url: cluster.url)
        let (_, store, devices) = try await Self.center(devices: 5, on: location)
        let (first, second, proxy) = try await Self.twoInstances(on: location)
        defer { withExtendedLifetime(store) {} }

        let pushers = Array(devices.prefix(4)), reader = devices[4]
        let batchesEach = 30, batch = 50
        let acknowledgedBatches = Locked(0)
        let refusals = Locked<[(Int, String)]>([])
        let restarted = Task {
            while acknowledgedBatches.withLock({ $0 }) < pushers.count * batchesEach / 4 { try await Task.sleep(for: .milliseconds(5)) }
            try await cluster.restart()
        }
        let acknowledged = try await Self.pushAll(
            pushers, to: proxy.url, batches: batchesEach, batch: batch, acknowledged: acknowledgedBatches, refusals: refusals)
        try await restarted.value
        // While PostgreSQL was away, pushes were answered 503 with a message that says so.
        let seen = refusals.withLock { $0 }
        #expect(!seen.isEmpty, "no push met the restart")
        #expect(seen.allSatisfy { $0.0 == 503 }, "\(seen.map(\.0))")
        #expect(seen.allSatisfy { $0.1.contains("database is unreachable") }, "\(seen.first?.1 ?? "")")
        // Where the database is stays in the server's log: no device is told.
        #expect(!seen.contains { $0.1.contains(String(location.port)) || $0.1.contains("postgres://") || $0.1.contains(location.host) })
        // Both instances serve again, and a reader gets every acknowledged change once.
        for instance in [first, second] {
            let reading = try await Self.read(from: instance.url, token: reader.token, expected: acknowledged.count, deadline: .now + .seconds(60))
            #expect(reading.received == acknowledged)
            #expect(reading.duplicates == 0 && reading.backwards == 0 && reading.gaps == 0)
        }
        await proxy.stop()
        await first.stop()
        await second.stop()
    }
}
