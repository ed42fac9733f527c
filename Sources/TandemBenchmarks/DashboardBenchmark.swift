import ArgumentParser
import AsyncHTTPClient
import Foundation
import TandemProcess
import NIOCore
import NIOHTTP1
import TandemCLI
import TandemCore
import TandemServer
import TandemServerPostgres
import TandemStore
import TandemWorkload

/// The staff dashboard's page over a center of `--patients` patients who each journaled
/// every day for `--days` days and let the center count them (issue 16: 1,000 × 365, each
/// store): time to first byte and to the whole page, cold (the first page a newly started
/// server process answers) and warm (the pages after it), against `/health` answered by the
/// same server in the same run.
struct DashboardBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "The dashboard page over N patients × D days: time to first byte and to the full page, cold and warm.")

    @Option(help: "Patients, each journaling every day.")
    var patients = 1_000

    @Option(help: "Days of entries.")
    var days = 365

    @Option(help: "Server processes started (each gives one cold page).")
    var rounds = 3

    @Option(help: "Warm pages per server process.")
    var pages = 20

    @Option(help: "A PostgreSQL URL: run on a new database of that cluster instead of the embedded store.")
    var postgres: String?

    @Option(help: "Where the SQLite store goes (default: a temporary directory).")
    var work: String?

    @Option(help: "Patients seeded at once (default: 1 on SQLite, 8 on PostgreSQL).")
    var seeders: Int?

    @Flag(help: "Also time the first mentor's caseload (?caseload=), after the whole center's page.")
    var caseload = false

    func run() async throws {
        let folder = work ?? NSTemporaryDirectory() + "tandem-bench-dashboard-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let databases = try postgres.map { try BenchDatabases(maintenance: $0) }
        defer { databases?.drop() }
        let location: [String]
        let storage: any CenterStore
        if let databases {
            let database = try databases.create("dashboard")
            storage = try PostgresServerStorage(location: database)
            location = ["--postgres", databases.url("dashboard")]
        } else {
            let path = folder + "/center.sqlite"
            storage = try SQLiteServerStorage(path: path)
            location = ["--db", path]
        }
        let now = SystemWallClock().nowMillis()
        let staff: MemberID
        if let seeded = try await storage.members().first(where: { $0.role == .staff }), postgres == nil {
            // A store an earlier run seeded in the same --work folder is read again as it is.
            staff = seeded.id
            print("reusing the center seeded in \(folder) (\(try await storage.members().count - 1) members)")
        } else {
            staff = try await storage.initialize(staffName: "Bench Staff", nowMillis: now).member
            var options = DemoCenter.Options(patients: patients, days: days, seed: 11, endMillis: now)
            options.everyDay = true
            let started = Date()
            let changes = try await DemoSeeder(storage: storage, nowMillis: now).seed(DemoCenter(options), concurrency: seeders ?? (postgres == nil ? 1 : 8))
            print("seeded \(patients) patients × \(days) days: \(changes) changes in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        }
        // The whole center's page, then the first mentor's caseload (with --caseload).
        var kinds = [("the whole center", "/dashboard")]
        if caseload {
            guard let mentor = try await storage.members().filter({ $0.role == .mentor }).min(by: { $0.name < $1.name }) else {
                throw BenchError.badInput("the center has no mentor")
            }
            kinds.append(("\(mentor.name)'s caseload", "/dashboard?caseload=\(mentor.id.hex)"))
        }
        func ms(_ values: [Double]) -> String {
            let sorted = values.sorted()
            func at(_ q: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * q))] * 1000 }
            return String(format: "p50 %.1f ms, p95 %.1f ms, max %.1f ms", at(0.5), at(0.95), sorted.last.map { $0 * 1000 } ?? 0)
        }
        for (kind, page) in kinds {
            var cold: [(first: Double, full: Double)] = []
            var warm: [(first: Double, full: Double)] = []
            var health: [(first: Double, full: Double)] = []
            var bytes = 0
            for _ in 0..<rounds {
                let code = Secrets.newCode()
                let at = SystemWallClock().nowMillis()
                try await storage.addSignInCode(Secrets.hashCode(code), for: staff, nowMillis: at, expiresMillis: at + 600_000)
                let (server, port) = try spawnServer(store: location)
                defer { server.terminate(); server.waitUntilExit() }
                let url = "http://127.0.0.1:\(port)"
                let session = try await Self.signIn(url, code: code)
                _ = try await Self.timed(url + "/health", cookie: nil)
                let first = try await Self.timed(url + page, cookie: session)
                guard first.status == 200, first.body.contains("<svg") else { throw BenchError.childFailed("the dashboard answered \(first.status)") }
                bytes = first.body.utf8.count
                cold.append((first.first, first.full))
                for _ in 0..<pages {
                    let answered = try await Self.timed(url + page, cookie: session)
                    warm.append((answered.first, answered.full))
                    let echo = try await Self.timed(url + "/health", cookie: nil)
                    health.append((echo.first, echo.full))
                }
            }
            print("store: \(postgres == nil ? "SQLite (embedded)" : "PostgreSQL"); page: \(kind), \(bytes) bytes; \(rounds) server processes")
            print("cold first byte:  " + ms(cold.map(\.first)))
            print("cold full page:   " + ms(cold.map(\.full)))
            print("warm first byte:  " + ms(warm.map(\.first)))
            print("warm full page:   " + ms(warm.map(\.full)) + "  (target: under 300 ms warm on the embedded store)")
            print("/health (baseline): " + ms(health.map(\.full)))
        }
    }

    struct Timed {
        var status: Int
        var first: Double
        var full: Double
        var body: String
    }

    static let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))

    static func timed(_ url: String, cookie: String?) async throws -> Timed {
        var request = HTTPClientRequest(url: url)
        if let cookie { request.headers.add(name: "Cookie", value: "\(SyncServer.sessionCookie)=\(cookie)") }
        let start = ContinuousClock.now
        let response = try await client.execute(request, timeout: .seconds(120))
        let head = ContinuousClock.now
        let body = try await response.body.collect(upTo: 64 << 20)
        let end = ContinuousClock.now
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        return Timed(status: Int(response.status.code), first: seconds(head - start), full: seconds(end - start), body: String(buffer: body))
    }

    /// Signs in with a one-time code as a browser would; returns the session cookie's value.
    static func signIn(_ url: String, code: String) async throws -> String {
        let form = try await client.execute(HTTPClientRequest(url: url + "/dashboard"), timeout: .seconds(30))
        let page = String(buffer: try await form.body.collect(upTo: 1 << 20))
        guard let cookie = form.headers["Set-Cookie"].first(where: { $0.hasPrefix(SyncServer.signInCookie + "=") })?
                .split(separator: ";").first?.split(separator: "=", maxSplits: 1).last,
              let csrf = page.firstMatch(of: /name="csrf" value="([0-9a-f]+)"/)?.1
        else { throw BenchError.childFailed("no sign-in form") }
        var request = HTTPClientRequest(url: url + "/dashboard/sign-in")
        request.method = .POST
        request.headers.add(name: "Cookie", value: "\(SyncServer.signInCookie)=\(cookie)")
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = .bytes(ByteBuffer(string: "csrf=\(csrf)&code=\(code)"))
        let answer = try await client.execute(request, timeout: .seconds(30))
        guard let session = answer.headers["Set-Cookie"].first(where: { $0.hasPrefix(SyncServer.sessionCookie + "=") })?
                .split(separator: ";").first?.split(separator: "=", maxSplits: 1).last
        else { throw BenchError.childFailed("sign-in answered \(answer.status.code)") }
        return String(session)
    }
}
