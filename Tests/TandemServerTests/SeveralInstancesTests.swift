import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
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
    /// 100,000 changes in the normal run; `TANDEM_INSTANCES_CHANGES` for a soak (1,000,000).
    static let changes = Int(ProcessInfo.processInfo.environment["TANDEM_INSTANCES_CHANGES"] ?? "") ?? 100_000

    /// A device of the center's one patient: its token and its change writer.
    struct Device: Sendable {
        var token: String
        var writer: ChangeWriter
    }

    /// A new center on a new database, with `devices` devices of one patient enrolled.
    static func center(devices: Int) async throws -> (location: PostgresLocation, store: PostgresServerStorage, devices: [Device]) {
        let location = try TestCluster.newDatabase()
        let store = try PostgresServerStorage(location: location, connections: 2)
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
    static func push(_ changes: [Change], to base: String, token: String) async throws {
        let body = try Deflate.compress(ChangeBatch(changes).encoded())
        for attempt in 1... {
            if let answer = try? await post(base + "/v1/push", token: token, body: body, type: "application/octet-stream"), answer.status == 200 {
                return
            }
            guard attempt < 200 else { throw LiveServerError.didNotStart("a push was never taken") }
            try await Task.sleep(for: .milliseconds(100))
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
        let url = "postgres://\(location.user)@\(location.host):\(location.port)/\(location.database)"
        let first = try await LiveServer(postgres: url)
        let second = try await LiveServer(postgres: url)
        let proxy = try await ReverseProxy(upstreamPorts: [first.port, second.port])
        defer { withExtendedLifetime(store) {} }

        // 16 pushers, half of them straight to each instance, in batches of 250 changes.
        let pushers = Array(devices.prefix(16)), readers = Array(devices.suffix(4))
        let batch = 250, batchesEach = max(1, Self.changes / (pushers.count * batch))
        let expected = pushers.count * batchesEach * batch
        let deadline = ContinuousClock.now + .seconds(600)
        let pushed = try await withThrowingTaskGroup(of: [ChangeID].self) { group in
            for (index, device) in pushers.enumerated() {
                let base = index % 2 == 0 ? first.url : second.url
                group.addTask {
                    var writer = device.writer
                    var ids: [ChangeID] = []
                    for round in 0..<batchesEach {
                        var changes: [Change] = []
                        while changes.count < batch { changes += try Self.entry(&writer, seed: round * batch + changes.count) }
                        changes = Array(changes.prefix(batch))
                        try await Self.push(changes, to: base, token: device.token)
                        ids += changes.map(\.id)
                    }
                    return ids
                }
            }
            // Readers pull through the proxy, which sends each pull to either instance.
            let readings = Locked<[Reading]>([])
            let reading = Task {
                try await withThrowingTaskGroup(of: Reading.self) { readersGroup in
                    for reader in readers {
                        readersGroup.addTask { try await Self.read(from: proxy.url, token: reader.token, expected: expected, deadline: deadline) }
                    }
                    for try await result in readersGroup { readings.withLock { $0.append(result) } }
                }
            }
            var all: [ChangeID] = []
            for try await ids in group { all += ids }
            try await reading.value
            return (all, readings.withLock { $0 })
        }
        let (ids, readings) = pushed
        #expect(ids.count == expected)
        let acknowledged = Set(ids)
        #expect(readings.count == 4)
        for (index, reading) in readings.enumerated() {
            #expect(reading.received == acknowledged, "reader \(index): \(reading.received.count) of \(acknowledged.count)")
            #expect(reading.duplicates == 0, "reader \(index)")
            #expect(reading.backwards == 0, "reader \(index)")
            #expect(reading.gaps == 0, "reader \(index)")
        }
        // The store holds each change once, numbered 1…n without a hole.
        #expect(try await store.state(of: try #require(try await store.members().first { $0.role == .patient }).id).heldChanges.count == expected)
        await proxy.stop()
        await first.stop()
        await second.stop()
    }
}
