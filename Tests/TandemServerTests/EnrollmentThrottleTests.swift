import Foundation
import TandemCore
import TandemProtocol
import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// Failed enrollments are counted per client address (PROTOCOL.md §9.2): 500 bad codes from
/// one address never block a valid code from another, directly and through a real nginx
/// that the server trusts; only a backstop far above any real rate counts everyone.
@Suite("Enrollment throttling")
struct EnrollmentThrottleTests {
    /// A center whose clock stands still unless moved: the counts are per minute, and under
    /// ThreadSanitizer 500 requests through nginx took 172 s, past the minute.
    static func center(_ prefix: String, store storeKind: ServerStoreKind, limits: SyncServer.Limits = .init()) async throws -> (TemporaryDirectory, InProcessServer) {
        let dir = try TemporaryDirectory(prefix)
        let storage = try await storeKind.create(in: dir)
        let now = SystemWallClock().nowMillis()
        _ = try await storage.initialize(staffName: "Admin", nowMillis: now)
        return (dir, try await InProcessServer(storage: storage, limits: limits, wallClock: ManualWallClock(millis: now)))
    }

    static let badBody = #"{"code":"WRONG-CODE0-00000","replica":"00112233445566778899aabbccddeeff","deviceName":"guess"}"#

    /// `count` enrollments with a wrong code from `source`, on one connection; their statuses.
    static func badEnrollments(_ url: String, from source: String, count: Int, headers: [String] = []) async throws -> [Int] {
        var arguments = ["--interface", source, "-w", "%{http_code}\\n", "-H", "Content-Type: application/json"]
        for header in headers { arguments += ["-H", header] }
        arguments += ["-d", badBody]
        for _ in 0..<count { arguments += ["-o", "/dev/null", url + "/v1/enroll"] }
        return try await curl(arguments).split(separator: "\n").compactMap { Int($0) }
    }

    /// One enrollment with `code` from `source`: its status.
    static func enroll(_ url: String, code: String, from source: String) async throws -> Int {
        let body = String(decoding: try JSONEncoder().encode(EnrollRequest(code: code, replica: ReplicaID.random().hex, deviceName: "phone")), as: UTF8.self)
        let status = try await curl(["--interface", source, "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/json", "-d", body, url + "/v1/enroll"])
        return Int(status) ?? 0
    }

    @Test(arguments: ServerStoreKind.allCases)
    func fiveHundredBadCodesFromOneAddress_neverBlockAValidCodeFromAnother(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await Self.center("enroll-throttle", store: storeKind)
        defer { withExtendedLifetime(dir) {} }
        let statuses = try await Self.badEnrollments(server.url, from: "127.0.0.2", count: 500)
        #expect(statuses.count == 500)
        #expect(statuses.prefix(20).allSatisfy { $0 == 403 }, "the first 20 are looked up")
        #expect(statuses.dropFirst(20).allSatisfy { $0 == 429 }, "then that address waits")
        let code = try await server.storage.invite(role: .patient, name: "Sam", nowMillis: SystemWallClock().nowMillis())
        #expect(try await Self.enroll(server.url, code: code, from: "127.0.0.3") == 200)
        #expect(try await server.storage.enrollFailures(address: "127.0.0.2", sinceMillis: 0) == (20, 20))
    }

    @Test(arguments: ServerStoreKind.allCases)
    func throughATrustedNginx_theClientsAddressCounts_notTheProxysNorAForgedHop(storeKind: ServerStoreKind) async throws {
        var limits = SyncServer.Limits()
        limits.trustedProxy = "127.0.0.1"
        let (dir, server) = try await Self.center("enroll-throttle-proxy", store: storeKind, limits: limits)
        defer { withExtendedLifetime(dir) {} }
        let proxy = try await ReverseProxy(upstreamPort: server.port)
        // The guesser forges X-Forwarded-For hops; nginx appends the address it saw.
        let statuses = try await Self.badEnrollments(
            proxy.url, from: "127.0.0.2", count: 500, headers: ["X-Forwarded-For: 127.0.0.9, 127.0.0.3"])
        #expect(statuses.count == 500)
        #expect(statuses.prefix(20).allSatisfy { $0 == 403 } && statuses.dropFirst(20).allSatisfy { $0 == 429 })
        #expect(try await server.storage.enrollFailures(address: "127.0.0.2", sinceMillis: 0).fromAddress == 20)
        let code = try await server.storage.invite(role: .patient, name: "Sam", nowMillis: SystemWallClock().nowMillis())
        #expect(try await Self.enroll(proxy.url, code: code, from: "127.0.0.3") == 200, "another client behind the same proxy")
        await proxy.stop()
    }

    @Test(arguments: ServerStoreKind.allCases)
    func theBackstop_countsEveryAddress_andIsConfigurable(storeKind: ServerStoreKind) async throws {
        var limits = SyncServer.Limits()
        limits.failedEnrollTotal = 30
        let (dir, server) = try await Self.center("enroll-throttle-backstop", store: storeKind, limits: limits)
        defer { withExtendedLifetime(dir) {} }
        #expect(try await Self.badEnrollments(server.url, from: "127.0.0.2", count: 20).allSatisfy { $0 == 403 })
        #expect(try await Self.badEnrollments(server.url, from: "127.0.0.3", count: 10).allSatisfy { $0 == 403 })
        #expect(try await Self.badEnrollments(server.url, from: "127.0.0.4", count: 1) == [429])
    }
}
