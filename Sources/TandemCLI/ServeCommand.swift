import ArgumentParser
import Foundation
import Hummingbird
import TandemServer
import TandemServerPostgres

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the center's sync server, on its embedded SQLite store or on PostgreSQL. SIGINT or SIGTERM stops it cleanly.",
        discussion: """
            Several instances may serve one PostgreSQL database behind a load balancer (docs/operations.md). \
            The database URL may also come from TANDEM_DATABASE_URL, and its password from PGPASSWORD.
            """
    )

    @Option(help: ArgumentHelp("The server's SQLite store, created if missing (default: tandem-server.sqlite).", valueName: "path"))
    var db: String?

    @Option(help: ArgumentHelp(
        "The server's PostgreSQL database instead of --db, migrated if needed (also read from TANDEM_DATABASE_URL).",
        valueName: "postgres://user@host:port/database"))
    var postgres: String?

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on (0: any free port, printed at start).")
    var port = 8080

    @Option(help: ArgumentHelp(
        "The reverse proxy's address: its X-Forwarded-For then names clients, and failed sign-ins are also throttled per client address.",
        valueName: "ip"))
    var trustedProxy: String?

    @Option(help: ArgumentHelp(
        "Failed enrollments a minute from all addresses together before every enrollment gets 429 (a backstop; each address is limited to 20 a minute).",
        valueName: "count"))
    var failedEnrollmentsTotal = 1_000

    @Option(help: ArgumentHelp("The most each member may keep on the server, in MiB; pushes past it get 413.", valueName: "MiB"))
    var memberQuotaMib = 256

    @Option(help: ArgumentHelp(
        "How long the accounting of disclosures is kept, in years (at least 3, 42 CFR Part 2); older entries are pruned daily.",
        valueName: "years"))
    var accountingRetentionYears = 6

    @Option(help: ArgumentHelp(
        "The fewest patients a published statistic may describe (tandem report, /dashboard); at least 11, the CMS rule.",
        valueName: "patients"))
    var minCell = 11

    func run() async throws {
        guard minCell >= 11 else { throw ValidationError("--min-cell must be at least 11: no statistic describes 1 to 10 patients.") }
        let location = try StoreLocation.resolve(db: db, postgres: postgres)
        // Held while serving: `tandem admin restore` refuses to replace the store meanwhile.
        var serving: ServingLock?
        let storage: any CenterStore
        switch location {
        case .sqlite(let path):
            serving = try ServingLock(store: path, exclusive: false)
            let sqlite = try SQLiteServerStorage(path: path)
            try sqlite.checkpointInBackground()
            storage = sqlite
        case .postgres(let database):
            storage = try PostgresServerStorage(location: database)
        }
        defer { withExtendedLifetime(serving) {} }
        let host = host
        var limits = SyncServer.Limits()
        limits.trustedProxy = trustedProxy
        guard failedEnrollmentsTotal > 0 else { throw ValidationError("--failed-enrollments-total must be at least 1.") }
        limits.failedEnrollTotal = failedEnrollmentsTotal
        guard (1...1 << 20).contains(memberQuotaMib) else { throw ValidationError("--member-quota-mib must be from 1 to 1048576.") }
        limits.memberQuotaBytes = Int64(memberQuotaMib) << 20
        limits.outcomeMinimumCell = minCell
        guard (3...100).contains(accountingRetentionYears) else {
            throw ValidationError("--accounting-retention-years must be from 3 to 100 (42 CFR Part 2 asks for at least 3).")
        }
        let server = SyncServer(storage: storage, limits: limits)
        let pruner = AccountingPruner(
            store: storage, retentionYears: accountingRetentionYears, wallClock: SyncServer.SystemClock(), logger: server.logger)
        let app = server.application(host: host, port: port, services: [pruner]) { port in
            // Written straight to the file descriptor, so a parent reading a pipe sees it now.
            let line = "Tandem server listening on http://\(host):\(port) (store: \(location))\n"
            _ = line.withCString { write(STDOUT_FILENO, $0, strlen($0)) }
        }
        try await app.runService()
    }
}
