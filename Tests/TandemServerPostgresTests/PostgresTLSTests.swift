import Foundation
import TandemCore
import TandemServer
import TandemStore
@testable import TandemServerPostgres
import TandemTestSupport
import Testing

/// Connections to PostgreSQL over TLS, against the test cluster (which `scripts/postgres`
/// starts with TLS on: a certificate for the name localhost only, signed by a CA of its own,
/// `TANDEM_TEST_POSTGRES_CA`): encrypted when asked, refused plainly when the certificate
/// cannot be verified, and a store served entirely over it.
@Suite("PostgreSQL over TLS", .enabled(if: TestCluster.url != nil))
struct PostgresTLSTests {
    static let ca = ProcessInfo.processInfo.environment["TANDEM_TEST_POSTGRES_CA"]

    /// The test cluster's location with `options`, reached by `host`.
    static func location(host: String = "127.0.0.1", _ options: String) throws -> PostgresLocation {
        let cluster = try PostgresLocation(url: try #require(TestCluster.url))
        return try PostgresLocation(url: "postgres://\(cluster.user)@\(host):\(cluster.port)/\(cluster.database)\(options)")
    }

    /// Whether the connection is encrypted, as the server sees it.
    static func encrypted(_ location: PostgresLocation) throws -> Bool {
        let connection = try BlockingConnection.open(location, applicationName: "tandem-test")
        defer { connection.close() }
        return try connection.texts("SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == ["true"]
    }

    static func refusal(_ location: PostgresLocation) -> String {
        do {
            _ = try encrypted(location)
            return "connected"
        } catch {
            return "\(error)"
        }
    }

    @Test func encrypted_whenAsked_andPlainOnTheLoopbackOtherwise() throws {
        let ca = try #require(Self.ca, "scripts/test sets TANDEM_TEST_POSTGRES_CA beside the cluster's URL")
        #expect(try !Self.encrypted(try Self.location("")))
        #expect(try Self.encrypted(try Self.location("?sslmode=require")))
        #expect(try Self.encrypted(try Self.location(host: "localhost", "?sslmode=verify-full&sslrootcert=\(ca)")))
        #expect(try Self.encrypted(try Self.location("?sslmode=verify-ca&sslrootcert=\(ca)")))
    }

    @Test func aCertificateThatCannotBeVerified_isRefusedPlainly() throws {
        let ca = try #require(Self.ca, "scripts/test sets TANDEM_TEST_POSTGRES_CA beside the cluster's URL")
        let other = FixtureFiles.directory("postgres").appendingPathComponent("other-ca.crt").path
        // Signed by another authority; or by none the system trusts; or for another name.
        for options in ["?sslmode=verify-full&sslrootcert=\(other)", "?sslmode=verify-ca&sslrootcert=\(other)", "?sslmode=verify-full"] {
            let refusal = Self.refusal(try Self.location(host: "localhost", options))
            #expect(refusal.contains("certificate could not be verified (") && refusal.contains("sslrootcert"), "\(options): \(refusal)")
            #expect(!refusal.contains("for this host"), "\(options): \(refusal)")
            #expect(!refusal.contains(ca))
        }
        // The certificate names localhost, not 127.0.0.1: verify-full refuses the address.
        let wrongName = Self.refusal(try Self.location(host: "127.0.0.1", "?sslmode=verify-full&sslrootcert=\(ca)"))
        #expect(wrongName.contains("certificate could not be verified for this host"), "\(wrongName)")
        let missing = Self.refusal(try Self.location(host: "localhost", "?sslmode=verify-full&sslrootcert=/nonexistent/ca.crt"))
        #expect(missing.contains("Cannot read sslrootcert /nonexistent/ca.crt"), "\(missing)")
    }

    /// The store's own connections (its pool, its push connection and its listener) all
    /// go over TLS: a center initialized, a push answered, notifications heard.
    @Test func aStore_isServedOverVerifiedTLS() async throws {
        let ca = try #require(Self.ca, "scripts/test sets TANDEM_TEST_POSTGRES_CA beside the cluster's URL")
        try await TestCluster.withDatabase { plain in
            var location = try Self.location(host: "localhost", "?sslmode=verify-full&sslrootcert=\(ca)")
            location.database = plain.database
            let storage = try PostgresServerStorage(location: location, connections: 2)
            _ = try await storage.initialize(staffName: "Admin", nowMillis: SystemWallClock().nowMillis())
            try await within(.seconds(60)) { while !storage.listening.isOn { try await Task.sleep(for: .milliseconds(10)) } }
            #expect(try await storage.members().map(\.name) == ["Admin"])
            let check = try BlockingConnection.open(plain, applicationName: "tandem-test")
            defer { check.close() }
            let tandem = try check.texts("""
                SELECT a.application_name || ':' || s.ssl::text FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid
                WHERE a.datname = current_database() AND a.application_name = 'tandem'
                """)
            #expect(!tandem.isEmpty && tandem.allSatisfy { $0 == "tandem:true" }, "\(tandem)")
        }
    }
}
