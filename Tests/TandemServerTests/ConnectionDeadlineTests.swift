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

        deinit { close(descriptor) }
    }

    @Test func silentAndHalfSentConnections_areClosedAfterTheDeadline() async throws {
        var limits = SyncServer.Limits()
        limits.firstRequestHead = .seconds(1)
        let (dir, server) = try await InProcessServer.center("deadline", limits: limits)
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

    @Test func aKeptAliveConnection_isAnswered_thenClosedWhenIdle() async throws {
        var limits = SyncServer.Limits()
        limits.idleConnection = .seconds(1)
        let (dir, server) = try await InProcessServer.center("deadline", limits: limits)
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
}
