@testable import TandemClient
import TandemProtocol
import Testing

/// The client sends a token over plain HTTP only to a loopback address, told by parsing
/// the host as an address, never by its spelling.
///
/// No server store of its own concern: the device's transport.
@Suite("HTTP transport")
struct HTTPTransportTests {
    @Test(arguments: [
        ("127.0.0.1", true), ("127.255.255.254", true), ("localhost", true), ("::1", true), ("[::1]", true),
        ("127.0.0.1.attacker.example", false), ("127.example.org", false), ("128.0.0.1", false), ("10.0.0.1", false),
        ("::ffff:127.0.0.1", false), ("", false), ("127.1", false),
    ])
    func isLoopback_parsesTheHostAsAnAddress(_ host: String, _ loopback: Bool) {
        #expect(Loopback.contains(host) == loopback)
    }

    @Test func plainHTTPToANameThatLooksLikeLoopback_isRefused() throws {
        #expect(throws: SyncError.insecureTransport("127.0.0.1.attacker.example")) {
            _ = try HTTPTransport(server: "http://127.0.0.1.attacker.example:8080")
        }
        _ = try HTTPTransport(server: "http://127.0.0.1:8080")
        _ = try HTTPTransport(server: "http://[::1]:8080")
    }
}
