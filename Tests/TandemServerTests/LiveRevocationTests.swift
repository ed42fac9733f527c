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

/// A live connection closes at once on a revocation its store hears of, even one heard
/// while the connection was checking its token (PROTOCOL.md §9.12): the check may have read
/// the store just before the revocation, and the notice came before it returned. Before, the
/// wait after that check began afresh and slept out its whole period (5 s by default).
@Suite("Live revocation")
struct LiveRevocationTests {
    /// A store that hears of revocations, as PostgreSQL's does through its notifications,
    /// and, once armed, has one land during a token check: after the check read the store,
    /// before it returns.
    struct RevokedDuringTheCheck: ForwardingStorage {
        let base: any ServerStorage
        let signal = CommitSignal()
        let armed = Locked<(@Sendable () async throws -> Void)?>(nil)

        var revocationsHeard: Int { signal.fired }

        func awaitRevocation(after heard: Int, timeout: Duration) async {
            await signal.wait(since: heard, upTo: timeout)
        }

        func authenticate(tokenHash: [UInt8]) async throws -> Principal {
            let principal = try await base.authenticate(tokenHash: tokenHash)
            if let revoke = armed.withLock({ revoke in defer { revoke = nil }; return revoke }) {
                try await revoke()
                signal.fire()
            }
            return principal
        }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aRevocationHeardDuringATokenCheck_closesTheConnectionAtOnce(storeKind: ServerStoreKind) async throws {
        let dir = try TemporaryDirectory("live-revocation")
        let storage = try await storeKind.center(in: dir)
        let hearing = RevokedDuringTheCheck(base: storage)
        // The period is far beyond the test's bound: only the revocation can close it in time.
        var limits = SyncServer.Limits()
        limits.liveRevocationCheck = .seconds(600)
        let server = try await InProcessServer(storage: storage, serving: hearing, limits: limits)
        defer { Task { await server.stop() } }
        let phone = try await server.device(dir, "phone")
        let token = try #require(try phone.binding()).token
        let device = try #require(try await storage.devices(of: nil).first { $0.name == "phone" })

        let url = server.url
        let connection = Task {
            try await LivePushTests.connect(url, headers: [.authorization: "Bearer \(token)"]) {
                // Greeted: the next token check has the device revoked while it runs.
                hearing.armed.withLock { $0 = { try await storage.revokeDevice(try RecordID(hex: device.id)) } }
                // Another revocation heard of (someone else's) wakes the connection's check.
                hearing.signal.fire()
            }
        }
        let (hello, close) = try await within(.seconds(60)) { try await connection.value }
        #expect(hello?.type == "hello")
        #expect(close?.closeCode == .unknown(LiveCloseCode.revoked), "\(String(describing: close))")
        #expect(hearing.armed.withLock { $0 == nil }, "the revocation landed during a check")
    }
}
