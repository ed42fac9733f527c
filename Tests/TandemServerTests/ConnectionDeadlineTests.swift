import Foundation
import TandemServer
import TandemTestSupport
import Testing

/// A connection that never finishes its first request head is closed after the deadline,
/// and does not keep the server from stopping (it used to, forever: `FirstRequestDeadline`);
/// a kept-alive connection left idle between requests is closed too (`Limits.idleConnection`).
@Suite("Connection deadlines")
struct ConnectionDeadlineTests {
    /// A raw TCP connection to `port` on loopback that sends `bytes` and nothing more.
    final class RawConnection: @unchecked Sendable {
        // @unchecked: the descriptor is set once; reads happen on one thread at a time.
        let descriptor: Int32

        init(port: Int, sending bytes: [UInt8]) throws {
            descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
            if !bytes.isEmpty { _ = bytes.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) } }
        }

        /// Reads until the server closes the connection; the bytes it sent before.
        func readToClose() async throws -> [UInt8] {
            try await offThePool { [self] in
                var all: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
                    if count <= 0 { return all }
                    all += buffer[0..<count]
                }
            }
        }

        /// Sends more bytes on the open connection; false once the server closed it.
        @discardableResult
        func sendMore(_ bytes: [UInt8]) -> Bool {
            bytes.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
        }

        /// Hangs up (FIN both ways), as a client going away does; the descriptor closes at release.
        func hangUp() { shutdown(descriptor, Int32(SHUT_RDWR)) }

        deinit { close(descriptor) }
    }

    /// A POST head for `path` announcing a body of `length` bytes, and the first `sent` of them.
    static func slowPost(_ path: String, length: Int, sent: Int) -> [UInt8] {
        Array("POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(length)\r\n\r\n".utf8)
            + Array(repeating: UInt8(ascii: " "), count: sent)
    }

    @Test(arguments: ServerStoreKind.allCases)
    func silentAndHalfSentConnections_areClosedAfterTheDeadline(storeKind: ServerStoreKind) async throws {
        var limits = SyncServer.Limits()
        limits.firstRequestHead = .seconds(1)
        let (dir, server) = try await InProcessServer.center("deadline", store: storeKind, limits: limits)
        defer { withExtendedLifetime(dir) {} }
        let port = server.port
        let silent = try RawConnection(port: port, sending: [])
        let halfHead = try RawConnection(port: port, sending: Array("GET /health HTTP/1.1\r\nHost: x\r\n".utf8))
        let bareLineFeeds = try RawConnection(port: port, sending: Array("GET /health HTTP/1.1\nHost: x\n\n".utf8))
        let whole = try RawConnection(port: port, sending: Array("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        // Liveness bounds only: the deadline is 1 s.
        for connection in [silent, halfHead, bareLineFeeds] {
            #expect(try await within(.seconds(30)) { try await connection.readToClose() }.isEmpty)
        }
        let answer = try await within(.seconds(30)) { try await whole.readToClose() }
        #expect(String(decoding: answer, as: UTF8.self).hasPrefix("HTTP/1.1 200"), "a whole request is answered")
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aKeptAliveConnection_isAnswered_thenClosedWhenIdle(storeKind: ServerStoreKind) async throws {
        var limits = SyncServer.Limits()
        limits.idleConnection = .seconds(1)
        let (dir, server) = try await InProcessServer.center("deadline", store: storeKind, limits: limits)
        defer { withExtendedLifetime(dir) {} }
        let port = server.port
        // No `Connection: close`: HTTP/1.1 keeps the connection open for the next request.
        let idle = try RawConnection(port: port, sending: Array("GET /health HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        // Without the idle deadline this read never ends; the bound is for liveness only.
        let answer = String(decoding: try await within(.seconds(30)) { try await idle.readToClose() }, as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 200"), "the request is answered before the connection is closed")
        #expect(answer.contains("\"ok\""))
    }

    @Test func aServerWithSilentConnections_stopsOnSIGTERM() async throws {
        let dir = try TemporaryDirectory()
        let db = dir.path("center.sqlite")
        _ = try await TandemExecutable.run(["admin", "init", "--db", db])
        let server = try await LiveServer(dbPath: db)
        let silent = try RawConnection(port: server.port, sending: [])
        let halfHead = try RawConnection(port: server.port, sending: Array("POST /v1/pull HTTP/1.1\r\n".utf8))
        // The default deadline is 30 s; the server must not wait for it, let alone forever.
        try await within(.seconds(20)) { await server.stop() }
        for connection in [silent, halfHead] {
            #expect(try await within(.seconds(30)) { try await connection.readToClose() }.isEmpty)
        }
    }

    @Test(arguments: ServerStoreKind.allCases, ["/v1/enroll", "/v1/push", "/v1/link"])
    func aBodyThatTrickles_gets408_andItsConnectionIsClosed(storeKind: ServerStoreKind, _ path: String) async throws {
        var limits = SyncServer.Limits()
        limits.requestBody = .seconds(1)
        let (dir, server) = try await InProcessServer.center("body-deadline", store: storeKind, limits: limits)
        defer { withExtendedLifetime(dir) {} }
        let slow = try RawConnection(port: server.port, sending: Self.slowPost(path, length: 1_000, sent: 10))
        // One more byte now and then keeps Hummingbird's idle timer from ever firing.
        let trickle = Task {
            for _ in 0..<60 {
                try await Task.sleep(for: .milliseconds(500))
                guard slow.sendMore([UInt8(ascii: " ")]) else { return }
            }
        }
        defer { trickle.cancel() }
        let answer = String(decoding: try await within(.seconds(30)) { try await slow.readToClose() }, as: UTF8.self)
        if path != "/v1/enroll" {
            // Answered (401: no token) without reading the body; then closed at the deadline.
            #expect(answer.hasPrefix("HTTP/1.1 401"), "\(answer.prefix(40))")
        } else {
            #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer.prefix(40))")
            #expect(answer.contains("request-timeout"))
        }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func anEnrollmentBodyOver4KiB_isRefusedWith413(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await InProcessServer.center("enroll-cap", store: storeKind)
        defer { withExtendedLifetime(dir) {} }
        let body = #"{"code":"\#(String(repeating: "A", count: 5_000))","replica":"00112233445566778899aabbccddeeff","deviceName":"x"}"#
        let post = Array("POST /v1/enroll HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
        let connection = try RawConnection(port: server.port, sending: post)
        let answer = String(decoding: try await within(.seconds(30)) { try await connection.readToClose() }, as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 413"), "\(answer.prefix(40))")
        #expect(answer.contains("4096 bytes"))
    }

    @Test func aServerWithSlowHeadsAndSlowBodies_stopsOnSIGTERM_andLogsDisconnectsAsSuch() async throws {
        let dir = try TemporaryDirectory()
        let db = dir.path("center.sqlite")
        _ = try await TandemExecutable.run(["admin", "init", "--db", db])
        let log = dir.path("server.log")
        let server = try await LiveServer(dbPath: db, logPath: log)
        // A client that goes away in the middle of its body.
        let gone = try RawConnection(port: server.port, sending: Self.slowPost("/v1/enroll", length: 1_000, sent: 10))
        var slow: [RawConnection] = []
        for index in 0..<6 {
            let bytes = switch index % 3 {
            case 0: Array("POST /v1/pull HTTP/1.1\r\n".utf8)
            case 1: Self.slowPost("/v1/enroll", length: 4_000, sent: 100)
            default: Self.slowPost("/v1/push", length: 100_000, sent: 100)
            }
            slow.append(try RawConnection(port: server.port, sending: bytes))
        }
        let connections = slow
        let trickle = Task {
            for _ in 0..<120 {
                try await Task.sleep(for: .milliseconds(500))
                for connection in connections { connection.sendMore([UInt8(ascii: " ")]) }
            }
        }
        defer { trickle.cancel() }
        try await Task.sleep(for: .milliseconds(300))
        gone.hangUp()
        // The body deadline is 30 s and each trickle resets the idle timer: only the stop
        // itself ends these connections. The bound is below both.
        try await within(.seconds(20)) { await server.stop() }
        let written = try String(contentsOfFile: log, encoding: .utf8)
        #expect(written.contains("status=disconnected"), "\(written.suffix(400))")
        #expect(!written.contains("status=413"))
    }
}
