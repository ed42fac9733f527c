import Foundation
import HTTPTypes
import NIOWebSocket
import WSCore
import TandemClient
import TandemCore
import TandemProtocol
@testable import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// A live connection closes at once on a revocation of its member's credentials that its
/// store hears of (PostgreSQL's notifications, PROTOCOL.md §9.10), even one heard while the
/// connection was checking its token: the check may have read the store just before the
/// revocation, and the notice came before it returned (before, the wait after that check
/// began afresh and slept out its whole period, 5 s by default). Other members'
/// revocations do not make it read the store.
@Suite("Live revocation")
struct LiveRevocationTests {
    /// A store that hears of revocations, as PostgreSQL's does, counts its token checks,
    /// and, once armed, has a revocation land during a check: after the check read the
    /// store, before it returns.
    struct HearsRevocations: ForwardingStorage {
        let base: any ServerStorage
        let log = RevocationLog()
        let checks = Locked(0)
        let armed = Locked<(@Sendable () async throws -> MemberID)?>(nil)

        var revocationsHeard: Int { log.count }

        func awaitRevocation(after heard: Int, timeout: Duration) async {
            await log.wait(after: heard, upTo: timeout)
        }

        func membersRevoked(since heard: Int) -> Set<MemberID>? { log.members(since: heard) }

        func authenticate(tokenHash: [UInt8]) async throws -> Principal {
            checks.withLock { $0 += 1 }
            let principal = try await base.authenticate(tokenHash: tokenHash)
            if let revoke = armed.withLock({ revoke in defer { revoke = nil }; return revoke }) {
                log.heard(try await revoke())
            }
            return principal
        }
    }

    struct Center {
        let dir: TemporaryDirectory
        let storage: any CenterStore
        let hearing: HearsRevocations
        let server: InProcessServer
        let member: MemberID
        let device: RecordID
        let token: String

        init(_ storeKind: ServerStoreKind) async throws {
            dir = try TemporaryDirectory("live-revocation")
            storage = try await storeKind.center(in: dir)
            hearing = HearsRevocations(base: storage)
            // The period is far beyond the tests' bounds: only a revocation heard of can
            // make the connection check its token in time.
            var limits = SyncServer.Limits()
            limits.liveRevocationCheck = .seconds(600)
            server = try await InProcessServer(storage: storage, serving: hearing, limits: limits)
            let phone = try await server.device(dir, "phone")
            token = try #require(try phone.binding()).token
            let info = try #require(try await storage.devices(of: nil).first { $0.name == "phone" })
            device = try RecordID(hex: info.id)
            member = try await storage.member(named: "Sam").id
        }

        /// The device's live connection; `onHello` runs once it is greeted.
        func connect(onHello: @escaping @Sendable () async -> Void = {}) -> Task<(hello: LiveMessage?, close: WebSocketCloseFrame?), any Error> {
            let (url, token) = (server.url, token)
            return Task { try await LivePushTests.connect(url, headers: [.authorization: "Bearer \(token)"], onHello: onHello) }
        }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aRevocationHeardDuringATokenCheck_closesTheConnectionAtOnce(storeKind: ServerStoreKind) async throws {
        let center = try await Center(storeKind)
        let server = center.server
        defer { Task { await server.stop() } }
        let (hearing, storage, device, member) = (center.hearing, center.storage, center.device, center.member)
        let connection = center.connect {
            // Greeted: the next token check has the device revoked while it runs.
            hearing.armed.withLock { $0 = { try await storage.revokeDevice(device); return member } }
            // A notice that names the member (its other device, say) wakes the check.
            hearing.log.heard(member)
        }
        // Loose: under ThreadSanitizer on a busy CI, a wake-up at once took 30 s.
        let (hello, close) = try await within(.seconds(300)) { try await connection.value }
        #expect(hello?.type == "hello")
        #expect(close?.closeCode == .unknown(LiveCloseCode.revoked), "\(String(describing: close))")
        #expect(hearing.armed.withLock { $0 == nil }, "the revocation landed during a check")
    }

    @Test(arguments: ServerStoreKind.allCases)
    func otherMembersRevocations_doNotMakeAConnectionCheckItsToken(storeKind: ServerStoreKind) async throws {
        let center = try await Center(storeKind)
        let server = center.server
        defer { Task { await server.stop() } }
        let hearing = center.hearing
        let greeted = Locked(false)
        let connection = center.connect { greeted.withLock { $0 = true } }
        defer { connection.cancel() }
        // The upgrade's check and the connection's first.
        #expect(await eventually(within: .seconds(300)) { greeted.withLock { $0 } && hearing.checks.withLock { $0 } >= 2 })
        try await Task.sleep(for: .milliseconds(300))
        let before = hearing.checks.withLock { $0 }

        for _ in 0..<100 { hearing.log.heard(MemberID.random()) }
        try await Task.sleep(for: .milliseconds(500))
        #expect(hearing.checks.withLock { $0 } == before, "a hundred other members' revocations, no check")

        // A notice that cannot say whose: a check, within a second.
        hearing.log.heard(nil)
        #expect(await eventually(within: .seconds(300)) { hearing.checks.withLock { $0 } == before + 1 })
        // Its own member's: a check at once; still valid, the connection stays.
        hearing.log.heard(center.member)
        #expect(await eventually(within: .seconds(300)) { hearing.checks.withLock { $0 } == before + 2 })
        try await Task.sleep(for: .milliseconds(300))
        #expect(hearing.checks.withLock { $0 } == before + 2)
    }
}
