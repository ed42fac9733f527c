import Foundation
import PostgresNIO
public import TandemServer
import TandemCore

/// Backup and restore of a center's PostgreSQL database through PostgreSQL's own tools
/// (`pg_dump`, `pg_restore`), which `tandem admin backup` and `restore` run for the operator,
/// and the step Tandem adds: a restored center gets a new epoch, so devices re-push what
/// the backup lacks (PROTOCOL.md §9.9). The password, if any, reaches the tools through
/// `PGPASSWORD`, never their command line.
public enum PostgresBackup {
    /// Writes a consistent snapshot of the database to a new file at `path`
    /// (`pg_dump --format=custom`), while the instances serve.
    public static func backup(_ location: PostgresLocation, to path: String) throws {
        guard !FileManager.default.fileExists(atPath: path) else {
            throw ServerError.conflict("\(path) exists already; choose a new file for the backup.")
        }
        try run("pg_dump", ["--format=custom", "--file=\(path)"] + connection(location) + [location.database], location)
        try? FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
    }

    /// Replaces the database's contents by a backup and gives the center a new epoch. Every
    /// `tandem serve` on the database must be stopped first: a restore while one is
    /// connected is refused and changes nothing. The backup is restored in one transaction
    /// (`pg_restore --single-transaction`): one that fails leaves the database as it was.
    /// - Throws: `ServerError.conflict` while instances are connected; `ServerError.badRequest`
    ///   when `backup` is missing or not a Tandem center's.
    public static func restore(backup: String, to location: PostgresLocation) throws {
        guard FileManager.default.fileExists(atPath: backup) else { throw ServerError.badRequest("No backup at \(backup).") }
        let connection = try BlockingConnection.open(location, applicationName: "tandem-admin")
        defer { connection.close() }
        // Instances name their connections `tandem`. An instance stopped a moment ago may
        // still be listed while PostgreSQL ends its sessions: asked again for 3 s.
        var serving = "0"
        for attempt in 0..<7 {
            if attempt > 0 { Thread.sleep(forTimeInterval: 0.5) }
            serving = try connection.texts("""
                SELECT count(*)::text FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'tandem'
                """).first ?? "0"
            if serving == "0" { break }
        }
        guard serving == "0" else {
            throw ServerError.conflict("\(serving) connection(s) of tandem serve are open on \(location); stop every instance first, then restore.")
        }
        do {
            try run("pg_restore", ["--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error"]
                + self.connection(location) + ["--dbname=\(location.database)", backup], location)
        } catch let error as ServerError {
            throw ServerError.badRequest("\(backup) could not be restored (is it a pg_dump of a Tandem center?): \(error.description)")
        }
        // Migrated to this tandem's tables, then the new epoch.
        try PostgresSchema.migrate(connection)
        try connection.transaction { db in
            guard try db.run("UPDATE center SET epoch = \(Data(RecordID.random().bytes)) RETURNING 1").count == 1 else {
                throw ServerError.badRequest("\(backup) holds no initialized Tandem center.")
            }
        }
    }

    private static func connection(_ location: PostgresLocation) -> [String] {
        ["--host=\(location.host)", "--port=\(location.port)", "--username=\(location.user)", "--no-password"]
    }

    /// Runs one of PostgreSQL's tools to its end; its error output is the error's message.
    private static func run(_ tool: String, _ arguments: [String], _ location: PostgresLocation) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["PGPASSWORD"] = location.password
        environment["PGAPPNAME"] = "tandem-admin"
        process.environment = environment
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw ServerError.unavailable("\(tool) cannot be run: install PostgreSQL's client tools (Debian: postgresql-client).")
        }
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            if process.terminationStatus == 127 {
                throw ServerError.unavailable("\(tool) is not installed: install PostgreSQL's client tools (Debian: postgresql-client).")
            }
            throw ServerError.unavailable("\(tool) failed: \(message.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }
}
