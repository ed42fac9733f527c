import Foundation
import TandemCompression
public import TandemCore
public import TandemServer
public import TandemStore

/// The device's sync driver: enrolls a home, pushes its outbox, pulls its subscriptions.
///
/// ```swift
/// let report = try await Syncer(store: store).sync()
/// ```
public struct Syncer: Sendable {
    public let store: ReplicaStore
    public let wallClock: any WallClock
    public var allowInsecure: Bool

    public init(store: ReplicaStore, wallClock: any WallClock = SystemWallClock(), allowInsecure: Bool = false) {
        self.store = store
        self.wallClock = wallClock
        self.allowInsecure = allowInsecure
    }

    /// What one sync did.
    public struct Report: Codable, Sendable, Equatable {
        public var pushed: Int = 0
        public var replayed: Int = 0
        public var pulled: Int = 0
        public var changedLocally: Int = 0
        public var waiting: Int = 0
    }

    /// Enrolls the store's replica with a server, binding the home to the code's member.
    ///
    /// - Parameter role: the role the home was made for (nil for a home made by enrolling).
    public static func enroll(
        store: ReplicaStore, server: String, code: String, deviceName: String, role: Role?, allowInsecure: Bool,
        wallClock: any WallClock = SystemWallClock()
    ) async throws -> EnrollResponse {
        let transport = try HTTPTransport(server: server, allowInsecure: allowInsecure)
        let request = EnrollRequest(
            code: code, replica: store.identity.replica.hex, deviceName: deviceName,
            role: role?.rawValue, member: try store.binding()?.member.hex)
        let answer: EnrollResponse = try await transport.postJSON("/v1/enroll", token: nil, request)
        guard let member = try? MemberID(hex: answer.member), let role = Role(rawValue: answer.role) else {
            throw SyncError.badAnswer("enrollment")
        }
        try store.bind(
            .init(server: transport.server, token: answer.token, member: member, epoch: answer.epoch, lastSyncMillis: nil),
            role: role, name: answer.name, nowMillis: wallClock.nowMillis())
        return answer
    }

    /// Asks the server for a code with which this member adds another device.
    public func link() async throws -> LinkResponse {
        guard let binding = try store.binding() else { throw SyncError.notEnrolled }
        let transport = try HTTPTransport(server: binding.server, allowInsecure: allowInsecure)
        return try await transport.postJSON("/v1/link", token: binding.token, [String: String]())
    }

    /// Pushes the outbox, then pulls every subscription until caught up.
    public func sync(batchSize: Int = 1_000) async throws -> Report {
        guard let binding = try store.binding() else { throw SyncError.notEnrolled }
        let transport = try HTTPTransport(server: binding.server, allowInsecure: allowInsecure)
        var report = Report()
        // Push: whole batches, in outbox order; an acknowledged batch leaves the outbox.
        while true {
            let entries = try store.outboxEntries(limit: batchSize)
            guard let last = entries.last else { break }
            let packed = try Deflate.compress(ChangeBatch(entries.map(\.change)).encoded())
            let data = try await transport.post("/v1/push", token: binding.token, contentType: "application/octet-stream", body: packed)
            guard let answer = try? JSONDecoder().decode(PushResponse.self, from: data) else { throw SyncError.badAnswer("push") }
            try store.acknowledge(through: last.position)
            report.pushed += answer.accepted
            report.replayed += answer.replayed
        }
        // Pull until no subscription has more.
        while true {
            let answer: PullResponse = try await transport.postJSON("/v1/pull", token: binding.token, PullRequest(cursors: try store.cursors()))
            if answer.epochChanged {
                // A restored server: read everything again (re-pushing comes with restore support).
                try store.resetCursors()
                continue
            }
            guard let packed = Data(base64Encoded: answer.changes),
                  let bytes = try? Deflate.decompress(Array(packed), limit: 64 << 20),
                  let batch = try? ChangeBatch(decoding: bytes, limits: .init(maxBytes: 64 << 20, maxChanges: 100_000))
            else { throw SyncError.badAnswer("pull") }
            report.changedLocally += try store.applyPulled(
                batch.changes, cursors: answer.cursors, serverTimeMillis: answer.serverTime, localMillis: wallClock.nowMillis())
            report.pulled += batch.changes.count
            if !answer.more { break }
        }
        try store.recordSync(nowMillis: wallClock.nowMillis())
        report.waiting = try store.outboxEntries(limit: Int.max).count
        return report
    }
}
