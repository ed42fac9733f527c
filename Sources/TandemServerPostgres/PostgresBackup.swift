import Foundation
import TandemProcess
import PostgresNIO
public import TandemServer
import TandemCore

/// Backup and restore of a center's PostgreSQL database through PostgreSQL's own tools
/// (`pg_dump`, `pg_restore`), which `tandem admin backup` and `restore` run for the operator,
/// and the step Tandem adds: a restored center gets a new epoch, so devices re-push what
/// the backup lacks (PROTOCOL.md §9.9). The password, if any, reaches the tools through
/// `PGPASSWORD`, never their command line.
public enum PostgresBackup {
    /// The session advisory lock every instance holds, shared, while it runs (on its
    /// listening connection); a restore takes it exclusively ("TandemS").
    static let servingLockKey: Int64 = 0x54_61_6E_64_65_6D_53

    /// Writes a consistent snapshot of the database to a new file at `path`
    /// (`pg_dump --format=custom`), while the instances serve. The file is made 0600 before
    /// anything is written to it.
    public static func backup(_ location: PostgresLocation, to path: String) throws {
        let fd = Foundation.open(path, O_CREAT | O_EXCL | O_WRONLY, 0o600)
        guard fd >= 0 else {
            throw ServerError.conflict("\(path) exists already or cannot be created; choose a new file for the backup.")
        }
        close(fd)
        do {
            try run("pg_dump", ["--format=custom", "--file=\(path)"] + connection(location) + [location.database], location)
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
    }

    /// Replaces the database's contents by a backup and gives the center a new epoch, in one
    /// transaction: the backup's tables and rows and the new epoch commit together, or
    /// nothing changes (a failed or interrupted restore leaves the database as it was). Every
    /// `tandem serve` on the database must be stopped first: a restore while one runs is
    /// refused and changes nothing.
    /// - Throws: `ServerError.conflict` while an instance runs; `ServerError.badRequest` when
    ///   `backup` is missing or not a `pg_dump` of a Tandem center.
    public static func restore(backup: String, to location: PostgresLocation) throws {
        guard FileManager.default.fileExists(atPath: backup) else { throw ServerError.badRequest("No backup at \(backup).") }
        // What the archive holds, before anything is touched.
        let contents: String
        do { contents = try run("pg_restore", ["--list", backup], location) } catch {
            throw ServerError.badRequest("\(backup) is not a pg_dump archive (tandem admin backup --postgres writes one).")
        }
        guard contents.contains(" TABLE public center "), contents.contains(" TABLE public tandem_migration ") else {
            throw ServerError.badRequest("\(backup) is not a backup of a Tandem center's database.")
        }
        let connection = try BlockingConnection.open(location, applicationName: "tandem-admin")
        defer { connection.close() }
        // Every instance holds the serving lock, shared, from its start (on its listening
        // connection); held exclusively here until the restore is done, so none starts meanwhile.
        guard try connection.texts("SELECT pg_try_advisory_lock(\(servingLockKey))::text").first == "true" else {
            throw ServerError.conflict("A tandem serve instance runs on \(location); stop every instance first, then restore.")
        }
        let serving = try connection.texts("""
            SELECT count(*)::text FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'tandem'
            """).first ?? "0"
        guard serving == "0" else {
            throw ServerError.conflict("\(serving) connection(s) of tandem serve are open on \(location); stop every instance first, then restore.")
        }
        // The archive as SQL, the new epoch after it, run as one transaction.
        let script = NSTemporaryDirectory() + "tandem-restore-\(UUID().uuidString).sql"
        let fd = Foundation.open(script, O_CREAT | O_EXCL | O_WRONLY, 0o600)
        guard fd >= 0 else { throw ServerError.unavailable("Cannot write a temporary file for the restore.") }
        close(fd)
        defer { try? FileManager.default.removeItem(atPath: script) }
        try run("pg_restore", ["--clean", "--if-exists", "--no-owner", "--no-privileges", "--file=\(script)", backup], location)
        // First, in the same transaction, what the database holds that the archive may not:
        // `--clean` drops only what the archive creates, so a backup an older tandem took
        // would leave a newer table (with rows of the state it replaces) or function behind,
        // and the migrations after the restore would fail on it, or keep those rows.
        let header = NSTemporaryDirectory() + "tandem-restore-\(UUID().uuidString)-first.sql"
        // PostgreSQL quotes each name itself (`%I`).
        var drops = try connection.texts("""
            SELECT format('DROP TABLE IF EXISTS public.%I CASCADE;', tablename) FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename
            """)
        drops += PostgresSchema.functions.map { "DROP FUNCTION IF EXISTS public.\($0) CASCADE;" }
        guard FileManager.default.createFile(atPath: header, contents: Data((drops.joined(separator: "\n") + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ServerError.unavailable("Cannot write a temporary file for the restore.")
        }
        defer { try? FileManager.default.removeItem(atPath: header) }
        let epoch = hexString(RecordID.random().bytes)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: script))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("\nUPDATE public.center SET epoch = '\\x\(epoch)'::bytea;\n".utf8))
        try handle.close()
        do {
            try run("psql", ["--no-psqlrc", "--quiet", "--single-transaction", "--set=ON_ERROR_STOP=1", "--file=\(header)", "--file=\(script)"]
                + self.connection(location) + ["--dbname=\(location.database)"], location)
        } catch let error as ServerError {
            throw ServerError.badRequest("\(backup) could not be restored; the database is as it was: \(error.description)")
        }
        // Migrated to this tandem's tables (a backup taken by an older one).
        try PostgresSchema.migrate(connection)
    }

    private static func connection(_ location: PostgresLocation) -> [String] {
        ["--host=\(location.host)", "--port=\(location.port)", "--username=\(location.user)", "--no-password"]
    }

    /// Runs one of PostgreSQL's tools to its end and returns its output; its error output is
    /// the error's message.
    @discardableResult
    private static func run(_ tool: String, _ arguments: [String], _ location: PostgresLocation) throws -> String {
        var environment = ProcessInfo.processInfo.environment
        environment["PGPASSWORD"] = location.password
        environment["PGAPPNAME"] = "tandem-admin"
        // The same TLS as the store's own connections. Without sslrootcert, libpq verifies
        // against ~/.postgresql/root.crt, not the system's roots (docs/operations.md).
        environment["PGSSLMODE"] = location.tls.rawValue
        environment["PGSSLROOTCERT"] = location.rootCertificates
        // Output and errors go to files (0600), not pipes: reading two pipes one after the
        // other could deadlock on a tool that fills the other.
        let output = NSTemporaryDirectory() + "tandem-\(tool)-\(UUID().uuidString)"
        defer {
            try? FileManager.default.removeItem(atPath: output + ".out")
            try? FileManager.default.removeItem(atPath: output + ".err")
        }
        let process: Subprocess
        do {
            process = try Subprocess("/usr/bin/env", [tool] + arguments, environment: environment, output: .file(output + ".out"), error: .file(output + ".err"))
        } catch {
            throw ServerError.unavailable("\(tool) cannot be run: install PostgreSQL's client tools (Debian: postgresql-client).")
        }
        let ended = process.waitUntilExit()
        let message = (try? String(contentsOfFile: output + ".err", encoding: .utf8)) ?? ""
        guard ended == .exited(0) else {
            if ended == .exited(127) {
                throw ServerError.unavailable("\(tool) is not installed: install PostgreSQL's client tools (Debian: postgresql-client).")
            }
            throw ServerError.unavailable("\(tool) failed: \(message.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return (try? String(contentsOfFile: output + ".out", encoding: .utf8)) ?? ""
    }
}
